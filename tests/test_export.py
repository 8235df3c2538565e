"""CSV exports (RULES.md R40): Norwegian Excel dialect and the plain dialect for tools.

The bytes are parsed back with the csv module, the way a spreadsheet would split them, and
the cell values are checked.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from data_access.export import iter_csv, to_csv_bytes

BOM = "\ufeff".encode()


def excel_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    text = data[len(BOM) :].decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def plain_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=","))


def one_cell(value, *, excel: bool = True) -> str:
    data = to_csv_bytes(pd.DataFrame({"value": [value]}, dtype=object), excel=excel)
    rows = excel_rows(data) if excel else plain_rows(data)
    assert rows[0] == ["value"]
    return rows[1][0]


def test_r40_excel_dialect_has_bom_semicolons_and_crlf():
    df = pd.DataFrame({"account_id": [1, 2], "email": ["kari@example.no", "ola@example.no"]})
    data = to_csv_bytes(df)
    assert data == BOM + b"account_id;email\r\n1;kari@example.no\r\n2;ola@example.no\r\n"


@pytest.mark.parametrize(
    "text, cell",
    [
        pytest.param(
            '=HYPERLINK("http://evil.example","Klikk")',
            '\'=HYPERLINK("http://evil.example","Klikk")',
            id="equals-hyperlink",
        ),
        pytest.param("+47 22 33 44 55", "'+47 22 33 44 55", id="plus"),
        pytest.param("-x", "'-x", id="minus-text"),
        pytest.param("@SUM(A1:A9)", "'@SUM(A1:A9)", id="at"),
        pytest.param("\tcmd", "'\tcmd", id="tab"),
        pytest.param("\r=1+1", "'\r=1+1", id="carriage-return"),
        pytest.param("%APPDATA%", "'%APPDATA%", id="percent"),
    ],
)
def test_r40_formula_like_text_is_neutralised_in_excel_dialect(text, cell):
    assert one_cell(text) == cell


@pytest.mark.parametrize(
    "text",
    ["Kari = Ola", "e-post: a@b.no", "sum + moms", "Tekst med\ttab inni"],
    ids=["equals-inside", "at-inside", "plus-inside", "tab-inside"],
)
def test_r40_operators_after_the_first_character_are_kept(text):
    assert one_cell(text) == text


@pytest.mark.parametrize(
    "value, cell",
    [
        pytest.param(42, "42", id="int"),
        pytest.param(-42, "-42", id="negative-int"),
        pytest.param(np.int64(-7), "-7", id="numpy-int"),
        pytest.param(1234.5, "1234,5", id="float"),
        pytest.param(-1234.5, "-1234,5", id="negative-float"),
        pytest.param(0.1, "0,1", id="float-shortest-text"),
        pytest.param(-1e-05, "-0,00001", id="negative-small-float-positional"),
        pytest.param(Decimal("1234.50"), "1234,50", id="decimal-keeps-ore"),
        pytest.param(Decimal("-499.00"), "-499,00", id="negative-decimal"),
        pytest.param(Decimal("0.00"), "0,00", id="zero-decimal"),
    ],
)
def test_r40_numbers_get_decimal_comma_and_are_not_neutralised(value, cell):
    assert one_cell(value) == cell


@pytest.mark.parametrize(
    "value, cell",
    [
        pytest.param(None, "", id="none"),
        pytest.param(float("nan"), "", id="nan"),
        pytest.param(pd.NA, "", id="pandas-na"),
        pytest.param(pd.NaT, "", id="nat"),
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param(date(2026, 11, 29), "2026-11-29", id="date"),
        pytest.param(datetime(2026, 11, 29, 10, 30), "2026-11-29 10:30:00", id="datetime"),
    ],
)
def test_r40_empty_boolean_and_date_cells(value, cell):
    assert one_cell(value) == cell
    assert one_cell(value, excel=False) == cell


def test_r40_nullable_integer_column_writes_missing_as_empty():
    df = pd.DataFrame({"account_id": pd.array([7, None], dtype="Int64")})
    assert excel_rows(to_csv_bytes(df)) == [["account_id"], ["7"], [""]]


def test_r40_embedded_newlines_separators_and_quotes_are_kept_in_quoted_fields():
    summary = 'Linje 1\nLinje 2; "sitat"\r\nLinje 3'
    data = to_csv_bytes(pd.DataFrame({"contact_id": [5], "summary": [summary]}))
    assert b'"Linje 1\nLinje 2; ""sitat""\r\nLinje 3"' in data
    assert excel_rows(data) == [["contact_id", "summary"], ["5", summary]]


def test_r40_norwegian_letters_round_trip():
    name = "Blåbær-Øystein Ærø"
    data = to_csv_bytes(pd.DataFrame({"full_name": [name], "location": ["Tromsø"]}))
    assert excel_rows(data) == [["full_name", "location"], [name, "Tromsø"]]
    assert "Tromsø".encode() in data


def test_r40_columns_keep_the_order_shown():
    df = pd.DataFrame({"stage": ["ready"], "account_id": [3], "email": ["a@b.no"]})
    assert excel_rows(to_csv_bytes(df))[0] == ["stage", "account_id", "email"]


def test_r40_plain_dialect_leaves_values_unchanged():
    df = pd.DataFrame(
        {
            "formula": ['=HYPERLINK("http://evil.example")'],
            "phone": ["+47 22 33 44 55"],
            "amount": [Decimal("1234.50")],
            "ratio": [0.25],
            "note": ["-x"],
            "name": ["Åse"],
        }
    )
    data = to_csv_bytes(df, excel=False)
    assert not data.startswith(BOM)
    assert data.endswith(b"\r\n")
    assert plain_rows(data) == [
        ["formula", "phone", "amount", "ratio", "note", "name"],
        ['=HYPERLINK("http://evil.example")', "+47 22 33 44 55", "1234.50", "0.25", "-x", "Åse"],
    ]


def test_r40_iter_csv_writes_header_and_bom_once_over_many_chunks():
    df = pd.DataFrame(
        {
            "invoice_id": [1, 2, 3, 4, 5],
            "amount": [
                Decimal("10.00"),
                Decimal("20.50"),
                Decimal("-5.25"),
                Decimal("0.10"),
                Decimal("7"),
            ],
        }
    )
    chunks = list(iter_csv([df.iloc[0:2], df.iloc[2:4], df.iloc[4:]]))
    assert len(chunks) == 3
    assert chunks[0].startswith(BOM)
    assert not chunks[1].startswith(BOM) and not chunks[2].startswith(BOM)
    data = b"".join(chunks)
    assert data.count(BOM) == 1
    assert excel_rows(data) == [
        ["invoice_id", "amount"],
        ["1", "10,00"],
        ["2", "20,50"],
        ["3", "-5,25"],
        ["4", "0,10"],
        ["5", "7"],
    ]
    assert data == to_csv_bytes(df)


def test_r40_iter_csv_plain_dialect_header_once():
    df = pd.DataFrame({"id": [1, 2, 3]})
    data = b"".join(iter_csv([df.iloc[:1], df.iloc[1:]], excel=False))
    assert data == b"id\r\n1\r\n2\r\n3\r\n"


def test_r40_empty_frame_still_has_its_header():
    df = pd.DataFrame({"request_id": [], "due_on": []})
    assert to_csv_bytes(df) == BOM + b"request_id;due_on\r\n"
