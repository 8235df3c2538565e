"""The deadline radar: its figures agree with the pages' own on the same as-of date, it
lists soonest first within the horizon, a broken store shows as a red item, and another
area can add a source (issue "daily run and deadline radar"; RULES.md R2-R5, R8, R13-R17,
R32)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest

from data_access import daily, holds, register, requests, retention
from data_access.daily import deadline_radar as radar_module
from tests import seeded
from tests.conftest import SEED_AS_OF

seeded_demo = seeded.seeded_demo


@pytest.fixture(scope="module")
def demo_radar(seeded_demo):
    return daily.radar(seeded_demo.dbs, SEED_AS_OF)


def _count(frame, kind) -> int:
    return int(frame.loc[frame["kind"] == kind, "count"].sum())


def test_radar_counts_agree_with_the_pages(seeded_demo, demo_radar):
    dbs = seeded_demo.dbs
    stages = retention.stage_counts(dbs, SEED_AS_OF, 30)  # the Accounts page's default window
    assert _count(demo_radar, "notice_due") == stages["notice_due"] > 0
    assert _count(demo_radar, "deletion_ready") == stages["ready"] > 0
    # Held rows are past retention on the Retention page but not due (R17).
    contacts = retention.support_contacts_past_retention(dbs, SEED_AS_OF)
    assert not contacts.attrs["truncated"] and contacts["on_hold"].sum() > 0
    assert _count(demo_radar, "support_purge") + contacts[
        "on_hold"
    ].sum() == retention.count_support_contacts_past_retention(dbs, SEED_AS_OF)
    invoices = retention.invoices_past_retention(dbs, SEED_AS_OF)
    assert (
        _count(demo_radar, "invoice_anonymisation") + invoices["on_hold"].sum()
        == retention.count_invoices_past_retention(dbs, SEED_AS_OF)
        > 0
    )
    past_review = demo_radar[(demo_radar["kind"] == "hold_review") & demo_radar["overdue"]]
    assert len(past_review) == holds.holds_past_review(dbs, SEED_AS_OF) > 0
    findings = register.findings(dbs, SEED_AS_OF)
    assert _count(demo_radar, "register_finding") == int((findings["rule"] == "R32").sum())


def test_r8_overdue_requests_agree_with_the_requests_page(seeded_demo, demo_radar):
    page = requests.open_requests(seeded_demo.dbs, SEED_AS_OF)
    overdue = demo_radar[(demo_radar["kind"] == "request_due") & demo_radar["overdue"]]
    assert sorted(overdue["item"]) == sorted(
        f"request {i}" for i in page.loc[page["overdue"], "request_id"]
    )
    assert (overdue["severity"] == "red").all()
    counts = requests.request_counts(seeded_demo.dbs, SEED_AS_OF)
    assert len(overdue) == counts["overdue"]
    waiting = demo_radar[demo_radar["kind"] == "identity_waiting"]
    in_horizon = page[(page["status"] == "awaiting_identity") & (page["days_left"] <= 14)]
    assert sorted(waiting["item"]) == sorted(f"request {i}" for i in in_horizon["request_id"])


def test_r4_extension_deadline_is_the_base_due_date_of_unextended_requests(seeded_demo, demo_radar):
    page = requests.open_requests(seeded_demo.dbs, SEED_AS_OF)
    ext = demo_radar[demo_radar["kind"] == "extension_deadline"]
    assert not ext.empty
    for row in ext.itertuples():
        request = page[page["request_id"] == int(row.item.split()[1])].iloc[0]
        assert not request["extended"]
        assert row.due_on == request["due_on"] >= SEED_AS_OF
        assert row.link == f"request?id={request['request_id']}"


def test_radar_is_soonest_first_within_the_horizon_and_names_nobody(seeded_demo, demo_radar):
    assert list(demo_radar["due_on"]) == sorted(demo_radar["due_on"])
    assert (demo_radar["due_on"] <= SEED_AS_OF + timedelta(days=14)).all()
    assert set(demo_radar["severity"]) <= {"red", "amber"}
    assert demo_radar["key"].is_unique
    page = requests.open_requests(seeded_demo.dbs, SEED_AS_OF)
    text = " ".join(demo_radar["what"]) + " ".join(demo_radar["item"])
    assert not any(email in text for email in page["subject_email"])
    assert "@" not in text


def test_horizon_setting_limits_what_is_listed(seeded_demo, demo_radar):
    wide = daily.radar(seeded_demo.dbs, SEED_AS_OF, horizon_days=60)
    none = daily.radar(seeded_demo.dbs, SEED_AS_OF, horizon_days=0)
    assert len(none) < len(demo_radar) < len(wide)
    assert (none["due_on"] <= SEED_AS_OF).all()
    assert wide["due_on"].max() > SEED_AS_OF + timedelta(days=14)
    with pytest.raises(ValueError, match="horizon_days"):
        daily.radar(seeded_demo.dbs, SEED_AS_OF, horizon_days=-1)


def test_a_store_that_is_down_is_a_red_item_not_a_gap(seeded_demo):
    broken = dataclasses.replace(seeded_demo.dbs, problems={"support": "server gone"})
    frame = daily.radar(broken, SEED_AS_OF)
    unreadable = frame[frame["kind"] == "unreadable"]
    assert set(unreadable["item"]) == {"request deadlines", "support log deadlines"}
    assert (unreadable["severity"] == "red").all()
    assert "server gone" in " ".join(unreadable["what"])
    assert _count(frame, "deletion_ready") > 0  # the other sources still answer


def test_another_area_adds_a_source(seeded_demo, monkeypatch):
    monkeypatch.setattr(radar_module, "SOURCES", list(radar_module.SOURCES))

    def breach_clocks(dbs, as_of, horizon):
        return [
            daily.Item(
                as_of,
                "red",
                "breach_72h",
                "Breach 3: notify by 14:00",
                "breach 3",
                1,
                "R50",
                "overview",
                "breach:3",
            )
        ]

    daily.add_source(breach_clocks)
    daily.add_source(breach_clocks)  # once only
    frame = daily.radar(seeded_demo.dbs, SEED_AS_OF)
    assert list(frame.loc[frame["kind"] == "breach_72h", "key"]) == ["breach:3"]


def test_nothing_due_on_empty_databases_says_only_the_run_never_ran(sqlite_dbs):
    frame = daily.radar(sqlite_dbs, date(2026, 11, 29))
    assert set(frame["kind"]) <= {"daily_run_missing", "register_finding"}
    assert list(frame.loc[frame["kind"] == "daily_run_missing", "severity"]) == ["amber"]


def test_a_daily_run_that_did_not_run_is_red(sqlite_dbs):
    from datetime import datetime

    from sqlalchemy import insert

    from data_access.ledger_tables import daily_runs

    as_of = date(2026, 11, 29)
    with sqlite_dbs.ledger.begin() as conn:
        conn.execute(
            insert(daily_runs).values(
                as_of=date(2026, 11, 27),
                actor="daily-run",
                outcome="ok",
                started_at=datetime(2026, 11, 27, 5),
                finished_at=datetime(2026, 11, 27, 5, 1),
            )
        )
    frame = daily.radar(sqlite_dbs, as_of)
    missing = frame[frame["kind"] == "daily_run_missing"]
    assert list(zip(missing["due_on"], missing["severity"], missing["what"], strict=True)) == [
        (date(2026, 11, 28), "red", "The daily run did not run since 2026-11-27")
    ]
    assert daily.radar(sqlite_dbs, date(2026, 11, 28)).query("kind == 'daily_run_missing'").empty


def test_r17_a_hold_reaching_its_review_within_the_horizon_is_amber(sqlite_dbs):
    as_of = date(2026, 11, 29)
    hold_id = holds.place_hold(
        sqlite_dbs,
        email="ola@example.no",
        reason="Tvist",
        case_ref="SAK-2",
        review_on=date(2026, 12, 10),
        actor="dpo@plaato.example",
        as_of=date(2026, 6, 1),
    )
    frame = daily.radar(sqlite_dbs, as_of)
    row = frame[frame["kind"] == "hold_review"].iloc[0]
    assert (row["due_on"], row["severity"], row["what"]) == (
        date(2026, 12, 10),
        "amber",
        f"Legal hold {hold_id} (SAK-2) due for review",
    )
    assert daily.radar(sqlite_dbs, as_of, horizon_days=5).query("kind == 'hold_review'").empty
    later = daily.radar(sqlite_dbs, date(2026, 12, 11))
    assert later.loc[later["kind"] == "hold_review", "severity"].tolist() == ["red"]


def test_retention_schedule_overdue_agrees_with_the_radar(seeded_demo, demo_radar):
    from data_access.daily import schedule

    plan = schedule.retention_schedule(seeded_demo.dbs, SEED_AS_OF).set_index("category")
    assert len(plan) == 8
    assert plan.loc["Accounts and members", "overdue"] == _count(demo_radar, "deletion_ready")
    assert plan.loc["Customer-service logs", "overdue"] == _count(demo_radar, "support_purge")
    assert plan.loc["Invoices", "overdue"] == _count(demo_radar, "invoice_anonymisation")
    assert plan.loc["Customer-service logs", "on_hold"] > 0
    assert plan.loc["Invoices", "legal_basis"].startswith("Legal obligation, GDPR art. 6(1)(c)")
    assert plan.loc["Invoices", "next_due_on"] == date(2027, 1, 1)
    assert plan["overdue"].isna().sum() == 5  # no dated rule of their own


def test_r50_a_running_breach_clock_is_on_the_radar_by_id_and_red_once_run_out(sqlite_dbs):
    from datetime import datetime

    from data_access import breaches

    breach_id = breaches.log_breach(
        sqlite_dbs,
        title="Laptop with Kari Nordmann's invoices lost",
        aware_at=datetime(2026, 11, 28, 10, 0),
        reported_by="IT",
        actor="dpo@plaato.example",
        as_of=date(2026, 11, 28),
        now=datetime(2026, 11, 28, 12, 0),
    )

    frame = daily.radar(sqlite_dbs, date(2026, 11, 29))
    clocks = frame[frame["kind"] == "breach_notification"]
    assert clocks[["due_on", "severity", "item", "rule", "page"]].values.tolist() == [
        [date(2026, 12, 1), "amber", f"breach {breach_id}", "R50", "breach"]
    ]
    assert "2026-12-01 11:00 +01:00" in clocks["what"].iloc[0]
    assert clocks["link"].tolist() == [f"breach?id={breach_id}"]
    assert "Kari" not in " ".join(frame["what"]) + " ".join(frame["item"])

    late = daily.radar(sqlite_dbs, date(2026, 12, 1))
    late_clock = late[late["kind"] == "breach_notification"]
    assert late_clock["severity"].tolist() == ["red"]
    assert "have run out" in late_clock["what"].iloc[0]
