"""The nightly run against a real SMTP server on loopback (aiosmtpd): every run and step in
the ledger and the audit log; the digest lists exactly the due items, red first, with links
and no names; escalation to the deputy after 24 hours and acknowledgement stopping it; a
failing step recorded while the rest run; two runs at once, one acts and one reports the
lock; a dry run changes no table (issue "daily run and deadline radar")."""

from __future__ import annotations

import dataclasses
import email
import hashlib
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text, update

from data_access import audit, daily, holds
from data_access.daily import deadline_radar as radar_module
from data_access.daily import nightly as run_module
from data_access.engines import Databases
from data_access.ledger_tables import audit_log, daily_run_lock, daily_run_steps, daily_runs
from data_access.settings import STORES, DailySettings, Roles, Settings, Smtp
from tests import factories, seeded, test_mailer
from tests.conftest import ROOT, SEED_AS_OF

AS_OF = date(2026, 11, 29)
T0 = datetime(2026, 11, 29, 5, 0)  # 06:00 in Oslo
seeded_demo = seeded.seeded_demo
smtp_server = test_mailer.smtp_server  # (controller, inbox) on loopback
DPO = "dpo@plaato.example"
DEPUTY = "deputy@plaato.example"
URL = "https://dpo.plaato.example"


def settings_for(port: int) -> Settings:
    return Settings(
        smtp=Smtp(host="127.0.0.1", port=port, sender="dpo-dashboard@plaato.example"),
        roles=Roles(dpo=(DPO,), deputy=(DEPUTY,)),
        daily=DailySettings(horizon_days=14, dashboard_url=URL),
    )


@pytest.fixture
def no_register(monkeypatch):
    """The test databases' register is empty, so the policy's recipients are R32 findings
    on every run (tested in test_daily_radar); leave them out of the digest's exact list."""
    sources = [s for s in radar_module.SOURCES if s is not radar_module.register_deadlines]
    monkeypatch.setattr(radar_module, "SOURCES", sources)


def seed_due_items(dbs: Databases) -> dict[str, int]:
    """An overdue request (red), one due in 8 days (amber, with its R4 extension deadline),
    one due beyond the horizon (not listed), a hold past review (red), an expired chat log
    (red)."""
    overdue = factories.add_request(dbs, received_on=date(2026, 10, 20), subject_name="Åse Ås")
    soon = factories.add_request(dbs, received_on=date(2026, 11, 5), request_type="erasure")
    factories.add_request(dbs, received_on=date(2026, 11, 20))
    hold = holds.place_hold(
        dbs,
        email="ola@example.no",
        reason="Tvist",
        case_ref="SAK-1",
        review_on=date(2026, 11, 1),
        actor=DPO,
        as_of=date(2026, 6, 1),
    )
    factories.add_contact(dbs, started_on=date(2026, 4, 1), email="per@example.no")
    return {"overdue": overdue, "soon": soon, "hold": hold}


def body(envelope) -> tuple[email.message.Message, str, str]:
    parsed = email.message_from_bytes(envelope.content)
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in parsed.walk()
        if not p.is_multipart()
    }
    return parsed, parts["text/plain"], parts["text/html"]


def test_digest_lists_exactly_the_due_items_red_first_with_links(
    sqlite_dbs, smtp_server, no_register
):
    controller, inbox = smtp_server
    port = controller.port
    ids = seed_due_items(sqlite_dbs)
    result = daily.run(sqlite_dbs, as_of=AS_OF, settings=settings_for(port), now=T0)
    assert result.outcome == "ok", result.summary()
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == [DPO]  # nothing is 24 hours old yet: no deputy
    parsed, plain, html = body(envelope)
    assert parsed["Subject"] == "DPO daily digest 2026-11-29: 3 red, 2 amber"
    lines = [line for line in plain.splitlines() if line[:4] == "2026"]
    assert lines == [
        f"2026-10-02  1 customer-service log(s) past retention, due for purge (R16)  {URL}/retention",
        f"2026-11-01  Legal hold {ids['hold']} (SAK-1) past its review date (R17)  {URL}/legal_holds",
        f"2026-11-20  Request {ids['overdue']} (access) overdue (R2)  {URL}/request?id={ids['overdue']}",
        f"2026-12-07  Request {ids['soon']}: last day to notify an extension (R4)  {URL}/request?id={ids['soon']}",
        f"2026-12-07  Request {ids['soon']} (erasure) due (R2)  {URL}/request?id={ids['soon']}",
    ]
    assert plain.index("Red:") < plain.index("Amber:")
    assert f'href="{URL}/request?id={ids["overdue"]}"' in html
    for personal in ("Åse", "kari@example.no", "per@example.no", "ola@example.no"):
        assert personal not in plain and personal not in html


