"""Resumable jobs for work that spans databases (DESIGN.md "Actions"; RULES.md R14, R18).

A job and all its steps are written to the ledger first. Each step then changes one store
in its own transaction and is marked done in the ledger, with an audit entry, right after.
A step that fails leaves the job *partial* with the error; the other targets go on, and
`run_job` again (the page's "Resume") retries only what is not done. Steps are idempotent
(their WHERE clauses re-check state), so a step repeated after a crash between its commit
and its "done" mark changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Connection, insert, select, update

from data_access import audit
from data_access.clock import utc_now
from data_access.engines import Databases
from data_access.ledger_tables import job_steps, jobs
from data_access.results import ActionResult

# A handler changes one store for one target inside the given transaction and returns the
# rows it touched per table. Raising StepRefused fails the target without retrying it.
Handler = Callable[[Connection, "StepContext"], dict[str, int]]
OPEN, DONE, FAILED, REFUSED, SKIPPED = "pending", "done", "failed", "refused", "skipped"


class StepRefused(Exception):
    """The target no longer qualifies (e.g. the account became active): not retried."""


@dataclass(frozen=True)
class PlannedStep:
    target: str  # 'account:42'
    store: str  # users | consent | support | ledger
    step: str  # handler name
    subject_ref: str | None = None  # keyed hash of the person, for the audit entry
    rule: str | None = None


@dataclass(frozen=True)
class StepContext:
    dbs: Databases
    job_id: int
    target: str
    actor: str
    as_of: date
    params: dict[str, Any]
    step: str = ""

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
        rows = [
            {
                "job_id": job_id,
                "seq": seq,
                "target": s.target,
                "store": s.store,
                "step": s.step,
                "status": OPEN,
                "counts": audit.canonical_json({"subject_ref": s.subject_ref, "rule": s.rule}),
            }
            for seq, s in enumerate(steps, start=1)
        ]
        if rows:
            conn.execute(insert(job_steps), rows)
        audit.append(
            conn,
            actor=actor,
            action=f"{kind}.planned",
            store="ledger",
            target=f"job:{job_id}",
            counts={"steps": len(rows), "targets": len({r["target"] for r in rows})},
        )
    return job_id, True


def run_job(
    dbs: Databases,
    job_id: int,
    handlers: dict[str, Handler],
    *,
    progress: Callable[[float, str], None] | None = None,
) -> JobOutcome:
    """Run every step of the job not yet done, in order; a failed step skips the rest of
    its target. Returns which targets are complete and why the others are not."""
    job = _job(dbs, job_id)
    if not _claim(dbs, job_id):
        # Another click or rerun is running this job right now: never run it twice.
        return _outcome(dbs, job_id, running=True)
    params = json.loads(job["params"] or "{}")
    steps = _steps(dbs, job_id)
    blocked: dict[str, str] = {}
    total = max(len(steps), 1)
    for n, step in enumerate(steps, start=1):
        target = step["target"]
        if step["status"] == DONE:
            continue
        if step["status"] in (REFUSED, SKIPPED):
            blocked.setdefault(target, step["error"])
            continue
        if target in blocked:
            continue
        context = StepContext(dbs, job_id, target, job["actor"], job["as_of"], params, step["step"])
        error = _run_step(dbs, step, handlers, context)
        if error:
            blocked[target] = error
        if progress:
            progress(n / total, f"{target}: {step['step']}")
    return _finish(dbs, job_id)


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
        _mark(dbs, step["id"], REFUSED, error=str(exc))
        _skip_rest_of_target(dbs, ctx.job_id, ctx.target, reason=str(exc))
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any store failure leaves the job resumable
        reason = f"{step['store']} failed at {step['step']}: {exc.__class__.__name__}: {exc}"
        _mark(dbs, step["id"], FAILED, error=reason[:2000])
        return reason
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(job_steps)
            .where(job_steps.c.id == step["id"], job_steps.c.status != DONE)
            .values(
                status=DONE,
                error=None,
                done_at=utc_now(),
                counts=audit.canonical_json({**meta, "rows": counts}),
            )
        )
        audit.append(
            conn,
            actor=ctx.actor,
            action=step["step"],
            rule=meta.get("rule"),
            store=step["store"],
            subject_ref=meta.get("subject_ref"),
            target=ctx.target,
            counts=counts,
            details={"job_id": ctx.job_id, "as_of": ctx.as_of},
        )
    return None


def _claim(dbs: Databases, job_id: int) -> bool:
    """Mark the job running unless it already is; the guarded UPDATE makes this atomic."""
    with dbs.ledger.begin() as conn:
        claimed = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status != "running")
            .values(status="running", error=None)
        )
        return claimed.rowcount == 1


def release_stale_claim(dbs: Databases, job_id: int) -> None:
    """Let a job left 'running' by a crashed process be resumed (its steps are idempotent)."""
    _set_job(dbs, job_id, status="partial", error="interrupted; resumable")


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
            update(job_steps).where(job_steps.c.id == step_id).values(status=status, error=error)
        )


def _finish(dbs: Databases, job_id: int) -> JobOutcome:
    return _outcome(dbs, job_id, running=False)


def _outcome(dbs: Databases, job_id: int, *, running: bool) -> JobOutcome:
    steps = _steps(dbs, job_id)
    by_target: dict[str, list[dict]] = {}
    for s in steps:
        by_target.setdefault(s["target"], []).append(s)
    succeeded, failed = [], {}
    for target, rows in by_target.items():
        bad = next((r for r in rows if r["status"] != DONE), None)
        if bad is None:
            succeeded.append(target)
        else:
            failed[target] = bad["error"] or "not run yet"
    # Refused targets are final; only failed or unrun steps make the job resumable.
    resumable = any(s["status"] in (OPEN, FAILED) for s in steps)
    if running:
        return JobOutcome(job_id, "running", succeeded, failed, False)
    status = "partial" if resumable else "done"
    first_error = next((s["error"] for s in steps if s["status"] == FAILED), None)
    _set_job(dbs, job_id, status=status, error=first_error, finished=True)
    return JobOutcome(job_id, status, succeeded, failed, True)


def _set_job(
    dbs: Databases, job_id: int, *, status: str, error: str | None = None, finished=False
) -> None:
    values: dict[str, Any] = {"status": status, "error": error}
    if finished:
        values["finished_at"] = utc_now()
    with dbs.ledger.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def _job(dbs: Databases, job_id: int) -> dict:
    with dbs.ledger.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise KeyError(f"no job {job_id}")
    return dict(row)


def _steps(dbs: Databases, job_id: int) -> list[dict]:
    with dbs.ledger.connect() as conn:
        rows = conn.execute(
            select(job_steps).where(job_steps.c.job_id == job_id).order_by(job_steps.c.seq)
        ).mappings()
        return [dict(r) for r in rows]


def job_steps_frame(dbs: Databases, job_id: int) -> pd.DataFrame:
    """The steps of one job. Columns: seq, target, store, step, status, error, done_at (UTC)."""
    columns = ["seq", "target", "store", "step", "status", "error", "done_at"]
    return pd.DataFrame([{c: s[c] for c in columns} for s in _steps(dbs, job_id)], columns=columns)


def unfinished_jobs(dbs: Databases, kind: str | None = None) -> pd.DataFrame:
    """Jobs left partial or running (a crash), newest first, for a "Resume" button.

    Columns: job_id, kind, created_at (UTC), actor, as_of, status, error.
    """
    query = (
        select(
            jobs.c.id.label("job_id"),
            jobs.c.kind,
            jobs.c.created_at,
            jobs.c.actor,
            jobs.c.as_of,
            jobs.c.status,
            jobs.c.error,
        )
        .where(jobs.c.status.in_(("partial", "running", "pending")))
        .order_by(jobs.c.id.desc())
        .limit(dbs.policy.max_rows)
    )
    with dbs.ledger.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).mappings().all(), columns=list(query.selected_columns.keys())
        )
