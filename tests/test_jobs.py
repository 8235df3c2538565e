"""The resumable job machinery (DESIGN.md "Actions"): partial on failure, resume completes,
a double click plans nothing twice, a job under a live lease is not run twice, and one whose
lease expired is interrupted and resumed by whoever resumes it."""

from __future__ import annotations

import threading
from datetime import date, timedelta

from sqlalchemy import delete, func, select, update

from data_access import audit, jobs
from data_access import tables as t
from data_access.clock import utc_now
from data_access.ledger_tables import jobs as jobs_table
from tests import factories as f

AS_OF = date(2026, 11, 29)


def _delete_sessions(conn, ctx):
    n = conn.execute(
        delete(t.usage_sessions).where(t.usage_sessions.c.account_id == ctx.target_id)
    ).rowcount
    return {"usage_sessions": n}


def _delete_consent(conn, ctx):
    n = conn.execute(
        delete(t.consent_events).where(t.consent_events.c.account_id == ctx.target_id)
    ).rowcount
    return {"consent_events": n}


def _plan(account_ids):
    for account_id in account_ids:
        yield jobs.PlannedStep(f"account:{account_id}", "users", "delete_sessions", rule="R14")
        yield jobs.PlannedStep(f"account:{account_id}", "consent", "delete_consent", rule="R14")


def _count(engine, table, account_id):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(table.c.account_id == account_id)).scalar()


def _seed(dbs):
    ids = [f.add_account(dbs) for _ in range(2)]
    for account_id in ids:
        f.add_usage_session(dbs, account_id, on=date(2025, 1, 1))
        f.add_consent_event(
            dbs,
            purpose="usage_statistics",
            action="granted",
            on=date(2025, 1, 1),
            account_id=account_id,
        )
    return ids


def test_failed_store_leaves_job_partial_and_resume_completes(empty_dbs):
    dbs = empty_dbs
    a, b = _seed(dbs)
    calls = {"n": 0}

    def flaky_consent(conn, ctx):
        if ctx.target_id == b and calls["n"] == 0:
            calls["n"] += 1
            raise ConnectionError("consent server went away")
        return _delete_consent(conn, ctx)

    handlers = {"delete_sessions": _delete_sessions, "delete_consent": flaky_consent}
    job_id, created = jobs.create_job(
        dbs, kind="test_deletion", actor="dpo@x.no", as_of=AS_OF, steps=_plan([a, b])
    )
    assert created

    first = jobs.run_job(dbs, job_id, handlers)
    assert first.status == "partial"
    assert first.succeeded == [f"account:{a}"]
    assert "consent failed at delete_consent" in first.failed[f"account:{b}"]
    assert "consent server went away" in first.failed[f"account:{b}"]
    # The users store changed for b, the consent store did not: each store is consistent.
    assert _count(dbs.users, t.usage_sessions, b) == 0
    assert _count(dbs.consent, t.consent_events, b) == 1
    assert jobs.unfinished_jobs(dbs)["job_id"].tolist() == [job_id]

    second = jobs.run_job(dbs, job_id, handlers)
    assert second.status == "done"
    assert sorted(second.succeeded) == sorted([f"account:{a}", f"account:{b}"])
    assert _count(dbs.consent, t.consent_events, b) == 0
    assert jobs.unfinished_jobs(dbs).empty
    assert audit.verify_chain(dbs) == (True, None)
    # One audit entry per done step, none for the failed attempt.
    entries = audit.audit_entries(dbs)
    assert (entries["action"] == "delete_consent").sum() == 2


def test_same_idempotency_key_plans_once(sqlite_dbs):
    dbs = sqlite_dbs
    a, _ = _seed(dbs)
    first = jobs.create_job(
        dbs, kind="k", actor="dpo@x.no", as_of=AS_OF, steps=_plan([a]), idempotency_key="click-1"
    )
    again = jobs.create_job(
        dbs, kind="k", actor="dpo@x.no", as_of=AS_OF, steps=_plan([a]), idempotency_key="click-1"
    )
    assert first == (first[0], True)
    assert again == (first[0], False)
    with dbs.ledger.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs_table)).scalar() == 1