def test_run_and_steps_are_recorded_and_audited(empty_dbs, smtp_server):
    sqlite_dbs = empty_dbs  # every backend: the run's own queries and the radar's
    port = smtp_server[0].port
    seed_due_items(sqlite_dbs)
    result = daily.run(sqlite_dbs, as_of=AS_OF, settings=settings_for(port), now=T0)
    assert result.outcome == "ok", result.summary()
    assert {"request_due", "hold_review", "support_purge"} <= set(result.radar["kind"])
    with sqlite_dbs.ledger.connect() as conn:
        run = conn.execute(select(daily_runs)).mappings().one()
        steps = (
            conn.execute(select(daily_run_steps).order_by(daily_run_steps.c.seq)).mappings().all()
        )
        actions = list(
            conn.execute(
                select(audit_log.c.action)
                .where(audit_log.c.actor == "daily-run")
                .order_by(audit_log.c.id)
            ).scalars()
        )
    assert (run["id"], run["outcome"], run["as_of"]) == (result.run_id, "ok", AS_OF)
    assert run["finished_at"] >= run["started_at"]
    assert [s["step"] for s in steps] == [
        "consent_rollup",
        "outbox",
        "interrupted_jobs",
        "audit_chain",
        "radar",
        "digest",
    ]
    assert all(s["outcome"] == "ok" and s["finished_at"] for s in steps)
    assert actions == ["daily_run_started", *["daily_run_step"] * 6, "daily_run_finished"]
    assert audit.verify_chain(sqlite_dbs) == (True, None)
    assert audit.latest_anchor(sqlite_dbs) is not None  # the audit_chain step anchored it


def test_a_failing_step_is_recorded_and_the_rest_still_run(sqlite_dbs, smtp_server):
    controller, inbox = smtp_server
    port = controller.port
    broken = dataclasses.replace(sqlite_dbs, problems={"consent": "the server is gone"})
    result = daily.run(broken, as_of=AS_OF, settings=settings_for(port), now=T0)
    assert result.outcome == "failed"
    assert result.failed_steps == ["consent_rollup"]
    assert [s.outcome for s in result.steps] == ["ok"] * 0 + [
        "failed",
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
    ]
    assert "the server is gone" in result.steps[0].error
    assert len(inbox.messages) == 1  # the digest still went out, naming the failed step
    _, plain, _ = body(inbox.messages[0])
    assert f"Daily run {result.run_id}: step “consent_rollup” failed" in plain
    with sqlite_dbs.ledger.connect() as conn:
        run = conn.execute(select(daily_runs)).mappings().one()
    assert run["outcome"] == "failed" and run["error"] == "failed steps: consent_rollup"
    # the next radar shows the failed step (the alert on every page for a DPO)
    frame = daily.radar(sqlite_dbs, AS_OF)
    assert list(frame.loc[frame["kind"] == "daily_run_failed", "what"]) == [
        f"Daily run {result.run_id}: step “consent_rollup” failed"
    ]


