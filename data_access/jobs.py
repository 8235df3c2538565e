"""Resumable jobs for work that spans databases (DESIGN.md "Actions"; RULES.md R14, R18).

A job and all its steps are written to the ledger first. Each step then changes one store
in its own transaction and is marked done in the ledger, with an audit entry, right after.
A step that fails leaves the job *partial* with the error; the other targets go on, and
`run_job` again (the page's "Resume") retries only what is not done. Steps are idempotent
(their WHERE clauses re-check state), so a step repeated after a crash between its commit
and its "done" mark changes nothing the second time.

Large jobs run in batches: the same step of up to `BATCH_TARGETS` targets shares one store
transaction, and their done marks and audit entries share one ledger transaction. A batch
that raises is rolled back and retried one target at a time, so exactly the failing target
fails; a target refused inside a batch is recorded as refused and the others run without it.
Steps are read from the ledger a page at a time, so memory does not grow with the job.

A claim is a lease with a heartbeat: `run_job` claims the job for `policy.job_lease_seconds`
and renews the lease before every batch. A process killed mid-job stops renewing it; once the
lease has expired the job is *interrupted* (`interrupted_jobs`) and the next claim, a DPO's
"Resume" or the daily run's `resume_interrupted_jobs`, takes it over. A live lease is never
taken over, so two processes never run the same job. Steps are audited with the actor who
runs them (the resuming one after an interruption); a step's done mark and audit entry are
written only if no one marked it done before, so no audit entry is ever doubled. A batch's
steps are marked *started* before its store transaction begins: a handler that finds its work
already done can tell its own earlier attempt (`StepContext.retry`) from another job's
(`done_by`, e.g. two DPOs approving the same accounts).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, func, insert, or_, select, update

from data_access import audit
from data_access.clock import utc_now
from data_access.engines import Databases
from data_access.failures import in_words
from data_access.frames import read_frame
from data_access.ledger_tables import job_steps, jobs
from data_access.results import ActionResult

# A handler changes one store for one target inside the given transaction and returns the
# rows it touched per table. Raising StepRefused fails the target without retrying it. The
# transaction may hold the same step of other targets (a batch): a handler touches only
# its own target's rows.
Handler = Callable[[Connection, "StepContext"], dict[str, int]]
OPEN, DONE, FAILED, REFUSED, SKIPPED = "pending", "done", "failed", "refused", "skipped"
# A step whose store transaction was begun: after a crash its change may be committed
# without its done mark, so the handler may find its own work done (`StepContext.retry`).
STARTED = "started"
UNFINISHED = (OPEN, STARTED, FAILED)  # steps a run or resume still has to run
BATCH_TARGETS = 200  # targets per store transaction in a batch
_PAGE_STEPS = 2000  # steps read from the ledger at a time
_INSERT_ROWS = 1000  # planned steps inserted per statement


class StepRefused(Exception):
    """The target no longer qualifies (e.g. the account became active): not retried."""


@dataclass(frozen=True)
class PlannedStep:
    target: str  # 'account:42'
    store: str  # users | consent | support | ledger
    step: str  # handler name
    subject_ref: str | None = None  # keyed hash of the person, for the audit entry
    rule: str | None = None
    # What the handler needs to know about this target as it was planned (no personal
    # data: it is kept with the step); the handler reads it as `ctx.data`.
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class StepContext:
    dbs: Databases
    job_id: int
    target: str
    actor: str
    as_of: date
    params: dict[str, Any]
    step: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # the PlannedStep's data
    # True when this step was begun before (a crash or a failure): its own change may be
    # committed already, so finding the work done is not someone else's doing.
    retry: bool = False

    @property
    def target_id(self) -> int:
        """The numeric part of 'kind:id'."""
        return _record_id(self.target)


@dataclass
class JobOutcome:
    job_id: int
    status: str  # done | partial
    succeeded: list[str]  # targets whose every step is done
    failed: dict[str, str]  # target -> reason of its first failed step
    created: bool  # False when the idempotency key named an existing job
    running_by: str | None = None  # status 'running': who holds the job's live lease
    lease_expires_at: datetime | None = None  # status 'running': until when (UTC)

    def as_action_result(self) -> ActionResult:
        """Per record id ('account:42' -> 42), with `job_id` for a "Resume" button."""
        result = ActionResult(
            succeeded=[_record_id(t) for t in self.succeeded],
            failed={_record_id(t): reason for t, reason in self.failed.items()},
        )
        result.job_id = self.job_id  # type: ignore[attr-defined]
        return result


def _record_id(target: str) -> int:
    return int(target.split(":", 1)[1])


def create_job(
    dbs: Databases,
    *,
    kind: str,
    actor: str,
    as_of: date,
    steps: Iterable[PlannedStep],
    params: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> tuple[int, bool]:
    """Record a job and its steps in one ledger transaction; returns (job_id, created).

    With an `idempotency_key` already used, nothing is written and the existing job is
    returned, so a double click or a rerun never plans the same work twice.
    """
    with dbs.ledger.begin() as conn:
        if idempotency_key:
            existing = conn.execute(
                select(jobs.c.id).where(jobs.c.idempotency_key == idempotency_key)
            ).scalar()
            if existing is not None:
                return existing, False
        job_id = conn.execute(
            insert(jobs).values(
                kind=kind,
                idempotency_key=idempotency_key,
                created_at=utc_now(),
                actor=actor,
                as_of=as_of,
                status="pending",
                params=audit.canonical_json(params or {}),
            )
        ).inserted_primary_key[0]
        planned, targets = 0, set()
        numbered = enumerate(steps, start=1)
        while chunk := list(itertools.islice(numbered, _INSERT_ROWS)):
            conn.execute(insert(job_steps), [_step_row(job_id, seq, s) for seq, s in chunk])
            planned += len(chunk)
            targets.update(s.target for _, s in chunk)
        audit.append(
            conn,
            actor=actor,
            action=f"{kind}.planned",
            store="ledger",
            target=f"job:{job_id}",
            counts={"steps": planned, "targets": len(targets)},
        )
    return job_id, True


def _step_row(job_id: int, seq: int, step: PlannedStep) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "seq": seq,
        "target": step.target,
        "store": step.store,
        "step": step.step,
        "status": OPEN,
        "counts": audit.canonical_json(
            {"subject_ref": step.subject_ref, "rule": step.rule, "data": step.data}
            if step.data
            else {"subject_ref": step.subject_ref, "rule": step.rule}
        ),
    }


def existing_job(dbs: Databases, idempotency_key: str) -> int | None:
    """The id of the job planned under `idempotency_key`, or None: a second click or a rerun
    with the same key reports that job instead of planning anything."""
    with dbs.ledger.connect() as conn:
        return conn.execute(
            select(jobs.c.id).where(jobs.c.idempotency_key == idempotency_key)
        ).scalar()


def run_job(
    dbs: Databases,
    job_id: int,
    handlers: dict[str, Handler],
    *,
    actor: str | None = None,
    now: datetime | None = None,
    progress: Callable[[float, str], None] | None = None,
    batch_targets: int | None = None,
) -> JobOutcome:
    """Run every step of the job not yet done, in order; a failed step skips the rest of
    its target. Returns which targets are complete and why the others are not.

    `actor` runs the job and is in the audit entries of the steps it runs (default: the
    actor who planned it); a resume passes the resuming actor. The job is claimed first
    (a lease, see the module docstring; `now`, naive UTC, defaults to the clock): while
    another claim's lease is live nothing runs and the outcome's status is 'running'.

    Each target's steps run in their planned order. Within a page of steps, the k-th open
    step of up to `batch_targets` (default BATCH_TARGETS) targets runs as one batch when it
    is the same store and step (see the module docstring). `progress(fraction, message)`
    is called after each batch with the share of the job's steps finished (0..1)."""
    job = _job(dbs, job_id)
    job["actor"] = actor or job["actor"]  # the steps are audited with whoever runs them
    token = _claim(dbs, job_id, job["actor"], now or utc_now())
    if token is None:
        # Another click, tab or process holds a live lease: never run a job twice.
        return _outcome(dbs, job_id, running=True)
    try:
        finished = _run_claimed(dbs, job, token, handlers, progress, batch_targets)
    except BaseException as exc:
        _abandon(dbs, job_id, token, exc)
        raise
    if not finished:
        # The lease expired and another claim took the job over: it runs the rest.
        return _outcome(dbs, job_id, running=True)
    return _outcome(dbs, job_id, running=False, token=token)


