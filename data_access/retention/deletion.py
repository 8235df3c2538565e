"""Approved deletion of inactive accounts, as resumable jobs (RULES.md R13, R14, R17, R18).

Per account the job has four steps, each one transaction in one store:
1. users: re-check that the account is still inactive and not held, then delete its usage
   sessions, members and the account, and detach its invoices (kept under R15) — first
   linking them in the ledger to the owner's keyed hash (`data_access.kept_invoices`, its
   own short transaction), so an access request after the deletion still finds them (R9);
2. consent: delete the consent events with its account_id;
3. support: delete the contacts with its account_id, except a contact under hold;
4. ledger: delete the ledger's copies (notices and their outbox messages).
The newsletter subscription and e-mail-keyed consent events are separate processing and
are kept (R14). Step 1 runs first so that an account that became active again is refused
before anything is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date

from sqlalchemy import Connection, delete, func, select, update

from data_access import audit, consent_rollup, holds, jobs, kept_invoices, prepared, stores
from data_access.clock import day_end_utc
from data_access.engines import Databases
from data_access.ledger_tables import notices, outbox
from data_access.results import ActionResult
from data_access.retention.queries import account_states
from data_access.stores import writes
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
_CHUNK = 500  # accounts whose state is read at a time


@writes(*stores.DATABASES)
def approve_deletions(
    dbs: Databases,
    account_ids: Iterable[int],
    *,
    actor: str,
    as_of: date,
    idempotency_key: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ActionResult:
    """Delete the given accounts that are *ready* on `as_of` (RULES.md R13) as one
    resumable job (R14).

    Accounts not ready fail with the reason (stage, hold, unknown id); an attempt on a held
    account is recorded as blocked (R17). `succeeded` holds the ids whose every step is
    done; a store failure leaves the job partial (`failed` names the step and error) and
    `retention.resume_job(dbs, result.job_id, actor=...)` finishes it. A second call with the same
    `idempotency_key` (a double click, a rerun) plans nothing and reports that job.
    `progress(fraction, message)` follows the job (0..1). Raises DatabaseUnavailable when
    the users database or the ledger is down before anything is planned.
    """
    if idempotency_key:
        existing = jobs.existing_job(dbs, idempotency_key)
        if existing is not None:
            outcome = jobs.run_job(dbs, existing, HANDLERS, actor=actor, progress=progress)
            return outcome.as_action_result()
    ids = list(dict.fromkeys(int(i) for i in account_ids))
    refused = ActionResult()
    ready = _ready_accounts(dbs, ids, as_of, actor, refused)
    if not ready:
        return refused
    job_id, _ = jobs.create_job(
        dbs,
        kind=KIND,
        actor=actor,
        as_of=as_of,
        steps=_planned_steps(ready),
        idempotency_key=idempotency_key,
    )
    return _merge(
        refused,
        jobs.run_job(dbs, job_id, HANDLERS, actor=actor, progress=progress).as_action_result(),
    )


def _ready_accounts(
    dbs: Databases, ids: list[int], as_of: date, actor: str, refused: ActionResult
) -> list[tuple[int, str, str]]:
    """(account_id, keyed hash of its e-mail, last activity day) of the ready accounts, read
    a chunk of ids at a time; the others go to `refused.failed` with the reason."""
    ready = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        states = account_states(dbs, chunk, as_of).set_index("account_id", drop=False)
        gone = [f"account:{a}" for a in chunk if a not in states.index]
        deleted_by = jobs.done_by(dbs, gone, "delete_account") if gone else {}
        for account_id in chunk:
            who = deleted_by.get(f"account:{account_id}")
            reason = (
                f"already deleted by {who}" if who else _refusal(dbs, states, account_id, actor)
            )
            if reason:
                refused.failed[account_id] = reason
                continue
            state = states.loc[account_id]
            ref = audit.keyed_hash(dbs, state["email"])
            ready.append((account_id, ref, state["last_activity_on"].isoformat()))
    return ready


def _planned_steps(ready: list[tuple[int, str, str]]) -> Iterator[jobs.PlannedStep]:
    """The four steps of each ready account, in order; the last activity it was approved
    on goes with its first step, which refuses the account if it was active since (R13)."""
    for account_id, ref, last_activity_on in ready:
        target = f"account:{account_id}"
        for store, step in STEPS:
            data = (
                {"last_activity_on": last_activity_on, "subject_ref": ref}
                if step == "delete_account"
                else None
            )
            yield jobs.PlannedStep(target, store, step, ref, "R14", data)


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
    owner = conn.execute(
        select(accounts.c.email, accounts.c.last_active_at).where(accounts.c.id == account_id)
    ).first()
    if owner is None:
        if ctx.retry:
            return {"accounts": 0}  # this job's own earlier attempt deleted it (a crash)
        raise jobs.StepRefused(_already_deleted(ctx))
    members = conn.execute(
        select(account_members.c.email, account_members.c.last_active_at).where(
            account_members.c.account_id == account_id
        )
    ).all()
    planned_last = date.fromisoformat(ctx.data["last_activity_on"])
    if _active_since([owner, *members], day_end_utc(planned_last)):
        raise jobs.StepRefused(
            "the account was active after it was approved; the notice is void (R13)"
        )
    emails = {holds.normalise_email(e) for e, _ in [owner, *members] if e}
    held = holds.blocking_holds(ctx.dbs, account_ids=[account_id], emails=emails)
    if held:
        holds.record_blocked(ctx.dbs, held, actor=ctx.actor, action=KIND, target=ctx.target)
        raise jobs.StepRefused(
            f"a legal hold was placed ({','.join(map(str, held))}); deletion blocked (R17)"
        )
    # Whose the invoices were, before they are detached (R9, R15). Its own ledger
    # transaction, committed first: if this step then rolls back, the link only repeats
    # what the account still says, and a retry finds it there.
    if ctx.data.get("subject_ref"):
        with ctx.dbs.ledger.begin() as ledger:
            kept_invoices.link_account_invoices(
                ledger, ctx.dbs, [account_id], ctx.data["subject_ref"]
            )
    counts = {
        "usage_sessions": _rows(
            conn, delete(usage_sessions).where(usage_sessions.c.account_id == account_id)
        ),
        "account_members": _rows(
            conn, delete(account_members).where(account_members.c.account_id == account_id)
        )
        if members
        else 0,
        "invoices_detached": _rows(
            conn,
            update(invoices).where(invoices.c.account_id == account_id).values(account_id=None),
        ),
        "accounts": _rows(conn, delete(accounts).where(accounts.c.id == account_id)),
    }
    if not counts["accounts"] and not ctx.retry:
        # Another job deleted it between the read above and the delete (two DPOs at once):
        # this transaction rolls back, and only that job's deletion is reported and audited.
        raise jobs.StepRefused(_already_deleted(ctx))
    # The owner's prepared look-ups and exports in any session go with the account (R14).
    prepared.forget_subject(audit.keyed_hash(ctx.dbs, owner.email))
    return counts


def _already_deleted(ctx: jobs.StepContext) -> str:
    """Why an approved account that is gone is not this job's success (issue: two DPO
    sessions approving the same accounts): who deleted it, if a job of the dashboard did."""
    who = jobs.done_by(ctx.dbs, [ctx.target], ctx.step, other_than=ctx.job_id).get(ctx.target)
    return f"already deleted by {who}" if who else "already deleted: the account is gone"


def _active_since(people, since) -> bool:
    """Activity of the account or a member at or after `since` (naive UTC); `people` are
    (email, last_active_at) rows of the owner and the members, read in this transaction."""
    return any(active is not None and active >= since for _, active in people)


def _delete_consent_events(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    query = delete(consent_events).where(consent_events.c.account_id == ctx.target_id)
    counts = {"consent_events": _rows(conn, query)}
    # The account's events are its R20 subject: the consent roll-up forgets it too.
    consent_rollup.forget_subject_keys(ctx.dbs, [f"account:{ctx.target_id}"])
    return counts


def _delete_contacts(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    emails = dict(
        conn.execute(
            select(contacts.c.id, contacts.c.email).where(contacts.c.account_id == ctx.target_id)
        ).all()
    )
    if not emails:
        return {"contacts": 0, "contacts_kept_on_hold": 0}
    covering = holds.covering_holds(
        ctx.dbs, contact_ids=list(emails), emails={e for e in emails.values() if e}
    )
    held = set(covering["contact"]) | {
        cid
        for cid, email in emails.items()
        if email and holds.normalise_email(email) in covering["email"]
    }
    deletable = [cid for cid in emails if cid not in held]
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
    # The proof that the holder was told outlives the message (R13, R18): this step's
    # audit entry (pseudonymous, hash-chained) counts the notice messages by delivery.
    delivery = dict(
        conn.execute(
            select(outbox.c.status, func.count())
            .where(outbox.c.id.in_(outbox_ids or [-1]))
            .group_by(outbox.c.status)
        ).all()
    )
    removed_outbox = (
        _rows(conn, delete(outbox).where(outbox.c.id.in_(outbox_ids))) if outbox_ids else 0
    )
    return {
        "notices": _rows(conn, delete(notices).where(notices.c.account_id == ctx.target_id)),
        "outbox": removed_outbox,
        "notices_delivered": int(delivery.get("sent", 0)),
        "notices_undelivered": int(sum(n for s, n in delivery.items() if s != "sent")),
    }


def _rows(conn: Connection, statement) -> int:
    return max(conn.execute(statement).rowcount, 0)


HANDLERS: dict[str, jobs.Handler] = {
    "delete_account": _delete_account,
    "delete_account_consent_events": _delete_consent_events,
    "delete_account_contacts": _delete_contacts,
    "delete_account_ledger_copies": _delete_ledger_copies,
}
