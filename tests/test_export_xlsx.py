"""Exports that open cleanly in a spreadsheet (RULES.md R40): the XLSX export written with
openpyxl, and the Excel-dialect CSV as LibreOffice Calc (headless) imports it with the
Norwegian locale. In both, text that looks like a formula stays text, names with æøå are
intact and numbers and dates stay numbers and dates.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from data_access import audit, cached, export, prepared, retention
from tests import seeded
from tests.conftest import IN_CI, SEED_AS_OF
from tests.test_pages import _navigation_as_served, headers, open_app, texts  # noqa: F401

seeded_demo = seeded.seeded_demo
app_env = seeded.app_env

HYPERLINK = '=HYPERLINK("http://x","y")'
NAMES = ["Åse Ærø Østby", HYPERLINK, "+47 22 00 00 00", "-2+3", "@SUM(A1)", "Bjørn\nLinje to"]
# LibreOffice's CSV import options: ';' (59) separated, '"' (34) quoted, UTF-8 (76), from
# line 1, default column types, Norwegian Bokmål (1044) so "1234,50" reads as a number,
# quoted fields not forced to text, special numbers (dates) detected.
CSV_FILTER = "CSV:59,34,76,1,,1044,false,true"


def people() -> pd.DataFrame:
    """Six rows a DPO might export: hostile and Norwegian names, money, dates, flags."""
    return pd.DataFrame(
        {
            "full_name": NAMES,
            "amount": [Decimal("1234.50"), Decimal("-2.00"), 3, 4.25, None, Decimal("0.10")],
            "issued_on": [date(2026, 1, 2), None, date(2026, 12, 31), None, None, None],
            "started_at (UTC)": [datetime(2026, 11, 29, 8, 30), None, None, None, None, None],
            "on_hold": [True, False, False, True, False, False],
        }
    )


def sheet_rows(data: bytes) -> list[list[openpyxl.cell.Cell]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return [list(row) for row in book.active.iter_rows()]


def formulas(rows) -> list[str]:
    return [str(cell.value) for row in rows for cell in row if cell.data_type == "f"]


# --- XLSX written by the dashboard ----------------------------------------------------------


def test_r40_xlsx_export_keeps_formula_looking_text_as_text():
    rows = sheet_rows(export.to_xlsx_bytes(people(), sheet="accounts"))

    assert formulas(rows) == []
    assert [c.value for c in rows[0]] == [
        "full_name",
        "amount",
        "issued_on",
        "started_at (UTC)",
        "on_hold",
    ]
    names = [row[0] for row in rows[1:]]
    assert [c.value for c in names] == NAMES
    assert {c.data_type for c in names} == {"s"}


def test_r40_xlsx_export_keeps_numbers_dates_and_flags_typed():
    rows = sheet_rows(export.to_xlsx_bytes(people()))

    amounts = [row[1].value for row in rows[1:]]
    assert amounts == [1234.5, -2, 3, 4.25, None, 0.1]
    assert rows[1][2].value == datetime(2026, 1, 2)
    assert rows[1][2].number_format == "yyyy-mm-dd"
    assert rows[3][2].value == datetime(2026, 12, 31)
    assert rows[1][3].value == datetime(2026, 11, 29, 8, 30)
    assert rows[1][3].number_format == "yyyy-mm-dd hh:mm:ss"
    assert [row[4].value for row in rows[1:]] == [True, False, False, True, False, False]


def test_r40_xlsx_export_replaces_control_characters_and_names_the_sheet():
    frame = pd.DataFrame({"note": ["bell\x07here", "tab\there"], "n": [float("inf"), 1]})
    book = openpyxl.load_workbook(io.BytesIO(export.to_xlsx_bytes(frame, sheet="a/b:c*d")))

    assert book.active.title == "a b c d"
    values = [[c.value for c in row] for row in book.active.iter_rows(min_row=2)]
    assert values == [["bell\ufffdhere", None], ["tab\there", 1]]


def test_r40_xlsx_export_of_no_rows_has_the_header():
    frame = pd.DataFrame({"account_id": pd.Series([], dtype="int64"), "email": []})
    rows = sheet_rows(export.to_xlsx_bytes(frame))
    assert [[c.value for c in row] for row in rows] == [["account_id", "email"]]


# --- the Excel-dialect CSV in a real spreadsheet -------------------------------------------


def soffice() -> str:
    """LibreOffice's command; CI installs it (.ci/run), elsewhere the test is skipped."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        message = "LibreOffice (soffice) is not installed"
        if IN_CI:
            pytest.fail(f"{message}: CI must run the spreadsheet check")
        pytest.skip(message)
    return found


