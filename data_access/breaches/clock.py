"""The 72-hour clock of a personal-data breach (GDPR art. 33(1); RULES.md R50).

`due_at = aware_at + 72 hours` in calendar hours: no working-day roll (unlike R2), and the
hours are real elapsed hours, so a DST change inside the 72 hours moves the Oslo wall-clock
time of the deadline, not its instant. Stored and computed as naive UTC
(`data_access.clock`); shown in Europe/Oslo with the offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from data_access.clock import OSLO, day_end_utc, oslo_date, utc_naive, utc_now

NOTIFICATION_HOURS = 72


def notification_due_at(aware_at: datetime | str) -> datetime:
    """When Datatilsynet must have been notified: `aware_at` + 72 hours, as naive UTC
    (RULES.md R50). `aware_at` may be naive UTC, aware (any offset) or ISO 8601 text.
    Raises ValueError when it is missing."""
    aware = utc_naive(aware_at)
    if aware is None:
        raise ValueError("When the company became aware of the breach is required.")
    return aware + timedelta(hours=NOTIFICATION_HOURS)


def hours_left(due_at: datetime, at: datetime) -> float:
    """Hours from `at` until `due_at` (both UTC), negative once overdue, to 0.01 h."""
    return round((utc_naive(due_at) - utc_naive(at)).total_seconds() / 3600, 2)


def is_late(notified_at: datetime | str, due_at: datetime) -> bool:
    """True when a notification at `notified_at` comes after `due_at` (R50): then the
    reasons for the delay are required (art. 33(1)). 72:00 exactly is in time."""
    return utc_naive(notified_at) > utc_naive(due_at)


def oslo_text(ts: datetime | str | None) -> str:
    """A UTC timestamp as Europe/Oslo wall-clock time with its offset and zone name,
    e.g. "2026-03-30 12:00 +02:00 (CEST)"; "" for None."""
    ts = utc_naive(ts)
    if ts is None:
        return ""
    local = ts.replace(tzinfo=UTC).astimezone(OSLO)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]} ({local.tzname()})"


def oslo_to_utc(day: date, hour: int, minute: int) -> datetime:
    """The naive UTC instant of an Oslo wall-clock time (a time typed into a form). In the
    autumn's repeated hour the first (summer-time) instant is taken."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO)
    return local.astimezone(UTC).replace(tzinfo=None)


def instant_of(as_of: date | None, now: datetime | None = None) -> datetime:
    """The instant a view "as of" an Oslo date measures clocks at: `now` (default the
    clock, UTC) when `as_of` is its Oslo date or None; otherwise the end of the Oslo day
    `as_of` (a what-if view: the clocks as they stand when that day is over)."""
    now = utc_naive(now) or utc_now()
    if as_of is None or oslo_date(now) == as_of:
        return now
    return day_end_utc(as_of) - timedelta(seconds=1)
