"""The nightly run: `python -m data_access.daily [--as-of YYYY-MM-DD] [--dry-run]`.

Steps, in order: refresh the consent roll-up; deliver the outbox; resume interrupted jobs;
verify the audit chain and write its anchor; compute the radar; e-mail the digest. Each
run and each step is a ledger row (started, finished, outcome, counts, error; UTC times)
and an audit entry by the actor `ACTOR`. A failing step does not stop the others; the run's
outcome is 'failed' and its error names the failed steps. Two runs at once cannot both
act: the one-row `daily_run_lock`, taken by a guarded UPDATE, lets one in; the other
returns outcome 'locked' and writes nothing. A dry run takes no lock and changes no table
(nor the anchor file): it reads what each step would do and sends nothing.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, insert, or_, select, update

from data_access import audit, consent_rollup, failures, jobs, mailer
from data_access.audit_chain import canonical_json
from data_access.clock import today_oslo, utc_now
from data_access.daily import acks, digest
from data_access.daily.deadline_radar import radar as radar_of
from data_access.daily.deadline_radar import severity_counts
from data_access.engines import Databases
from data_access.ledger_tables import daily_run_lock, daily_run_steps, daily_runs
from data_access.settings import Settings, smtp_password
from data_access.tables import consent_events

ACTOR = "daily-run"
# A run renews its lock at every step; one that died frees it after this long.
LOCK_LEASE = timedelta(hours=2)
OUTCOMES = ("ok", "failed", "locked", "dry_run")


class StepSkipped(Exception):
    """A step with nothing it can do (no SMTP configured, no recipients): 'skipped'."""


@dataclass
class StepResult:
    step: str
    outcome: str  # ok | failed | skipped
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class DailyRun:
    """What one run did. `outcome`: 'ok', 'failed' (a step failed; `failed_steps` names
    them), 'locked' (another run holds the lock: `locked_by`, nothing done) or 'dry_run'."""

    run_id: int | None
    as_of: date
    outcome: str
    steps: list[StepResult] = field(default_factory=list)
    radar: pd.DataFrame | None = None
    digest: str = ""
    locked_by: str | None = None

    @property
    def failed_steps(self) -> list[str]:
        return [s.step for s in self.steps if s.outcome == "failed"]

    def summary(self) -> str:
        """The run in a few lines, for the terminal and cron's mail."""
        if self.outcome == "locked":
            return f"Another daily run holds the lock ({self.locked_by}); nothing was done."
        head = f"Daily run {self.run_id or '(dry run)'} as of {self.as_of.isoformat()}: "
        head += self.outcome + (
            f" (failed: {', '.join(self.failed_steps)})" if self.failed_steps else ""
        )
        lines = [head]
        for s in self.steps:
            counts = ", ".join(f"{k} {v}" for k, v in s.counts.items())
            lines.append(f"  {s.step}: {s.outcome}" + (f" ({counts})" if counts else ""))
            if s.error:
                lines.append(f"    {s.error}")
        return "\n".join(lines)


@dataclass
class Context:
    dbs: Databases
    settings: Settings
    as_of: date
    actor: str
    now: datetime
    dry_run: bool
    password: str | None
    radar: pd.DataFrame | None = None
    digest: str = ""


Step = Callable[[Context], dict[str, Any]]


