"""The naive way: whole tables into pandas, then the rules applied row by row in Python
(RULES.md R13, R15, R16, R1-R8). The page benchmark times these beside the product's calls
and asserts equal answers; tests compare the product's window queries with them on small
random data. Never used by the dashboard: at a million accounts each takes seconds.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from sqlalchemy import select

from data_access import holds, rules
from data_access.clock import oslo_date
from data_access.engines import Databases
from data_access.ledger_tables import notices
from data_access.retention.queries import ACCOUNT_COLUMNS, STAGES
from data_access.tables import account_members, accounts, contacts, invoices


def _read(engine, query) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def account_rows(dbs: Databases, as_of: date) -> pd.DataFrame:
    """Every account's R13 state on `as_of` (ACCOUNT_COLUMNS, dates as datetime.date),
    whatever its window, by account_id."""
    policy = dbs.policy
    owners = _read(dbs.users, select(accounts).order_by(accounts.c.id))
    members = _read(dbs.users, select(account_members))
    sent = _read(dbs.ledger, select(notices.c.account_id, notices.c.sent_on))
    latest_sent = sent.groupby("account_id")["sent_on"].max().to_dict() if len(sent) else {}
    member_last: dict[int, object] = {}
    member_emails: dict[int, set[str]] = {}
    for account_id, last, email in members[["account_id", "last_active_at", "email"]].itertuples(
        index=False
    ):
        if last is not None and not pd.isna(last):
            member_last[account_id] = max(member_last.get(account_id, last), last)
        if isinstance(email, str):
            member_emails.setdefault(account_id, set()).add(holds.normalise_email(email))
    keys = holds.held_keys(dbs)
    rows = []
    for account in owners.itertuples(index=False):
        own = account.last_active_at if not pd.isna(account.last_active_at) else None
        member = member_last.get(account.id)
        candidates = [(own, "account"), (member, "member"), (account.created_at, "created")]
        latest = max(t for t, _ in candidates if t is not None)
        by = next(name for t, name in candidates if t is not None and t == latest)
        last_on = oslo_date(latest)
        eligible = rules.account_eligible_on(last_on, policy.account_inactivity_months)
        notice = latest_sent.get(account.id)
        valid = notice is not None and notice > last_on
        deletable = (
            rules.account_deletable_on(eligible, notice, policy.notice_days) if valid else None
        )
        emails = {holds.normalise_email(account.email)} | member_emails.get(account.id, set())
        maybe_held = account.id in keys["account"] or bool(emails & keys["email"])
        rows.append(
            {
                "account_id": account.id,
                "email": account.email,
                "full_name": account.full_name,
                "account_type": account.account_type,
                "last_activity_on": last_on,
                "last_activity_by": by,
                "eligible_on": eligible,
                "notice_sent_on": notice if valid else None,
                "notice_voided": notice is not None and not valid,
                "deletable_on": deletable,
                "key_date": deletable if valid else eligible,
                "maybe_held": maybe_held,
                "emails": emails,
            }
        )
    frame = pd.DataFrame(rows)
    return _with_stages(dbs, frame, as_of)


def _with_stages(dbs: Databases, frame: pd.DataFrame, as_of: date) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=ACCOUNT_COLUMNS)
    held = frame[frame["maybe_held"]]
    cover = holds.covering_holds(
        dbs,
        account_ids=held["account_id"],
        emails={e for emails in held["emails"] for e in emails},
    )
    hold_ids, stages = [], []
    notice_days = dbs.policy.notice_days
    for row in frame.itertuples(index=False):
        ids = set(cover["account"].get(row.account_id, ()))
        for email in row.emails:
            ids.update(cover["email"].get(email, ()))
        hold_ids.append(",".join(str(i) for i in sorted(ids)) if ids else None)
        if ids:
            stages.append("on_hold")
        elif row.notice_sent_on is not None and as_of >= row.deletable_on:
            stages.append("ready")
        elif row.notice_sent_on is not None:
            stages.append("notified")
        elif as_of >= row.eligible_on - timedelta(days=notice_days):
            stages.append("notice_due")
        else:
            stages.append("upcoming")
    frame = frame.assign(hold_ids=hold_ids, stage=stages)
    frame["on_hold"] = frame["hold_ids"].notna()
    return frame[ACCOUNT_COLUMNS]


def accounts_nearing_deletion(
    dbs: Databases, as_of: date, within_days: int = 30, *, stages=None, limit=None
) -> pd.DataFrame:
    """R13's list the naive way: every account's state, then the window, sort and cap."""
    frame = account_rows(dbs, as_of)
    horizon = as_of + timedelta(days=within_days)
    frame = frame[frame["key_date"] <= horizon]
    if stages is not None:
        frame = frame[frame["stage"].isin([stages] if isinstance(stages, str) else stages)]
    frame = frame.sort_values(["key_date", "account_id"], kind="stable", ignore_index=True)
    limit = limit or dbs.policy.max_rows
    capped = frame.head(limit).reset_index(drop=True)
    capped.attrs.update(truncated=len(frame) > limit, total=len(frame))
    return capped


def stage_counts(dbs: Databases, as_of: date, within_days: int = 30) -> dict[str, int]:
    """R13's stage counts the naive way."""
    frame = accounts_nearing_deletion(dbs, as_of, within_days, limit=10**9)
    counts = frame["stage"].value_counts()
    return {stage: int(counts.get(stage, 0)) for stage in STAGES}


