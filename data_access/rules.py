"""Pure date rules of RULES.md: no I/O, no database, only `datetime.date` in and out.

Month arithmetic is python-dateutil's `relativedelta` (same day-of-month, clamped to the
month's last day); Norwegian public holidays come from the `holidays` package (country NO).
All dates here are Europe/Oslo business dates; convert stored UTC timestamps with
`clock.oslo_date` first.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays
from dateutil.relativedelta import relativedelta


def add_months(d: date, n: int) -> date:
    """`d` plus `n` months, clamped to the month's end: 31 Jan + 1 → 28/29 Feb (RULES.md notation)."""
    return d + relativedelta(months=n)


@lru_cache(maxsize=64)
def _norwegian_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("NO", years=year))


def is_working_day(d: date) -> bool:
    """False on Saturdays, Sundays and Norwegian public holidays."""
    return d.weekday() < 5 and d not in _norwegian_holidays(d.year)


def next_working_day(d: date) -> date:
    """`d` itself if it is a Norwegian working day, else the next one (RULES.md `roll`)."""
    while not is_working_day(d):
        d += timedelta(days=1)
    return d


def dsr_due_date(
    received_on: date,
    *,
    extended: bool = False,
    paused_days: int = 0,
    months: int = 1,
    extension_months: int = 2,
) -> date:
    """The deadline of a data-subject request (GDPR art. 12(3); RULES.md R2, R3, R5).

    `roll(add_months(received_on, k) + paused_days)` with k = `months` (1), or
    `months + extension_months` (3) when `extended`: always counted from `received_on`.
    `paused_days` are calendar days the identity check paused the clock (R5).
    Raises ValueError for negative `paused_days`.
    """
    if paused_days < 0:
        raise ValueError(f"paused_days must be >= 0, got {paused_days}")
    k = months + (extension_months if extended else 0)
    return next_working_day(add_months(received_on, k) + timedelta(days=paused_days))


def account_eligible_on(last_activity_on: date, months: int = 12) -> date:
    """First day an account may be deleted for inactivity, before the notice (RULES.md R13)."""
    return add_months(last_activity_on, months)


def account_deletable_on(eligible_on: date, notice_sent_on: date, notice_days: int = 30) -> date:
    """`max(eligible_on, notice_sent_on + notice_days)` (RULES.md R13). Days are calendar days."""
    return max(eligible_on, notice_sent_on + timedelta(days=notice_days))


def notice_is_valid(notice_sent_on: date | None, last_activity_on: date) -> bool:
    """A notice counts only if sent after the last activity (RULES.md R13)."""
    return notice_sent_on is not None and notice_sent_on > last_activity_on


def support_contact_retained_until(started_on: date, months: int = 6) -> date:
    """Last day a customer-service log is kept; purgeable from the next day (RULES.md R16)."""
    return add_months(started_on, months)


def financial_year_end(issued_on: date, fiscal_year_end: tuple[int, int] = (12, 31)) -> date:
    """The last day of the financial year containing `issued_on`; `fiscal_year_end` is (month, day)."""
    month, day = fiscal_year_end
    end = _clamped(issued_on.year, month, day)
    return end if issued_on <= end else _clamped(issued_on.year + 1, month, day)


def invoice_retained_until(
    issued_on: date, years: int = 5, fiscal_year_end: tuple[int, int] = (12, 31)
) -> date:
    """Last day an invoice is kept: the end of its financial year plus `years` years
    (bokføringsloven §13; RULES.md R15). 2024-03-15 → 2029-12-31, never 5 years from the date."""
    end = financial_year_end(issued_on, fiscal_year_end)
    return _clamped(end.year + years, end.month, fiscal_year_end[1])


def invoice_issued_cutoff(
    as_of: date, years: int = 5, fiscal_year_end: tuple[int, int] = (12, 31)
) -> date:
    """Invoices issued on or before this date are past retention on `as_of` (R15 inverted).

    The latest financial-year end E with E + `years` years < `as_of`; every invoice of that
    financial year or earlier is anonymisable. Lets a query compare `issued_on <= cutoff`.
    """
    month, day = fiscal_year_end
    year = as_of.year - years
    while _clamped(year + years, month, day) >= as_of:
        year -= 1
    return _clamped(year, month, day)


def hold_review_default(placed_on: date, months: int = 12) -> date:
    """Default review date of a legal hold (RULES.md R17)."""
    return add_months(placed_on, months)


def badge(days_left: int | None, overdue: bool) -> str:
    """'green' (≥ 10 days), 'amber' (5–9) or 'red' (< 5 or overdue) (RULES.md R8)."""
    if overdue or days_left is None or days_left < 5:
        return "red"
    return "amber" if days_left < 10 else "green"


def _clamped(year: int, month: int, day: int) -> date:
    """date(year, month, day), with the day clamped to the month's length (29 Feb → 28 Feb)."""
    return date(year, month, 1) + relativedelta(day=day)
