"""Erasure of one data subject across the four databases (GDPR art. 17; RULES.md R12, R18).

The person is found as in `subjects.find_subject`: by e-mail (trimmed, case-insensitive)
in every table with one, and through the accounts they own. Erasure runs as a resumable
job (DESIGN.md "Actions") with one step per store:
- users: owned accounts go as in R14 (account, members, usage sessions); the person's member
  rows in other accounts are removed; invoices of owned accounts still inside bookkeeping
  retention (R15) are detached and kept, restricted to bookkeeping (and linked to her keyed
  hash in the ledger first, `data_access.kept_invoices`, so an access request still finds
  them); older ones are anonymised;
- consent: account-keyed and e-mail-keyed consent events, the newsletter subscription;
- support: contacts by e-mail, owned account or her phone (`data_access.identifiers`:
  a phone contact with no e-mail); her e-mail inside another contact's `summary` or another
  person's request `details` is replaced by "[erased]", the row stays (it is someone
  else's); her own data-subject request intake rows are kept as proof that requests were
  handled (art. 5(2));
- ledger: notices, outbox messages, e-mails in released holds, and in the breach register
  her keyed hash among those affected and her e-mail in its free text (the breach stays);
- last, the residue scan (`data_access.residue`): where her e-mail, phones and names still
  are, each hit residue or allowed by R18 with the reason; then the receipt is written.
  A step of its own, reading before it writes: the scan of a large data set takes a while,
  and holding the ledger's write lock meanwhile would stall every other action.
Data under an active legal hold (R17) is kept wherever the hold reaches. The receipt says
what was erased, what was kept, why and until when; it and the audit entries carry only
the keyed hash of the e-mail (R18). The e-mail, phones and names stay in the job's
parameters only until the job is done (they are fixed when the job is planned, since the
rows they come from go in the first steps).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, or_, select, update

from data_access import (
    audit,
    consent_rollup,
    holds,
    identifiers,
    jobs,
    kept_invoices,
    prepared,
    residue,
    rules,
)
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.breaches import erasure as breach_erasure
from data_access.clock import utc_now
from data_access.emails import email_condition, normalised_email, same_email
from data_access.engines import Databases
from data_access.settings import Policy

KIND = "erasure"
STEPS = (
    ("users", "erase_users"),
    ("consent", "erase_consent"),
    ("support", "erase_support"),
    ("ledger", "erase_ledger_copies"),
    ("ledger", "scan_residue"),
)


@dataclass
class ErasureReceipt:
    """What an erasure did (RULES.md R12). No e-mail or name: `subject_ref` is the keyed hash.

    `erased`: "store.table" -> rows removed (or anonymised, as named); `kept`: one entry per
    kept record set {"what", "why", "until"} (until: ISO date or None for "while the hold
    lasts"); `status`: 'done'; 'partial' with `failed` naming the step and error
    (resumable with `resume_erasure`); or 'running' while another run holds the job's live
    lease (`failed` says who and until when; once the lease expires the job is interrupted
    and `resume_erasure` finishes it); `audit_head`: the audit chain's count and short head
    hash when the receipt was read (R18), e.g. "1,000 entries, head 3fa9c2e1b0d4";
    `residue`: the residue scan run as the erasure finished (`residue.Scan.as_dict`; empty
    until then)."""

    receipt_id: int
    subject_ref: str
    request_id: int | None
    job_id: int
    status: str
    as_of: date
    erased: dict[str, int] = field(default_factory=dict)
    kept: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    audit_head: str = ""
    residue: dict[str, Any] = field(default_factory=dict)
    backups: dict[str, Any] = field(default_factory=dict)

    @property
    def backups_note(self) -> str:
        """What the erasure left in backups, in words (from `backups`)."""
        return backups_note(self.backups)


def erase_subject(
    dbs: Databases,
    email: str,
    *,
    actor: str,
    as_of: date,
    request_id: int | None = None,
    idempotency_key: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ErasureReceipt:
    """Erase the person with this e-mail everywhere except retained invoices, data under a
    legal hold and their request intake rows (R12); returns the receipt.

    Raises ValueError for a malformed e-mail. A store failure does not raise: the receipt's
    status is 'partial' and `resume_erasure(dbs, receipt.job_id, actor=...)` finishes the job.
    """
    norm = normalised_email(email)
    ref = audit.keyed_hash(dbs, norm)
    with dbs.users.connect() as conn:
        # Fixed when the job is planned: once step 1 has deleted the accounts, the later
        # steps could no longer find them by e-mail.
        owned = _ids_by_email(conn, t.accounts, "email", norm)
    known = identifiers.person_identifiers(dbs, norm, owned)
    receipt_id = _new_receipt(dbs, ref, request_id, actor, as_of)
    target = f"receipt:{receipt_id}"
    job_id, created = jobs.create_job(
        dbs,
        kind=KIND,
        actor=actor,
        as_of=as_of,
        steps=[jobs.PlannedStep(target, store, step, ref, "R12") for store, step in STEPS],
        params={"email": norm, "owned": owned, "request_id": request_id, **known.as_params()},
        idempotency_key=idempotency_key,
    )
    if created:
        _link_receipt(dbs, receipt_id, job_id)
    else:
        _drop_receipt(dbs, receipt_id)  # the click was handled before: report that job
    return _run(dbs, job_id, actor, progress)


def resume_erasure(dbs: Databases, job_id: int, *, actor: str, progress=None) -> ErasureReceipt:
    """Finish a partial or interrupted erasure job; only the steps not yet done run, audited
    with `actor`, the one resuming it. A job another run holds (a live lease) does not run:
    the receipt's status is then 'running'."""
    return _run(dbs, job_id, actor, progress)


def _run(dbs: Databases, job_id: int, actor: str, progress) -> ErasureReceipt:
    try:
        outcome = jobs.run_job(dbs, job_id, HANDLERS, actor=actor, progress=progress)
    finally:
        # Prepared exports and look-ups of this person in any session (R12, R18): even a
        # partial run erased something, so none of them may be offered again.
        prepared.forget_subject(_subject_ref(dbs, job_id))
    return receipt_of_job(dbs, job_id, outcome)


def _subject_ref(dbs: Databases, job_id: int) -> str:
    with dbs.ledger.connect() as conn:
        return conn.execute(
            select(lt.erasure_receipts.c.subject_ref).where(lt.erasure_receipts.c.job_id == job_id)
        ).scalar_one()


def receipt_of_job(
    dbs: Databases, job_id: int, outcome: jobs.JobOutcome | None = None
) -> ErasureReceipt:
    """The receipt as it stands for an erasure job (read from the ledger)."""
    with dbs.ledger.connect() as conn:
        row = (
            conn.execute(select(lt.erasure_receipts).where(lt.erasure_receipts.c.job_id == job_id))
            .mappings()
            .one()
        )
    body = json.loads(row["receipt"])
    failed = dict(outcome.failed) if outcome else {}
    status = "done" if body.get("status") == "done" and not failed else "partial"
    if outcome is not None and outcome.status == "running":
        status = "running"
    return ErasureReceipt(
        receipt_id=row["id"],
        subject_ref=row["subject_ref"],
        request_id=row["request_id"],
        job_id=job_id,
        status=status,
        as_of=row["as_of"],
        erased=body.get("erased", {}),
        kept=body.get("kept", []),
        failed=failed,
        audit_head=audit.current_head(dbs).head_label,
        residue=body.get("residue", {}),
        backups=body.get("backups") or backups_section(dbs.policy, row["as_of"]),
    )


def backups_section(policy: Policy, as_of: date) -> dict[str, Any]:
    """The receipt's backups section: {"retention_days", "taken_before": ISO date (Oslo),
    "overwritten_by": ISO date or None when no backups are kept} (policy.backup_retention_days,
    R12). Fixed when the erasure starts, so a later change of the setting does not rewrite
    what the receipt said."""
    days = policy.backup_retention_days
    return {
        "retention_days": days,
        "taken_before": as_of.isoformat(),
        "overwritten_by": (as_of + timedelta(days=days)).isoformat() if days else None,
    }


def backups_note(section: dict[str, Any]) -> str:
    """A receipt's backups section in words (empty for none)."""
    if not section:
        return ""
    if not section.get("overwritten_by"):
        return "No backups of the databases are kept, so none holds the erased data."
    return (
        f"Backups taken before the erasure on {section['taken_before']} still hold the erased "
        "data; they are "
        f"kept {section['retention_days']} days and overwritten by {section['overwritten_by']}."
    )


def _new_receipt(dbs, ref, request_id, actor, as_of) -> int:
    with dbs.ledger.begin() as conn:
        return conn.execute(
            insert(lt.erasure_receipts).values(
                subject_ref=ref,
                request_id=request_id,
                created_at=utc_now(),
                as_of=as_of,
                actor=actor,
                receipt=audit.canonical_json(
                    {
                        "status": "running",
                        "erased": {},
                        "kept": [],
                        "backups": backups_section(dbs.policy, as_of),
                    }
                ),
            )
        ).inserted_primary_key[0]


def _link_receipt(dbs, receipt_id, job_id) -> None:
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(lt.erasure_receipts)
            .where(lt.erasure_receipts.c.id == receipt_id)
            .values(job_id=job_id)
        )