def run(
    dbs: Databases,
    *,
    as_of: date | None = None,
    dry_run: bool = False,
    actor: str = ACTOR,
    settings: Settings | None = None,
    now: datetime | None = None,
    password: str | None = None,
) -> DailyRun:
    """Run every step for `as_of` (Oslo date, default today) at `now` (naive UTC, default
    the clock) as `actor`. `settings` default to `dbs.settings` ([smtp], [roles], [daily]);
    `password` to the SMTP password variable. Never raises for a failing step (it is
    recorded); raises for a ledger that cannot record the run at all."""
    settings = settings or dbs.settings or Settings()
    ctx = Context(
        dbs=dbs,
        settings=settings,
        as_of=as_of or today_oslo(),
        actor=actor,
        now=(now or utc_now()).replace(microsecond=0),
        dry_run=dry_run,
        password=password if password is not None else smtp_password(settings),
    )
    if dry_run:
        steps = [_attempt(name, fn, ctx) for name, fn in DRY_STEPS]
        return DailyRun(None, ctx.as_of, "dry_run", steps, ctx.radar, ctx.digest)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    run_id, holder = _start(ctx, token)
    if run_id is None:
        return DailyRun(None, ctx.as_of, "locked", locked_by=holder)
    results = []
    try:
        for seq, (name, fn) in enumerate(STEPS, start=1):
            _renew(dbs, token, ctx.now)
            results.append(_recorded_step(ctx, run_id, seq, name, fn))
    finally:
        outcome = "failed" if any(r.outcome == "failed" for r in results) else "ok"
        if len(results) < len(STEPS):
            outcome = "failed"
        _finish(ctx, run_id, token, outcome, results)
    return DailyRun(run_id, ctx.as_of, outcome, results, ctx.radar, ctx.digest)


# --- lock and ledger rows ------------------------------------------------------------------


def _start(ctx: Context, token: str) -> tuple[int | None, str | None]:
    """Take the lock and record the run in one transaction; (run id, None), or (None, the
    holder) when another live run holds it."""
    dbs, now = ctx.dbs, ctx.now
    with dbs.ledger.begin() as conn:
        taken = conn.execute(
            update(daily_run_lock)
            .where(
                daily_run_lock.c.id == 1,
                or_(daily_run_lock.c.expires_at.is_(None), daily_run_lock.c.expires_at <= now),
            )
            .values(holder=token, expires_at=now + LOCK_LEASE, run_id=None)
        )
        if taken.rowcount != 1:
            holder = conn.execute(
                select(daily_run_lock.c.holder, daily_run_lock.c.run_id).where(
                    daily_run_lock.c.id == 1
                )
            ).first()
            if holder is None:  # the migration's row is gone: put it back, locked by us
                conn.execute(
                    insert(daily_run_lock).values(id=1, holder=token, expires_at=now + LOCK_LEASE)
                )
            else:
                return None, f"run {holder.run_id} ({holder.holder})"
        run_id = conn.execute(
            insert(daily_runs).values(
                as_of=ctx.as_of, actor=ctx.actor, started_at=now, outcome="running"
            )
        ).inserted_primary_key[0]
        conn.execute(update(daily_run_lock).where(daily_run_lock.c.id == 1).values(run_id=run_id))
        audit.append(
            conn,
            actor=ctx.actor,
            action="daily_run_started",
            store="ledger",
            target=f"daily_run:{run_id}",
            details={"as_of": ctx.as_of},
            now=now,
        )
    return run_id, None


def _renew(dbs: Databases, token: str, now: datetime) -> None:
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(daily_run_lock)
            .where(daily_run_lock.c.id == 1, daily_run_lock.c.holder == token)
            .values(expires_at=max(now, utc_now()) + LOCK_LEASE)
        )


def _recorded_step(ctx: Context, run_id: int, seq: int, name: str, fn: Step) -> StepResult:
    started = utc_now().replace(microsecond=0)
    with ctx.dbs.ledger.begin() as conn:
        step_id = conn.execute(
            insert(daily_run_steps).values(
                run_id=run_id, seq=seq, step=name, started_at=started, outcome="running"
            )
        ).inserted_primary_key[0]
    result = _attempt(name, fn, ctx)
    finished = utc_now().replace(microsecond=0)
    with ctx.dbs.ledger.begin() as conn:
        conn.execute(
            update(daily_run_steps)
            .where(daily_run_steps.c.id == step_id)
            .values(
                finished_at=finished,
                outcome=result.outcome,
                counts=canonical_json(result.counts),
                error=result.error,
            )
        )
        audit.append(
            conn,
            actor=ctx.actor,
            action="daily_run_step",
            store="ledger",
            target=f"daily_run:{run_id}",
            counts={k: v for k, v in result.counts.items() if isinstance(v, int)},
            details={"step": name, "outcome": result.outcome},
            now=finished,
        )
    return result