def test_escalation_after_24_hours_and_acknowledgement_stops_it(
    sqlite_dbs, smtp_server, no_register
):
    controller, inbox = smtp_server
    port = controller.port
    seed_due_items(sqlite_dbs)
    settings = settings_for(port)
    daily.run(sqlite_dbs, as_of=AS_OF, settings=settings, now=T0)
    daily.run(
        sqlite_dbs, as_of=AS_OF + timedelta(1), settings=settings, now=T0 + timedelta(hours=23)
    )
    assert [m.rcpt_tos for m in inbox.messages] == [[DPO], [DPO]]
    second = daily.run(
        sqlite_dbs, as_of=AS_OF + timedelta(1), settings=settings, now=T0 + timedelta(hours=25)
    )
    assert inbox.messages[-1].rcpt_tos == [DPO, DEPUTY]
    parsed, plain, _ = body(inbox.messages[-1])
    assert parsed["Subject"].startswith("ESCALATED (3) ")
    assert plain.count("ESCALATED ") == 3
    red = second.radar[second.radar["severity"] == "red"]
    result = daily.acknowledge(sqlite_dbs, list(red["key"]), actor=DPO)
    assert result.failed == {} and len(result.succeeded) == 3
    again = daily.acknowledge(sqlite_dbs, red["key"].iloc[0], actor=DPO)
    assert "already acknowledged by dpo@plaato.example" in again.failed[red["key"].iloc[0]]
    daily.run(
        sqlite_dbs, as_of=AS_OF + timedelta(2), settings=settings, now=T0 + timedelta(hours=49)
    )
    assert inbox.messages[-1].rcpt_tos == [DPO]
    with sqlite_dbs.ledger.connect() as conn:
        acks = conn.execute(
            select(func.count()).where(
                audit_log.c.action == "acknowledge_radar_item", audit_log.c.actor == DPO
            )
        ).scalar_one()
    assert acks == 3


def test_two_runs_at_once_one_acts_one_reports_the_lock(empty_dbs, monkeypatch):
    entered, release = threading.Event(), threading.Event()

    def blocking_step(ctx):
        entered.set()
        assert release.wait(30)
        return {"waited": 1}

    monkeypatch.setattr(run_module, "STEPS", [("blocking", blocking_step)])
    first: list = []
    thread = threading.Thread(target=lambda: first.append(daily.run(empty_dbs, as_of=AS_OF)))
    thread.start()
    try:
        assert entered.wait(30)
        second = daily.run(empty_dbs, as_of=AS_OF)
    finally:
        release.set()
        thread.join(30)
    assert second.outcome == "locked"
    assert second.locked_by.startswith(f"run {first[0].run_id} (")
    assert first[0].outcome == "ok"
    with empty_dbs.ledger.connect() as conn:
        assert conn.execute(select(func.count()).select_from(daily_runs)).scalar_one() == 1
    assert daily.run(empty_dbs, as_of=AS_OF).outcome == "ok"  # the lock was released


def test_a_dead_runs_expired_lock_is_taken_over(sqlite_dbs, monkeypatch):
    monkeypatch.setattr(run_module, "STEPS", [])
    with sqlite_dbs.ledger.begin() as conn:
        conn.execute(
            update(daily_run_lock).values(holder="dead:1", run_id=99, expires_at=T0 - timedelta(1))
        )
    assert daily.run(sqlite_dbs, as_of=AS_OF, now=T0).outcome == "ok"
    with sqlite_dbs.ledger.begin() as conn:
        conn.execute(update(daily_run_lock).values(holder="live:1", expires_at=T0 + timedelta(1)))
    assert daily.run(sqlite_dbs, as_of=AS_OF, now=T0).outcome == "locked"


