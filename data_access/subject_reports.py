"""What a data subject receives: the access report (GDPR art. 15; RULES.md R9) and the
portability export (art. 20; RULES.md R10), each one ZIP file.

- access report: data.json with every row held about the person in the four databases,
  one CSV per table (`export.to_csv_bytes`, Excel dialect, R40), and the letter
  (`access_letter`) as letter.md and letter.html in Norwegian and English; from the breach
  register only her own art. 34 letters (breach-letters/, RULES.md R52).
- portability export: only data the person provided or that was observed through their
  use, held on consent or contract: their account, member rows, usage sessions and consent
  events, not invoices, as data.json and one CSV per table.

The rows come from `subjects.find_subject` without its display cap: a report must hold
every row. Both functions only read; the request workflow audits each download
(`requests.prepare_report`). `subjects` re-exports `access_report` and
`portability_export`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from data_access import access_letter, export, register
from data_access.breaches import draft as breach_letters
from data_access.engines import Databases
from data_access.settings import Letters

PORTABILITY_TABLES = (
    "users.accounts",
    "users.account_members",
    "users.usage_sessions",
    "consent.consent_events",
)
# Rows per table a report may hold; a person with more is refused rather than cut short.
REPORT_MAX_ROWS = 1_000_000
# Someone else's row that only mentions the person's e-mail in its free text: the report
# keeps the row and its text (data about her) but not who the other person is (art. 15(4)).
OTHER_PERSON_COLUMNS = {
    "support.contacts": ("full_name", "email", "phone", "location", "account_id"),
    "support.data_subject_requests": ("subject_email", "subject_name", "account_id"),
}


class ReportTooLarge(RuntimeError):
    """A table holds more rows about the person than REPORT_MAX_ROWS."""


@dataclass(frozen=True)
class Report:
    """A report as built: the ZIP bytes, its file name, and rows per "store.table";
    `audit_head`: the audit chain's count and short head hash once the report is audited
    (`requests.prepare_report`, R18), empty before."""

    data: bytes
    file_name: str
    rows: dict[str, int]
    audit_head: str = ""


def access_report(dbs: Databases, email: str, *, as_of: date) -> bytes:
    """The access report of the person with this e-mail as a ZIP (RULES.md R9).

    Files: data.json ({"controller", "subject", "generated_on", "times", "tables":
    {"store.table": [row, ...]}}; times naive UTC, dates Europe/Oslo, amounts as decimal
    strings), "<store.table>.csv" for each of the twelve tables of `subjects.TABLES`
    (header only when empty), letter.md and letter.html (every R9 item in Norwegian and
    English). Byte-for-byte the same for the same data and `as_of`.
    Raises ValueError for a malformed e-mail, ReportTooLarge when a table holds more than
    REPORT_MAX_ROWS rows about the person.
    """
    return build_access_report(dbs, email, as_of=as_of).data


def portability_export(dbs: Databases, email: str, *, as_of: date) -> bytes:
    """The data the person provided or generated, machine-readable, as a ZIP (RULES.md R10).

    Files: data.json and "<store.table>.csv" for users.accounts, users.account_members,
    users.usage_sessions and consent.consent_events (not invoices, which are kept under a
    legal obligation). Raises ValueError for a malformed e-mail, ReportTooLarge as
    `access_report`.
    """
    return build_portability_export(dbs, email, as_of=as_of).data


def build_access_report(dbs: Databases, email: str, *, as_of: date) -> Report:
    """`access_report` with its file name and row counts (for the audit entry)."""
    found = subject_rows(dbs, email)
    norm = email.strip().lower()
    letters = dbs.settings.letters if dbs.settings else Letters()
    counts = {name: len(frame) for name, frame in found.items()}
    letter = access_letter.letter_blocks(
        email=norm,
        name=_name_of(found),
        as_of=as_of,
        row_counts=counts,
        recipients=_records(register.recipients(dbs)),
        activities=_records(register.processing_activities(dbs)),
        policy=dbs.policy,
        letters=letters,
    )
    title = f"Innsyn / Access — {letters.controller_name} — {as_of.isoformat()}"
    files = {
        "data.json": _json(found, norm, as_of, letters),
        **{f"{name}.csv": export.to_csv_bytes(frame) for name, frame in found.items()},
        "letter.md": access_letter.to_markdown(letter).encode("utf-8"),
        "letter.html": access_letter.to_html(letter, title=title).encode("utf-8"),
        # The breach register shows her only her own art. 34 letters (R52).
        **breach_letters.own_breach_letters(dbs, norm),
    }
    return Report(_zip(files, as_of), f"access-report-{as_of.isoformat()}.zip", counts)


def build_portability_export(dbs: Databases, email: str, *, as_of: date) -> Report:
    """`portability_export` with its file name and row counts (for the audit entry)."""
    found = {
        name: frame
        for name, frame in subject_rows(dbs, email).items()
        if name in PORTABILITY_TABLES
    }
    norm = email.strip().lower()
    letters = dbs.settings.letters if dbs.settings else Letters()
    files = {
        "data.json": _json(found, norm, as_of, letters),
        **{f"{name}.csv": export.to_csv_bytes(frame) for name, frame in found.items()},
    }
    counts = {name: len(frame) for name, frame in found.items()}
    return Report(_zip(files, as_of), f"portability-export-{as_of.isoformat()}.zip", counts)


def subject_rows(dbs: Databases, email: str) -> dict[str, pd.DataFrame]:
    """Every row held about the person: `subjects.find_subject` with the display cap raised
    to REPORT_MAX_ROWS per table, and the other person's columns (OTHER_PERSON_COLUMNS)
    blanked in rows that are someone else's and only mention her e-mail. Raises
    ReportTooLarge rather than return a table cut short, ValueError for a malformed e-mail."""
    # Imported here: subjects re-exports this module's functions at its end.
    from data_access import subjects

    uncapped = dataclasses.replace(
        dbs, policy=dataclasses.replace(dbs.policy, max_rows=REPORT_MAX_ROWS)
    )
    found = subjects.find_subject(uncapped, email)
    for name, frame in found.items():
        if frame.attrs.get("truncated"):
            raise ReportTooLarge(
                f"{name} holds more than {REPORT_MAX_ROWS:,} rows about this person; "
                "the report would be incomplete."
            )
    return {name: _without_other_people(name, frame) for name, frame in found.items()}


def _without_other_people(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    others = frame.attrs.get("mentions_only")
    if not others or name not in OTHER_PERSON_COLUMNS:
        return frame
    masked = frame.copy()
    rows = masked["id"].isin(others)
    for column in OTHER_PERSON_COLUMNS[name]:
        masked[column] = masked[column].where(~rows, None)
    return masked


def _name_of(found: dict[str, pd.DataFrame]) -> str | None:
    """The person's name as the account, a member row or the newsletter list holds it."""
    for table, column in (
        ("users.accounts", "full_name"),
        ("users.account_members", "full_name"),
        ("consent.newsletter_subscribers", "full_name"),
        ("support.data_subject_requests", "subject_name"),
    ):
        frame = found.get(table)
        if frame is not None and not frame.empty:
            for value in frame[column]:
                if isinstance(value, str) and value.strip():
                    return value.strip()
    return None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A register frame as dicts with None for missing values."""
    return [
        {k: (None if _missing(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _json_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _json(found: dict[str, pd.DataFrame], email: str, as_of: date, letters: Letters) -> bytes:
    document = {
        "controller": letters.controller_name,
        "subject": email,
        "generated_on": as_of.isoformat(),
        "times": "Timestamps (…_at) are UTC; dates (…_on) are Europe/Oslo dates.",
        "tables": {
            name: [
                {column: _json_value(value) for column, value in row.items()}
                for row in frame.to_dict("records")
            ]
            for name, frame in found.items()
        },
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def _zip(files: dict[str, bytes], as_of: date) -> bytes:
    """A deterministic ZIP: fixed order, every entry dated `as_of` (no clock in the bytes)."""
    buffer = io.BytesIO()
    stamp = (as_of.year, as_of.month, as_of.day, 0, 0, 0)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()
