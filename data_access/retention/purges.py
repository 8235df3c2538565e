"""Support-log purges (RULES.md R16) and invoice anonymisation (R15, bokføringsloven §13),
on the same resumable job machinery as account deletion.

Each target is one step in its store; the step's WHERE clause re-checks that the row is
still past retention, and a legal hold (R17) placed in the meantime refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from sqlalchemy import Connection, delete, select, update

from data_access import audit, holds, jobs, kept_invoices, rules, sql_time, stores
from data_access.clock import utc_naive
from data_access.engines import Databases
from data_access.results import ActionResult
from data_access.retention.queries import account_holds, support_started_cutoff
from data_access.stores import writes
from data_access.tables import contacts, invoices

Progress = Callable[[float, str], None] | None
KINDS = ("support_purge", "invoice_anonymisation")


@writes("support.contacts", *stores.JOBS, *stores.HOLDS, *stores.AUDIT)
def purge_support_contacts(
    dbs: Databases,
    contact_ids: Iterable[int],
    *,
    actor: str,
    as_of: date,
    idempotency_key: str | None = None,
    progress: Progress = None,
) -> ActionResult:
    """Delete customer-service contacts past their 6-month retention (R16) as one job.

    A contact not past retention on `as_of`, unknown, or under a legal hold (on the
    contact, its e-mail or its account) fails with the reason; nothing else is touched.
    """
    if idempotency_key and (job_id := jobs.existing_job(dbs, idempotency_key)) is not None:
        return _report(dbs, job_id, actor, progress)  # the same click again: nothing planned
    ids = list(dict.fromkeys(int(i) for i in contact_ids))
    with dbs.support.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(
                select(contacts.c.id, contacts.c.email).where(contacts.c.id.in_(ids or [-1]))
            )
        }
    result = ActionResult()
    planned = []
    for contact_id in ids:
        if contact_id not in rows:
            result.failed[contact_id] = "no such contact (already purged?)"
            continue
        ref = audit.keyed_hash(dbs, rows[contact_id].email) if rows[contact_id].email else None
        planned.append(
            jobs.PlannedStep(
                f"contact:{contact_id}", "support", "purge_support_contact", ref, "R16"
            )
        )
    return _run(dbs, KINDS[0], planned, result, actor, as_of, idempotency_key, progress)


@writes("users.invoices", *stores.JOBS, *stores.HOLDS, *stores.AUDIT, *stores.KEPT_INVOICES)
def anonymise_invoices(
    dbs: Databases,
    invoice_ids: Iterable[int],
    *,
    actor: str,
    as_of: date,
    idempotency_key: str | None = None,
    progress: Progress = None,
) -> ActionResult:
    """Clear the names on invoices past bookkeeping retention (R15): customer_name and
    contact_person become NULL; number, amount, currency and dates are kept.

    An invoice still inside retention on `as_of`, unknown, or whose account is under a legal
    hold fails with the reason. The ledger's links of anonymised invoices to their former
    owner (`data_access.kept_invoices`) are deleted.
    """
    if idempotency_key and (job_id := jobs.existing_job(dbs, idempotency_key)) is not None:
        return _report(dbs, job_id, actor, progress)  # the same click again: nothing planned
    ids = list(dict.fromkeys(int(i) for i in invoice_ids))
    with dbs.users.connect() as conn:
        known = {
            i for (i,) in conn.execute(select(invoices.c.id).where(invoices.c.id.in_(ids or [-1])))
        }
    result = ActionResult()
    planned = []
    for invoice_id in ids:
        if invoice_id not in known:
            result.failed[invoice_id] = "no such invoice"
            continue
        planned.append(
            jobs.PlannedStep(f"invoice:{invoice_id}", "users", "anonymise_invoice", None, "R15")
        )
    ran = _run(dbs, KINDS[1], planned, result, actor, as_of, idempotency_key, progress)
    # Whose an anonymised invoice was must go too (it would re-identify it); this also
    # catches links left by an earlier run that stopped before this line.
    kept_invoices.forget_anonymised(dbs, as_of)
    return ran


def _run(dbs, kind, planned, result, actor, as_of, idempotency_key, progress) -> ActionResult:
    if not planned:
        return result
    job_id, _ = jobs.create_job(
        dbs, kind=kind, actor=actor, as_of=as_of, steps=planned, idempotency_key=idempotency_key
    )
    ran = _report(dbs, job_id, actor, progress)
    ran.failed = {**result.failed, **ran.failed}
    return ran


def _report(dbs: Databases, job_id: int, actor: str, progress: Progress) -> ActionResult:
    """A job's results after running the steps not yet done, if any, as `actor`."""
    return jobs.run_job(dbs, job_id, HANDLERS, actor=actor, progress=progress).as_action_result()


