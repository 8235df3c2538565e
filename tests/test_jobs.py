"""The resumable job machinery (DESIGN.md "Actions"): partial on failure, resume completes,
a double click plans nothing twice, a running job is not run twice."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, func, select, update

from data_access import audit, jobs
from data_access import tables as t
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


def test_a_running_job_is_not_run_twice(sqlite_dbs):
    dbs = sqlite_dbs
    a, _ = _seed(dbs)
    job_id, _ = jobs.create_job(dbs, kind="k", actor="dpo@x.no", as_of=AS_OF, steps=_plan([a]))
    with dbs.ledger.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(status="running"))
    outcome = jobs.run_job(
        dbs, job_id, {"delete_sessions": _delete_sessions, "delete_consent": _delete_consent}
    )
    assert outcome.status == "running"
    assert _count(dbs.users, t.usage_sessions, a) == 1  # nothing ran

    jobs.release_stale_claim(dbs, job_id)
    outcome = jobs.run_job(
        dbs, job_id, {"delete_sessions": _delete_sessions, "delete_consent": _delete_consent}
    )
    assert outcome.status == "done"
    assert _count(dbs.users, t.usage_sessions, a) == 0


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