def _drop_receipt(dbs, receipt_id) -> None:
    with dbs.ledger.begin() as conn:
        conn.execute(delete(lt.erasure_receipts).where(lt.erasure_receipts.c.id == receipt_id))


# --- who is covered by what ------------------------------------------------------------------


@dataclass
class _Scope:
    """The person's keys and the holds that reach them, recomputed inside every step."""

    email: str
    owned: list[int]  # account ids the person owns
    held_accounts: set[int]  # owned or member-of accounts under an account hold
    email_held: list[int]  # holds on the person's e-mail: everything is kept


def _scope(ctx: jobs.StepContext) -> _Scope:
    email = ctx.params["email"]
    owned = [int(a) for a in ctx.params["owned"]]
    covering = holds.covering_holds(ctx.dbs, account_ids=owned, emails=[email])
    return _Scope(
        email=email,
        owned=owned,
        held_accounts=set(covering["account"]),
        email_held=sorted({h for ids in covering["email"].values() for h in ids}),
    )


def _ids_by_email(
    conn: Connection, table: Table, column: str, norm: str, key: str = "id"
) -> list[int]:
    """Keys of the rows whose e-mail column equals `norm` (trimmed, case-insensitive)."""
    col = table.c[column]
    query = select(table.c[key], col).where(email_condition(col, norm, conn.dialect.name))
    return sorted({k for k, value in conn.execute(query) if same_email(value, norm)})


