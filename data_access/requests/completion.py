"""Completing a data-subject request, by type (GDPR art. 15-21; RULES.md R9-R12, R23).

- access: the access report (R9) must have been prepared (`prepare_report`, audited);
- portability: the portability export (R10) likewise;
- erasure: `subjects.erase_subject` (R12) runs first; its receipt is linked to the request;
- withdraw_consent: a `withdrawn` consent event is appended per chosen purpose (R23);
- rectification, restriction, objection: every step of the type's checklist is ticked;
- rectification, erasure and restriction: the first completion attempt creates one
  recipient-notification task per recipient in the register that receives personal data
  (R11); the request completes only when every task is closed as 'sent' or 'not_possible'
  (with a reason).

Each write goes through `workflow.run_step` (ledger lock, state re-checked, versioned case,
event and audit entry in one transaction); a refused completion writes nothing, except the
work the attempt is meant to start (the erasure, the recipient tasks), which the message
names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, func, insert, select, update

from data_access import audit, collation, erasure, jobs, register, stores, subject_reports
from data_access import ledger_tables as lt
from data_access.clock import day_end_utc, day_start_utc, oslo_date, today_oslo, utc_now
from data_access.emails import normalised_email
from data_access.engines import Databases
from data_access.requests import duplicates
from data_access.requests.workflow import (
    CaseState,
    Change,
    RequestRefused,
    check_state,
    intake_row,
    read_state,
    refuse_unstorable,
    run_step,
)
from data_access.results import ActionResult
from data_access.stores import writes
from data_access.tables import consent_events

TASK_TYPES = ("rectification", "erasure", "restriction")
TASK_COLUMNS = [
    "task_id",
    "recipient_id",
    "recipient",
    "status",
    "reason",
    "closed_by",
    "closed_on",
]
TASK_OUTCOMES = ("sent", "not_possible")
COMPLETION_RULES = {
    "access": "R9",
    "portability": "R10",
    "rectification": "R11",
    "restriction": "R11",
    "erasure": "R12",
    "withdraw_consent": "R23",
}
REPORTS = {
    "access": ("access_report", "R9", subject_reports.build_access_report),
    "portability": ("portability_export", "R10", subject_reports.build_portability_export),
}
# What the DPO ticks before completing (art. 16, 18, 21); keys are stored with the event.
CHECKLISTS = {
    "rectification": {
        "corrected": "Corrected the data in every database that holds it (art. 16)",
        "completed": "Completed incomplete data with the data subject's statement",
        "told": "Told the data subject what was corrected",
    },
    "restriction": {
        "marked": "Marked the data as restricted in every database that holds it (art. 18)",
        "stopped": "Stopped all processing other than storage, legal claims or consent",
        "lift_notice": "Noted that the data subject is told before the restriction is lifted "
        "(art. 18(3))",
    },
    "objection": {
        "stopped": "Stopped the processing the data subject objected to (art. 21)",
        "grounds": "Checked for compelling legitimate grounds that override the objection, "
        "and recorded them if any",
        "told": "Told the data subject the outcome",
    },
}
OUTCOMES = {
    "access": "Access report (R9) sent to the data subject.",
    "rectification": "Data corrected; recipients notified (R11).",
    "erasure": "Erased in all four databases, except what the receipt keeps (R12).",
    "restriction": "Processing restricted; recipients notified (R11).",
    "portability": "Account, members, usage sessions and consent events sent as JSON and "
    "CSV (R10).",
    "objection": "The processing objected to was stopped.",
    "withdraw_consent": "Withdrawal recorded for the chosen purposes (R23).",
}
WITHDRAWAL_SOURCE = "dpo_dashboard"
Progress = Callable[[float, str], None]


class _NoTasksToCreate(Exception):
    """Tasks exist already, or the register has no recipient: nothing to write."""


# --- completing ----------------------------------------------------------------------------


@writes(*stores.DATABASES)
def complete_request(
    dbs: Databases,
    request_id: int,
    *,
    actor: str,
    as_of: date | None = None,
    note: str | None = None,
    purposes: Iterable[str] | None = None,
    checklist: Iterable[str] | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    progress: Progress | None = None,
) -> ActionResult:
    """Complete the request as its type requires (RULES.md R9-R12, R23); see the module doc.

    `purposes`: for withdraw_consent, the consent purposes to withdraw (of
    config.toml's `policy_facts.consent_purposes`). `checklist`: for rectification, restriction and objection,
    the keys of `CHECKLISTS[type]` the DPO ticked (all are required). `idempotency_key`
    keys an erasure job, so a double click plans it once; `progress(fraction, message)`
    follows the erasure. `note` is the outcome told to the data subject (a default per type).
    Refused (failed[request_id], with the reason) when the request is closed, awaiting
    identity, changed since `expected_version`, or its type's condition is not met; an
    erasure that is only partly done is resumed by the next attempt.
    """
    as_of = as_of or today_oslo()
    result = ActionResult()
    try:
        _complete(
            dbs,
            request_id,
            actor=actor,
            as_of=as_of,
            note=note,
            purposes=list(purposes or ()),
            checklist=list(checklist or ()),
            expected=expected_version,
            idempotency_key=idempotency_key,
            progress=progress,
        )
    except RequestRefused as exc:
        result.failed[request_id] = str(exc)
    else:
        result.succeeded.append(request_id)
    return result


def _complete(
    dbs: Databases,
    request_id: int,
    *,
    actor: str,
    as_of: date,
    note: str | None,
    purposes: list[str],
    checklist: list[str],
    expected: int | None,
    idempotency_key: str | None,
    progress: Progress | None,
) -> None:
    refuse_unstorable(note or "", "note")
    # The purposes a withdrawal may name: config.toml's policy_facts.consent_purposes (R23).
    allowed = register.policy_facts(dbs).consent_purposes
    row = intake_row(dbs, request_id)
    with dbs.ledger.connect() as conn:
        state = read_state(conn, row)
        check_state(state, as_of, expected)
        _check_ready(conn, state, purposes, checklist, allowed=allowed)
        _refuse_open_tasks(conn, state)
    duplicates.refuse_unchecked_duplicate(dbs, state)
    # From here on every write must find the case as it was just checked.
    version = state.version
    details: dict = {}
    if state.request_type == "erasure":
        receipt, version = _erase(
            dbs,
            state,
            actor=actor,
            as_of=as_of,
            version=version,
            key=idempotency_key,
            progress=progress,
        )
        details["receipt_id"] = receipt.receipt_id
    if state.request_type in TASK_TYPES:
        created = _create_tasks(dbs, request_id, actor=actor, as_of=as_of, version=version)
        if created:
            raise RequestRefused(
                f"{created} recipient notification task(s) were created (R11): tell each "
                "recipient, close each task as sent or not possible, then complete the request."
            )

    def decide(conn: Connection, current: CaseState, as_of: date) -> Change:
        _check_ready(conn, current, purposes, checklist, allowed=allowed)
        _refuse_open_tasks(conn, current)
        counts: dict[str, int] = {}
        if current.request_type == "withdraw_consent":
            written = _withdraw_consent(dbs, conn, current, purposes, actor=actor, as_of=as_of)
            details["withdrawn"] = written
            counts["consent_events"] = sum(written.values())
        if checklist:
            details["checklist"] = sorted(set(checklist))
        outcome = (note or "").strip() or OUTCOMES.get(current.request_type, "Completed.")
        return Change(
            event="completed",
            values={"status": "completed", "closed_on": as_of, "outcome_note": outcome},
            details={"note": outcome, **details},
            rule=COMPLETION_RULES.get(current.request_type),
            counts=counts,
        )

    run_step(dbs, request_id, decide, actor=actor, as_of=as_of, expected=version)


def _check_ready(
    conn: Connection,
    state: CaseState,
    purposes: list[str],
    checklist: list[str],
    *,
    allowed: tuple[str, ...],
) -> None:
    """Refuse completing a request whose identity is owed, that is an unchecked duplicate
    (requests/duplicates.py), or whose type's condition is unmet."""
    if state.status == "awaiting_identity":
        asked = state.get("identity_requested_on")
        raise RequestRefused(
            f"The identity asked for on {asked.isoformat() if asked else '?'} has not been "
            "confirmed: confirm it, or refuse the request, before completing it (R5)."
        )
    kind = state.request_type
    if kind in REPORTS and not _report_prepared(conn, state.request_id):
        what = "access report (R9)" if kind == "access" else "portability export (R10)"
        raise RequestRefused(f"Prepare and send the {what} before completing the request.")
    if kind == "withdraw_consent":
        unknown = sorted(set(purposes) - set(allowed))
        if not purposes or unknown:
            raise RequestRefused(
                "Choose the consent purposes to withdraw (R23)"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + f". Purposes: {', '.join(allowed)}."
            )
    if kind in CHECKLISTS:
        missing = [label for key, label in CHECKLISTS[kind].items() if key not in checklist]
        if missing:
            raise RequestRefused(
                "Tick every step of the checklist before completing; missing: "
                + "; ".join(missing)
                + "."
            )


def _report_prepared(conn: Connection, request_id: int) -> bool:
    events = lt.request_events
    query = select(func.count()).where(
        events.c.request_id == request_id, events.c.event == "report_prepared"
    )
    return conn.execute(query).scalar_one() > 0


# --- reports (R9, R10) ---------------------------------------------------------------------


@writes(*stores.REQUEST_LEDGER, *stores.AUDIT)
def prepare_report(
    dbs: Databases,
    request_id: int,
    *,
    actor: str,
    as_of: date | None = None,
    expected_version: int | None = None,
) -> subject_reports.Report:
    """Build the report an access or portability request is answered with, and audit it.

    Access: `subjects.access_report` (R9); portability: `subjects.portability_export`
    (R10), for the request's subject e-mail. Records a `report_prepared` event (file name,
    SHA-256, rows per table) and an audit entry ('access_report' / 'portability_export',
    with the keyed hash, never the e-mail) in one ledger transaction, anchors the audit
    chain, then returns the Report (data: ZIP bytes, file_name, rows, audit_head). Raises RequestRefused for another request
    type, a closed request, identity still owed, or a case changed since
    `expected_version`; ValueError for a malformed subject e-mail.
    """
    as_of = as_of or today_oslo()
    row = intake_row(dbs, request_id)
    kind = row["request_type"]
    if kind not in REPORTS:
        raise RequestRefused(f"A {kind} request is not answered with a report.")
    action, rule, build = REPORTS[kind]
    report = build(dbs, row["subject_email"], as_of=as_of)
    digest = hashlib.sha256(report.data).hexdigest()

    def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
        if state.status == "awaiting_identity":
            raise RequestRefused(
                "The data subject's identity has not been confirmed yet: no personal data "
                "may be sent before it is (R5)."
            )
        duplicates.refuse_unchecked_duplicate(dbs, state)
        return Change(
            event="report_prepared",
            action=action,
            rule=rule,
            details={
                "kind": kind,
                "file_name": report.file_name,
                "sha256": digest,
                "rows": report.rows,
            },
            audit_details={"kind": kind, "sha256": digest},
            counts={name: n for name, n in report.rows.items() if n},
        )

    run_step(dbs, request_id, decide, actor=actor, as_of=as_of, expected=expected_version)
    head = audit.anchor_now(dbs)  # personal data leaves: anchor the chain that records it
    return dataclasses.replace(report, audit_head=head.head_label)


# --- erasure (R12) -------------------------------------------------------------------------


def _erase(
    dbs: Databases,
    state: CaseState,
    *,
    actor: str,
    as_of: date,
    version: int,
    key: str | None,
    progress: Progress | None,
) -> tuple[erasure.ErasureReceipt, int]:
    """Erase the subject for this request, or resume or reuse its earlier erasure; returns
    the done receipt and the case version after recording it. Raises RequestRefused while
    the erasure is partial."""
    rid = state.request_id
    receipt = _latest_receipt(dbs, rid)
    if receipt is None:
        receipt = erasure.erase_subject(
            dbs,
            state.intake["subject_email"],
            actor=actor,
            as_of=as_of,
            request_id=rid,
            idempotency_key=key,
            progress=progress,
        )
    elif receipt.status != "done":
        receipt = erasure.resume_erasure(dbs, receipt.job_id, actor=actor, progress=progress)
    if receipt.status == "running":
        why = next(iter(receipt.failed.values()), "")
        raise RequestRefused(
            f"The erasure (job {receipt.job_id}) is not finished: {why}. Complete the request "
            "again once it has finished or its lease has expired."
        )
    if receipt.status != "done":
        failures = "; ".join(f"{t}: {why}" for t, why in receipt.failed.items())
        raise RequestRefused(
            f"The erasure (job {receipt.job_id}) is only partly done ({failures}). Complete "
            "the request again to resume it; nothing is erased twice."
        )
    if _erasure_recorded(dbs, rid, receipt.receipt_id):
        return receipt, version

    def decide(conn: Connection, current: CaseState, as_of: date) -> Change:
        return Change(
            event="erased",
            details={
                "receipt_id": receipt.receipt_id,
                "job_id": receipt.job_id,
                "erased": receipt.erased,
                "kept": receipt.kept,
                # The residue scan in short (R18): rows still holding the person outside
                # the exceptions, and where; the full scan is in the receipt.
                "residue_rows": receipt.residue.get("residue_rows"),
                "residue": receipt.residue.get("residue", []),
                # What the erasure cannot reach at once (R12): the backups, until when.
                "backups": receipt.backups_note,
            },
            audit_details={"receipt_id": receipt.receipt_id},
        )

    run_step(dbs, rid, decide, actor=actor, as_of=as_of, expected=version)
    return receipt, version + 1


def unfinished_erasure(dbs: Databases, request_id: int) -> dict | None:
    """The request's erasure job when it has not finished, as a row of
    `jobs.unfinished_jobs` (job_id, status 'partial' | 'running' | 'interrupted' |
    'pending', error, claimed_by, lease_expires_at, ...); None when there is none or it is
    done. Completing the request again resumes it unless it is 'running' (RULES.md R12)."""
    job_id = _erasure_job(dbs, request_id)
    job = None if job_id is None else jobs.job_status(dbs, job_id)
    return None if job is None or job["status"] == "done" else job


def erasure_receipt(dbs: Databases, request_id: int) -> erasure.ErasureReceipt | None:
    """The receipt of the request's latest erasure (done, partial or running), or None when
    the request has not erased anyone (RULES.md R12). Reads the ledger."""
    return _latest_receipt(dbs, request_id)


def _latest_receipt(dbs: Databases, request_id: int) -> erasure.ErasureReceipt | None:
    job_id = _erasure_job(dbs, request_id)
    return None if job_id is None else erasure.receipt_of_job(dbs, job_id)


def _erasure_job(dbs: Databases, request_id: int) -> int | None:
    """The id of the request's latest erasure job, if any."""
    receipts = lt.erasure_receipts
    query = (
        select(receipts.c.job_id)
        .where(receipts.c.request_id == request_id, receipts.c.job_id.is_not(None))
        .order_by(receipts.c.id.desc())
        .limit(1)
    )
    with dbs.ledger.connect() as conn:
        return conn.execute(query).scalar()


def _erasure_recorded(dbs: Databases, request_id: int, receipt_id: int) -> bool:
    events = lt.request_events
    query = (
        select(events.c.details)
        .where(events.c.request_id == request_id, events.c.event == "erased")
        .order_by(events.c.id)
    )
    with dbs.ledger.connect() as conn:
        recorded = [json.loads(d or "{}") for d in conn.execute(query).scalars()]
    return any(d.get("receipt_id") == receipt_id for d in recorded)


# --- consent withdrawal (R23) --------------------------------------------------------------


def _withdraw_consent(
    dbs: Databases,
    ledger: Connection,
    state: CaseState,
    purposes: list[str],
    *,
    actor: str,
    as_of: date,
) -> dict[str, int]:
    """Append a `withdrawn` event per purpose and subject key whose state is not withdrawn
    already (R20, R23); returns events appended per purpose and audits them.

    Runs inside the completion's ledger transaction (the lock is held), in its own consent
    transaction. A retry after a failure between the two commits finds the purposes
    withdrawn and appends nothing twice."""
    email = normalised_email(state.intake["subject_email"])
    owned, latest = _consent_states(dbs, email, as_of)
    when = _effective_time(as_of, utc_now())
    rows = []
    written = {}
    for purpose in sorted(set(purposes)):
        keys = [key for key, p in latest if p == purpose]
        if not keys:
            # No history for the purpose: the person's main key (R20), so the withdrawal
            # is found under the same subject as any later grant.
            keys = [("account", owned[0]) if len(owned) == 1 else ("email", email)]
        written[purpose] = 0
        for key in keys:
            last = latest.get((key, purpose))
            if last is not None and last["action"] == "withdrawn":
                continue
            kind, value = key
            rows.append(
                {
                    "account_id": value if kind == "account" else None,
                    "email": value if kind == "email" else None,
                    "visitor_id": value if kind == "visitor" else None,
                    "purpose": purpose,
                    "action": "withdrawn",
                    "occurred_at": when,
                    "source": WITHDRAWAL_SOURCE,
                    "notice_version": last["notice_version"] if last is not None else None,
                }
            )
            written[purpose] += 1
    if rows:
        with dbs.consent.begin() as conn:
            conn.execute(insert(consent_events), rows)
    audit.append(
        ledger,
        actor=actor,
        action="withdraw_consent",
        rule="R23",
        store="consent",
        subject_ref=audit.keyed_hash(dbs, email),
        target=f"request:{state.request_id}",
        counts={"consent_events": len(rows)},
        details={"purposes": sorted(set(purposes)), "effective_on": as_of},
    )
    return written


def _consent_states(
    dbs: Databases, email: str, as_of: date
) -> tuple[list[int], dict[tuple[tuple[str, object], str], dict]]:
    """(ids of accounts the person owns, latest event per (subject key, purpose) on or
    before the Oslo date `as_of`). A key is ('account', id), ('email', lower e-mail) or
    ('visitor', id): the first that is set on the event (R20)."""
    found = subject_reports.subject_rows(dbs, email)
    owned = sorted(int(i) for i in found["users.accounts"]["id"])
    until = day_end_utc(as_of)
    latest: dict = {}
    events = found["consent.consent_events"]
    for event in sorted(events.to_dict("records"), key=lambda e: (e["occurred_at"], e["id"])):
        if event["occurred_at"] >= until:
            continue
        latest[(_subject_key(event), event["purpose"])] = event
    return owned, latest


def _subject_key(event: dict) -> tuple[str, object]:
    if event.get("account_id") is not None and not pd.isna(event["account_id"]):
        return ("account", int(event["account_id"]))
    if isinstance(event.get("email"), str) and event["email"].strip():
        return ("email", event["email"].strip().lower())
    return ("visitor", event.get("visitor_id"))


def _effective_time(as_of: date, now: datetime) -> datetime:
    """When an action dated `as_of` happened: now if `as_of` is today in Oslo; otherwise
    the last second of that Oslo day (past) or its first second (future)."""
    today = oslo_date(now)
    if as_of == today:
        return now.replace(microsecond=0)
    if as_of < today:
        return day_end_utc(as_of) - timedelta(seconds=1)
    return day_start_utc(as_of)


# --- recipient notification (R11) ----------------------------------------------------------


def recipient_tasks(dbs: Databases, request_id: int) -> pd.DataFrame:
    """The recipient-notification tasks of a request (art. 19; RULES.md R11), by task id.

    Columns: task_id, recipient_id, recipient (the register's name), status ('open' |
    'sent' | 'not_possible'), reason (why notifying was impossible or disproportionate),
    closed_by, closed_on (Oslo date). Capped at policy.max_rows.
    """
    tasks = lt.recipient_tasks
    query = (
        select(
            tasks.c.id.label("task_id"),
            tasks.c.recipient_id,
            tasks.c.recipient,
            tasks.c.status,
            tasks.c.reason,
            tasks.c.closed_by,
            tasks.c.closed_on,
        )
        .where(tasks.c.request_id == request_id)
        .order_by(tasks.c.id)
        .limit(dbs.policy.max_rows)
    )
    with dbs.ledger.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=TASK_COLUMNS)