def _run_claimed(dbs, job, token, handlers, progress, batch_targets) -> bool:
    """The steps not yet done, batch by batch, renewing the lease before each; False when
    the claim was lost (nothing more is run), True when every step was handled."""
    params = json.loads(job["params"] or "{}")
    total = max(_step_count(dbs, job["id"]), 1)
    blocked: dict[str, str] = {}  # target -> why its later steps do not run
    handled = 0  # steps done, refused, skipped or just run, for the progress bar
    for page in _step_pages(dbs, job["id"]):
        open_steps = []
        for step in page:
            if step["status"] in (REFUSED, SKIPPED):
                blocked.setdefault(step["target"], step["error"])
            if step["status"] in UNFINISHED:
                open_steps.append(step)
        handled += len(page) - len(open_steps)
        for batch in _batches(open_steps, batch_targets or BATCH_TARGETS):
            if not _renew(dbs, job["id"], token):
                return False
            handled += len(batch)
            runnable = [s for s in batch if s["target"] not in blocked]
            if runnable:
                _mark_started(dbs, runnable)
                blocked.update(_run_batch(dbs, runnable, handlers, job, params))
            if progress:
                progress(min(handled / total, 1.0), f"{batch[-1]['target']}: {batch[-1]['step']}")
    return True


def _abandon(dbs: Databases, job_id: int, token: str, exc: BaseException) -> None:
    """A run stopped by an exception (a page's script stopped mid-job, the ledger gone):
    leave the job partial and its lease ended, so it can be resumed at once. If even that
    fails, the lease runs out by itself."""
    try:
        _release(dbs, job_id, token, status="partial", error=f"stopped mid-job ({exc!r})"[:2000])
    except Exception:  # noqa: BLE001 - the original exception is the one to report
        pass


