"""Data-subject requests: their state and legal deadlines (GDPR art. 12; RULES.md R1-R8).

The intake rows live in the support database (`data_subject_requests`, written by customer
service); the dashboard's case state lives in the ledger (`request_cases`, `request_events`).
A request with no case yet is 'received'. The ledger's cases are small enough to load
whole; the intake is not: it is read as ids and receipt times only, the open ones are
sorted and capped in Python, and only the rows shown are fetched in full, by id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, or_, select

from data_access import ledger_tables as ledger
from data_access import rules, sql_time
from data_access.clock import (
    day_end_utc,
    day_start_utc,
    oslo_date,
    oslo_dates,
    today_oslo,
    utc_naive_series,
)
from data_access.emails import email_condition, normalised_email, same_email
from data_access.engines import Databases
from data_access.ledger_tables import request_cases
from data_access.settings import Policy
from data_access.tables import data_subject_requests as intake

OPEN_STATUSES = ("received", "awaiting_identity", "in_progress", "extended")
CLOSED_STATUSES = ("completed", "refused", "withdrawn")

OPEN_REQUEST_COLUMNS = [
    "request_id",
    "request_type",
    "subject_email",
    "subject_name",
    "channel",
    "received_at",
    "received_on",
    "status",
    "due_on",
    "unpaused_due_on",
    "paused_days",
    "days_left",
    "overdue",
    "extended",
    "badge",
    "duplicate",
]
EVENT_COLUMNS = ["event_id", "occurred_at", "effective_on", "actor", "event", "details"]

# Ids per IN (...) list: well below every backend's bound-parameter limit.
_CHUNK = 500
_STREAM = 10_000


def deadline(
    received_on: date,
    case_row: Mapping[str, Any] | None,
    as_of: date,
    policy: Policy,
) -> tuple[date, date, int, bool]:
    """The deadline of one request: (due_on, unpaused_due_on, paused_days, extended_counts).

    `received_on` is the Oslo date of receipt (R1); `case_row` is the ledger's request_cases
    row (or None before a case exists); dates are Oslo dates, `paused_days` calendar days.
    - R5: asking for identity pauses the clock only when asked within
      `policy.identity_pause_window_days` calendar days of receipt; the pause runs from the
      day asked until the day confirmed, or up to `as_of` while still outstanding.
    - R4: an extension counts only with a non-empty reason and a notification on or before
      the base deadline (which includes the pause); otherwise the base deadline stands.
    - R2/R3: `rules.dsr_due_date` with `policy.dsr_months` / `policy.dsr_extension_months`.
    `unpaused_due_on` is the same deadline without the pause, shown beside it (R5).
    """
    case_row = case_row or {}
    paused_days = _paused_days(received_on, case_row, as_of, policy)
    months = {"months": policy.dsr_months, "extension_months": policy.dsr_extension_months}
    base_due = rules.dsr_due_date(received_on, paused_days=paused_days, **months)
    extended = _extension_counts(case_row, base_due)
    due_on = rules.dsr_due_date(received_on, extended=extended, paused_days=paused_days, **months)
    unpaused = rules.dsr_due_date(received_on, extended=extended, **months)
    return due_on, unpaused, paused_days, extended


def base_due_date(
    received_on: date, case_row: Mapping[str, Any] | None, as_of: date, policy: Policy
) -> date:
    """The base deadline of one request: one month from receipt plus the identity pause,
    rolled to a working day, without any extension (Oslo dates; RULES.md R2, R5).

    It is the date an extension must be notified by (R4) and a refusal is due by (R6).
    """
    paused_days = _paused_days(received_on, case_row or {}, as_of, policy)
    return rules.dsr_due_date(
        received_on,
        paused_days=paused_days,
        months=policy.dsr_months,
        extension_months=policy.dsr_extension_months,
    )


def _paused_days(
    received_on: date, case_row: Mapping[str, Any], as_of: date, policy: Policy
) -> int:
    asked = case_row.get("identity_requested_on")
    if asked is None or not 0 <= (asked - received_on).days <= policy.identity_pause_window_days:
        return 0
    confirmed = case_row.get("identity_confirmed_on")
    # Viewed as of a day before the identity arrived, it was still outstanding then.
    until = confirmed if confirmed is not None and confirmed <= as_of else as_of
    return max(0, (until - asked).days)


def _extension_counts(case_row: Mapping[str, Any], base_due: date) -> bool:
    claimed = bool(case_row.get("extended")) or case_row.get("status") == "extended"
    reason = (case_row.get("extension_reason") or "").strip()
    notified = case_row.get("extension_notified_on")
    return claimed and bool(reason) and notified is not None and notified <= base_due


def open_requests(
    dbs: Databases,
    as_of: date | None = None,
    *,
    request_type: str | None = None,
    status: str | None = None,
    due_within_days: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Open data-subject requests, overdue first, then soonest `due_on`, then request_id.

    Columns: request_id, request_type, subject_email, subject_name, channel, received_at
    (UTC), received_on (Oslo date, R1), status ('received' | 'awaiting_identity' |
    'in_progress' | 'extended'), due_on, unpaused_due_on (without the identity pause, R5),
    paused_days (calendar days), days_left (due_on - as_of, days), overdue (as_of > due_on,
    never while awaiting identity, R5/R8), extended (an extension that counts, R3/R4), badge
    ('green' | 'amber' | 'red', R8), duplicate (another request of the same type from the
    same e-mail, case-insensitive, received within policy.duplicate_request_days days).
    Filters: `request_type`, `status`, `due_within_days` (days_left <= it, overdue included).
    Capped at `limit` (default policy.max_rows); `.attrs["total"]` is the number of matching
    requests and `.attrs["truncated"]` says whether rows were left off.
    Raises ValueError for an unknown `status`.
    """
    as_of = as_of or today_oslo()
    if status is not None and status not in OPEN_STATUSES:
        raise ValueError(f"status must be one of {', '.join(OPEN_STATUSES)}, got {status!r}")
    cap = limit or dbs.policy.max_rows
    index = _open_index(dbs, as_of, request_type)
    if status is not None:
        index = index[index["status"] == status]
    if due_within_days is not None:
        index = index[index["days_left"] <= due_within_days]
    total = len(index)
    shown = index.head(cap)
    frame = _with_details(dbs, shown)
    frame["duplicate"] = _duplicates(dbs, frame)
    frame = frame[OPEN_REQUEST_COLUMNS].reset_index(drop=True)
    frame.attrs["total"] = total
    frame.attrs["truncated"] = total > len(frame)
    return frame


