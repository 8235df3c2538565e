"""Time zones: stored timestamps are naive UTC; business dates are Europe/Oslo dates.

Queries never do date arithmetic in SQL (it differs between SQLite, PostgreSQL and
MariaDB): they compare a timestamp column to the UTC bounds of an Oslo day computed here.

The source databases are written by other systems, so a timestamp read back may also be
time-zone aware (PostgreSQL `timestamptz`, any offset) or, on SQLite, ISO 8601 text with a
`T` and an offset. `utc_naive` / `utc_naive_series` are the one conversion point: every
date rule (R1, R13, R15, R16) reads its Oslo date through them.
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


def utc_naive(ts: datetime | str | None) -> datetime | None:
    """A timestamp as naive UTC: naive values are UTC already; aware ones (any offset) are
    converted; ISO 8601 text ("2025-11-29T22:59:59+00:00", "2025-11-29 22:59:59") is
    parsed, without an offset as UTC. None and NaT give None. Raises ValueError for text
    that is not ISO 8601."""
    if ts is None or (not isinstance(ts, str) and pd.isna(ts)):
        return None
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.strip())
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def utc_naive_series(series: pd.Series) -> pd.Series:
    """Vectorised `utc_naive`: naive-UTC datetime64 values for naive, aware (any offset,
    mixed) or ISO 8601 text values; missing values give NaT."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return series
    converted = pd.to_datetime(series, utc=True, format="ISO8601")
    return converted.dt.tz_localize(None)


def oslo_date(ts: datetime | str | None) -> date | None:
    """The Europe/Oslo date of a timestamp (RULES.md R1): naive UTC, aware or ISO text as
    `utc_naive` takes them. None stays None."""
    ts = utc_naive(ts)
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC).astimezone(OSLO).date()


def oslo_dates(series: pd.Series) -> pd.Series:
    """Vectorised `oslo_date` (values as `utc_naive_series` takes them); NaT gives None."""
    ts = utc_naive_series(series)
    local = ts.dt.tz_localize("UTC").dt.tz_convert(OSLO)
    return local.dt.date.where(ts.notna(), None)


def oslo_times(series: pd.Series) -> pd.Series:
    """Timestamps (as `utc_naive_series` takes them) as time-zone aware Europe/Oslo
    datetimes: what a DPO reads, with the offset (+01:00 in winter, +02:00 in summer)."""
    return utc_naive_series(series).dt.tz_localize("UTC").dt.tz_convert(OSLO)


def oslo_text(ts: datetime | str | None, *, seconds: bool = False) -> str:
    """A timestamp (as `utc_naive` takes it) as Europe/Oslo wall time with its offset,
    "2026-12-04 02:52 +01:00" (with `seconds`, "02:52:10"); "" for None."""
    moment = utc_naive(ts)
    if moment is None:
        return ""
    local = moment.replace(tzinfo=UTC).astimezone(OSLO)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    offset = local.strftime("%z")
    return f"{text} {offset[:3]}:{offset[3:]}"


def day_start_utc(d: date) -> datetime:
    """The naive UTC instant at which the Oslo day `d` begins."""
    return datetime.combine(d, time.min, OSLO).astimezone(UTC).replace(tzinfo=None)


def day_end_utc(d: date) -> datetime:
    """The naive UTC instant at which the Oslo day `d` ends (exclusive bound)."""
    return day_start_utc(d + timedelta(days=1))
