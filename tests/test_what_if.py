"""Actions happen today: the sidebar's "as of" at another day is a read-only what-if view.

A DPO who sets "as of" to a later day must not be able to delete accounts whose notice
period has not ended, nor backdate a notice by setting an earlier day: at any day but today
(Europe/Oslo) no page offers an action, a banner says why, and "Back to today" returns.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from data_access import audit, retention
from tests import seeded
from tests.conftest import SEED_AS_OF
from tests.test_pages import PAGES, _navigation_as_served, texts  # noqa: F401
from tests.test_retention_pages import click, ids_in_stage, open_page
from tests.test_signin import buttons

seeded_demo = seeded.seeded_demo
app_env = seeded.app_env
demo_copy = seeded.demo_copy

WHAT_IF = "What-if view as of"


@pytest.mark.parametrize("days", [-45, 40])
@pytest.mark.parametrize("page", list(PAGES))
def test_r41_a_dpo_at_another_as_of_date_sees_no_action_on_any_page(app_env, page, days):
    at = open_page(page, as_of=SEED_AS_OF + timedelta(days=days))

    assert not at.exception, texts(at.exception)
    assert WHAT_IF in texts(at.warning)
    assert buttons(at) == {"as_of_today"}


def test_r41_on_todays_view_a_dpo_has_actions_and_no_banner(app_env):
    at = open_page("accounts_nearing_deletion")

    assert WHAT_IF not in texts(at.warning)
    assert "accounts_send_notice" in buttons(at)
    assert "as_of_today" not in buttons(at)


def test_r13_a_deletion_before_the_notice_period_ends_cannot_be_reached_by_moving_as_of(
    demo_copy,
):
    dbs = demo_copy.dbs
    due = ids_in_stage(dbs, SEED_AS_OF, "notice_due", 2)
    retention.send_deletion_notices(dbs, due, actor="dpo@plaato.example", as_of=SEED_AS_OF)
    ready_on = max(retention.account_states(dbs, due, SEED_AS_OF)["deletable_on"])
    deletions = len(audit.audit_entries(dbs, action="delete_account"))

    at = open_page("accounts_nearing_deletion", as_of=ready_on)

    # At that day the accounts show as ready, but nothing can be selected or approved.
    assert WHAT_IF in texts(at.warning)
    assert "accounts_approve" not in buttons(at)
    assert not any(str(df.key).startswith("accounts_table#") for df in at.dataframe)
    assert len(audit.audit_entries(dbs, action="delete_account")) == deletions


def test_back_to_today_ends_the_what_if_view_and_brings_the_actions_back(app_env):
    at = open_page("accounts_nearing_deletion", as_of=SEED_AS_OF + timedelta(days=40))

    click(at, "as_of_today")

    assert at.session_state["as_of"] == SEED_AS_OF
    assert WHAT_IF not in texts(at.warning)
    assert "accounts_send_notice" in buttons(at)


@pytest.mark.parametrize("wrong", [date(1900, 1, 1), date(9999, 12, 31), date(2000, 1, 1)])
def test_an_as_of_out_of_range_is_refused_in_words_and_the_last_valid_day_stays(app_env, wrong):
    at = open_page("overview", as_of=SEED_AS_OF - timedelta(days=10))
    at.sidebar.date_input(key="as_of").set_value(wrong).run(timeout=60)

    assert not at.exception
    message = texts(at.sidebar.error)
    assert f"“As of” {wrong.isoformat()} is out of range" in message
    valid = SEED_AS_OF - timedelta(days=10)
    assert f"Showing {valid.isoformat()} instead." in message
    assert at.sidebar.date_input(key="as_of").value == valid
    assert f"{WHAT_IF} {valid.isoformat()}" in texts(at.warning)
