"""Consent state, rates and processing without consent (RULES.md R20-R22).

Consent events are append-only in the consent database. A subject's state for a purpose is
the action of its latest event (ties: higher id) on or before an Oslo date; the subject is
the first of `account:<account_id>`, `email:<lower(email)>`, `visitor:<visitor_id>` (R20).

The rates, the trend, the breakdowns and the withdrawals are answered from the roll-ups the
ledger keeps (`consent_rollup`): each call first applies the events that are new since the
last one (cheap when there are none), so the figures always include every committed event.
While the roll-up is being built by another process, the same figures are computed directly
from the events: the `_direct_*` functions, portable SQL with ROW_NUMBER() (SQLite,
PostgreSQL, MariaDB 10.2+) and Oslo day bounds computed in Python. They are also the
reference the roll-up is tested against. Processing without consent (R22) matches rows of
two stores: each account's spans without a granted usage_statistics state go into a
temporary table next to the sessions, which the database joins through its index; the
newsletter states are loaded as small per-e-mail rows and the subscribers streamed past
them. Only the rows shown are kept.
"""

from __future__ import annotations

import heapq
import uuid
from datetime import date, datetime

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
)

from data_access import consent_rollup, rules
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
    if not _rollup_ready(dbs):
        return _direct_rates(dbs, as_of)
    (counts,) = consent_rollup.state_totals(dbs, [as_of])
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
    if not _rollup_ready(dbs):
        return _direct_trend(dbs, start, end)
    months = _months(start, end)
    counts = consent_rollup.monthly_event_counts(dbs, start, end, months)
    states = consent_rollup.state_totals(dbs, [last for _first, last in months])
    return _trend_frame(months, counts, states)


def _trend_frame(months, counts, states) -> pd.DataFrame:
    """TREND_COLUMNS from (month, purpose) event counts and the state totals at month ends."""
    rows = []
    for (month, _last), state in zip(months, states, strict=True):
        rates = _rates_frame(state)
        rate = dict(zip(rates["purpose"], rates["rate"], strict=True))
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
    if not _rollup_ready(dbs):
        return _direct_breakdown(dbs, as_of, by)
    return consent_rollup.event_breakdown(dbs, as_of, by, dbs.policy.max_rows)


def withdrawals(dbs: Databases, start: date, end: date) -> pd.DataFrame:
    """Withdrawal events whose Oslo date is in [start, end], counted per purpose, source and
    notice version (R21).

    Columns: purpose, source, notice_version, withdrawals (events). Ordered by purpose,
    source, notice_version (missing values first). Capped at policy.max_rows.
    Raises ValueError if start > end.
    """
    _check_period(start, end)
    if not _rollup_ready(dbs):
        return _direct_withdrawals(dbs, start, end)
    return consent_rollup.withdrawal_counts(dbs, start, end, dbs.policy.max_rows)


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
    """How many R22 findings `processing_without_consent` has, per key (counted, not kept)."""
    as_of = as_of or today_oslo()
    return {
        "usage_sessions": _sessions_without_consent(dbs, as_of, 0).attrs["total"],
        "newsletter_subscribers": _subscribers_without_consent(dbs, as_of, 0).attrs["total"],
    }


# --- the direct computation (the fallback and the roll-up's reference) --------------------


def _rollup_ready(dbs: Databases) -> bool:
    """Apply new events to the roll-up; False while another process builds it."""
    return consent_rollup.refresh(dbs).ready


def _direct_rates(dbs: Databases, as_of: date) -> pd.DataFrame:
    """`consent_rates` computed from the events (one window-function pass)."""
    with dbs.consent.connect() as conn:
        (counts,) = _state_counts(conn, [day_end_utc(as_of)])
    return _rates_frame(counts)


def _direct_trend(dbs: Databases, start: date, end: date) -> pd.DataFrame:
    """`consent_trend` computed from the events."""
    _check_period(start, end)
    months = _months(start, end)
    with dbs.consent.connect() as conn:
        counts = _monthly_event_counts(conn, start, end, months)
        states = _state_counts(conn, [day_end_utc(last) for _first, last in months])
    return _trend_frame(months, counts, states)


def _direct_breakdown(dbs: Databases, as_of: date, by: str) -> pd.DataFrame:
    """`breakdown` computed from the events."""
    with dbs.consent.connect() as conn:
        return _event_breakdown(conn, by, day_end_utc(as_of), dbs.policy.max_rows)