def _batches(steps: list[dict], batch_targets: int) -> Iterator[list[dict]]:
    """Open steps of one page grouped for batch runs, each target's steps in seq order.

    A step's rank is its position among its target's open steps on the page; ranks run in
    ascending order, so a target's k-th step always runs after its (k-1)-th. Within a rank,
    steps of the same store and step form batches of up to `batch_targets` targets."""
    ranks: dict[str, int] = {}
    groups: dict[tuple[int, str, str], list[dict]] = {}
    for step in steps:  # seq order
        rank = ranks.get(step["target"], 0)
        ranks[step["target"]] = rank + 1
        groups.setdefault((rank, step["store"], step["step"]), []).append(step)
    for key in sorted(groups, key=lambda k: (k[0], groups[k][0]["seq"])):
        group = groups[key]
        for start in range(0, len(group), batch_targets):
            yield group[start : start + batch_targets]


def _run_batch(
    dbs: Databases, batch: list[dict], handlers: dict[str, Handler], job: dict, params: dict
) -> dict[str, str]:
    """Run one step for many targets; returns target -> reason for those that failed or
    were refused (their later steps do not run)."""
    contexts = [_context(dbs, job, params, step) for step in batch]
    if len(batch) == 1:
        error = _run_step(dbs, batch[0], handlers, contexts[0])
        return {batch[0]["target"]: error} if error else {}
    handler = handlers.get(batch[0]["step"])
    if handler is None:
        return _one_at_a_time(dbs, batch, handlers, contexts)
    counts: list[dict[str, int]] = []
    try:
        with dbs.engine(batch[0]["store"]).begin() as conn:
            for n, ctx in enumerate(contexts):
                try:
                    counts.append(handler(conn, ctx))
                except Exception as exc:
                    raise _FailedInBatch(n, exc) from exc
    except _FailedInBatch as failure:
        # The batch rolled back. The target that raised is not run again (its handler may
        # have recorded a blocked attempt); it alone is refused or failed.
        n, exc = failure.index, failure.error
        step, ctx = batch[n], contexts[n]
        rest, rest_contexts = batch[:n] + batch[n + 1 :], contexts[:n] + contexts[n + 1 :]
        if isinstance(exc, StepRefused):
            _refuse(dbs, step, ctx, str(exc))
            return {step["target"]: str(exc), **_run_batch(dbs, rest, handlers, job, params)}
        reason = _failure_reason(step, exc)
        _mark(dbs, step["id"], FAILED, error=reason[:2000])
        return {step["target"]: reason, **_one_at_a_time(dbs, rest, handlers, rest_contexts)}
    except Exception:  # noqa: BLE001 - the store failed outside a handler (begin, commit)
        return _one_at_a_time(dbs, batch, handlers, contexts)
    _mark_done_many(dbs, batch, counts, contexts)
    return {}


