"""SQL filters on timestamp columns that other systems write (DESIGN.md "Source schemas").

On PostgreSQL and MariaDB a DATETIME/TIMESTAMP column compares as a time. SQLite has no
time type: a timestamp is text, and the dashboard's own rows are
'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, which sorts as the time does. Another system may write
ISO 8601 with a `T` and an offset ('2025-11-29T22:59:59+00:00'). Compared as text, such a
value sorts after every canonical one of its date (a 'T' sorts after the space), and
its date is the date at its offset, not in UTC. A plain `column < bound` then leaves
out the rows on the cut-off day.

On SQLite the filters here compare the text with bounds one day wider on each side, which
still uses the column's index: a row whose date text is two or more days away from the
bound is on the right side whatever its offset (offsets stay within ±14 hours). Only the
rows in that three-day band are compared exactly, as UTC through SQLite's `strftime`
(which reads `T`, `Z` and ±HH:MM offsets). Values SQLite cannot read as a time fall out of
every filter; the health check names columns that hold any (`timestamp_formats`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import String, and_, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement

_UTC_TEXT = "%Y-%m-%d %H:%M:%f"  # SQLite: UTC with milliseconds, for the exact comparison


def before(column, bound: datetime, dialect: str) -> ColumnElement[bool]:
    """`column < bound` (`bound` naive UTC) for the backend named `dialect`
    (`engine.dialect.name`); on SQLite also for ISO text with `T` and/or an offset."""
    if dialect != "sqlite":
        return column < bound
    low, high = _band(bound)
    return and_(column < high, or_(column < low, _utc_text(column) < _bound_text(bound)))


def at_or_after(column, bound: datetime, dialect: str) -> ColumnElement[bool]:
    """`column >= bound` (`bound` naive UTC), as `before` says."""
    if dialect != "sqlite":
        return column >= bound
    low, high = _band(bound)
    return and_(column >= low, or_(column >= high, _utc_text(column) >= _bound_text(bound)))


def _band(bound: datetime) -> tuple[datetime, datetime]:
    """Midnights a day before and two days after the bound's date: text below the first
    is before the bound, text from the second on is after it, at any offset."""
    day = bound.date()
    return _midnight(day - timedelta(days=1)), _midnight(day + timedelta(days=2))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min)


def _utc_text(column):
    return func.strftime(_UTC_TEXT, column, type_=String)


def _bound_text(bound: datetime):
    # Milliseconds, as strftime's %f gives them (the day bounds here are whole seconds).
    return literal(
        bound.strftime("%Y-%m-%d %H:%M:%S.") + f"{bound.microsecond // 1000:03d}", String
    )
