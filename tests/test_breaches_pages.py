"""AppTests of the breach pages on a copy of the seeded small demo (as of SEED_AS_OF): the DPO
logs a breach with the short form, assesses it, decides not to notify with reasoning and
closes it, and every step is in the timeline and the audit log; a decision without reasoning
is refused on the page; viewers read without actions; the Overview shows the running
clocks (RULES.md R50-R53)."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from data_access import audit, breaches
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy
app_env = seeded.app_env


@pytest.fixture(autouse=True)
def _navigation_as_served(monkeypatch):
    """Keep every AppTest run going through dashboard.py (see tests/test_pages.py)."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def open_page(page: str, *, email: str | None = None, breach_id: int | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF
    if email:
        seeded.sign_in(at, email, email_verified=True)
    at.run(timeout=90)
    if breach_id is not None:
        at.session_state["breach_id"] = breach_id
    return at.switch_page(f"pages/{page}.py").run(timeout=90)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, texts(at.exception)
    assert not at.error, texts(at.error)


def submit(at: AppTest, form: str, label: str) -> AppTest:
    return at.button(key=f"FormSubmitter:{form}-{label}").click().run(timeout=90)


def edit_key(breach_id: int, version: int, name: str) -> str:
    return f"edit:breach:{breach_id}:{version}:{name}"


def test_r51_log_assess_decide_not_to_notify_with_reasoning_and_close(demo_copy):
    dbs = demo_copy.dbs
    at = open_page("breaches")
    assert_clean(at)
    at.text_input(key="breach_log_title").input("Printout with customer names left on a train")
    at.date_input(key="breach_log_aware_on").set_value(SEED_AS_OF)
    at.time_input(key="breach_log_aware_time").set_value(time(9, 15))
    at.text_input(key="breach_log_reporter").input("Sales, Bergen")
    at = submit(at, "breach_log", "Log breach")
    assert_clean(at)
    logged = breaches.breach_list(dbs, SEED_AS_OF)
    row = logged[logged["title"] == "Printout with customer names left on a train"].iloc[0]
    breach_id = int(row["breach_id"])
    # 09:15 Oslo in November is 08:15 UTC; due 72 hours later.
    assert str(row["aware_at"]) == "2026-11-29 08:15:00"
    assert row["due_oslo"] == "2026-12-02 09:15 +01:00 (CET)"
    assert f"Breach {breach_id} logged" in texts(at.success)

    at = open_page("breach", breach_id=breach_id)
    assert_clean(at)
    shown = texts(at.markdown).replace("\\", "")
    assert "**Notify Datatilsynet by** 2026-12-02 09:15 +01:00 (CET) (R50)" in shown
    # The assessment without reasoning is refused and nothing changes.
    at.radio(key=edit_key(breach_id, 1, "risk")).set_value("none")
    at = submit(at, edit_key(breach_id, 1, "assess"), "Record assessment")
    assert "needs its reasoning" in texts(at.error) + texts(at.warning)
    assert breaches.breach_detail(dbs, breach_id)["risk"] is None

    at.radio(key=edit_key(breach_id, 1, "risk")).set_value("none")
    at.text_area(key=edit_key(breach_id, 1, "risk_reasoning")).input(
        "Five names on a printout, found and returned by the train company within the hour."
    )
    at = submit(at, edit_key(breach_id, 1, "assess"), "Record assessment")
    assert_clean(at)
    assert breaches.breach_detail(dbs, breach_id)["status"] == "assessed"

    at.radio(key=edit_key(breach_id, 2, "notify_choice")).set_value("no")
    at.text_area(key=edit_key(breach_id, 2, "notify_reasoning")).input(
        "Unlikely to result in a risk: returned unread (art. 33(1))."
    )
    at = submit(at, edit_key(breach_id, 2, "notify"), "Record decision")
    assert_clean(at)
    assert breaches.breach_detail(dbs, breach_id)["status"] == "not_notified"

    at.text_area(key=edit_key(breach_id, 3, "note")).input("Clean-desk reminder sent.")
    at.checkbox(key=edit_key(breach_id, 3, "sure")).check()
    at = submit(at, edit_key(breach_id, 3, "close"), "Close breach")
    assert_clean(at)
    closed = breaches.breach_detail(dbs, breach_id)
    assert closed["status"] == "closed"
    assert closed["notify_decision"] is False
    assert closed["notify_reasoning"].startswith("Unlikely to result in a risk")

    timeline = [d.value for d in at.dataframe if "event" in d.value.columns][0]
    assert list(timeline["event"]) == ["logged", "assessed", "notification_decided", "closed"]
    entries = audit.audit_entries(dbs, limit=20)
    mine = entries[entries["target"] == f"breach:{breach_id}"]
    assert list(mine["action"])[::-1] == [
        "log_breach",
        "assess_breach",
        "decide_breach_notification",
        "close_breach",
    ]
    assert set(mine["actor"]) == {"demo@localhost"}
    assert audit.verify_chain(dbs) == (True, None)


def test_breach_page_offers_both_drafts_as_text_and_a_viewer_no_actions(app_env):
    dbs = app_env.dbs
    breach_id = int(breaches.breach_list(dbs, SEED_AS_OF)["breach_id"].iloc[0])
    at = open_page("breach", email=seeded.VIEWER_EMAIL, breach_id=breach_id)
    assert_clean(at)
    code = texts(at.code)
    assert "Melding om brudd på personopplysningssikkerheten" in code
    assert "Notification of a personal data breach" in code
    assert "Informasjon om et brudd på personopplysningssikkerheten" in code
    assert "Actions are for the DPO role" in texts(at.caption)
    assert not [f for f in at.get("form") if "assess" in str(f.proto.form_id)]