@writes(*stores.REQUEST_LEDGER, *stores.AUDIT)
def close_recipient_task(
    dbs: Databases,
    task_id: int,
    *,
    outcome: str,
    reason: str | None = None,
    actor: str,
    as_of: date | None = None,
) -> ActionResult:
    """Close one recipient-notification task as 'sent' or 'not_possible' (art. 19; R11).

    'not_possible' (impossible or disproportionate effort) needs a reason; a task closed as
    'sent' keeps none (a reason typed for another task must not travel with it). Records a
    `recipient_notified` event on the request and an audit entry. Refused
    (failed[task_id]) for an unknown outcome or task, a task already closed, or a closed
    request.
    """
    reason = ((reason or "").strip() or None) if outcome == "not_possible" else None
    result = ActionResult()
    try:
        if outcome not in TASK_OUTCOMES:
            raise RequestRefused(f"The outcome must be one of {', '.join(TASK_OUTCOMES)}.")
        refuse_unstorable(reason or "", "reason")
        if outcome == "not_possible" and not reason:
            raise RequestRefused(
                "Say why notifying this recipient is impossible or disproportionate (R11)."
            )
        request_id = _task_request(dbs, task_id)

        def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
            task = _task(conn, task_id)
            if task["status"] != "open":
                closed = task["closed_on"].isoformat() if task["closed_on"] else "?"
                raise RequestRefused(
                    f"The task for {task['recipient']} was already closed as "
                    f"{task['status']} on {closed}."
                )
            conn.execute(
                update(lt.recipient_tasks)
                .where(lt.recipient_tasks.c.id == task_id, lt.recipient_tasks.c.status == "open")
                .values(status=outcome, reason=reason, closed_by=actor, closed_on=as_of)
            )
            return Change(
                event="recipient_notified",
                details={
                    "task_id": task_id,
                    "recipient": task["recipient"],
                    "outcome": outcome,
                    "reason": reason,
                },
                audit_details={"task_id": task_id, "outcome": outcome},
            )

        run_step(dbs, request_id, decide, actor=actor, as_of=as_of, expected=None)
    except RequestRefused as exc:
        result.failed[task_id] = str(exc)
    else:
        result.succeeded.append(task_id)
    return result