def _purge_contact(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    row = conn.execute(
        select(contacts.c.id, contacts.c.email, contacts.c.account_id, contacts.c.started_at).where(
            contacts.c.id == ctx.target_id
        )
    ).first()
    if row is None:
        return {"contacts": 0}  # purged before: a resumed job repeats this harmlessly
    cutoff = support_started_cutoff(ctx.dbs, ctx.as_of)
    if utc_naive(row.started_at) >= cutoff:
        raise jobs.StepRefused(f"not past retention on {ctx.as_of.isoformat()} (R16)")
    _refuse_if_held(ctx, contact_ids=[row.id], emails=[row.email], account_id=row.account_id)
    deleted = conn.execute(
        delete(contacts).where(
            contacts.c.id == row.id,
            sql_time.before(contacts.c.started_at, cutoff, conn.dialect.name),
        )
    ).rowcount
    return {"contacts": max(deleted, 0)}


def _anonymise_invoice(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    row = conn.execute(
        select(invoices.c.id, invoices.c.account_id, invoices.c.issued_on).where(
            invoices.c.id == ctx.target_id
        )
    ).first()
    if row is None:
        raise jobs.StepRefused("no such invoice")
    policy = ctx.dbs.policy
    cutoff = rules.invoice_issued_cutoff(
        ctx.as_of, policy.invoice_retention_years, policy.fiscal_year_end_md
    )
    if row.issued_on > cutoff:
        kept = rules.invoice_retained_until(
            row.issued_on, policy.invoice_retention_years, policy.fiscal_year_end_md
        )
        raise jobs.StepRefused(f"kept until {kept.isoformat()} under bokføringsloven §13 (R15)")
    _refuse_if_held(ctx, account_id=row.account_id)
    changed = conn.execute(
        update(invoices)
        .where(invoices.c.id == row.id, invoices.c.issued_on <= cutoff)
        .values(customer_name=None, contact_person=None)
    ).rowcount
    return {"invoices_anonymised": max(changed, 0)}


def _refuse_if_held(
    ctx: jobs.StepContext, *, contact_ids=(), emails=(), account_id: int | None = None
) -> None:
    """Refuse the step when an active hold covers the record: on the contact or its e-mail,
    or on its account as in R13 (the account, its owner's or a member's e-mail), the same
    coverage the Retention page lists as on hold (R17). The attempt is recorded."""
    held = set(holds.blocking_holds(ctx.dbs, contact_ids=contact_ids, emails=emails))
    if account_id is not None:
        held.update(account_holds(ctx.dbs, {int(account_id): None}).get(int(account_id), ()))
    if held:
        held_ids = sorted(held)
        holds.record_blocked(ctx.dbs, held_ids, actor=ctx.actor, action=ctx.step, target=ctx.target)
        raise jobs.StepRefused(f"under legal hold ({','.join(map(str, held_ids))}) (R17)")


HANDLERS: dict[str, jobs.Handler] = {
    "purge_support_contact": _purge_contact,
    "anonymise_invoice": _anonymise_invoice,
}