def _kept(ctx: jobs.StepContext, what: str, why: str, until: str | None) -> dict[str, Any]:
    return {"what": what, "why": why, "until": until}


def _blocked_by_email_hold(
    ctx: jobs.StepContext, scope: _Scope, store: str
) -> dict[str, int] | None:
    if not scope.email_held:
        return None
    holds.record_blocked(ctx.dbs, scope.email_held, actor=ctx.actor, action=KIND, target=ctx.target)
    _note(
        ctx,
        kept=[
            _kept(
                ctx,
                f"all data in {store}",
                f"legal hold {scope.email_held} on the e-mail (R17)",
                None,
            )
        ],
    )
    return {}


# --- the steps -------------------------------------------------------------------------------


def _link_kept_invoices(ctx: jobs.StepContext, erasable: list[int]) -> None:
    """Before her accounts go: the invoices the erasure keeps (inside retention, R15)
    linked to her keyed hash, so a later access request still finds them (R9). Its own
    ledger transaction, committed first; a retry finds the links there."""
    policy = ctx.dbs.policy
    cutoff = rules.invoice_issued_cutoff(
        ctx.as_of, policy.invoice_retention_years, policy.fiscal_year_end_md
    )
    ref = audit.keyed_hash(ctx.dbs, ctx.params["email"])
    with ctx.dbs.ledger.begin() as ledger:
        kept_invoices.link_account_invoices(ledger, ctx.dbs, erasable, ref, cutoff=cutoff)