def _task_request(dbs: Databases, task_id: int) -> int:
    with dbs.ledger.connect() as conn:
        request_id = conn.execute(
            select(lt.recipient_tasks.c.request_id).where(lt.recipient_tasks.c.id == task_id)
        ).scalar()
    if request_id is None:
        raise RequestRefused(f"There is no recipient task {task_id}.")
    return int(request_id)


def _task(conn: Connection, task_id: int) -> dict:
    row = (
        conn.execute(select(lt.recipient_tasks).where(lt.recipient_tasks.c.id == task_id))
        .mappings()
        .one()
    )
    return dict(row)


def _refuse_open_tasks(conn: Connection, state: CaseState) -> None:
    tasks = lt.recipient_tasks
    open_names = list(
        conn.execute(
            select(tasks.c.recipient)
            .where(tasks.c.request_id == state.request_id, tasks.c.status == "open")
            .order_by(tasks.c.id)
        ).scalars()
    )
    if open_names:
        raise RequestRefused(
            f"{len(open_names)} recipient notification task(s) are still open "
            f"({', '.join(open_names)}): close each as sent or not possible first (R11)."
        )


def _create_tasks(dbs: Databases, request_id: int, *, actor: str, as_of: date, version: int) -> int:
    """One open task per register recipient that receives personal data, unless the request
    has tasks already; returns how many were created (R11)."""
    created: list[str] = []

    def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
        tasks = lt.recipient_tasks
        if conn.execute(select(func.count()).where(tasks.c.request_id == request_id)).scalar_one():
            raise _NoTasksToCreate
        # Created in Norwegian order of the names, so the task list reads alphabetically.
        recipients = collation.sorted_by_name(
            conn.execute(
                select(lt.recipients.c.id, lt.recipients.c.name)
                .where(lt.recipients.c.receives_personal_data.is_(True))
                .order_by(lt.recipients.c.id)
            ).all(),
            lambda r: r.name,
            lambda r: r.id,
        )
        if not recipients:
            raise _NoTasksToCreate
        conn.execute(
            insert(tasks),
            [
                {"request_id": request_id, "recipient_id": rid, "recipient": name, "status": "open"}
                for rid, name in recipients
            ],
        )
        created.extend(name for _rid, name in recipients)
        return Change(
            event="recipient_tasks_created",
            details={"recipients": list(created)},
            counts={"recipient_tasks": len(created)},
        )

    try:
        run_step(dbs, request_id, decide, actor=actor, as_of=as_of, expected=version)
    except _NoTasksToCreate:
        return 0
    return len(created)