def request_counts(dbs: Databases, as_of: date | None = None) -> dict[str, int]:
    """Headline figures for the requests page (RULES.md R5, R8).

    Keys: open, awaiting_identity, due_this_week (0 to 7 days left, not overdue), overdue.
    """
    as_of = as_of or today_oslo()
    index = _open_index(dbs, as_of, None)
    this_week = index["days_left"].between(0, 7) & ~index["overdue"]
    return {
        "open": len(index),
        "awaiting_identity": int((index["status"] == "awaiting_identity").sum()),
        "due_this_week": int(this_week.sum()),
        "overdue": int(index["overdue"].sum()),
    }


def open_request_index(dbs: Databases, as_of: date | None = None) -> pd.DataFrame:
    """Every open request with its deadline, overdue first, then soonest due_on, uncapped
    and without personal data (the deadline radar reads it; RULES.md R2-R8).

    Columns: request_id, request_type, received_on, status, due_on, unpaused_due_on,
    paused_days, extended, days_left, overdue, badge (as in `open_requests`)."""
    return _open_index(dbs, as_of or today_oslo(), None)


def request(dbs: Databases, request_id: int, *, as_of: date | None = None) -> dict[str, Any]:
    """One request with its case, deadline and history, for the request page.

    Keys: the intake row (request_id, received_at (UTC), channel, request_type,
    subject_email, subject_name, account_id, details), received_on (Oslo, R1), status,
    is_open, due_on, unpaused_due_on, paused_days, extended, days_left, overdue, badge
    (RULES.md R2-R8; a closed request is never overdue), closed_on, case (the ledger's
    request_cases row as a dict, or None) and events (DataFrame, see `request_events`).
    Raises KeyError for an id that is not in the intake.
    """
    as_of = as_of or today_oslo()
    with dbs.support.connect() as conn:
        query = _intake_select().where(intake.c.id == request_id).limit(1)
        row = conn.execute(query).mappings().first()
    if row is None:
        raise KeyError(f"No data-subject request with id {request_id}")
    with dbs.ledger.connect() as conn:
        case_row = (
            conn.execute(
                select(request_cases).where(request_cases.c.request_id == request_id).limit(1)
            )
            .mappings()
            .first()
        )
    case_row = dict(case_row) if case_row is not None else None
    result = dict(row)
    result["received_on"] = oslo_date(row["received_at"])
    result["status"] = case_row["status"] if case_row else "received"
    result["is_open"] = result["status"] in OPEN_STATUSES
    result.update(_deadline_fields(result["received_on"], case_row, as_of, dbs.policy))
    if not result["is_open"]:
        result["overdue"] = False
        result["badge"] = None
    result["closed_on"] = case_row["closed_on"] if case_row else None
    result["case"] = case_row
    result["events"] = request_events(dbs, request_id)
    return result