class _FailedInBatch(Exception):
    """Which target of a batch raised, and what."""

    def __init__(self, index: int, error: Exception):
        super().__init__(str(error))
        self.index, self.error = index, error


def _one_at_a_time(
    dbs: Databases, batch: list[dict], handlers: dict[str, Handler], contexts: list[StepContext]
) -> dict[str, str]:
    failed = {}
    for step, ctx in zip(batch, contexts, strict=True):
        error = _run_step(dbs, step, handlers, ctx)
        if error:
            failed[step["target"]] = error
    return failed


def _context(dbs: Databases, job: dict, params: dict, step: dict) -> StepContext:
    data = json.loads(step["counts"] or "{}").get("data") or {}
    retry = step["status"] in (STARTED, FAILED)
    return StepContext(
        dbs,
        job["id"],
        step["target"],
        job["actor"],
        job["as_of"],
        params,
        step["step"],
        data,
        retry,
    )


def _mark_started(dbs: Databases, steps: list[dict]) -> None:
    """Record that these steps' store transaction is about to begin (see STARTED)."""
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(job_steps)
            .where(job_steps.c.id.in_([s["id"] for s in steps]), job_steps.c.status == OPEN)
            .values(status=STARTED)
        )


def _mark_done_many(
    dbs: Databases, batch: list[dict], counts: list[dict[str, int]], contexts: list[StepContext]
) -> None:
    """Done marks and audit entries of a committed batch, in one ledger transaction; a
    step someone else marked done meanwhile gets neither (no audit entry is doubled)."""
    now = utc_now()
    entries = []
    with dbs.ledger.begin() as conn:
        for step, rows, ctx in zip(batch, counts, contexts, strict=True):
            meta = json.loads(step["counts"] or "{}")
            if _mark_done(conn, step, {**meta, "by": ctx.actor}, rows, now):
                entries.append(_audit_entry(step, meta, rows, ctx, now))
        audit.append_many(conn, entries)


def _mark_done(conn: Connection, step: dict, meta: dict, rows: dict[str, int], now) -> bool:
    """Mark one step done unless it already is; True when this call marked it. The guarded
    UPDATE waits for and re-reads a concurrent mark on PostgreSQL and MariaDB."""
    marked = conn.execute(
        update(job_steps)
        .where(job_steps.c.id == step["id"], job_steps.c.status != DONE)
        .values(
            status=DONE,
            error=None,
            done_at=now,
            counts=audit.canonical_json({**meta, "rows": rows}),
        )
    )
    return marked.rowcount == 1


def _audit_entry(step: dict, meta: dict, rows: dict[str, int], ctx: StepContext, now) -> dict:
    """The audit entry of one done step: who, which rule, store and counts, the person only
    by keyed hash (RULES.md R18)."""
    return {
        "actor": ctx.actor,
        "action": step["step"],
        "rule": meta.get("rule"),
        "store": step["store"],
        "subject_ref": meta.get("subject_ref"),
        "target": ctx.target,
        "counts": rows,
        "details": {"job_id": ctx.job_id, "as_of": ctx.as_of},
        "now": now,
    }


def _run_step(
    dbs: Databases, step: dict, handlers: dict[str, Handler], ctx: StepContext
) -> str | None:
    """One step: the store's transaction, then the ledger's done mark and audit entry."""
    meta = json.loads(step["counts"] or "{}")
    try:
        handler = handlers[step["step"]]
        with dbs.engine(step["store"]).begin() as conn:
            counts = handler(conn, ctx)
    except StepRefused as exc:
        _refuse(dbs, step, ctx, str(exc))
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any store failure leaves the job resumable
        reason = _failure_reason(step, exc)
        _mark(dbs, step["id"], FAILED, error=reason[:2000])
        return reason
    now = utc_now()
    with dbs.ledger.begin() as conn:
        if _mark_done(conn, step, {**meta, "by": ctx.actor}, counts, now):
            audit.append(conn, **_audit_entry(step, meta, counts, ctx, now))
    return None


_NOT_DONE = {False: "not run yet", True: "interrupted while it ran"}


