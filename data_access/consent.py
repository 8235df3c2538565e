"""Consent state, rates and processing without consent (RULES.md R20-R22).

Consent events are append-only in the consent database. A subject's state for a purpose is
the action of its latest event (ties: higher id) on or before an Oslo date; the subject is
the first of `account:<account_id>`, `email:<lower(email)>`, `visitor:<visitor_id>` (R20).

These are direct computations over the event history, with portable SQL (ROW_NUMBER() runs
on SQLite, PostgreSQL and MariaDB 10.2+) and Oslo day bounds computed in Python. A later
change serves the same public functions from roll-ups in the ledger, so the SQL lives in
small private functions and the public signatures are the contract.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Connection, and_, case, func, literal_column, or_, select

from data_access import rules
from data_access.clock import day_end_utc, day_start_utc, today_oslo
from data_access.engines import Databases
from data_access.tables import CONSENT_PURPOSES, newsletter_subscribers, usage_sessions
from data_access.tables import consent_events as events

RATE_COLUMNS = ["purpose", "subjects", "granted", "withdrawn", "rate"]
TREND_COLUMNS = ["month", "purpose", "granted_events", "withdrawn_events", "rate_at_month_end"]
WITHDRAWAL_COLUMNS = ["purpose", "source", "notice_version", "withdrawals"]
SESSION_COLUMNS = ["session_id", "account_id", "started_at", "feature", "state_at_time"]
SUBSCRIBER_COLUMNS = ["subscriber_id", "email", "subscribed_at", "state"]
BREAKDOWN_BY = ("source", "notice_version")

_STREAM = 10_000


# --- public -------------------------------------------------------------------------------


def consent_rates(dbs: Databases, as_of: date | None = None) -> pd.DataFrame:
    """Consent rate per purpose on the Oslo date `as_of` (RULES.md R20, R21).

    Columns: purpose, subjects (distinct subjects with any event for the purpose on or
    before `as_of`), granted, withdrawn (subjects whose latest event is that action), rate
    (granted / subjects as a float 0..1; NaN when there are no subjects, never 0).
    One row per purpose of `tables.CONSENT_PURPOSES`, in that order, even without events.
    """
    as_of = as_of or today_oslo()
    with dbs.consent.connect() as conn:
        counts = _state_counts(conn, day_end_utc(as_of))
    return _rates_frame(counts)


def consent_trend(dbs: Databases, start: date, end: date) -> pd.DataFrame:
    """Consent events and the rate per month and purpose between two Oslo dates (R21).

    Columns: month (first day of the month, date), purpose, granted_events and
    withdrawn_events (events whose Oslo date is in the month and in [start, end]),
    rate_at_month_end (the R21 rate as of the month's last day, or `end` for the last
    month; NaN without subjects). Every month and every purpose has a row, months oldest
    first, purposes in `tables.CONSENT_PURPOSES` order. Raises ValueError if start > end.
    """
    _check_period(start, end)
    months = _months(start, end)
    with dbs.consent.connect() as conn:
        counts = _monthly_event_counts(conn, start, end, months)
        rates = {m: _rates_frame(_state_counts(conn, day_end_utc(last))) for m, last in months}
    rows = []
    for month, _last in months:
        rate = dict(zip(rates[month]["purpose"], rates[month]["rate"], strict=True))
        for purpose in CONSENT_PURPOSES:
            granted, withdrawn = counts.get((month, purpose), (0, 0))
            rows.append((month, purpose, granted, withdrawn, rate[purpose]))
    frame = pd.DataFrame(rows, columns=TREND_COLUMNS)
    frame["rate_at_month_end"] = frame["rate_at_month_end"].astype(float)
    return frame


def breakdown(dbs: Databases, as_of: date | None = None, by: str = "source") -> pd.DataFrame:
    """Consent events on or before the Oslo date `as_of`, per purpose and `by` (R21).

    `by` is 'source' or 'notice_version'. Columns: purpose, <by> (missing when the events
    carry none), granted_events, withdrawn_events. Ordered by purpose, then <by> with
    missing values first. Capped at policy.max_rows. Raises ValueError for another `by`.
    """
    if by not in BREAKDOWN_BY:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWN_BY)}, got {by!r}")
    as_of = as_of or today_oslo()
    with dbs.consent.connect() as conn:
        return _event_breakdown(conn, by, day_end_utc(as_of), dbs.policy.max_rows)


def withdrawals(dbs: Databases, start: date, end: date) -> pd.DataFrame:
    """Withdrawal events whose Oslo date is in [start, end], counted per purpose, source and
    notice version (R21).

    Columns: purpose, source, notice_version, withdrawals (events). Ordered by purpose,
    source, notice_version (missing values first). Capped at policy.max_rows. Raises ValueError if
    start > end.
    """
    _check_period(start, end)
    with dbs.consent.connect() as conn:
        return _withdrawal_counts(conn, day_start_utc(start), day_end_utc(end), dbs.policy.max_rows)


def processing_without_consent(
    dbs: Databases, as_of: date | None = None, limit: int | None = None
) -> dict[str, pd.DataFrame]:
    """Processing that needs consent but had none, up to the Oslo date `as_of` (RULES.md R22).

    "usage_sessions": sessions started while the account's `usage_statistics` state at the
    session's start time (UTC timestamps compared) was not granted, newest first. Columns:
    session_id, account_id, started_at (UTC), feature, state_at_time ('none' | 'withdrawn').
    "newsletter_subscribers": subscribers still subscribed on `as_of` whose `newsletter`
    state (events carrying their e-mail, case-insensitive) is not granted on `as_of`, by id.
    Columns: subscriber_id, email, subscribed_at (UTC), state ('none' | 'withdrawn').
    Each frame is capped at `limit` (default policy.max_rows) with `.attrs["total"]` and
    `.attrs["truncated"]`.
    """
    as_of = as_of or today_oslo()
    cap = limit or dbs.policy.max_rows
    return {
        "usage_sessions": _sessions_without_consent(dbs, as_of, cap),
        "newsletter_subscribers": _subscribers_without_consent(dbs, as_of, cap),
    }


def processing_without_consent_counts(dbs: Databases, as_of: date | None = None) -> dict[str, int]:
    """How many R22 findings `processing_without_consent` has, per key (no rows loaded)."""
    as_of = as_of or today_oslo()
    with dbs.consent.connect() as conn:
        subscribers = conn.execute(
            select(func.count()).select_from(_subscribers_query(day_end_utc(as_of)).subquery())
        ).scalar_one()
    return {
        "usage_sessions": _sessions_without_consent(dbs, as_of, 0).attrs["total"],
        "newsletter_subscribers": int(subscribers),
    }


# --- subject state (R20) ------------------------------------------------------------------


def _subject_keys():
    """The R20 subject as three mutually exclusive columns (no string building in SQL)."""
    no_account = events.c.account_id.is_(None)
    return [
        events.c.account_id,
        case((no_account, func.lower(events.c.email))),
        case((and_(no_account, events.c.email.is_(None)), events.c.visitor_id)),
    ]


def _has_subject():
    return or_(
        events.c.account_id.is_not(None),
        events.c.email.is_not(None),
        events.c.visitor_id.is_not(None),
    )


def _latest_first():
    """Latest event first; the higher id wins a tie (R20)."""
    return [events.c.occurred_at.desc(), events.c.id.desc()]


def _state_counts(conn: Connection, before: datetime) -> dict[str, tuple[int, int, int]]:
    """purpose -> (subjects, granted, withdrawn) from events before the UTC instant `before`."""
    ranked = (
        select(
            events.c.purpose,
            events.c.action,
            func.row_number()
            .over(partition_by=[events.c.purpose, *_subject_keys()], order_by=_latest_first())
            .label("rn"),
        )
        .where(events.c.occurred_at < before, _has_subject())
        .subquery()
    )
    query = (
        select(
            ranked.c.purpose,
            func.count().label("subjects"),
            func.sum(case((ranked.c.action == "granted", 1), else_=0)).label("granted"),
            func.sum(case((ranked.c.action == "withdrawn", 1), else_=0)).label("withdrawn"),
        )
        .where(ranked.c.rn == 1)
        .group_by(ranked.c.purpose)
        .order_by(ranked.c.purpose)
    )
    return {
        purpose: (int(subjects), int(granted or 0), int(withdrawn or 0))
        for purpose, subjects, granted, withdrawn in conn.execute(query)
    }


def _rates_frame(counts: dict[str, tuple[int, int, int]]) -> pd.DataFrame:
    rows = []
    for purpose in CONSENT_PURPOSES:
        subjects, granted, withdrawn = counts.get(purpose, (0, 0, 0))
        # R21: no subjects means no rate, not 0 %.
        rate = granted / subjects if subjects else float("nan")
        rows.append((purpose, subjects, granted, withdrawn, rate))
    return pd.DataFrame(rows, columns=RATE_COLUMNS).astype({"rate": float})


# --- event counts (R21) -------------------------------------------------------------------


def _check_period(start: date, end: date) -> None:
    if start > end:
        raise ValueError(f"start {start} is after end {end}")


def _months(start: date, end: date) -> list[tuple[date, date]]:
    """(first day, last day counted) of each month from start's to end's; the last is `end`."""
    months = []
    first = start.replace(day=1)
    while first <= end:
        following = rules.add_months(first, 1)
        months.append((first, min(end, date.fromordinal(following.toordinal() - 1))))
        first = following
    return months


def _monthly_event_counts(
    conn: Connection, start: date, end: date, months: list[tuple[date, date]]
) -> dict[tuple[date, str], tuple[int, int]]:
    """(month, purpose) -> (granted events, withdrawn events) with Oslo dates in [start, end].

    The month of an event is found with a CASE over the months' UTC bounds (one scan, no
    dialect date functions); grouping happens on the subquery's column so every backend
    sees one expression.
    """
    # Bucket i holds the events before the start of month i + 1.
    whens = [
        (events.c.occurred_at < day_start_utc(first), i) for i, (first, _) in enumerate(months[1:])
    ]
    bucket = case(*whens, else_=len(months) - 1) if whens else literal_column("0")
    tagged = (
        select(bucket.label("bucket"), events.c.purpose, events.c.action)
        .where(events.c.occurred_at >= day_start_utc(start))
        .where(events.c.occurred_at < day_end_utc(end))
        .subquery()
    )
    query = (
        select(tagged.c.bucket, tagged.c.purpose, tagged.c.action, func.count().label("n"))
        .group_by(tagged.c.bucket, tagged.c.purpose, tagged.c.action)
        .order_by(tagged.c.bucket, tagged.c.purpose, tagged.c.action)
    )
    counts: dict[tuple[date, str], tuple[int, int]] = {}
    for bucket_no, purpose, action, n in conn.execute(query):
        month = months[int(bucket_no)][0]
        granted, withdrawn = counts.get((month, purpose), (0, 0))
        if action == "granted":
            granted += int(n)
        elif action == "withdrawn":
            withdrawn += int(n)
        counts[(month, purpose)] = (granted, withdrawn)
    return counts


def _nulls_first(column):
    """Sort key that puts NULL first on every backend (PostgreSQL sorts NULL last)."""
    return case((column.is_(None), 0), else_=1)


def _event_breakdown(conn: Connection, by: str, before: datetime, cap: int) -> pd.DataFrame:
    column = events.c[by]
    query = (
        select(
            events.c.purpose,
            column,
            func.sum(case((events.c.action == "granted", 1), else_=0)).label("granted_events"),
            func.sum(case((events.c.action == "withdrawn", 1), else_=0)).label("withdrawn_events"),
        )
        .where(events.c.occurred_at < before)
        .group_by(events.c.purpose, column)
        .order_by(events.c.purpose, _nulls_first(column), column)
        .limit(cap)
    )
    frame = pd.DataFrame(
        [tuple(r) for r in conn.execute(query)],
        columns=["purpose", by, "granted_events", "withdrawn_events"],
    )
    return frame.astype({"granted_events": "int64", "withdrawn_events": "int64"})


def _withdrawal_counts(
    conn: Connection, since: datetime, before: datetime, cap: int
) -> pd.DataFrame:
    query = (
        select(
            events.c.purpose,
            events.c.source,
            events.c.notice_version,
            func.count().label("withdrawals"),
        )
        .where(events.c.action == "withdrawn")
        .where(events.c.occurred_at >= since, events.c.occurred_at < before)
        .group_by(events.c.purpose, events.c.source, events.c.notice_version)
        .order_by(
            events.c.purpose,
            _nulls_first(events.c.source),
            events.c.source,
            _nulls_first(events.c.notice_version),
            events.c.notice_version,
        )
        .limit(cap)
    )
    frame = pd.DataFrame([tuple(r) for r in conn.execute(query)], columns=WITHDRAWAL_COLUMNS)
    return frame.astype({"withdrawals": "int64"})


# --- processing without consent (R22) -----------------------------------------------------


def _usage_timelines(dbs: Databases, before: datetime) -> dict[int, tuple[list, list]]:
    """account_id -> (event times, actions) of its usage_statistics events, oldest first
    (ties by id, so the last of equal times is the one that counts, R20)."""
    query = (
        select(events.c.account_id, events.c.occurred_at, events.c.action)
        .where(events.c.purpose == "usage_statistics", events.c.account_id.is_not(None))
        .where(events.c.occurred_at < before)
        .order_by(events.c.account_id, events.c.occurred_at, events.c.id)
    )
    timelines: dict[int, tuple[list, list]] = {}
    with dbs.consent.connect() as conn:
        for account_id, occurred_at, action in conn.execution_options(yield_per=_STREAM).execute(
            query
        ):
            times, actions = timelines.setdefault(account_id, ([], []))
            times.append(occurred_at)
            actions.append(action)
    return timelines


def _state_at(timeline: tuple[list, list] | None, when: datetime) -> str:
    """'granted', 'withdrawn' or 'none': the latest event at or before `when`."""
    if timeline is None:
        return "none"
    times, actions = timeline
    position = bisect_right(times, when)
    return actions[position - 1] if position else "none"


def _sessions_without_consent(dbs: Databases, as_of: date, cap: int) -> pd.DataFrame:
    """Sessions started while the account's usage_statistics state was not granted.

    The account's consent history is in another database, so the account timelines are
    loaded (one small row per event) and the sessions streamed past them newest first;
    rows beyond `cap` are only counted.
    """
    before = day_end_utc(as_of)
    timelines = _usage_timelines(dbs, before)
    query = (
        select(
            usage_sessions.c.id,
            usage_sessions.c.account_id,
            usage_sessions.c.started_at,
            usage_sessions.c.feature,
        )
        .where(usage_sessions.c.started_at < before)
        .order_by(usage_sessions.c.started_at.desc(), usage_sessions.c.id.desc())
    )
    rows, total = [], 0
    with dbs.users.connect() as conn:
        for session_id, account_id, started_at, feature in conn.execution_options(
            yield_per=_STREAM
        ).execute(query):
            state = _state_at(timelines.get(account_id), started_at)
            if state == "granted":
                continue
            total += 1
            if len(rows) < cap:
                rows.append((session_id, account_id, started_at, feature, state))
    frame = pd.DataFrame(rows, columns=SESSION_COLUMNS)
    frame["started_at"] = pd.to_datetime(frame["started_at"])
    frame.attrs.update(total=total, truncated=total > len(frame))
    return frame


def _subscribers_query(before: datetime):
    """Subscribers subscribed before `before` (UTC) whose latest newsletter event is not a grant."""
    email_key = func.lower(events.c.email)
    ranked = (
        select(
            email_key.label("email_key"),
            events.c.action,
            func.row_number().over(partition_by=email_key, order_by=_latest_first()).label("rn"),
        )
        .where(events.c.purpose == "newsletter", events.c.email.is_not(None))
        .where(events.c.occurred_at < before)
        .subquery()
    )
    latest = select(ranked.c.email_key, ranked.c.action).where(ranked.c.rn == 1).subquery()
    subs = newsletter_subscribers
    state = func.coalesce(latest.c.action, "none")
    return (
        select(subs.c.id, subs.c.email, subs.c.subscribed_at, state.label("state"))
        .select_from(subs.outerjoin(latest, func.lower(subs.c.email) == latest.c.email_key))
        .where(or_(subs.c.subscribed_at.is_(None), subs.c.subscribed_at < before))
        .where(or_(subs.c.unsubscribed_at.is_(None), subs.c.unsubscribed_at >= before))
        .where(or_(latest.c.action.is_(None), latest.c.action != "granted"))
    )


def _subscribers_without_consent(dbs: Databases, as_of: date, cap: int) -> pd.DataFrame:
    before = day_end_utc(as_of)
    query = _subscribers_query(before)
    with dbs.consent.connect() as conn:
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = [
            tuple(r) for r in conn.execute(query.order_by(newsletter_subscribers.c.id).limit(cap))
        ]
    frame = pd.DataFrame(rows, columns=SUBSCRIBER_COLUMNS)
    frame["subscribed_at"] = pd.to_datetime(frame["subscribed_at"])
    frame.attrs.update(total=int(total), truncated=int(total) > len(frame))
    return frame
