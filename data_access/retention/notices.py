"""Inactivity notices (RULES.md R13; privacy policy "deleted (following notification)").

Sending a notice writes, per account and in one ledger transaction: the notice (dated
`as_of`), one outbox message in Norwegian and English, and an audit entry with the
account holder's keyed hash. The SMTP sender (`mailer.deliver_outbox`) delivers the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd
from sqlalchemy import Connection, func, insert, select

from data_access import audit, letters, rules, stores
from data_access.clock import utc_now
from data_access.engines import Databases
from data_access.ledger_tables import notices, outbox
from data_access.results import ActionResult
from data_access.retention.queries import account_states
from data_access.settings import Letters
from data_access.stores import writes


@writes(*stores.OUTBOX, *stores.HOLDS, *stores.AUDIT)
def send_deletion_notices(
    dbs: Databases, account_ids: Iterable[int], *, actor: str, as_of: date
) -> ActionResult:
    """Notify the holders of the given accounts that their account will be deleted (R13).

    Only accounts at stage *notice_due* get a notice; for every other id `failed` says why
    (unknown, not yet due, already notified, on hold). The notice is dated `as_of` and
    makes the account deletable on max(eligible_on, as_of + policy.notice_days). Sending
    twice (double click, rerun) is refused by the re-check inside the ledger transaction.
    """
    ids = _distinct_ids(account_ids)
    result = ActionResult()
    states = account_states(dbs, ids, as_of).set_index("account_id", drop=False)
    for account_id in ids:
        if account_id not in states.index:
            result.failed[account_id] = "no such account (deleted or never existed)"
            continue
        reason = _not_due_reason(states.loc[account_id], dbs)
        if reason:
            result.failed[account_id] = reason
            continue
        if _record_notice(dbs, states.loc[account_id], actor=actor, as_of=as_of):
            result.succeeded.append(account_id)
        else:
            result.failed[account_id] = "a notice was sent already (the list changed; reload)"
    return result


def _distinct_ids(account_ids: Iterable[int]) -> list[int]:
    seen: dict[int, None] = {}
    for value in account_ids:
        seen[int(value)] = None
    return list(seen)


def _not_due_reason(state: pd.Series, dbs: Databases) -> str | None:
    stage = state["stage"]
    if stage == "notice_due":
        return None
    if stage == "on_hold":
        return f"under legal hold ({state['hold_ids']})"
    if stage in ("notified", "ready"):
        return f"already notified on {state['notice_sent_on'].isoformat()}"
    notice_from = state["eligible_on"] - pd.Timedelta(days=dbs.policy.notice_days)
    return f"not due yet: inactive until {state['eligible_on'].isoformat()}, notice from {notice_from.isoformat()}"


def _record_notice(dbs: Databases, state: pd.Series, *, actor: str, as_of: date) -> bool:
    """Notice + outbox message + audit entry in one ledger transaction; False when a
    valid notice already exists (re-checked inside the transaction)."""
    account_id = int(state["account_id"])
    last_activity = state["last_activity_on"]
    deletable_on = rules.account_deletable_on(state["eligible_on"], as_of, dbs.policy.notice_days)
    letter = letters.inactivity_notice(
        full_name=state["full_name"],
        email=state["email"],
        last_activity_on=last_activity,
        deletable_on=deletable_on,
        inactivity_months=dbs.policy.account_inactivity_months,
        invoice_years=dbs.policy.invoice_retention_years,
        letters=dbs.settings.letters if dbs.settings else Letters(),
    )
    subject_ref = audit.keyed_hash(dbs, state["email"])
    now = utc_now()
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)
        if _has_valid_notice(conn, account_id, last_activity):
            return False
        outbox_id = conn.execute(
            insert(outbox).values(
                created_at=now,
                kind="inactivity_notice",
                to_email=state["email"],
                subject_ref=subject_ref,
                subject=letter.subject,
                body=letter.body,
                status="pending",
                attempts=0,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(notices).values(
                account_id=account_id,
                sent_on=as_of,
                created_at=now,
                actor=actor,
                last_activity_on=last_activity,
                deletable_on=deletable_on,
                outbox_id=outbox_id,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="send_deletion_notices",
            rule="R13",
            store="ledger",
            subject_ref=subject_ref,
            target=f"account:{account_id}",
            counts={"notices": 1, "outbox": 1},
            details={"as_of": as_of, "deletable_on": deletable_on},
            now=now,
        )
    return True


def _has_valid_notice(conn: Connection, account_id: int, last_activity_on: date) -> bool:
    query = select(func.count()).where(
        notices.c.account_id == account_id, notices.c.sent_on > last_activity_on
    )
    return conn.execute(query).scalar_one() > 0


def undelivered_notices(dbs: Databases, account_ids: Iterable[int]) -> pd.DataFrame:
    """The given accounts whose latest inactivity notice was not delivered (RULES.md R13:
    the account holder must be told before the deletion).

    Columns: account_id, sent_on (Oslo date the notice was recorded), status ('pending':
    waiting in the outbox; 'failed': given up after mailer.MAX_ATTEMPTS; 'missing': no outbox
    message), last_error. Accounts whose latest notice was delivered, or that have none, are
    not listed. Reads the ledger; raises DatabaseUnavailable when it is down.
    """
    ids = _distinct_ids(account_ids)
    rows = []
    latest = (
        select(notices.c.account_id, func.max(notices.c.id).label("notice_id"))
        .group_by(notices.c.account_id)
        .subquery()
    )
    with dbs.ledger.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = (
                select(
                    notices.c.account_id,
                    notices.c.sent_on,
                    outbox.c.status,
                    outbox.c.last_error,
                )
                .join(latest, latest.c.notice_id == notices.c.id)
                .outerjoin(outbox, outbox.c.id == notices.c.outbox_id)
                .where(notices.c.account_id.in_(chunk))
                .order_by(notices.c.account_id)
            )
            for account_id, sent_on, status, error in conn.execute(query):
                if status != "sent":
                    rows.append((account_id, sent_on, status or "missing", error))
    return pd.DataFrame(rows, columns=["account_id", "sent_on", "status", "last_error"])