def done_by(
    dbs: Databases, targets: Iterable[str], step: str, *, other_than: int | None = None
) -> dict[str, str]:
    """Who did `step` for each of `targets` in a job other than `other_than`: target ->
    "<actor> (job N)", the actor of its done step, or else the claimant of a job running it
    now; targets no other job did are left out. For work found already done (two DPOs
    approving the same accounts)."""
    wanted = sorted(set(targets))
    found: dict[str, tuple[bool, str]] = {}  # target -> (done, who)
    with dbs.ledger.connect() as conn:
        for start in range(0, len(wanted), _INSERT_ROWS):
            query = (
                select(job_steps.c.target, job_steps.c.status, job_steps.c.counts, jobs.c.id)
                .add_columns(jobs.c.claimed_by)
                .join(jobs, jobs.c.id == job_steps.c.job_id)
                .where(
                    job_steps.c.target.in_(wanted[start : start + _INSERT_ROWS]),
                    job_steps.c.step == step,
                    job_steps.c.job_id != (-1 if other_than is None else other_than),
                    or_(job_steps.c.status == DONE, jobs.c.status == "running"),
                )
                .order_by(job_steps.c.id)
            )
            for target, status, counts, job_id, claimed_by in conn.execute(query):
                done = status == DONE
                by = json.loads(counts or "{}").get("by") if done else claimed_by
                if target not in found or (done and not found[target][0]):
                    found[target] = (done, f"{by or 'another run'} (job {job_id})")
    return {target: who for target, (_done, who) in found.items()}


def _failure_reason(step: dict, exc: Exception) -> str:
    return f"{step['store']} failed at {step['step']}: {exc.__class__.__name__}: {in_words(exc)}"


def _refuse(dbs: Databases, step: dict, ctx: StepContext, reason: str) -> None:
    _mark(dbs, step["id"], REFUSED, error=reason)
    _skip_rest_of_target(dbs, ctx.job_id, ctx.target, reason=reason)


def _claim(dbs: Databases, job_id: int, actor: str, now: datetime) -> str | None:
    """Claim the job for `actor` unless another claim's lease is live; returns the claim's
    token, or None. The guarded UPDATE makes this atomic: of two claims at once, one wins."""
    token = uuid.uuid4().hex
    with dbs.ledger.begin() as conn:
        claimed = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, or_(jobs.c.status != "running", _lease_expired(now)))
            .values(
                status="running",
                error=None,
                claimed_by=actor,
                claimed_at=now,
                lease_expires_at=now + _lease(dbs),
                claim_token=token,
            )
        )
    return token if claimed.rowcount == 1 else None


def _renew(dbs: Databases, job_id: int, token: str) -> bool:
    """The heartbeat: extend this claim's lease from now; False when the claim was lost
    (it expired and another claim took the job over)."""
    with dbs.ledger.begin() as conn:
        renewed = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claim_token == token, jobs.c.status == "running")
            .values(lease_expires_at=utc_now() + _lease(dbs))
        )
    return renewed.rowcount == 1


def _lease(dbs: Databases) -> timedelta:
    return timedelta(seconds=dbs.policy.job_lease_seconds)


def _lease_expired(now: datetime):
    """A 'running' job's lease has expired at `now`; one with no lease (left running before
    leases existed) counts as expired."""
    return or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at <= now)


def _skip_rest_of_target(dbs: Databases, job_id: int, target: str, *, reason: str) -> None:
    """A refused target is final: its later steps will never run, so resume skips them."""
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(job_steps)
            .where(
                job_steps.c.job_id == job_id,
                job_steps.c.target == target,
                job_steps.c.status == OPEN,
            )
            .values(status=SKIPPED, error=reason)
        )


def _mark(dbs: Databases, step_id: int, status: str, *, error: str) -> None:
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(job_steps)
            .where(job_steps.c.id == step_id, job_steps.c.status != DONE)
            .values(status=status, error=error)
        )


