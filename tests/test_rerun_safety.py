"""Rerun safety of actions (DESIGN.md "Actions"): one click, one action, on the rows the
user saw.

A tiny page built from the helpers in pages/_actions.py approves deletions (RULES.md R13,
R14) on a private copy of the seeded demo: selections are ids; a selection made before the
data changed is refused ("the list changed, select again"); a double click or a rerun that
presents the same idempotency key plans one job; a prepared download survives reruns and
its button does not rerun the page; filters survive moving between pages.
"""

from __future__ import annotations

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from data_access import audit, holds, retention
from data_access.ledger_tables import jobs
from tests import seeded, test_pages
from tests.conftest import SEED_AS_OF
from tests.test_pages import _navigation_as_served, open_app, submit, texts  # noqa: F401

seeded_demo = seeded.seeded_demo
# A private copy of the seeded demo, in demo mode (the demo user acts as DPO).
private_demo = test_pages.private_demo
TABLE = "ready"


def approve_page() -> None:
    """Ready accounts with row selection and an "Approve deletion" button, the way a page
    uses pages/_actions.py."""
    import streamlit as st

    from data_access import cached, retention
    from pages import _actions
    from pages import _ui as ui

    as_of = ui.as_of()
    ready = cached.accounts_nearing_deletion(as_of, 30, ("ready",))
    selected = _actions.selectable_table(ready, key="ready", id_column="account_id")
    if st.button("Approve deletion", key="approve", disabled=not selected):
        # Re-read the list uncached: the selection must still be in it (DESIGN.md "Actions").
        current = retention.accounts_nearing_deletion(
            cached.databases(), as_of, 30, stages=["ready"]
        )
        if not _actions.refuse_if_stale("ready", selected, current, "account_id"):
            result = retention.approve_deletions(
                cached.databases(),
                selected,
                actor=ui.actor(),
                as_of=as_of,
                idempotency_key=_actions.click_key("approve"),
            )
            _actions.next_click("approve")
            _actions.clear_selection("ready")
            cached.clear("accounts_nearing_deletion")
            _actions.report(result, what="Approve deletion", noun="account")
            st.rerun()
    ui.show_flash()


def open_page() -> AppTest:
    at = AppTest.from_function(approve_page, default_timeout=60)
    at.session_state["as_of"] = SEED_AS_OF
    return at.run(timeout=60)


def select_ids(at: AppTest, ids: list[int]) -> None:
    """Select rows by id, as selectable_table keeps them, and rerun (the button shows)."""
    at.session_state["ready:selected"] = ids
    at.run(timeout=60)


def first_ready(dbs) -> int:
    ready = retention.accounts_nearing_deletion(dbs, SEED_AS_OF, 30, stages=["ready"])
    assert len(ready) >= 2, "the seeded demo has accounts ready for deletion"
    return int(ready["account_id"].iloc[0])


def deletion_jobs(dbs, key: str | None = None) -> int:
    query = select(func.count()).select_from(jobs).where(jobs.c.kind == "account_deletion")
    if key is not None:
        query = query.where(jobs.c.idempotency_key == key)
    with dbs.ledger.connect() as conn:
        return int(conn.execute(query).scalar())


def stage(dbs, account_id: int) -> str | None:
    states = retention.account_states(dbs, [account_id], SEED_AS_OF)
    return None if states.empty else str(states["stage"].iloc[0])


def test_r14_a_selection_by_id_approves_that_account(private_demo):
    dbs = private_demo
    account_id = first_ready(dbs)
    at = open_page()

    select_ids(at, [account_id])
    at.button(key="approve").click().run(timeout=60)

    assert "Approve deletion: 1 succeeded, 0 failed." in texts(at.success)
    assert stage(dbs, account_id) is None  # deleted
    assert deletion_jobs(dbs) == 1
    assert account_id not in list(at.dataframe[0].value["account_id"])