def _direct_withdrawals(dbs: Databases, start: date, end: date) -> pd.DataFrame:
    """`withdrawals` computed from the events."""
    with dbs.consent.connect() as conn:
        return _withdrawal_counts(conn, day_start_utc(start), day_end_utc(end), dbs.policy.max_rows)


# --- subject state (R20) ------------------------------------------------------------------


def _subject_kinds():
    """The three R20 subject kinds as (key, conditions): an account id; else the lowered
    e-mail; else the visitor id. Each kind is ranked in its own query so the sort key stays
    narrow (MariaDB sorts the partition's widest key for every row: 3x slower as one query)."""
    no_account = events.c.account_id.is_(None)
    return [
        (events.c.account_id, [events.c.account_id.is_not(None)]),
        (func.lower(events.c.email), [no_account, events.c.email.is_not(None)]),
        (
            events.c.visitor_id,
            [no_account, events.c.email.is_(None), events.c.visitor_id.is_not(None)],
        ),
    ]


def _latest_first():
    """Latest event first; the higher id wins a tie (R20)."""
    return [events.c.occurred_at.desc(), events.c.id.desc()]


def _cutoff_bucket(cutoffs: list[datetime]):
    """Bucket i holds the events in [cutoffs[i-1], cutoffs[i]) (bucket 0: all before
    cutoffs[0]); a CASE over bound UTC instants, the same on every backend."""
    whens = [(events.c.occurred_at < cutoff, i) for i, cutoff in enumerate(cutoffs[:-1])]
    return case(*whens, else_=len(cutoffs) - 1) if whens else literal_column("0")


def _state_counts(
    conn: Connection, cutoffs: list[datetime]
) -> list[dict[str, tuple[int, int, int]]]:
    """Per ascending UTC cutoff: purpose -> (subjects, granted, withdrawn) from the events
    before it (R20, R21), in one pass over the history per subject kind.

    Each row of `_state_changes` is one change of a subject's state in a bucket (a new
    subject, granted <-> withdrawn); summing the changes over the buckets in Python gives
    the totals at every cutoff.
    """
    changes: dict[str, list[list[int]]] = {}
    for key, conditions in _subject_kinds():
        for purpose, bucket, action, previous, n in _state_changes(conn, cutoffs, key, conditions):
            delta = changes.setdefault(purpose, [[0, 0, 0] for _ in cutoffs])[int(bucket)]
            n = int(n)
            if previous is None:
                delta[0] += n
            for slot, state in ((1, "granted"), (2, "withdrawn")):
                delta[slot] += n * ((action == state) - (previous == state))
    totals: list[dict[str, tuple[int, int, int]]] = [{} for _ in cutoffs]
    for purpose, deltas in changes.items():
        running = [0, 0, 0]
        for i, delta in enumerate(deltas):
            running = [r + d for r, d in zip(running, delta, strict=True)]
            totals[i][purpose] = tuple(running)
    return totals