def invoices_past_retention(dbs: Databases, as_of: date, *, limit=None) -> pd.DataFrame:
    """R15's list the naive way: every invoice read, its retention computed in Python."""
    from data_access.retention import queries as q

    policy = dbs.policy
    frame = _read(
        dbs.users,
        select(
            invoices.c.id.label("invoice_id"),
            invoices.c.invoice_number,
            invoices.c.issued_on,
            invoices.c.account_id,
            invoices.c.customer_name,
            invoices.c.contact_person,
        ),
    )
    frame = frame[frame["customer_name"].notna() | frame["contact_person"].notna()]
    frame = frame.assign(
        retained_until=[
            rules.invoice_retained_until(
                d, policy.invoice_retention_years, policy.fiscal_year_end_md
            )
            for d in frame["issued_on"]
        ]
    )
    frame = frame[[as_of > d for d in frame["retained_until"]]]
    frame = frame.sort_values(["issued_on", "invoice_id"], kind="stable", ignore_index=True)
    limit = limit or policy.max_rows
    shown = q._invoice_holds(dbs, frame.head(limit))
    shown = shown[q.INVOICE_COLUMNS].reset_index(drop=True)
    shown.attrs.update(truncated=len(frame) > limit, total=len(frame))
    return shown


def support_contacts_past_retention(dbs: Databases, as_of: date, *, limit=None) -> pd.DataFrame:
    """R16's list the naive way: every contact read, its retention computed in Python."""
    from data_access.clock import oslo_dates
    from data_access.retention import queries as q

    frame = _read(
        dbs.support,
        select(
            contacts.c.id.label("contact_id"),
            contacts.c.channel,
            contacts.c.started_at,
            contacts.c.account_id,
            contacts.c.email,
        ),
    )
    frame["started_on"] = oslo_dates(frame["started_at"])
    months = dbs.policy.support_log_months
    frame["retained_until"] = [
        rules.support_contact_retained_until(d, months) for d in frame["started_on"]
    ]
    frame = frame[[as_of > d for d in frame["retained_until"]]]
    frame = frame.sort_values(["started_at", "contact_id"], kind="stable", ignore_index=True)
    limit = limit or dbs.policy.max_rows
    shown = q._contact_holds(dbs, frame.head(limit))[q.CONTACT_COLUMNS].reset_index(drop=True)
    shown.attrs.update(truncated=len(frame) > limit, total=len(frame))
    return shown


def open_requests(dbs: Databases, as_of: date, *, limit=None) -> pd.DataFrame:
    """Open data-subject requests the naive way: the whole intake and every case read,
    each open request's deadline computed (R1-R8), sorted, capped."""
    from data_access.clock import oslo_dates
    from data_access.ledger_tables import request_cases
    from data_access.requests import queries as rq

    intake = _read(dbs.support, select(rq.intake.c.id, rq.intake.c.received_at))
    intake["received_on"] = oslo_dates(intake["received_at"])
    cases = {
        row["request_id"]: dict(row)
        for row in _read(dbs.ledger, select(request_cases)).to_dict("records")
    }
    rows = []
    for request_id, received_on in zip(intake["id"], intake["received_on"], strict=True):
        if received_on > as_of:
            continue
        case = cases.get(request_id)
        if case is not None:
            closed_on = case.get("closed_on")
            if case["status"] not in rq.OPEN_STATUSES and (
                closed_on is None or pd.isna(closed_on) or closed_on <= as_of
            ):
                continue
            case = {k: (None if _missing(v) else v) for k, v in case.items()}
            if case["status"] not in rq.OPEN_STATUSES:
                case["status"] = "in_progress"
        fields = rq._deadline_fields(received_on, case, as_of, dbs.policy)
        rows.append({"request_id": request_id, **fields})
    index = pd.DataFrame(rows)
    index = index.sort_values(
        ["overdue", "due_on", "request_id"], ascending=[False, True, True], kind="stable"
    )
    return list(index["request_id"]), len(index)


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def same(ours, theirs) -> bool:
    """The product's answer equals the naive one: the same rows and totals (frames), the
    same counts (dicts), or for open requests the same ids in the same order."""
    if isinstance(theirs, dict):
        return ours == theirs
    if isinstance(theirs, tuple):  # open requests: (ids in order, total)
        ids, total = theirs
        return list(ours["request_id"]) == ids[: len(ours)] and ours.attrs["total"] == total
    if (ours.attrs.get("total"), ours.attrs.get("truncated")) != (
        theirs.attrs.get("total"),
        theirs.attrs.get("truncated"),
    ):
        return False
    left = ours.astype(object).where(ours.notna(), None).to_dict("records")
    right = theirs.astype(object).where(theirs.notna(), None).to_dict("records")
    return left == right
