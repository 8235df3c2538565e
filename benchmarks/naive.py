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
from data_access.tables import account_members, accounts


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