def _erase_users(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    scope = _scope(ctx)
    blocked = _blocked_by_email_hold(ctx, scope, "users")
    if blocked is not None:
        return blocked
    erasable = [a for a in scope.owned if a not in scope.held_accounts]
    counts = {"users.usage_sessions": 0, "users.account_members": 0, "users.accounts": 0}
    kept: list[dict[str, Any]] = []
    if erasable:
        _link_kept_invoices(ctx, erasable)
        counts["users.usage_sessions"] = _rows(
            conn, delete(t.usage_sessions).where(t.usage_sessions.c.account_id.in_(erasable))
        )
        counts["users.account_members"] = _rows(
            conn, delete(t.account_members).where(t.account_members.c.account_id.in_(erasable))
        )
        invoice_counts, invoice_kept = _settle_invoices(conn, ctx, erasable)
        counts.update(invoice_counts)
        kept.extend(invoice_kept)
        counts["users.accounts"] = _rows(
            conn, delete(t.accounts).where(t.accounts.c.id.in_(erasable))
        )
    for account_id in sorted(set(scope.owned) & scope.held_accounts):
        kept.append(
            _kept(
                ctx, f"account {account_id} and its data", "legal hold on the account (R17)", None
            )
        )
    member_rows = _member_rows_outside_holds(conn, ctx, scope)
    if member_rows:
        counts["users.account_members"] += _rows(
            conn, delete(t.account_members).where(t.account_members.c.id.in_(member_rows))
        )
    _note(ctx, erased=counts, kept=kept)
    return counts


def _member_rows_outside_holds(conn: Connection, ctx: jobs.StepContext, scope: _Scope) -> list[int]:
    """The person's member rows in other accounts, except in accounts under a hold."""
    col = t.account_members.c.email
    query = select(t.account_members.c.id, t.account_members.c.account_id, col).where(
        email_condition(col, scope.email, conn.dialect.name)
    )
    rows = [(mid, aid) for mid, aid, value in conn.execute(query) if same_email(value, scope.email)]
    held = set(holds.covering_holds(ctx.dbs, account_ids=[aid for _, aid in rows])["account"])
    return [mid for mid, aid in rows if aid not in held]


def _settle_invoices(conn: Connection, ctx: jobs.StepContext, account_ids: list[int]):
    """R12(a)/R15: inside retention, detach and keep (restricted to bookkeeping); past it,
    anonymise (names cleared; number, amount and dates kept)."""
    policy = ctx.dbs.policy
    cutoff = rules.invoice_issued_cutoff(
        ctx.as_of, policy.invoice_retention_years, policy.fiscal_year_end_md
    )
    mine = t.invoices.c.account_id.in_(account_ids)
    anonymised = _rows(
        conn,
        update(t.invoices)
        .where(mine, t.invoices.c.issued_on <= cutoff)
        .values(customer_name=None, contact_person=None, account_id=None),
    )
    newest = conn.execute(
        select(t.invoices.c.issued_on).where(mine).order_by(t.invoices.c.issued_on.desc()).limit(1)
    ).scalar()
    detached = _rows(conn, update(t.invoices).where(mine).values(account_id=None))
    kept = []
    if detached:
        until = rules.invoice_retained_until(
            newest, policy.invoice_retention_years, policy.fiscal_year_end_md
        )
        kept.append(
            _kept(
                ctx,
                f"{detached} invoice(s)",
                "bookkeeping retention, bokføringsloven §13 (R15); restricted to bookkeeping",
                until.isoformat(),
            )
        )
    return {"users.invoices_anonymised": anonymised, "users.invoices_detached_kept": detached}, kept


def _erase_consent(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    scope = _scope(ctx)
    blocked = _blocked_by_email_hold(ctx, scope, "consent")
    if blocked is not None:
        return blocked
    erasable = [a for a in scope.owned if a not in scope.held_accounts]
    e = t.consent_events
    by_email = _ids_by_email(conn, e, "email", scope.email)
    mine = or_(e.c.id.in_(by_email or [-1]), e.c.account_id.in_(erasable or [-1]))
    # Read before deleting: the roll-up must forget each event under its own R20 subject,
    # which for an e-mail-bearing event on someone else's account is that account.
    deleted = [
        dict(r)
        for r in conn.execute(
            select(e.c.id, e.c.account_id, e.c.email, e.c.visitor_id).where(mine)
        ).mappings()
    ]
    counts = {"consent.consent_events": _rows(conn, delete(e).where(mine))}
    subscriber_ids = _ids_by_email(conn, t.newsletter_subscribers, "email", scope.email)
    counts["consent.newsletter_subscribers"] = _rows(
        conn,
        delete(t.newsletter_subscribers).where(
            t.newsletter_subscribers.c.id.in_(subscriber_ids or [-1])
        ),
    )
    consent_rollup.forget_events(ctx.dbs, deleted)
    consent_rollup.forget_subject_keys(
        ctx.dbs, [f"account:{a}" for a in erasable] + [f"email:{scope.email}"]
    )
    _note(ctx, erased=counts)
    return counts


def _erase_support(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    scope = _scope(ctx)
    blocked = _blocked_by_email_hold(ctx, scope, "support")
    if blocked is not None:
        return blocked
    ids = set(_ids_by_email(conn, t.contacts, "email", scope.email))
    if scope.owned:
        query = select(t.contacts.c.id).where(t.contacts.c.account_id.in_(scope.owned))
        ids.update(i for (i,) in conn.execute(query))
    known = identifiers.Identifiers.from_params(ctx.params)
    ids.update(identifiers.contact_ids_by_phone(conn, scope.email, known))
    # Someone else's contact that mentions her e-mail: the e-mail goes, the contact stays.
    mentioning = set(identifiers.ids_with_email_in_text(conn, t.contacts, scope.email)) - ids
    rows = {
        r.id: r
        for r in conn.execute(
            select(t.contacts.c.id, t.contacts.c.account_id).where(
                t.contacts.c.id.in_(sorted(ids | mentioning) or [-1])
            )
        )
    }
    covering = holds.covering_holds(
        ctx.dbs, contact_ids=list(rows), account_ids=[r.account_id for r in rows.values()]
    )
    held = {
        cid
        for cid, r in rows.items()
        if cid in covering["contact"] or r.account_id in covering["account"]
    }
    erasable = sorted(ids - held)
    counts = {
        "support.contacts": _rows(conn, delete(t.contacts).where(t.contacts.c.id.in_(erasable)))
        if erasable
        else 0,
        "support.contacts_summary_redacted": _redact(
            conn, t.contacts, sorted(mentioning - held), scope.email
        ),
    }
    kept = [_kept(ctx, f"{len(held)} support contact(s)", "legal hold (R17)", None)] if held else []
    requests = _ids_by_email(conn, t.data_subject_requests, "subject_email", scope.email)
    # Another person's request that mentions her: that intake row is their proof and stays.
    others = set(identifiers.ids_with_email_in_text(conn, t.data_subject_requests, scope.email))
    counts["support.data_subject_requests_details_redacted"] = _redact(
        conn, t.data_subject_requests, sorted(others - set(requests)), scope.email
    )
    if requests:
        kept.append(
            _kept(
                ctx,
                f"{len(requests)} data-subject request intake record(s)",
                "proof that requests were handled, GDPR art. 5(2) (R18)",
                None,
            )
        )
    _note(ctx, erased=counts, kept=kept)
    return counts


def _redact(conn: Connection, table: Table, row_ids: list[int], norm: str) -> int:
    """Replace the e-mail inside the free-text column (`identifiers.FREE_TEXT`) of these rows
    by `identifiers.REDACTED`; returns the rows changed."""
    column = table.c[identifiers.FREE_TEXT[table.name]]
    changed = 0
    for row_id, text in conn.execute(select(table.c.id, column).where(table.c.id.in_(row_ids))):
        redacted = identifiers.redact_email(text, norm)
        if redacted != text:
            changed += _rows(
                conn, update(table).where(table.c.id == row_id).values({column.name: redacted})
            )
    return changed


def _erase_ledger_copies(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    scope = _scope(ctx)
    erasable = (
        [a for a in scope.owned if a not in scope.held_accounts] if not scope.email_held else []
    )
    ref = audit.keyed_hash(ctx.dbs, scope.email)
    counts = {"ledger.notices": 0, "ledger.outbox": 0, "ledger.legal_holds_email_cleared": 0}
    if erasable:
        notice_outbox = [
            o
            for (o,) in conn.execute(
                select(lt.notices.c.outbox_id).where(lt.notices.c.account_id.in_(erasable))
            )
            if o
        ]
        counts["ledger.notices"] = _rows(
            conn, delete(lt.notices).where(lt.notices.c.account_id.in_(erasable))
        )
        if notice_outbox:
            counts["ledger.outbox"] += _rows(
                conn, delete(lt.outbox).where(lt.outbox.c.id.in_(notice_outbox))
            )
    if not scope.email_held:
        counts["ledger.outbox"] += _rows(
            conn, delete(lt.outbox).where(lt.outbox.c.subject_ref == ref)
        )
        # A released hold no longer needs the e-mail; its keyed hash stays as the reference.
        counts["ledger.legal_holds_email_cleared"] = _rows(
            conn,
            update(lt.legal_holds)
            .where(lt.legal_holds.c.subject_ref == ref, lt.legal_holds.c.released_on.is_not(None))
            .values(email=None),
        )
        # The breach record stays (art. 33(5)); the link to her and her e-mail go.
        counts.update(breach_erasure.erase_person(conn, scope.email, ref))
    _note(ctx, erased=counts, conn=conn)
    return counts


def _scan_residue(conn: Connection, ctx: jobs.StepContext) -> dict[str, int]:
    """The residue scan, then the receipt marked done with it (module docstring). The scan
    reads through its own connections, so this transaction's first statement is a write
    (a read first would, on SQLite, tie it to a snapshot another writer can outdate)."""
    found = _residue_scan(ctx)
    _finish_receipt(conn, ctx, found)
    return {"residue_rows": found["residue_rows"]}


# --- the receipt -------------------------------------------------------------------------------


def _receipt_id(ctx: jobs.StepContext) -> int:
    return ctx.target_id


def _note(
    ctx: jobs.StepContext,
    *,
    erased: dict[str, int] | None = None,
    kept=None,
    conn: Connection | None = None,
) -> None:
    """Merge a step's figures into the receipt (in the ledger transaction when given)."""

    def apply(c: Connection) -> None:
        row = c.execute(
            select(lt.erasure_receipts.c.receipt).where(
                lt.erasure_receipts.c.id == _receipt_id(ctx)
            )
        ).scalar_one()
        body = json.loads(row)
        for name, n in (erased or {}).items():
            # A step re-run after its store committed (the process was killed before its
            # done mark) finds nothing left: its figures then stay those of the first run.
            body["erased"][name] = max(n, body["erased"].get(name, 0))
        known = {json.dumps(k, sort_keys=True) for k in body["kept"]}
        body["kept"].extend(k for k in (kept or []) if json.dumps(k, sort_keys=True) not in known)
        c.execute(
            update(lt.erasure_receipts)
            .where(lt.erasure_receipts.c.id == _receipt_id(ctx))
            .values(receipt=audit.canonical_json(body))
        )

    if conn is not None:
        apply(conn)
    else:
        with ctx.dbs.ledger.begin() as c:
            apply(c)


def _finish_receipt(conn: Connection, ctx: jobs.StepContext, found: dict[str, Any]) -> None:
    """Drop the e-mail, phones and names from the job's parameters (R18) and mark the
    receipt done with the residue scan `found` as its last section."""
    params = {**ctx.params, "email": None, "phones": None, "names": None}
    conn.execute(
        update(lt.jobs)
        .where(lt.jobs.c.id == ctx.job_id)
        .values(params=audit.canonical_json(params))
    )
    row = conn.execute(
        select(lt.erasure_receipts.c.receipt).where(lt.erasure_receipts.c.id == _receipt_id(ctx))
    ).scalar_one()
    body = json.loads(row)
    body["status"] = "done"
    body["residue"] = found
    conn.execute(
        update(lt.erasure_receipts)
        .where(lt.erasure_receipts.c.id == _receipt_id(ctx))
        .values(receipt=audit.canonical_json(body))
    )


def _residue_scan(ctx: jobs.StepContext) -> dict[str, Any]:
    """The residue section of the receipt: the scan for the person's e-mail, phones and
    names, with R18's exclusions (`residue.allowed_by_r18`; this job's own parameters are
    cleared in the transaction that records the scan)."""
    known = identifiers.Identifiers.from_params(ctx.params)
    email = ctx.params["email"]
    needles = residue.Needles(email, known.phones, known.names)
    allowed = residue.allowed_by_r18(ctx.dbs, email, as_of=ctx.as_of, job_id=ctx.job_id)
    return residue.scan(ctx.dbs, needles, allowed=allowed).as_dict()


def _rows(conn: Connection, statement) -> int:
    return max(conn.execute(statement).rowcount, 0)


HANDLERS: dict[str, jobs.Handler] = {
    "erase_users": _erase_users,
    "erase_consent": _erase_consent,
    "erase_support": _erase_support,
    "erase_ledger_copies": _erase_ledger_copies,
    "scan_residue": _scan_residue,
}