def _attempt(name: str, fn: Step, ctx: Context) -> StepResult:
    """Run one step; its exception becomes the step's error, in words (no SQL, no values)."""
    try:
        return StepResult(name, "ok", fn(ctx))
    except StepSkipped as exc:
        return StepResult(name, "skipped", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failing step must not stop the others
        return StepResult(name, "failed", error=failures.in_words(exc)[:2000])


def _finish(ctx: Context, run_id: int, token: str, outcome: str, results: list) -> None:
    failed = [r.step for r in results if r.outcome == "failed"]
    error = f"failed steps: {', '.join(failed)}" if failed else None
    if len(results) < len(STEPS):
        error = (error + "; " if error else "") + "the run stopped before its last step"
    counts = {"steps": len(results), "failed": len(failed)}
    finished = utc_now().replace(microsecond=0)
    with ctx.dbs.ledger.begin() as conn:
        conn.execute(
            update(daily_runs)
            .where(daily_runs.c.id == run_id)
            .values(
                finished_at=finished, outcome=outcome, counts=canonical_json(counts), error=error
            )
        )
        conn.execute(
            update(daily_run_lock)
            .where(daily_run_lock.c.id == 1, daily_run_lock.c.holder == token)
            .values(holder=None, expires_at=None, run_id=None)
        )
        audit.append(
            conn,
            actor=ctx.actor,
            action="daily_run_finished",
            store="ledger",
            target=f"daily_run:{run_id}",
            counts=counts,
            details={"outcome": outcome, "failed_steps": failed},
            now=finished,
        )


# --- the steps -----------------------------------------------------------------------------


def refresh_consent(ctx: Context) -> dict[str, Any]:
    """New consent events into the ledger's roll-up (RULES.md R20, R21)."""
    refreshed = consent_rollup.refresh(ctx.dbs)
    if not refreshed.ready:
        raise RuntimeError("the consent roll-up is being built by another process")
    return {"events_applied": int(refreshed.applied), "rebuilt": int(bool(refreshed.rebuilt))}


def deliver_outbox(ctx: Context) -> dict[str, Any]:
    """Pending outbox messages over `[smtp]`; failed when a message could not be sent."""
    if not ctx.settings.smtp.configured:
        raise StepSkipped("SMTP is not configured ([smtp] host and sender)")
    delivery = mailer.deliver_outbox(ctx.dbs, ctx.settings.smtp, password=ctx.password)
    if delivery.failed:
        first = next(iter(delivery.errors.values()))
        raise RuntimeError(
            f"{delivery.failed} message(s) not delivered ({delivery.sent} sent); first: {first}"
        )
    return {"sent": delivery.sent}


def resume_jobs(ctx: Context) -> dict[str, Any]:
    """Every interrupted job resumed as the run's actor (DESIGN.md "Actions")."""
    result = jobs.resume_interrupted_jobs(ctx.dbs, ctx.actor)
    if result.failed:
        reasons = "; ".join(f"job {k}: {v}" for k, v in list(result.failed.items())[:5])
        raise RuntimeError(f"{len(result.failed)} job(s) not finished: {reasons}")
    return {"resumed": len(result.succeeded)}


def verify_and_anchor(ctx: Context) -> dict[str, Any]:
    """The audit chain checked, then anchored to the anchor file (RULES.md R18)."""
    report = audit.verify_chain(ctx.dbs)
    if not report.ok:
        raise RuntimeError("the audit chain is broken: " + "; ".join(report.problems[:3]))
    anchor = audit.write_anchor(ctx.dbs)
    if anchor is None:
        return {"anchored": 0}
    return {"anchored": 1, "entries": int(anchor.entries)}


def compute_radar(ctx: Context) -> dict[str, Any]:
    """The radar for `as_of`, each item noted as reported (for escalation)."""
    ctx.radar = radar_of(ctx.dbs, ctx.as_of, horizon_days=ctx.settings.daily.horizon_days)
    if not ctx.dry_run:
        with ctx.dbs.ledger.begin() as conn:
            acks.record_reported(conn, ctx.radar, ctx.now)
    return {"items": len(ctx.radar), **severity_counts(ctx.radar)}


def email_digest(ctx: Context) -> dict[str, Any]:
    """The digest to `roles.dpo`, `roles.deputy` in copy for escalated items."""
    if ctx.radar is None:
        compute_radar(ctx)
    frame = ctx.radar
    escalated = acks.due_for_escalation(ctx.dbs, frame, ctx.now)
    roles, daily = ctx.settings.roles, ctx.settings.daily
    cc = list(roles.deputy) if not escalated.empty else []
    email = digest.message(
        frame,
        ctx.as_of,
        sender=ctx.settings.smtp.sender or "dpo-dashboard@localhost",
        to=roles.dpo,
        cc=cc,
        base_url=daily.dashboard_url,
        horizon_days=daily.horizon_days,
        escalated=list(escalated["key"]),
    )
    ctx.digest = email.get_body(("plain",)).get_content()
    counts = {"to": len(roles.dpo), "cc": len(cc), "escalated": len(escalated)}
    if ctx.dry_run:
        return counts
    if not roles.dpo:
        raise StepSkipped("no addresses in [roles] dpo")
    if not ctx.settings.smtp.configured:
        raise StepSkipped("SMTP is not configured ([smtp] host and sender)")
    digest.send(ctx.settings.smtp, email, password=ctx.password)
    if cc:
        with ctx.dbs.ledger.begin() as conn:
            acks.record_escalated(conn, list(escalated["key"]), ctx.now)
    return counts


# --- the dry run's read-only counterparts --------------------------------------------------


def _consent_pending(ctx: Context) -> dict[str, Any]:
    watermark = int(consent_rollup.status(ctx.dbs).get("watermark") or 0)
    query = select(func.count()).where(consent_events.c.id > watermark)
    with ctx.dbs.consent.connect() as conn:
        return {"events_to_apply": int(conn.execute(query).scalar_one())}


def _outbox_pending(ctx: Context) -> dict[str, Any]:
    return {"pending": mailer.outbox_counts(ctx.dbs)["pending"]}


def _jobs_pending(ctx: Context) -> dict[str, Any]:
    return {"interrupted": len(jobs.interrupted_jobs(ctx.dbs))}


def _chain_only(ctx: Context) -> dict[str, Any]:
    report = audit.verify_chain(ctx.dbs)
    if not report.ok:
        raise RuntimeError("the audit chain is broken: " + "; ".join(report.problems[:3]))
    return {"intact": 1}


STEPS: list[tuple[str, Step]] = [
    ("consent_rollup", refresh_consent),
    ("outbox", deliver_outbox),
    ("interrupted_jobs", resume_jobs),
    ("audit_chain", verify_and_anchor),
    ("radar", compute_radar),
    ("digest", email_digest),
]
DRY_STEPS: list[tuple[str, Step]] = [
    ("consent_rollup", _consent_pending),
    ("outbox", _outbox_pending),
    ("interrupted_jobs", _jobs_pending),
    ("audit_chain", _chain_only),
    ("radar", compute_radar),
    ("digest", email_digest),
]


def latest_runs(dbs: Databases, *, limit: int = 30) -> pd.DataFrame:
    """The latest daily runs, newest first. Columns: run_id, as_of (Oslo), started_at,
    finished_at (UTC), outcome, error."""
    query = (
        select(
            daily_runs.c.id.label("run_id"),
            daily_runs.c.as_of,
            daily_runs.c.started_at,
            daily_runs.c.finished_at,
            daily_runs.c.outcome,
            daily_runs.c.error,
        )
        .order_by(daily_runs.c.id.desc())
        .limit(limit)
    )
    with dbs.ledger.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame(
        rows, columns=["run_id", "as_of", "started_at", "finished_at", "outcome", "error"]
    )


def run_steps(dbs: Databases, run_id: int) -> pd.DataFrame:
    """The steps of one run in order. Columns: seq, step, started_at, finished_at (UTC),
    outcome, counts (JSON), error."""
    columns = ["seq", "step", "started_at", "finished_at", "outcome", "counts", "error"]
    query = (
        select(*(daily_run_steps.c[c] for c in columns))
        .where(daily_run_steps.c.run_id == run_id)
        .order_by(daily_run_steps.c.seq)
    )
    with dbs.ledger.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame(rows, columns=columns)