HANDLERS = {"delete_sessions": _delete_sessions, "delete_consent": _delete_consent}
FIRST, SECOND = "dpo@x.no", "other.dpo@x.no"


def _job_row(dbs, job_id) -> dict:
    with dbs.ledger.connect() as conn:
        return dict(
            conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).mappings().one()
        )


def _leave_running(dbs, job_id, *, lease_expires_at, claimed_by=FIRST) -> None:
    """The job as a run killed mid-job leaves it: 'running' under its last lease."""
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(
                status="running",
                claimed_by=claimed_by,
                claimed_at=utc_now(),
                lease_expires_at=lease_expires_at,
                claim_token="0" * 32,
            )
        )


def test_a_job_under_a_live_lease_is_not_run_twice(empty_dbs):
    dbs = empty_dbs
    a, _ = _seed(dbs)
    job_id, _ = jobs.create_job(dbs, kind="k", actor=FIRST, as_of=AS_OF, steps=_plan([a]))
    lease = utc_now() + timedelta(seconds=60)
    _leave_running(dbs, job_id, lease_expires_at=lease)

    outcome = jobs.run_job(dbs, job_id, HANDLERS, actor=SECOND)

    assert outcome.status == "running"
    assert outcome.running_by == FIRST
    assert "the job is running now (claimed by dpo@x.no" in outcome.failed[f"account:{a}"]
    assert _count(dbs.users, t.usage_sessions, a) == 1  # nothing ran
    assert _job_row(dbs, job_id)["claim_token"] == "0" * 32  # the claim is still the first's
    assert jobs.unfinished_jobs(dbs)["status"].tolist() == ["running"]
    assert jobs.interrupted_jobs(dbs).empty
    assert jobs.resume_interrupted_jobs(dbs, SECOND).succeeded == []


def test_a_job_whose_lease_expired_is_interrupted_and_resumed_by_the_resuming_actor(empty_dbs):
    dbs = empty_dbs
    a, b = _seed(dbs)
    job_id, _ = jobs.create_job(dbs, kind="k", actor=FIRST, as_of=AS_OF, steps=_plan([a, b]))
    lease = utc_now() + timedelta(seconds=60)
    _leave_running(dbs, job_id, lease_expires_at=lease)
    after = lease + timedelta(seconds=1)

    assert jobs.interrupted_jobs(dbs, now=lease - timedelta(seconds=1)).empty
    assert jobs.interrupted_jobs(dbs, now=after)["job_id"].tolist() == [job_id]
    assert jobs.unfinished_jobs(dbs, now=after)["status"].tolist() == ["interrupted"]

    outcome = jobs.run_job(dbs, job_id, HANDLERS, actor=SECOND, now=after)

    assert outcome.status == "done"
    assert _count(dbs.users, t.usage_sessions, a) == 0
    row = _job_row(dbs, job_id)
    assert (row["status"], row["claimed_by"], row["lease_expires_at"]) == ("done", SECOND, None)
    entries = audit.audit_entries(dbs)
    steps = entries[entries["action"].isin(["delete_sessions", "delete_consent"])]
    assert len(steps) == 4
    assert set(steps["actor"]) == {SECOND}  # the resuming actor, not the one who planned it


def test_a_job_left_running_without_a_lease_is_interrupted_at_once(empty_dbs):
    """A job left 'running' before leases existed has none: it must not stay stuck."""
    dbs = empty_dbs
    a, _ = _seed(dbs)
    job_id, _ = jobs.create_job(dbs, kind="k", actor=FIRST, as_of=AS_OF, steps=_plan([a]))
    _leave_running(dbs, job_id, lease_expires_at=None, claimed_by=None)
    assert jobs.interrupted_jobs(dbs)["job_id"].tolist() == [job_id]
    assert jobs.run_job(dbs, job_id, HANDLERS, actor=SECOND).status == "done"