def test_r50_overview_lists_the_running_clocks_with_hours_left(app_env):
    at = open_page("overview")
    assert_clean(at)
    running = breaches.radar_items(app_env.dbs, SEED_AS_OF)
    shown = [
        d.value
        for d in at.dataframe
        if "Hours left" in d.value.columns or "hours_left" in d.value.columns
    ]
    assert shown, "no breach table on the Overview"
    table = shown[0]
    assert sorted(table["breach_id"]) == sorted(running["breach_id"])
    assert {m.label: m.value for m in at.metric}["Clocks run out"] == str(
        int(running["overdue"].sum())
    )


def test_breaches_page_lists_the_register_with_clock_badges(app_env):
    at = open_page("breaches")
    assert_clean(at)
    table = [d.value for d in at.dataframe if "clock" in d.value.columns][0]
    expected = breaches.open_breaches(app_env.dbs, SEED_AS_OF)
    assert sorted(table["breach_id"]) == sorted(expected["breach_id"])
    overdue = set(expected.loc[expected["overdue"], "breach_id"])
    assert (
        overdue
        and {int(i) for i in table.loc[table["clock"] == "🔴 overdue", "breach_id"]} == overdue
    )
    assert (
        timedelta(hours=72)
        == breaches.notification_due_at(expected["aware_at"].iloc[0]) - expected["aware_at"].iloc[0]
    )


def test_r51_the_dpo_fills_in_facts_and_the_edit_history_names_them(demo_copy):
    dbs = demo_copy.dbs
    open_one = breaches.open_breaches(dbs, SEED_AS_OF)
    breach_id = int(open_one.loc[open_one["status"] == "open", "breach_id"].iloc[0])
    version = int(breaches.breach_detail(dbs, breach_id)["version"])
    at = open_page("breach", breach_id=breach_id)
    assert_clean(at)
    at.text_area(key=edit_key(breach_id, version, "consequences")).input(
        "Phishing e-mails that quote the invoice amounts."
    )
    at.number_input(key=edit_key(breach_id, version, "records")).set_value(41)
    at.checkbox(key=edit_key(breach_id, version, "records_est")).check()
    at = submit(at, edit_key(breach_id, version, "facts"), "Save facts")
    assert_clean(at)
    b = breaches.breach_detail(dbs, breach_id)
    assert (b["consequences"], b["records_count"], b["records_estimated"]) == (
        "Phishing e-mails that quote the invoice amounts.",
        41,
        True,
    )
    timeline = [d.value for d in at.dataframe if "event" in d.value.columns][0]
    last = timeline.iloc[-1]
    assert last["event"] == "edited"
    assert (
        last["details"]
        == '{"fields":["consequences","records_count","records_estimated"],"links":{}}'
    )


def test_r41_a_what_if_view_of_a_breach_offers_no_actions(app_env):
    breach_id = int(breaches.open_breaches(app_env.dbs, SEED_AS_OF)["breach_id"].iloc[0])
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF - timedelta(days=1)
    at.run(timeout=90)
    at.session_state["breach_id"] = breach_id
    at.switch_page("pages/breach.py").run(timeout=90)
    assert_clean(at)
    assert "Actions are off in the what-if view" in texts(at.caption)
    assert not at.get("form")


def test_r40_downloading_the_draft_in_both_languages_is_audited(demo_copy):
    dbs = demo_copy.dbs
    breach_id = int(breaches.open_breaches(dbs, SEED_AS_OF)["breach_id"].iloc[0])
    version = int(breaches.breach_detail(dbs, breach_id)["version"])
    at = open_page("breach", breach_id=breach_id)
    for language in ("nb", "en"):
        key = f"export:breach-doc:{breach_id}:{version}:draft-{language}"
        at = at.button(key=f"{key}:prepare").click().run(timeout=90)
        assert_clean(at)
        pdf, html = at.session_state[key]
        assert pdf.startswith(b"%PDF")
        heading = "Hvordan bruddet oppsto" if language == "nb" else "How the breach arose"
        assert f"<h2>{heading}</h2>" in html
    exports = audit.audit_entries(dbs, action="export", limit=5)
    assert list(exports["target"][:2]) == ["breach/draft-en", "breach/draft-nb"]
    assert set(exports["actor"][:2]) == {"demo@localhost"}


def test_a_breach_opens_from_the_register(app_env):
    expected = breaches.open_breaches(app_env.dbs, SEED_AS_OF)
    overdue = int(expected.loc[expected["overdue"], "breach_id"].iloc[0])
    at = open_page("breaches")
    at.selectbox(key="breach_open_choice").select(overdue)
    at = at.run(timeout=90)
    at = at.button(key="breach_open").click().run(timeout=90)
    assert_clean(at)
    assert [t.value for t in at.title] == ["Breach"]
    assert at.number_input(key="breach_id").value == overdue
    assert "The 72 hours have passed without a notification" in texts(at.warning)


@pytest.mark.parametrize("link", ["abc", "0", "-1"])
def test_a_link_names_one_breach_or_says_why_it_cannot(app_env, link):
    """/breach?id=3 opens breach 3 (the radar links there); a malformed id is named."""
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF
    at.query_params["id"] = "3"
    at.switch_page("pages/breach.py").run(timeout=90)
    assert not at.exception
    assert at.number_input(key="breach_id").value == 3
    assert not at.error

    bad = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    bad.session_state["as_of"] = SEED_AS_OF
    bad.query_params["id"] = link
    bad.switch_page("pages/breach.py").run(timeout=90)
    assert not bad.exception
    assert f"The link names breach id “{link}”" in texts(bad.error).replace("\\", "")