def convert_to_xlsx(csv_path: Path, tmp_path: Path, csv_filter: str) -> bytes:
    """Open `csv_path` in LibreOffice Calc with `csv_filter` and save it as XLSX."""
    out = tmp_path / "out"
    subprocess.run(
        [
            soffice(),
            f"-env:UserInstallation=file://{tmp_path / 'profile'}",
            "--headless",
            f"--infilter={csv_filter}",
            "--convert-to",
            "xlsx:Calc MS Excel 2007 XML",
            "--outdir",
            str(out),
            str(csv_path),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return (out / f"{csv_path.stem}.xlsx").read_bytes()


def test_r40_excel_csv_opens_in_a_spreadsheet_without_formulas(tmp_path):
    path = tmp_path / "accounts-nearing-deletion-accounts-2026-11-29.csv"
    path.write_bytes(export.to_csv_bytes(people()))

    rows = sheet_rows(convert_to_xlsx(path, tmp_path, CSV_FILTER))

    assert formulas(rows) == []
    assert [c.value for c in rows[0]][:2] == ["full_name", "amount"]
    names = [row[0].value for row in rows[1:]]
    # The neutralised cells keep their text after the leading apostrophe (RULES.md R40).
    assert names == [
        "Åse Ærø Østby",
        "'" + HYPERLINK,
        "'+47 22 00 00 00",
        "'-2+3",
        "'@SUM(A1)",
        "Bjørn\nLinje to",
    ]
    # Decimal commas read as numbers in the Norwegian locale, dates as dates.
    assert [row[1].value for row in rows[1:]] == [1234.5, -2, 3, 4.25, None, 0.1]
    assert rows[1][2].value == datetime(2026, 1, 2)
    assert rows[1][3].value == datetime(2026, 11, 29, 8, 30)
    assert [row[4].value for row in rows[1:]] == [
        "true",
        "false",
        "false",
        "true",
        "false",
        "false",
    ]


def test_r40_the_spreadsheet_check_would_catch_a_formula(tmp_path):
    # The same check on a plain CSV (values unchanged) finds the formula: the test above
    # passes because the export neutralised it, not because the check cannot see one.
    path = tmp_path / "plain.csv"
    path.write_bytes(export.to_csv_bytes(people(), excel=False))

    rows = sheet_rows(convert_to_xlsx(path, tmp_path, "CSV:44,34,76,1,,1033,false,true"))

    assert HYPERLINK in formulas(rows)


# --- exports from a page: every matching row, in the chosen format -------------------------


@pytest.fixture
def capped_app(app_env, monkeypatch, tmp_path):
    """The seeded demo in demo mode with tables capped at CAP rows on screen."""
    config = seeded.write_config(tmp_path, app_env.folder, extra=f"\n[display]\nmax_rows = {CAP}\n")
    monkeypatch.setattr(cached, "CONFIG_PATH", config)
    return app_env


CAP = 5
ACCOUNTS_EXPORT = "export:accounts-nearing-deletion:accounts"


def test_r40_a_capped_table_downloads_every_matching_row_and_says_so(capped_app):
    expected = retention.accounts_nearing_deletion(capped_app.dbs, SEED_AS_OF, 30, limit=10_000)
    assert len(expected) > CAP, "the seeded demo has more accounts in the window than the cap"
    at = open_app("accounts_nearing_deletion")
    assert len(at.dataframe[0].value) == CAP
    assert (
        f"Showing {CAP} of {len(expected):,} rows (cap {CAP}). The download holds every "
        "matching row." in texts(at.caption)
    )

    at.button(key=f"{ACCOUNTS_EXPORT}:prepare").click().run(timeout=60)

    data = prepared.get(at.session_state[ACCOUNTS_EXPORT]["token"])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    shown = at.dataframe[0]
    assert rows[0] == [headers(shown)[c] for c in shown.value.columns]  # as headed on screen
    assert [int(r[0]) for r in rows[1:]] == list(expected["account_id"])
    assert f"The file holds {len(expected):,} rows; {CAP} are shown." in texts(at.caption)
    newest = audit.audit_entries(capped_app.dbs, action="export").iloc[0]
    assert json.loads(newest["counts"]) == {"rows": len(expected)}
    assert json.loads(newest["details"])["filters"] == {
        "within_days": 30,
        "stages": ["upcoming", "notice_due", "notified", "ready", "on_hold"],
        "as_of": "2026-11-29",
        "format": "excel",
        "complete": True,
    }


def test_r40_the_xlsx_format_downloads_a_workbook_named_by_page_and_date(capped_app):
    expected = retention.accounts_nearing_deletion(capped_app.dbs, SEED_AS_OF, 30, limit=10_000)
    at = open_app("accounts_nearing_deletion")

    at.radio(key=f"{ACCOUNTS_EXPORT}:format").set_value("xlsx").run(timeout=60)
    at.button(key=f"{ACCOUNTS_EXPORT}:prepare").click().run(timeout=60)

    download = at.download_button(key=f"{ACCOUNTS_EXPORT}:download")
    assert download.label == "Download accounts-nearing-deletion-accounts-2026-11-29.xlsx"
    rows = sheet_rows(prepared.get(at.session_state[ACCOUNTS_EXPORT]["token"]))
    assert formulas(rows) == []
    shown = at.dataframe[0]
    assert [c.value for c in rows[0]] == [headers(shown)[c] for c in shown.value.columns]
    assert [row[0].value for row in rows[1:]] == list(expected["account_id"])
    assert [row[2].value for row in rows[1:]] == list(expected["email"])
    newest = audit.audit_entries(capped_app.dbs, action="export").iloc[0]
    assert json.loads(newest["details"])["filters"]["format"] == "xlsx"
    assert json.loads(newest["counts"]) == {"rows": len(expected)}
