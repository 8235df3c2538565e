"""Time zones: stored timestamps are naive UTC; business dates are Europe/Oslo dates.

Queries never do date arithmetic in SQL (it differs between SQLite, PostgreSQL and
MariaDB): they compare a timestamp column to the UTC bounds of an Oslo day computed here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

OSLO = ZoneInfo("Europe/Oslo")


def utc_now() -> datetime:
    """Now as a naive UTC datetime, the form stored in the databases."""
    return datetime.now(UTC).replace(tzinfo=None)


def today_oslo() -> date:
    """Today's date in Europe/Oslo."""
    return datetime.now(OSLO).date()


def oslo_date(ts: datetime | None) -> date | None:
    """The Europe/Oslo date of a naive UTC timestamp (RULES.md R1). None stays None."""
    if ts is None or pd.isna(ts):
        return None
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    return ts.replace(tzinfo=UTC).astimezone(OSLO).date()


def oslo_dates(series: pd.Series) -> pd.Series:
    """Vectorised `oslo_date` for a Series of naive UTC timestamps; NaT gives None."""
    ts = pd.to_datetime(series)
    local = ts.dt.tz_localize("UTC").dt.tz_convert(OSLO)
    return local.dt.date.where(ts.notna(), None)


def day_start_utc(d: date) -> datetime:
    """The naive UTC instant at which the Oslo day `d` begins."""
    return datetime.combine(d, time.min, OSLO).astimezone(UTC).replace(tzinfo=None)


def day_end_utc(d: date) -> datetime:
    """The naive UTC instant at which the Oslo day `d` ends (exclusive bound)."""
    return day_start_utc(d + timedelta(days=1))