def test_r17_a_selection_made_before_the_data_changed_is_refused(private_demo):
    dbs = private_demo
    account_id = first_ready(dbs)
    at = open_page()
    select_ids(at, [account_id])
    # Meanwhile someone places a legal hold on the account: it is no longer ready.
    holds.place_hold(
        dbs,
        account_id=account_id,
        reason="Tvist om faktura",
        case_ref="SAK-2026-7",
        actor=seeded.DPO_EMAIL,
        as_of=SEED_AS_OF,
    )

    at.button(key="approve").click().run(timeout=60)

    assert "The list changed since you selected" in texts(at.warning)
    assert "select again" in texts(at.warning)
    assert deletion_jobs(dbs) == 0
    assert stage(dbs, account_id) == "on_hold"
    assert "ready:selected" not in at.session_state  # the stale selection is cleared


def test_r14_a_double_click_or_rerun_with_the_same_key_deletes_once(private_demo):
    dbs = private_demo
    account_id = first_ready(dbs)
    at = open_page()
    at.session_state["click:approve"] = "approve:one-click"
    select_ids(at, [account_id])

    at.button(key="approve").click().run(timeout=60)
    entries = len(audit.audit_entries(dbs))
    assert audit.audit_entries(dbs, action="account_deletion.planned")["target"].nunique() == 1
    # The second press presents the same key, as a rerun does when the first run was
    # interrupted before it could take a new key for the next click.
    at.session_state["click:approve"] = "approve:one-click"
    select_ids(at, [account_id])
    at.button(key="approve").click().run(timeout=60)

    assert deletion_jobs(dbs, "approve:one-click") == 1
    assert deletion_jobs(dbs) == 1
    assert len(audit.audit_entries(dbs)) == entries  # nothing planned, deleted or audited again
    assert stage(dbs, account_id) is None


def test_r14_each_click_gets_a_new_key_after_its_action_ran(private_demo):
    at = open_page()
    first = at.session_state["click:approve"] if "click:approve" in at.session_state else None
    select_ids(at, [first_ready(private_demo)])

    at.button(key="approve").click().run(timeout=60)

    assert at.session_state["click:approve"] != first
    assert at.session_state["click:approve"].startswith("approve:")


# --- downloads and filters through the dashboard -------------------------------------------


def test_r40_a_download_keeps_the_page_state_and_does_not_rerun(private_demo):
    at = open_app("accounts_nearing_deletion")
    at.multiselect(key="accounts_stages").set_value(["ready"])
    submit(at, "accounts_filters")
    export = "export:accounts-nearing-deletion:accounts"

    at.button(key=f"{export}:prepare").click().run(timeout=60)
    download = at.download_button(key=f"{export}:download")

    assert download.proto.ignore_rerun  # pressing it does not rerun the page
    at.run(timeout=60)  # any later rerun keeps the filter and the prepared file
    assert at.multiselect(key="accounts_stages").value == ["ready"]
    assert at.download_button(key=f"{export}:download").label == download.label
    assert set(at.dataframe[0].value["stage"]) == {"ready"}


def test_filters_survive_moving_to_another_page_and_back(private_demo):
    at = open_app("accounts_nearing_deletion")
    at.multiselect(key="accounts_stages").set_value(["ready"])
    at.number_input(key="accounts_within_days").set_value(60)
    submit(at, "accounts_filters")
    expected = retention.accounts_nearing_deletion(private_demo, SEED_AS_OF, 60, stages=["ready"])

    at.switch_page("pages/overview.py").run(timeout=60)
    at.switch_page("pages/data_subject_requests.py").run(timeout=60)
    at.selectbox(key="requests_type").set_value("erasure")
    submit(at, "request_filters")
    at.switch_page("pages/accounts_nearing_deletion.py").run(timeout=60)

    assert at.multiselect(key="accounts_stages").value == ["ready"]
    assert at.number_input(key="accounts_within_days").value == 60
    assert list(at.dataframe[0].value["account_id"]) == list(expected["account_id"])
    at.switch_page("pages/data_subject_requests.py").run(timeout=60)
    assert at.selectbox(key="requests_type").value == "erasure"
