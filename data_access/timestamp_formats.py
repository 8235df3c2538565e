"""Are the source databases' timestamp and date columns in a form the dashboard reads?
(DESIGN.md "Source schemas"; the health check reports what this finds.)

Accepted, per backend:
- PostgreSQL, MariaDB: a DATETIME/TIMESTAMP column (with or without time zone) for a
  contract timestamp, a DATE column for a contract date. Text or number columns are not:
  they would compare as text or numbers.
- SQLite (no column types): timestamps stored as ISO 8601 text, with a space or a `T`,
  with or without seconds, fractions, `Z` or a ±HH:MM offset ('2025-11-29 22:59:59',
  '2025-11-29T22:59:59+00:00'); dates as 'YYYY-MM-DD'. Numbers (epoch seconds), other text
  ('29.11.2025') and dates with a time are not.

On SQLite the values are sampled, not scanned: for each column the values of the first and
last rows (by rowid) and, when an index leads with the column, its smallest and largest
value (read from the index). Numbers sort before text and most other text forms sort after or before
every ISO date, so a column written in another form shows it at one of these ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy import Date, DateTime, String, Table, literal_column, select, type_coerce
from sqlalchemy.engine import Connection, Engine

from data_access.indexes import leading_columns
from data_access.tables import SOURCE_METADATA

_TIMESTAMP_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:\d{2})?"
)
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_SHOWN_CHARS = 40


def column_problems(
    engine: Engine, store: str, types: dict[str, dict[str, object]]
) -> list[tuple[str, str, str]]:
    """(table, column, message) for each contract timestamp/date column of `store` that is
    not in an accepted form. `types`: lower-case table -> lower-case column -> reflected
    SQLAlchemy type (tables or columns missing from it are skipped: the health check
    reports those). On SQLite reads at most four values per column, by index or rowid.
    Raises SQLAlchemy errors when a value cannot be read."""
    columns = list(_time_columns(store, types))
    if engine.dialect.name != "sqlite":
        return [
            (table.name, name, _type_message(store, table.name, name, types, is_date))
            for table, name, is_date in columns
            if not _type_ok(types[table.name.lower()][name.lower()], is_date)
        ]
    found = []
    indexed = leading_columns(engine)
    with engine.connect() as conn:
        for table, name, is_date in columns:
            ends = name.lower() in indexed.get(table.name.lower(), set())
            samples = _sampled(conn, table, name, ends=ends)
            bad = next((v for v in samples if not _text_ok(v, is_date)), None)
            if bad is not None:
                found.append(
                    (table.name, name, _value_message(store, table.name, name, bad, is_date))
                )
    return found


def _time_columns(store: str, types) -> Iterator[tuple[Table, str, bool]]:
    for table in SOURCE_METADATA[store].sorted_tables:
        have = types.get(table.name.lower())
        if have is None:
            continue
        for column in table.columns:
            if isinstance(column.type, (DateTime, Date)) and column.name.lower() in have:
                yield table, column.name, not isinstance(column.type, DateTime)


def _type_ok(found, is_date: bool) -> bool:
    if is_date:
        return isinstance(found, Date) and not isinstance(found, DateTime)
    return isinstance(found, DateTime)


def _type_message(store: str, table: str, column: str, types, is_date: bool) -> str:
    found = types[table.lower()][column.lower()]
    wanted = "DATE" if is_date else "DATETIME or TIMESTAMP"
    return (
        f"The {store} table '{table}' column '{column}' is {found}, not {wanted}: the "
        "dashboard would compare its values as text or numbers, so dates would be wrong."
    )


def _sampled(conn: Connection, table: Table, name: str, *, ends: bool) -> list:
    """The values of the first and last rows, as stored, and with `ends` (an index leads
    with the column, so no table is read) the smallest and largest non-null values too."""
    column = table.c[name]
    raw = type_coerce(column, String)  # as stored: no conversion that could raise
    typed = select(literal_column(f"typeof({conn.dialect.identifier_preparer.quote(name)})"), raw)
    values = []
    for order in (column.asc(), column.desc()) if ends else ():
        values.append(
            conn.execute(typed.where(column.is_not(None)).order_by(order).limit(1)).first()
        )
    rowid = literal_column("rowid")
    for order in (rowid.asc(), rowid.desc()):
        values.append(conn.execute(typed.order_by(order).limit(1)).first())
    return [(kind, value) for row in values if row is not None for kind, value in [row]]


def _text_ok(sample: tuple[str, object], is_date: bool) -> bool:
    kind, value = sample
    if kind == "null":
        return True
    if kind != "text":
        return False
    pattern = _DATE_TEXT if is_date else _TIMESTAMP_TEXT
    return pattern.fullmatch(str(value).strip()) is not None


def _value_message(store: str, table: str, column: str, sample, is_date: bool) -> str:
    kind, value = sample
    shown = str(value)[:_SHOWN_CHARS]
    what = "a date 'YYYY-MM-DD'" if is_date else "an ISO 8601 timestamp"
    stored = f"the {kind} value '{shown}'" if kind != "text" else f"'{shown}'"
    return (
        f"The {store} table '{table}' column '{column}' holds {stored}, not {what}: "
        "rows in this form would be left out of or misplaced in the date rules."
    )