def _state_changes(conn: Connection, cutoffs: list[datetime], key, conditions):
    """(purpose, bucket, action, previous action or None, subjects) for one subject kind.

    A subject's last event in a bucket is its state at the bucket's end (ties: higher id,
    R20); LAG gives its state at the end of its previous bucket with events.
    """
    tagged = (
        select(
            events.c.purpose,
            events.c.action,
            events.c.occurred_at,
            events.c.id,
            key.label("subject"),
            _cutoff_bucket(cutoffs).label("bucket"),
        )
        .where(events.c.occurred_at < cutoffs[-1], *conditions)
        .subquery()
    )
    subject = [tagged.c.purpose, tagged.c.subject]
    latest = select(
        *subject,
        tagged.c.bucket,
        tagged.c.action,
        func.row_number()
        .over(
            partition_by=[*subject, tagged.c.bucket],
            order_by=[tagged.c.occurred_at.desc(), tagged.c.id.desc()],
        )
        .label("rn"),
    ).subquery()
    chain = (
        select(
            latest.c.purpose,
            latest.c.bucket,
            latest.c.action,
            func.lag(latest.c.action)
            .over(partition_by=[latest.c.purpose, latest.c.subject], order_by=latest.c.bucket)
            .label("previous"),
        )
        .where(latest.c.rn == 1)
        .subquery()
    )
    group = [chain.c.purpose, chain.c.bucket, chain.c.action, chain.c.previous]
    query = select(*group, func.count()).group_by(*group).order_by(*group)
    return conn.execute(query).all()


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
    dialect date functions); grouping happens on the subquery's column so PostgreSQL sees
    one expression, not two copies with their own bound parameters.
    """
    bucket = _cutoff_bucket([day_end_utc(last) for _first, last in months])
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


# Usage sessions without consent: the account's usage_statistics events are in the consent
# database, its sessions in the users database. The events become the account's spans of
# time without a granted state (before its first event; from each withdrawal to the next
# grant), those spans go into a temporary table next to the sessions, and the database
# finds the sessions inside them through the (account_id, started_at) index: about 1 s for
# five million sessions, where streaming every session past the timelines took minutes.
_NEVER = datetime(1000, 1, 1)  # the start of a span before any event (MariaDB's DATETIME minimum)
_SPAN_COLUMNS = ["account_id", "span_from", "span_until", "state"]
_SPAN_ROWS = 100_000


def _ungranted_spans(dbs: Databases, before: datetime) -> pd.DataFrame:
    """Per account with usage_statistics events before `before` (UTC), the spans in which
    its state was not granted: columns account_id, span_from (inclusive), span_until
    (exclusive, at most `before`), state ('none' before the first event, else the action
    then in force). The latest event at or before an instant counts; of events at the same
    instant, the one with the higher id (R20)."""
    query = (
        select(events.c.account_id, events.c.occurred_at, events.c.action)
        .where(events.c.purpose == "usage_statistics", events.c.account_id.is_not(None))
        .where(events.c.occurred_at < before)
        .order_by(events.c.account_id, events.c.occurred_at, events.c.id)
    )
    with dbs.consent.connect() as conn:
        timeline = _frame(conn.execute(query), ["account_id", "at", "action"])
    timeline["at"] = pd.to_datetime(timeline["at"])
    timeline = timeline.drop_duplicates(["account_id", "at"], keep="last").reset_index(drop=True)
    first = _starts(timeline["account_id"])
    # A run: an account's consecutive instants with the same action; it lasts until the next.
    runs = timeline[first | _starts(timeline["action"])].reset_index(drop=True)
    last_run = _starts(runs["account_id"]).shift(-1, fill_value=True)
    runs["span_until"] = runs["at"].shift(-1).where(~last_run, before)
    after_first = runs[runs["action"] != "granted"].rename(
        columns={"at": "span_from", "action": "state"}
    )
    before_first = timeline[first].rename(columns={"at": "span_until"})
    before_first = before_first.assign(span_from=_NEVER, state="none")
    return pd.concat([before_first, after_first], ignore_index=True)[_SPAN_COLUMNS]


def _starts(values: pd.Series) -> pd.Series:
    """True where a value differs from the one before it (and at the first)."""
    return values.ne(values.shift())


def _frame(result, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a DataFrame, built column by column (pandas inspects each Row
    object otherwise, which costs more than reading them)."""
    values = list(zip(*result.all(), strict=True)) or [() for _ in columns]
    return pd.DataFrame(dict(zip(columns, values, strict=True)), columns=columns)


def _sessions_without_consent(dbs: Databases, as_of: date, cap: int) -> pd.DataFrame:
    """Sessions started before the end of the Oslo date `as_of` while the account's
    usage_statistics state was not granted, newest first; rows beyond `cap` are only
    counted. Needs the right to create temporary tables in the users database."""
    before = day_end_utc(as_of)
    spans = _ungranted_spans(dbs, before)
    table = _spans_table()
    s = usage_sessions
    newest: list[tuple] = []
    total = 0
    # One transaction: on an error PostgreSQL and SQLite forget the temporary table; MariaDB
    # keeps it until the connection closes, harmless under its one-off name.
    with dbs.users.begin() as conn:
        spans = _spans_with_sessions(conn, spans, before)
        table.create(conn)
        for start in range(0, len(spans), _SPAN_ROWS):
            conn.execute(insert(table), _records(spans.iloc[start : start + _SPAN_ROWS]))
        # No ORDER BY: it would make the database walk every session by time.
        query = select(s.c.id, s.c.account_id, s.c.started_at, s.c.feature, table.c.state).join(
            table,
            (s.c.account_id == table.c.account_id)
            & (s.c.started_at >= table.c.span_from)
            & (s.c.started_at < table.c.span_until),
        )
        for row in conn.execute(query, execution_options={"yield_per": _STREAM}):
            total += 1
            newest.append(tuple(row))
            if len(newest) >= 2 * cap + _STREAM:  # keep the memory bounded
                newest = heapq.nlargest(cap, newest, key=_newest_first)
        table.drop(conn)
    rows = heapq.nlargest(cap, newest, key=_newest_first)
    frame = pd.DataFrame(rows, columns=SESSION_COLUMNS)
    frame["started_at"] = pd.to_datetime(frame["started_at"])
    frame.attrs.update(total=total, truncated=total > len(frame))
    return frame