def request_events(dbs: Databases, request_id: int) -> pd.DataFrame:
    """The history of one request's case, oldest first.

    Columns: event_id, occurred_at (UTC), effective_on (Oslo date the action took effect),
    actor, event, details (JSON text). Capped at policy.max_rows.
    """
    events = ledger.request_events
    query = (
        select(
            events.c.id.label("event_id"),
            events.c.occurred_at,
            events.c.effective_on,
            events.c.actor,
            events.c.event,
            events.c.details,
        )
        .where(events.c.request_id == request_id)
        .order_by(events.c.id)
        .limit(dbs.policy.max_rows)
    )
    with dbs.ledger.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=EVENT_COLUMNS)


def previous_request_on(dbs: Databases, request_id: int) -> date | None:
    """The Oslo receipt date of the same person's latest earlier request of the same type,
    or None (RULES.md R7: a previous request 12 months or more before is never a reason to
    call this one excessive). The e-mail is compared trimmed and case-insensitive.
    Raises KeyError for an id that is not in the intake.
    """
    with dbs.support.connect() as conn:
        row = conn.execute(
            select(intake.c.subject_email, intake.c.request_type, intake.c.received_at)
            .where(intake.c.id == request_id)
            .limit(1)
        ).first()
        if row is None:
            raise KeyError(f"No data-subject request with id {request_id}")
        try:
            norm = normalised_email(row.subject_email)
        except ValueError:
            return None
        query = (
            select(intake.c.subject_email, intake.c.received_at)
            .where(
                email_condition(intake.c.subject_email, norm, conn.dialect.name),
                intake.c.request_type == row.request_type,
                intake.c.id != request_id,
                intake.c.received_at <= row.received_at,
            )
            .order_by(intake.c.received_at.desc(), intake.c.id.desc())
            .limit(dbs.policy.max_rows)
        )
        for email, received_at in conn.execute(query):
            if same_email(email, norm):
                return oslo_date(received_at)
    return None


# --- the open set: ids, deadlines, order --------------------------------------------------


def _cases(dbs: Databases, as_of: date) -> tuple[dict[int, dict[str, Any]], set[int]]:
    """(cases open on `as_of` by request id, ids of requests closed by `as_of`) from the ledger.

    Closed cases (most of them, over time) are read as ids only. Looking back in time, a
    case closed after `as_of` was still open then: it is returned as 'in_progress' (the
    ledger keeps its current status, not the one it had on that day).
    """
    status = request_cases.c.status
    closed_on = request_cases.c.closed_on
    closed_by_then = and_(
        status.not_in(OPEN_STATUSES), or_(closed_on.is_(None), closed_on <= as_of)
    )
    with dbs.ledger.connect() as conn:
        open_rows = conn.execution_options(yield_per=_STREAM).execute(
            select(request_cases).where(~closed_by_then).order_by(request_cases.c.request_id)
        )
        open_cases = {}
        for row in open_rows.mappings():
            case = dict(row)
            if case["status"] not in OPEN_STATUSES:
                case["status"] = "in_progress"
            open_cases[case["request_id"]] = case
        closed_ids = conn.execute(
            select(request_cases.c.request_id).where(closed_by_then)
        ).scalars()
        return open_cases, set(closed_ids.all())