def _outcome(dbs: Databases, job_id: int, *, running: bool, token: str | None = None) -> JobOutcome:
    """Which targets are complete and why the others are not. Unless `running` (another
    claim holds the job), records the job's status and releases the claim `token`.

    The steps are streamed: per target only its first unfinished step's reason is kept."""
    first_bad: dict[str, str | None] = {}  # target -> reason of its first unfinished step
    resumable, first_error = False, None
    query = (
        select(job_steps.c.target, job_steps.c.status, job_steps.c.error)
        .where(job_steps.c.job_id == job_id)
        .order_by(job_steps.c.seq)
    )
    with dbs.ledger.connect() as conn:
        result = conn.execution_options(yield_per=_PAGE_STEPS).execute(query)
        with result:
            for target, status, error in result:
                if status != DONE and first_bad.get(target) is None:
                    first_bad[target] = error or _NOT_DONE[status == STARTED]
                else:
                    first_bad.setdefault(target, None)
                # Refused targets are final; only failed or unrun steps make it resumable.
                resumable = resumable or status in UNFINISHED
                if status == FAILED and first_error is None:
                    first_error = error
    succeeded = [t for t, reason in first_bad.items() if reason is None]
    failed = {t: reason for t, reason in first_bad.items() if reason is not None}
    if running:
        holder = _job(dbs, job_id)
        busy = running_now(holder["claimed_by"], holder["lease_expires_at"])
        return JobOutcome(
            job_id,
            "running",
            succeeded,
            dict.fromkeys(failed, busy),
            False,
            running_by=holder["claimed_by"],
            lease_expires_at=holder["lease_expires_at"],
        )
    status = "partial" if resumable else "done"
    _release(dbs, job_id, token, status=status, error=first_error)
    return JobOutcome(job_id, status, succeeded, failed, True)


def running_now(claimed_by: str | None, lease_expires_at: datetime | None) -> str:
    """Why a job with a live lease does not run again: who runs it and until when."""
    until = f"{lease_expires_at:%Y-%m-%d %H:%M:%S} UTC" if lease_expires_at else "?"
    return (
        f"the job is running now (claimed by {claimed_by or '?'}; its lease runs to {until}, "
        "after which it can be resumed); nothing was done twice"
    )


def _release(dbs: Databases, job_id: int, token: str | None, *, status: str, error) -> None:
    """Record how the run ended and end its lease, if the claim is still this run's."""
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claim_token == token)
            .values(status=status, error=error, finished_at=utc_now(), lease_expires_at=None)
        )


def _job(dbs: Databases, job_id: int) -> dict:
    with dbs.ledger.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise KeyError(f"no job {job_id}")
    return dict(row)


def _step_pages(dbs: Databases, job_id: int) -> Iterator[list[dict]]:
    """The job's steps in seq order, `_PAGE_STEPS` at a time (keyset on seq): each page is
    read when the previous one has run, so it sees the statuses that run left."""
    last_seq = 0
    while True:
        with dbs.ledger.connect() as conn:
            page = [
                dict(r)
                for r in conn.execute(
                    select(
                        job_steps.c.id,
                        job_steps.c.seq,
                        job_steps.c.target,
                        job_steps.c.store,
                        job_steps.c.step,
                        job_steps.c.status,
                        job_steps.c.counts,
                        job_steps.c.error,
                    )
                    .where(job_steps.c.job_id == job_id, job_steps.c.seq > last_seq)
                    .order_by(job_steps.c.seq)
                    .limit(_PAGE_STEPS)
                ).mappings()
            ]
        if not page:
            return
        yield page
        last_seq = page[-1]["seq"]


def _step_count(dbs: Databases, job_id: int) -> int:
    with dbs.ledger.connect() as conn:
        query = select(func.count()).where(job_steps.c.job_id == job_id)
        return int(conn.execute(query).scalar_one())


def job_steps_frame(
    dbs: Databases, job_id: int, *, status: str | None = None, limit: int | None = None
) -> pd.DataFrame:
    """The steps of one job in seq order, optionally only those with `status` ('pending',
    'started', 'done', 'failed', 'refused', 'skipped'). Capped at `limit` (default policy.max_rows).

    Columns: seq, target, store, step, status, error, done_at (UTC)."""
    columns = ["seq", "target", "store", "step", "status", "error", "done_at"]
    query = select(*(job_steps.c[c] for c in columns)).where(job_steps.c.job_id == job_id)
    if status is not None:
        query = query.where(job_steps.c.status == status)
    query = query.order_by(job_steps.c.seq).limit(limit or dbs.policy.max_rows)
    with dbs.ledger.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=columns)


UNFINISHED_COLUMNS = [
    "job_id",
    "kind",
    "created_at",
    "actor",
    "as_of",
    "status",
    "error",
    "claimed_by",
    "claimed_at",
    "lease_expires_at",
]