def _spans_with_sessions(conn: Connection, spans: pd.DataFrame, before: datetime) -> pd.DataFrame:
    """The spans that can hold a session: those overlapping the time between the account's
    first and last session before `before` (one index-only pass over the sessions); plus a
    span over all time for each account with sessions but no usage_statistics event
    (never granted; such accounts are known only to the users database)."""
    s = usage_sessions
    query = (
        select(s.c.account_id, func.min(s.c.started_at), func.max(s.c.started_at))
        .where(s.c.started_at < before)
        .group_by(s.c.account_id)
    )
    ranges = _frame(conn.execute(query), ["account_id", "first_at", "last_at"])
    for name in ("first_at", "last_at"):
        ranges[name] = pd.to_datetime(ranges[name])
    matched = spans.merge(ranges, on="account_id")
    overlapping = matched[
        (matched["span_until"] > matched["first_at"]) & (matched["span_from"] <= matched["last_at"])
    ]
    never = ranges[~ranges["account_id"].isin(spans["account_id"])]
    never = never[["account_id"]].assign(span_from=_NEVER, span_until=before, state="none")
    return pd.concat([overlapping[_SPAN_COLUMNS], never[_SPAN_COLUMNS]], ignore_index=True)


def _spans_table() -> Table:
    """A temporary table for `_ungranted_spans`, under a one-off name."""
    return Table(
        f"dpo_ungranted_spans_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("account_id", Integer, nullable=False),
        Column("span_from", DateTime, nullable=False),
        Column("span_until", DateTime, nullable=False),
        Column("state", String(20), nullable=False),
        prefixes=["TEMPORARY"],
    )


def _records(frame: pd.DataFrame) -> list[dict]:
    """Span rows as dicts of plain Python values for a Core insert."""
    columns = [
        frame["account_id"].astype("int64").tolist(),
        list(frame["span_from"].dt.to_pydatetime()),
        list(frame["span_until"].dt.to_pydatetime()),
        frame["state"].tolist(),
    ]
    return [dict(zip(_SPAN_COLUMNS, row, strict=True)) for row in zip(*columns, strict=True)]


def _newest_first(row: tuple) -> tuple:
    return row[2], row[0]  # started_at, then id


def _newsletter_states(conn: Connection, before: datetime) -> dict[str, str]:
    """lower(e-mail) -> action of the latest newsletter event before `before` (UTC) among
    the events that carry that e-mail (ties: higher id, R20)."""
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
    query = (
        select(ranked.c.email_key, ranked.c.action)
        .where(ranked.c.rn == 1)
        .order_by(ranked.c.email_key)
    )
    return dict(tuple(r) for r in conn.execution_options(yield_per=_STREAM).execute(query))


def _subscribers_without_consent(dbs: Databases, as_of: date, cap: int) -> pd.DataFrame:
    """Subscribers still subscribed on `as_of` whose newsletter state is not granted.

    The states and the subscribers are read separately and matched in Python on the same
    SQL lower(e-mail): a join on a lowered, ranked subquery has no index to use and gets
    slow on SQLite long before the demo's medium size.
    """
    before = day_end_utc(as_of)
    subs = newsletter_subscribers
    query = (
        select(subs.c.id, subs.c.email, subs.c.subscribed_at, func.lower(subs.c.email))
        .where(or_(subs.c.subscribed_at.is_(None), subs.c.subscribed_at < before))
        .where(or_(subs.c.unsubscribed_at.is_(None), subs.c.unsubscribed_at >= before))
        .order_by(subs.c.id)
    )
    rows, total = [], 0
    with dbs.consent.connect() as conn:
        states = _newsletter_states(conn, before)
        for subscriber_id, email, subscribed_at, email_key in conn.execution_options(
            yield_per=_STREAM
        ).execute(query):
            state = states.get(email_key, "none")
            if state == "granted":
                continue
            total += 1
            if len(rows) < cap:
                rows.append((subscriber_id, email, subscribed_at, state))
    frame = pd.DataFrame(rows, columns=SUBSCRIBER_COLUMNS)
    frame["subscribed_at"] = pd.to_datetime(frame["subscribed_at"])
    frame.attrs.update(total=total, truncated=total > len(frame))
    return frame
