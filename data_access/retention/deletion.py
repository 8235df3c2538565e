"""Approved deletion of inactive accounts, as resumable jobs (RULES.md R13, R14, R17, R18).

Per account the job has four steps, each one transaction in one store:
1. users: re-check that the account is still inactive and not held, then delete its usage
   sessions, members and the account, and detach its invoices (kept under R15);
2. consent: delete the consent events with its account_id;
3. support: delete the contacts with its account_id, except a contact under hold;
4. ledger: delete the ledger's copies (notices and their outbox messages).
The newsletter subscription and e-mail-keyed consent events are separate processing and
are kept (R14). Step 1 runs first so that an account that became active again is refused
before anything is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from sqlalchemy import Connection, delete, func, select, update

from data_access import audit, holds, jobs
from data_access.clock import day_end_utc
from data_access.engines import Databases
from data_access.ledger_tables import notices, outbox
from data_access.results import ActionResult
from data_access.retention.queries import account_states
from data_access.tables import (
    account_members,
    accounts,
    consent_events,
    contacts,
    invoices,
    usage_sessions,
)

KIND = "account_deletion"
STEPS = (
    ("users", "delete_account"),
    ("consent", "delete_account_consent_events"),
    ("support", "delete_account_contacts"),
    ("ledger", "delete_account_ledger_copies"),
)


def approve_deletions(
    dbs: Databases,
    account_ids: Iterable[int],
    *,
    actor: str,
    as_of: date,
    idempotency_key: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ActionResult:
    """Delete the given accounts that are *ready* (R13) as one resumable job (R14).

    Accounts not ready fail with the reason (stage, hold, unknown id); an attempt on a held
    account is recorded as blocked (R17). `succeeded` holds the ids whose every step is
    done; a store failure leaves the job partial (`failed` names the step and error) and
    `resume_deletions` finishes it. The same `idempotency_key` never plans a second job.
    """
    ids = list(dict.fromkeys(int(i) for i in account_ids))
    result = ActionResult()
    states = account_states(dbs, ids, as_of).set_index("account_id", drop=False)
    planned: list[jobs.PlannedStep] = []
    last_activity: dict[str, str] = {}
    for account_id in ids:
        reason = _refusal(dbs, states, account_id, actor)
        if reason:
            result.failed[account_id] = reason
            continue
        state = states.loc[account_id]
        target = f"account:{account_id}"
        last_activity[target] = state["last_activity_on"].isoformat()
        ref = audit.keyed_hash(dbs, state["email"])
        planned.extend(jobs.PlannedStep(target, store, step, ref, "R14") for store, step in STEPS)
    if not planned:
        return result
    job_id, _ = jobs.create_job(
        dbs,
        kind=KIND,
        actor=actor,
        as_of=as_of,
        steps=planned,
        params={"last_activity_on": last_activity},
        idempotency_key=idempotency_key,
    )
    return _merge(result, jobs.run_job(dbs, job_id, HANDLERS, progress=progress).as_action_result())


def _merge(first: ActionResult, second: ActionResult) -> ActionResult:
    """The refusals found before the job, then the job's own results."""
    second.failed = {**first.failed, **second.failed}
    return second


def _refusal(dbs: Databases, states, account_id: int, actor: str) -> str | None:
    if account_id not in states.index:
        return "no such account (already deleted or never existed)"
    state = states.loc[account_id]
    if state["stage"] == "on_hold":
        hold_ids = [int(h) for h in str(state["hold_ids"]).split(",")]
        holds.record_blocked(
            dbs, hold_ids, actor=actor, action=KIND, target=f"account:{account_id}"
        )
        return f"under legal hold ({state['hold_ids']}): deletion blocked (R17)"
    if state["stage"] != "ready":
        return f"not ready for deletion: stage is {state['stage']}"
    return None


# --- the steps -------------------------------------------------------------------------------