def test_a_planned_job_never_claimed_counts_as_interrupted_after_a_lease(sqlite_dbs):
    dbs = sqlite_dbs
    a, _ = _seed(dbs)
    job_id, _ = jobs.create_job(dbs, kind="k", actor=FIRST, as_of=AS_OF, steps=_plan([a]))
    created = _job_row(dbs, job_id)["created_at"]
    lease = timedelta(seconds=dbs.policy.job_lease_seconds)
    assert jobs.interrupted_jobs(dbs, now=created + lease - timedelta(seconds=1)).empty
    listed = jobs.interrupted_jobs(dbs, now=created + lease)
    assert listed[["job_id", "status"]].values.tolist() == [[job_id, "pending"]]


def test_the_lease_is_renewed_per_batch_and_a_lost_claim_stops_the_run(empty_dbs):
    dbs = empty_dbs
    ids = [f.add_account(dbs) for _ in range(4)]
    steps = [jobs.PlannedStep(f"account:{i}", "users", "delete_sessions") for i in ids]
    job_id, _ = jobs.create_job(dbs, kind="k", actor=FIRST, as_of=AS_OF, steps=steps)
    seen = []

    def after_batch(share, _message):
        row = _job_row(dbs, job_id)
        seen.append(row["lease_expires_at"])
        if len(seen) == 2:  # another claim takes over after the second batch
            with dbs.ledger.begin() as conn:
                conn.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == job_id)
                    .values(claim_token="f" * 32, claimed_by=SECOND)
                )

    started = utc_now().replace(microsecond=0)
    outcome = jobs.run_job(
        dbs, job_id, {"delete_sessions": _delete_sessions}, progress=after_batch, batch_targets=1
    )

    lease = timedelta(seconds=dbs.policy.job_lease_seconds)
    assert all(expires >= started + lease for expires in seen)  # renewed from each batch
    assert outcome.status == "running" and outcome.running_by == SECOND
    done = jobs.job_steps_frame(dbs, job_id, status="done")
    assert len(done) == 2  # the run stopped before its third batch
    assert _job_row(dbs, job_id)["status"] == "running"  # the new claim's, untouched


def test_two_claims_at_once_one_wins(empty_dbs):
    dbs = empty_dbs
    a, _ = _seed(dbs)
    job_id, _ = jobs.create_job(dbs, kind="k", actor=FIRST, as_of=AS_OF, steps=_plan([a]))
    barrier = threading.Barrier(2)
    tokens = []

    def claim(actor):
        barrier.wait(timeout=30)
        tokens.append(jobs._claim(dbs, job_id, actor, utc_now()))

    threads = [threading.Thread(target=claim, args=(who,)) for who in (FIRST, SECOND)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [token for token in tokens if token]
    assert len(tokens) == 2 and len(winners) == 1
    assert _job_row(dbs, job_id)["claim_token"] == winners[0]


def test_resume_interrupted_jobs_resumes_every_kind_it_knows(sqlite_dbs):
    dbs = sqlite_dbs
    a, _ = _seed(dbs)
    unknown, _ = jobs.create_job(dbs, kind="k", actor=FIRST, as_of=AS_OF, steps=_plan([a]))
    _leave_running(dbs, unknown, lease_expires_at=utc_now() - timedelta(seconds=1))

    result = jobs.resume_interrupted_jobs(dbs, SECOND)

    assert result.succeeded == []
    assert result.failed == {unknown: "no handlers for jobs of kind 'k'"}
    assert _count(dbs.users, t.usage_sessions, a) == 1


def test_refused_step_is_final_and_skips_the_rest_of_its_target(sqlite_dbs):
    dbs = sqlite_dbs
    a, b = _seed(dbs)

    def refuse_a(conn, ctx):
        if ctx.target_id == a:
            raise jobs.StepRefused("account is active again")
        return _delete_sessions(conn, ctx)

    handlers = {"delete_sessions": refuse_a, "delete_consent": _delete_consent}
    job_id, _ = jobs.create_job(dbs, kind="k", actor="dpo@x.no", as_of=AS_OF, steps=_plan([a, b]))
    outcome = jobs.run_job(dbs, job_id, handlers)
    assert outcome.status == "done"  # nothing left to resume
    assert outcome.failed == {f"account:{a}": "account is active again"}
    assert _count(dbs.consent, t.consent_events, a) == 1  # its later steps never ran
    assert _count(dbs.consent, t.consent_events, b) == 0
