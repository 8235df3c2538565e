"""AppTests of the Deadline radar, the Overview's "Today", the automation banner and the
Retention schedule, on the seeded small demo (tests/seeded.py), as a new DPO would use them:
run the daily command, read the digest in the loopback SMTP server's mailbox, open the
radar, follow an item to its page, settle it, and see it leave the radar and show as
enforced on the retention schedule."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from data_access import daily, retention
from data_access.ledger_tables import audit_log, daily_run_steps, daily_runs
from data_access.settings import DailySettings, Roles, Settings, Smtp
from pages import _ui as ui
from tests import seeded, test_mailer
from tests.conftest import SEED_AS_OF
from tests.test_pages import (  # noqa: F401 - a fixture
    _navigation_as_served,
    assert_ran_cleanly,
    metrics,
    open_app,
    texts,
)

seeded_demo = seeded.seeded_demo
app_env = seeded.app_env
demo_copy = seeded.demo_copy
smtp_server = test_mailer.smtp_server
DPO = seeded.DPO_EMAIL


def test_radar_page_shows_the_radar_with_its_figures(app_env):
    items = daily.radar(app_env.dbs, SEED_AS_OF)
    at = open_app("radar")
    assert_ran_cleanly(at)
    assert [t.value for t in at.title] == ["Deadline radar"]
    counts = daily.severity_counts(items)
    assert metrics(at)["Red items"] == str(counts["red"]) != "0"
    assert metrics(at)["Amber items"] == str(counts["amber"])
    shown = at.dataframe[0].value
    assert list(shown.iloc[:, 2]) == list(items["what"])
    at.multiselect(key="radar_severity").set_value(["amber"])
    at.button(key="FormSubmitter:radar_filters-Apply").click().run(timeout=60)
    shown = at.dataframe[0].value
    assert len(shown) == counts["amber"]


def test_overview_starts_with_today(app_env):
    items = daily.radar(app_env.dbs, SEED_AS_OF)
    at = open_app()
    assert_ran_cleanly(at)
    assert at.subheader[0].value == "Today"
    assert metrics(at)["Red items"] == str(daily.severity_counts(items)["red"])
    first = items["what"].iloc[0]
    assert any(first.split(" ")[0] in m.value for m in at.markdown)


def test_retention_schedule_lists_every_category(app_env):
    at = open_app("retention_schedule")
    assert_ran_cleanly(at)
    plan = at.dataframe[0].value
    assert len(plan) == 8
    assert metrics(at)["Never enforced"] == "8"  # the demo's ledger has run no job yet


def _failed_run(dbs) -> int:
    now = datetime(2026, 11, 29, 5, 0)
    with dbs.ledger.begin() as conn:
        run_id = conn.execute(
            insert(daily_runs).values(
                as_of=SEED_AS_OF,
                actor="daily-run",
                started_at=now,
                finished_at=now,
                outcome="failed",
                error="failed steps: outbox",
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(daily_run_steps).values(
                run_id=run_id,
                seq=2,
                step="outbox",
                started_at=now,
                finished_at=now,
                outcome="failed",
                error="cannot connect",
            )
        )
    return run_id


def test_banner_on_every_page_for_a_dpo_until_acknowledged(demo_copy):
    run_id = _failed_run(demo_copy.dbs)
    for page in (None, "legal_holds", "retention_schedule"):
        at = open_app(page)
        assert f"Daily run {run_id}\\: step “outbox” failed" in texts(at.error)
    viewer = open_app("legal_holds", email=seeded.VIEWER_EMAIL)
    assert "Automation needs attention" not in texts(viewer.error)
    at = open_app("radar")
    key = f"daily_run_failed:{run_id}:outbox"
    at.multiselect(key="radar_ack_choice").set_value([key]).run(timeout=60)
    at.button(key="radar_acknowledge").click().run(timeout=60)
    assert "Acknowledge: 1 succeeded, 0 failed." in texts(at.success)
    assert "Automation needs attention" not in texts(at.error)
    with demo_copy.dbs.ledger.connect() as conn:
        actors = list(
            conn.execute(
                select(audit_log.c.actor).where(audit_log.c.action == "acknowledge_radar_item")
            ).scalars()
        )
    assert actors == ["demo@localhost"]


def test_new_dpo_runs_the_daily_command_reads_the_digest_and_settles_an_item(
    demo_copy, smtp_server
):
    controller, inbox = smtp_server
    settings = Settings(
        smtp=Smtp(host="127.0.0.1", port=controller.port, sender="dpo@plaato.example"),
        roles=Roles(dpo=(DPO,)),
        daily=DailySettings(dashboard_url="http://localhost:8501"),
    )
    dbs = demo_copy.dbs
    result = daily.run(dbs, as_of=SEED_AS_OF, settings=settings)
    assert result.outcome == "ok", result.summary()
    (envelope,) = inbox.messages
    plain = envelope.content.decode()
    assert "customer-service log(s) past retention, due for purge" in plain
    assert "http://localhost:8501/retention" in plain
    # The radar shows the item; its link leads to the Retention page, which settles it.
    at = open_app("radar")
    shown = at.dataframe[0].value
    assert any("customer-service log(s) past retention" in w for w in shown.iloc[:, 2])
    item = daily.radar(dbs, SEED_AS_OF).query("kind == 'support_purge'").iloc[0]
    listed = retention.support_contacts_past_retention(dbs, SEED_AS_OF)
    held = int(listed["on_hold"].sum())
    assert item["count"] == len(listed) - held
    at.switch_page(ui.PAGE_FILES[item["page"]]).run(timeout=60)
    assert [t.value for t in at.title] == ["Retention"]
    at.button(key="purge_contacts_all").click().run(timeout=90)
    at.text_input(key="purge_contacts:typed").set_value(str(len(listed))).run(timeout=60)
    at.button(key="purge_contacts:confirm").click().run(timeout=90)
    assert f"Purge: {len(listed) - held} succeeded, {held} failed." in texts(at.warning)
    items = daily.radar(dbs, SEED_AS_OF)
    assert "support_purge" not in set(items["kind"])
    at = open_app("retention_schedule")
    plan = at.dataframe[0].value
    row = plan[plan.iloc[:, 0] == "Customer-service logs"].iloc[0]
    assert row.iloc[5] == "demo@localhost" and int(row.iloc[6]) == len(listed) - held


def test_r41_a_viewer_sees_the_radar_without_the_acknowledge_action(app_env):
    at = open_app("radar", email=seeded.VIEWER_EMAIL)
    assert_ran_cleanly(at)
    assert at.dataframe and len(at.dataframe[0].value) > 0
    assert "radar_acknowledge" not in {b.key for b in at.button}
    assert "Actions are for the DPO role; you can browse and export." in texts(at.caption)
    dpo = open_app("radar", email=DPO)
    assert "radar_acknowledge" in {b.key for b in dpo.button}