def _intake_times(
    dbs: Databases, request_type: str | None, as_of: date, closed: set[int]
) -> pd.DataFrame:
    """Ids, receipt times and types of the intake rows received by the end of the Oslo day
    `as_of` (optionally of one type) whose request is not in `closed`, by id. The ids come
    from the receipt-time index; only the open ones are read in full."""
    query = select(intake.c.id).where(
        sql_time.before(intake.c.received_at, day_end_utc(as_of), dbs.support.dialect.name)
    )
    if request_type is not None:
        query = query.where(intake.c.request_type == request_type)
    rows: list[tuple] = []
    with dbs.support.connect() as conn:
        ids = sorted(i for i in conn.execute(query).scalars().all() if i not in closed)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows.extend(
                conn.execute(
                    select(intake.c.id, intake.c.received_at, intake.c.request_type)
                    .where(intake.c.id.in_(chunk))
                    .order_by(intake.c.id)
                ).all()
            )
    names = ["request_id", "received_at", "request_type"]
    if not rows:
        return pd.DataFrame([], columns=names)
    columns = zip(names, zip(*rows, strict=True), strict=True)
    return pd.DataFrame({name: list(values) for name, values in columns})


def _open_index(dbs: Databases, as_of: date, request_type: str | None) -> pd.DataFrame:
    """All open requests with their deadlines, in display order (no personal data).

    Columns: request_id, request_type, received_on, status, due_on, unpaused_due_on,
    paused_days, extended, days_left, overdue, badge.
    """
    cases, closed = _cases(dbs, as_of)
    times = _intake_times(dbs, request_type, as_of, closed)
    statuses = [cases[i]["status"] if i in cases else "received" for i in times["request_id"]]
    index = times.assign(status=pd.Series(statuses, index=times.index, dtype=object))
    index["received_on"] = oslo_dates(index["received_at"])
    memo: dict[date, dict[str, Any]] = {}
    fields = [
        _deadline_fields(received_on, cases.get(rid), as_of, dbs.policy, memo)
        for rid, received_on in zip(index["request_id"], index["received_on"], strict=True)
    ]
    deadlines = pd.DataFrame(fields, columns=_DEADLINE_FIELDS).astype(_DEADLINE_TYPES)
    index = pd.concat(
        [index[["request_id", "request_type", "received_on", "status"]], deadlines], axis=1
    )
    return index.sort_values(
        ["overdue", "due_on", "request_id"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)


_DEADLINE_FIELDS = [
    "due_on",
    "unpaused_due_on",
    "paused_days",
    "extended",
    "days_left",
    "overdue",
    "badge",
]
# The case fields `deadline` and the overdue rule read (R3-R5).
_DEADLINE_CASE_FIELDS = (
    "status",
    "identity_requested_on",
    "identity_confirmed_on",
    "extended",
    "extension_reason",
    "extension_notified_on",
)
_DEADLINE_TYPES = {"paused_days": "int64", "extended": bool, "days_left": "int64", "overdue": bool}


def _deadline_fields(
    received_on: date,
    case_row: Mapping[str, Any] | None,
    as_of: date,
    policy: Policy,
    memo: dict | None = None,
) -> dict[str, Any]:
    """Deadline, days left, overdue and badge of one open request (RULES.md R2-R8).

    `memo` caches the result by the receipt date and the case fields the deadline depends
    on: thousands of requests share a few hundred dates and a few case states.
    """
    key = (
        (received_on, *(case_row.get(f) for f in _DEADLINE_CASE_FIELDS))
        if case_row
        else received_on
    )
    if memo is not None and key in memo:
        return memo[key]
    due_on, unpaused, paused_days, extended = deadline(received_on, case_row, as_of, policy)
    days_left = (due_on - as_of).days
    awaiting = case_row is not None and case_row.get("status") == "awaiting_identity"
    # R5: while the data subject owes us proof of identity the request is not overdue.
    overdue = as_of > due_on and not awaiting
    fields = {
        "due_on": due_on,
        "unpaused_due_on": unpaused,
        "paused_days": paused_days,
        "extended": extended,
        "days_left": days_left,
        "overdue": overdue,
        "badge": rules.badge(days_left, overdue),
    }
    if memo is not None:
        memo[key] = fields
    return fields


# --- details of the rows shown ------------------------------------------------------------


def _intake_select():
    return select(
        intake.c.id.label("request_id"),
        intake.c.received_at,
        intake.c.channel,
        intake.c.request_type,
        intake.c.subject_email,
        intake.c.subject_name,
        intake.c.account_id,
        intake.c.details,
    )


def _chunks(values: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _with_details(dbs: Databases, shown: pd.DataFrame) -> pd.DataFrame:
    """`shown` (from `_open_index`) joined with its intake rows, fetched by id in chunks."""
    ids = [int(i) for i in shown["request_id"]]
    rows: list[dict[str, Any]] = []
    with dbs.support.connect() as conn:
        for chunk in _chunks(ids):
            query = _intake_select().where(intake.c.id.in_(chunk)).order_by(intake.c.id)
            rows.extend(dict(r) for r in conn.execute(query).mappings())
    details = pd.DataFrame(
        rows,
        columns=[
            "request_id",
            "received_at",
            "channel",
            "request_type",
            "subject_email",
            "subject_name",
            "account_id",
            "details",
        ],
    )
    # The intake row's type replaces the index's copy of it.
    index = shown.drop(columns=["request_type"], errors="ignore")
    frame = index.merge(details, on="request_id", how="left", validate="one_to_one")
    frame["received_at"] = utc_naive_series(frame["received_at"])  # aware or ISO text too
    return frame


def _duplicates(dbs: Databases, frame: pd.DataFrame) -> pd.Series:
    """True where another request of the same type from the same e-mail (case-insensitive)
    was received within policy.duplicate_request_days days (Oslo dates, either side)."""
    if frame.empty:
        return pd.Series([], dtype=bool, index=frame.index)
    days = dbs.policy.duplicate_request_days
    emails = sorted({str(e).strip().lower() for e in frame["subject_email"]})
    since = day_start_utc(min(frame["received_on"]) - timedelta(days=days))
    until = day_end_utc(max(frame["received_on"]) + timedelta(days=days))
    nearby = _requests_from(dbs, emails, since, until)
    flags = []
    for rid, email, rtype, received_on in zip(
        frame["request_id"],
        frame["subject_email"],
        frame["request_type"],
        frame["received_on"],
        strict=True,
    ):
        others = nearby.get((str(email).strip().lower(), rtype), [])
        flags.append(
            any(oid != rid and abs((when - received_on).days) <= days for oid, when in others)
        )
    return pd.Series(flags, index=frame.index, dtype=bool)


def _requests_from(
    dbs: Databases, emails: list[str], since: datetime, until: datetime
) -> dict[tuple[str, str], list[tuple[int, date]]]:
    """Intake rows from these e-mails received in [since, until) UTC, by (e-mail, type)."""
    email_key = func.lower(func.trim(intake.c.subject_email))
    found: dict[tuple[str, str], list[tuple[int, date]]] = {}
    with dbs.support.connect() as conn:
        for chunk in _chunks(emails):
            query = (
                select(intake.c.id, email_key.label("email"), intake.c.request_type)
                .add_columns(intake.c.received_at)
                .where(email_key.in_(chunk))
                .where(
                    sql_time.at_or_after(intake.c.received_at, since, conn.dialect.name),
                    sql_time.before(intake.c.received_at, until, conn.dialect.name),
                )
                .order_by(intake.c.id)
            )
            result = conn.execution_options(yield_per=_STREAM).execute(query)
            for rid, email, rtype, received_at in result:
                found.setdefault((email, rtype), []).append((rid, oslo_date(received_at)))
    return found