def _delete_account(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    account_id = ctx.target_id
    exists = conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).scalar()
    if exists is None:
        return {"accounts": 0}  # done before: a resumed job repeats this step harmlessly
    planned_last = date.fromisoformat(ctx.params["last_activity_on"][ctx.target])
    if _active_since(conn, account_id, day_end_utc(planned_last)):
        raise jobs.StepRefused(
            "the account was active after it was approved; the notice is void (R13)"
        )
    held = holds.blocking_holds(
        ctx.dbs, account_ids=[account_id], emails=_emails_of(conn, account_id)
    )
    if held:
        holds.record_blocked(ctx.dbs, held, actor=ctx.actor, action=KIND, target=ctx.target)
        raise jobs.StepRefused(
            f"a legal hold was placed ({','.join(map(str, held))}); deletion blocked (R17)"
        )
    return {
        "usage_sessions": _rows(
            conn, delete(usage_sessions).where(usage_sessions.c.account_id == account_id)
        ),
        "account_members": _rows(
            conn, delete(account_members).where(account_members.c.account_id == account_id)
        ),
        "invoices_detached": _rows(
            conn,
            update(invoices).where(invoices.c.account_id == account_id).values(account_id=None),
        ),
        "accounts": _rows(conn, delete(accounts).where(accounts.c.id == account_id)),
    }


def _active_since(conn: Connection, account_id: int, since) -> bool:
    """Activity of the account or a member at or after `since` (naive UTC)."""
    own = select(func.count()).where(
        accounts.c.id == account_id, accounts.c.last_active_at >= since
    )
    member = select(func.count()).where(
        account_members.c.account_id == account_id, account_members.c.last_active_at >= since
    )
    return conn.execute(own).scalar_one() > 0 or conn.execute(member).scalar_one() > 0


def _emails_of(conn: Connection, account_id: int) -> set[str]:
    owner = select(accounts.c.email).where(accounts.c.id == account_id)
    members = select(account_members.c.email).where(account_members.c.account_id == account_id)
    found = {e for (e,) in conn.execute(owner)} | {e for (e,) in conn.execute(members)}
    return {holds.normalise_email(e) for e in found if e}


def _delete_consent_events(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    query = delete(consent_events).where(consent_events.c.account_id == ctx.target_id)
    return {"consent_events": _rows(conn, query)}


def _delete_contacts(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    ids = [
        cid
        for (cid,) in conn.execute(
            select(contacts.c.id).where(contacts.c.account_id == ctx.target_id)
        )
    ]
    emails = {
        cid: email
        for cid, email in conn.execute(
            select(contacts.c.id, contacts.c.email).where(contacts.c.id.in_(ids or [-1]))
        )
    }
    covering = holds.covering_holds(
        ctx.dbs, contact_ids=ids, emails={e for e in emails.values() if e}
    )
    held = set(covering["contact"]) | {
        cid
        for cid, email in emails.items()
        if email and holds.normalise_email(email) in covering["email"]
    }
    deletable = [cid for cid in ids if cid not in held]
    deleted = _rows(conn, delete(contacts).where(contacts.c.id.in_(deletable))) if deletable else 0
    return {"contacts": deleted, "contacts_kept_on_hold": len(held)}


def _delete_ledger_copies(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    outbox_ids = [
        oid
        for (oid,) in conn.execute(
            select(notices.c.outbox_id).where(notices.c.account_id == ctx.target_id)
        )
        if oid
    ]
    removed_outbox = (
        _rows(conn, delete(outbox).where(outbox.c.id.in_(outbox_ids))) if outbox_ids else 0
    )
    return {
        "notices": _rows(conn, delete(notices).where(notices.c.account_id == ctx.target_id)),
        "outbox": removed_outbox,
    }


def _rows(conn: Connection, statement) -> int:
    return max(conn.execute(statement).rowcount, 0)


HANDLERS: dict[str, jobs.Handler] = {
    "delete_account": _delete_account,
    "delete_account_consent_events": _delete_consent_events,
    "delete_account_contacts": _delete_contacts,
    "delete_account_ledger_copies": _delete_ledger_copies,
}