def checksums(dbs: Databases) -> dict[str, str]:
    """A SHA-256 per table of every store, over its rows in primary-key order."""
    sums = {}
    for store in STORES:
        engine = dbs.engine(store)
        with engine.connect() as conn:
            for name in inspect(engine).get_table_names():
                rows = conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1')).all()
                sums[f"{store}.{name}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return sums


def test_dry_run_changes_no_table_and_sends_nothing(seeded_demo, tmp_path, smtp_server):
    controller, inbox = smtp_server
    port = controller.port
    folder = seeded.copy_demo(seeded_demo.folder, tmp_path / "demo")
    urls = {s: f"sqlite:///{folder / f'{s}.sqlite'}" for s in STORES}
    anchors = tmp_path / "anchors.log"
    dbs = Databases.from_urls(**urls, pseudonym_key=seeded.PSEUDONYM_KEY, anchors_file=anchors)
    try:
        factories.add_request(dbs, received_on=date(2026, 10, 20))
        before = checksums(dbs)
        result = daily.run(dbs, as_of=SEED_AS_OF, dry_run=True, settings=settings_for(port))
        assert checksums(dbs) == before
        assert len(before) > 20
    finally:
        dbs.dispose()
    assert result.outcome == "dry_run" and result.run_id is None
    assert inbox.messages == [] and not anchors.exists()
    assert "Red: overdue" in result.digest
    assert [s.step for s in result.steps] == [s for s, _ in run_module.STEPS]


def test_command_line_dry_run_prints_the_digest(seeded_demo, tmp_path):
    import os
    import subprocess
    import sys

    folder = seeded.copy_demo(seeded_demo.folder, (tmp_path / "demo").resolve())
    config = seeded.write_config(tmp_path, folder)
    env = {**os.environ, "DPO_CONFIG": str(config), "DPO_PSEUDONYM_KEY": seeded.PSEUDONYM_KEY}
    for store in STORES:
        env.pop(f"DPO_{store.upper()}_URL", None)
    command = [sys.executable, "-m", "data_access.daily", "--as-of", "2026-11-29", "--dry-run"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=str(ROOT)
    )
    assert done.returncode == 0, done.stderr
    assert "Daily run (dry run) as of 2026-11-29: dry_run" in done.stdout
    assert "--- digest (not sent) ---" in done.stdout
    bad = subprocess.run(
        [*command[:3], "--as-of", "29.11.2026"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "not a date YYYY-MM-DD" in bad.stderr


def test_an_interrupted_job_is_resumed_by_the_daily_run_and_shows_on_the_schedule(sqlite_dbs):
    from data_access import jobs
    from data_access.daily import schedule
    from data_access.ledger_tables import jobs as jobs_table

    contact = factories.add_contact(sqlite_dbs, started_on=date(2026, 4, 1))
    step = jobs.PlannedStep(f"contact:{contact}", "support", "purge_support_contact", None, "R16")
    job_id, _ = jobs.create_job(
        sqlite_dbs, kind="support_purge", actor=DPO, as_of=AS_OF, steps=[step]
    )
    with sqlite_dbs.ledger.begin() as conn:  # planned, and its process died before it ran
        conn.execute(update(jobs_table).values(created_at=datetime(2026, 11, 28, 5, 0)))
    alerts = daily.automation_alerts(sqlite_dbs, AS_OF)
    assert list(alerts["key"]) == [f"job:{job_id}:pending"]
    result = daily.run(sqlite_dbs, as_of=AS_OF)
    resumed = next(s for s in result.steps if s.step == "interrupted_jobs")
    assert (resumed.outcome, resumed.counts) == ("ok", {"resumed": 1})
    with sqlite_dbs.ledger.connect() as conn:
        purged_by = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "purge_support_contact")
        ).scalar_one()
    assert purged_by == "daily-run"
    assert daily.automation_alerts(sqlite_dbs, AS_OF).empty
    plan = schedule.retention_schedule(sqlite_dbs, AS_OF).set_index("category")
    logs = plan.loc["Customer-service logs"]
    assert (logs["last_enforced_by"], logs["last_rows"], logs["last_job_id"]) == (
        "daily-run",
        1,
        job_id,
    )
    assert logs["overdue"] == 0


def test_command_line_dry_run_refuses_a_ledger_that_does_not_exist(tmp_path):
    import os
    import subprocess
    import sys

    config = seeded.write_config(tmp_path, tmp_path / "empty")
    env = {**os.environ, "DPO_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "data_access.daily", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT),
    )
    assert done.returncode == 3
    assert "does not exist yet: run once without --dry-run" in done.stderr
    assert not (tmp_path / "empty" / "ledger.sqlite").exists()