def unfinished_jobs(
    dbs: Databases, kind: str | None = None, *, now: datetime | None = None
) -> pd.DataFrame:
    """Jobs not done, newest first, for a "Resume" button; only jobs of `kind` when given
    (e.g. 'account_deletion').

    status: 'partial' (a store failed; resumable), 'running' (a live lease: someone runs it
    now), 'interrupted' (running, but its lease expired at `now`, default the clock: the
    process is gone; resumable) or 'pending' (planned, never started).
    Columns: job_id, kind, created_at, actor (who planned it), as_of, status, error,
    claimed_by (who ran it last), claimed_at, lease_expires_at (UTC times).
    """
    query = _unfinished().where(jobs.c.status.in_(("partial", "running", "pending")))
    return _with_status(read_frame(dbs.ledger, _of_kind(query, kind, dbs)), now or utc_now())


def job_status(dbs: Databases, job_id: int, *, now: datetime | None = None) -> dict | None:
    """One job as a row of `unfinished_jobs` (its status 'done' too), or None when there is
    no such job."""
    query = _unfinished().where(jobs.c.id == job_id)
    frame = _with_status(read_frame(dbs.ledger, query), now or utc_now())
    return None if frame.empty else frame.iloc[0].to_dict()


def interrupted_jobs(
    dbs: Databases, kind: str | None = None, *, now: datetime | None = None
) -> pd.DataFrame:
    """Jobs whose process is gone, oldest first: running with a lease expired at `now`
    (naive UTC, default the clock), or planned and never claimed within a lease's length.

    Columns as `unfinished_jobs`; status 'interrupted' or 'pending'."""
    now = now or utc_now()
    query = _unfinished().where(
        or_(
            and_(jobs.c.status == "running", _lease_expired(now)),
            and_(jobs.c.status == "pending", jobs.c.created_at <= now - _lease(dbs)),
        )
    )
    query = _of_kind(query, kind, dbs).order_by(None).order_by(jobs.c.id)
    return _with_status(read_frame(dbs.ledger, query), now)


def resume_interrupted_jobs(
    dbs: Databases, actor: str, now: datetime | None = None
) -> ActionResult:
    """Resume every interrupted job (`interrupted_jobs` at `now`), oldest first, as `actor`
    (e.g. the daily run), whose name the resumed steps' audit entries carry.

    Per job id: succeeded when it ran to done; failed with the reason when it stays partial
    or another claim took it first. A job of an unknown kind fails and is left alone."""
    result = ActionResult()
    resumers = _handlers_by_kind()
    for job in interrupted_jobs(dbs, now=now).itertuples():
        handlers = resumers.get(job.kind)
        if handlers is None:
            result.failed[int(job.job_id)] = f"no handlers for jobs of kind {job.kind!r}"
            continue
        outcome = run_job(dbs, int(job.job_id), handlers, actor=actor, now=now)
        if outcome.status == "done":
            result.succeeded.append(int(job.job_id))
        else:
            result.failed[int(job.job_id)] = _why_not_done(outcome)
    return result


def _why_not_done(outcome: JobOutcome) -> str:
    if outcome.status == "running":
        return running_now(outcome.running_by, outcome.lease_expires_at)
    target, reason = next(iter(outcome.failed.items()))
    return f"partial: {len(outcome.failed)} target(s) not done, first {target}: {reason}"


def _handlers_by_kind() -> dict[str, dict[str, Handler]]:
    """Each job kind's step handlers. Imported here: those modules import this one."""
    from data_access import erasure
    from data_access.retention import runner

    return {**dict.fromkeys(runner.KINDS, runner.HANDLERS), erasure.KIND: erasure.HANDLERS}


def _unfinished():
    return select(jobs.c.id.label("job_id"), *(jobs.c[c] for c in UNFINISHED_COLUMNS[1:])).order_by(
        jobs.c.id.desc()
    )


def _of_kind(query, kind: str | None, dbs: Databases):
    query = query.limit(dbs.policy.max_rows)
    return query if kind is None else query.where(jobs.c.kind == kind)


def _with_status(frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """'running' becomes 'interrupted' where the lease expired at `now` (or is missing)."""
    expired = frame["lease_expires_at"].isna() | (pd.to_datetime(frame["lease_expires_at"]) <= now)
    frame.loc[(frame["status"] == "running") & expired, "status"] = "interrupted"
    return frame
