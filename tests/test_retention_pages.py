"""AppTests of the retention actions as a new DPO would use them, on a private copy of the
seeded small demo (tests/seeded.py) so the deletions do not change the shared one: send
notices, travel "as of" forward, approve a deletion through the confirmation dialog, read
the results; purge and anonymise; place, review and release legal holds; resume a job that
did not finish; deliver the outbox. A viewer sees no action (RULES.md R13-R17, R41).

Rows are selected the way the browser reports them: positions in the table as shown on the
previous run, written to the table's selection state.
"""

from __future__ import annotations

import socket
from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update
from streamlit.testing.v1 import AppTest

from data_access import audit, cached, holds, jobs, mailer, retention
from data_access import tables as t
from data_access.clock import utc_now
from data_access.ledger_tables import notices, outbox
from data_access.retention import deletion
from pages import _ui as ui
from tests import interrupted_run, seeded
from tests.conftest import ROOT, SEED_AS_OF
from tests.test_pages import _navigation_as_served, texts  # noqa: F401

seeded_demo = seeded.seeded_demo
NOTICE_DAYS = 30
FIRST_DPO = "first.dpo@plaato.example"


demo_copy = seeded.demo_copy


def open_page(page: str, *, as_of: date = SEED_AS_OF, email: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = as_of
    if email:
        seeded.sign_in(at, email, email_verified=True)
    at.run(timeout=90)
    at.switch_page(f"pages/{page}.py").run(timeout=90)
    return at


def run(at: AppTest) -> AppTest:
    at.run(timeout=90)
    assert not at.exception, texts(at.exception)
    return at


def select_rows(at: AppTest, key: str, id_column: str, ids) -> list[int]:
    """Select the rows with these ids in the table `key` as shown now; returns the ids
    found, in the table's order."""
    grid = selectable(at, key)
    table = grid.value
    wanted = {int(i) for i in ids}
    positions = [n for n, value in enumerate(table[id_column]) if int(value) in wanted]
    at.session_state[grid.key] = {"selection": {"rows": positions, "columns": [], "cells": []}}
    run(at)
    return [int(table[id_column][n]) for n in positions]


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return run(at)


def selectable(at: AppTest, key: str):
    """The selectable table `key` on screen (its widget key is `key#<generation>`)."""
    return next(df for df in at.dataframe if df.key and df.key.split("#")[0] == key)


def table(at: AppTest, key: str):
    """A selectable table, by its key."""
    return selectable(at, key).value


def table_with(at: AppTest, *columns: str):
    """The first table shown with these columns (tables without selection have no key)."""
    return next(df.value for df in at.dataframe if set(columns) <= set(df.value.columns))


def travel(at: AppTest, day: date) -> AppTest:
    at.sidebar.date_input(key="as_of").set_value(day)
    return run(at)


def count(engine, table_, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table_).where(*where)).scalar_one()


def ids_in_stage(dbs, as_of: date, stage: str, n: int) -> list[int]:
    frame = retention.accounts_nearing_deletion(dbs, as_of, 30, stages=[stage])
    return [int(i) for i in frame["account_id"].head(n)]


def deliver_notices(dbs, account_ids: list[int]) -> None:
    """Mark these accounts' notice messages delivered, as the mailer does after SMTP."""
    with dbs.ledger.begin() as conn:
        outbox_ids = select(notices.c.outbox_id).where(notices.c.account_id.in_(account_ids))
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(outbox_ids))
            .values(status="sent", sent_at=utc_now())
        )


# --- the story: notice, 30 days, deletion ----------------------------------------------------


def test_r13_r14_send_notices_travel_forward_and_approve_a_deletion(demo_copy, monkeypatch):
    dbs = demo_copy.dbs
    due = ids_in_stage(dbs, SEED_AS_OF, "notice_due", 2)
    outbox_before = mailer.outbox_counts(dbs)["pending"]
    at = open_page("accounts_nearing_deletion")

    chosen = select_rows(at, "accounts_table", "account_id", due)
    assert "2 selected: 2 notice due, 0 ready to delete." in texts(at.caption)
    click(at, "accounts_send_notice")

    assert "Send notice: 2 succeeded, 0 failed." in texts(at.success)
    assert mailer.outbox_counts(dbs)["pending"] == outbox_before + 2
    states = retention.account_states(dbs, chosen, SEED_AS_OF)
    assert set(states["notice_sent_on"]) == {SEED_AS_OF}
    assert set(states["stage"]) == {"notified"}

    deliver_notices(dbs, chosen)  # the outbox is delivered (SMTP: tests/test_mailer.py)
    ready_on = max(states["deletable_on"])
    seeded.pin_today(monkeypatch, ready_on)  # time passes: the notice period ends
    travel(at, ready_on)
    shown = table(at, "accounts_table")
    assert set(shown.loc[shown["account_id"].isin(chosen), "stage"]) == {"ready"}
    with dbs.users.connect() as conn:
        invoice_ids = sorted(
            conn.execute(select(t.invoices.c.id).where(t.invoices.c.account_id.in_(chosen)))
            .scalars()
            .all()
        )
    select_rows(at, "accounts_table", "account_id", chosen)
    click(at, "accounts_approve")

    # The confirmation: the plan per database, and what becomes of the invoices (R15).
    plan = table_with(at, "store", "data", "action", "kept_until")
    assert list(plan["store"].unique()) == ["users", "consent", "support", "ledger"]
    accounts_row = plan[plan["data"] == "accounts (name, e-mail, company)"].iloc[0]
    assert (accounts_row["action"], int(accounts_row["rows"])) == ("delete", 2)
    assert "2 account(s)" in texts(at.markdown)
    if invoice_ids:
        shown = sum(int(n) for n in plan.loc[plan["data"].str.startswith("invoices"), "rows"])
        assert shown == len(invoice_ids)
        assert "invoice(s)" in texts(at.info)
    assert at.button(key="approve_deletion:confirm").label == "Delete 2 account(s)"
    click(at, "approve_deletion:confirm")

    assert "Approve deletion: 2 succeeded, 0 failed." in texts(at.success)
    results = table_with(at, "account_id", "outcome", "reason")
    assert sorted(results["account_id"]) == sorted(chosen)
    assert set(results["outcome"]) == {"succeeded"}
    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(chosen)) == 0
    assert not set(chosen) & set(table(at, "accounts_table")["account_id"])
    # The invoices are kept, detached from the deleted accounts (R15).
    with dbs.users.connect() as conn:
        kept = conn.execute(
            select(t.invoices.c.id, t.invoices.c.account_id).where(
                t.invoices.c.id.in_(invoice_ids or [-1])
            )
        ).all()
    assert sorted(i for i, _ in kept) == invoice_ids
    assert {a for _, a in kept} <= {None}
    # Subject lookup no longer finds an account for the person.
    email = states.iloc[0]["email"]
    at.switch_page("pages/subject_lookup.py")
    run(at)
    at.text_input(key="lookup_email").set_value(email)
    at.button(key="FormSubmitter:lookup_form-Look up").click()
    run(at)
    assert "users.accounts" not in [s.value for s in at.subheader]


def test_r14_more_than_fifty_accounts_need_the_count_typed(demo_copy, monkeypatch):
    dbs = demo_copy.dbs
    due = ids_in_stage(dbs, SEED_AS_OF, "notice_due", 55)
    assert len(due) == 55, "the seeded demo has enough accounts whose notice is due"
    retention.send_deletion_notices(dbs, due, actor="dpo@plaato.example", as_of=SEED_AS_OF)
    deliver_notices(dbs, due)
    later = SEED_AS_OF + timedelta(days=NOTICE_DAYS)
    ready = set(ids_in_stage(dbs, later, "ready", 10_000)) & set(due)
    seeded.pin_today(monkeypatch, later)
    at = open_page("accounts_nearing_deletion", as_of=later)

    chosen = select_rows(at, "accounts_table", "account_id", ready)
    click(at, "accounts_approve")

    confirm = at.button(key="approve_deletion:confirm")
    assert confirm.disabled
    at.text_input(key="approve_deletion:typed").set_value("50")
    run(at)
    assert at.button(key="approve_deletion:confirm").disabled
    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(chosen)) == len(chosen)

    at.text_input(key="approve_deletion:typed").set_value(str(len(chosen)))
    run(at)
    click(at, "approve_deletion:confirm")

    assert f"Approve deletion: {len(chosen)} succeeded, 0 failed." in texts(at.success)
    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(chosen)) == 0


def test_r14_a_stale_selection_is_refused_on_the_page(demo_copy):
    dbs = demo_copy.dbs
    first, second = ids_in_stage(dbs, SEED_AS_OF, "ready", 2)
    at = open_page("accounts_nearing_deletion")
    select_rows(at, "accounts_table", "account_id", [first, second])
    # Someone else deletes one of them meanwhile.
    retention.approve_deletions(dbs, [first], actor="other@plaato.example", as_of=SEED_AS_OF)
    cached.clear()

    click(at, "accounts_approve")

    # The grid's rows changed: the selection is dropped before the click can act on it.
    assert "The list changed, so your selection was cleared; select again." in texts(at.info)
    assert not [b for b in at.button if b.key == "approve_deletion:confirm"]
    assert count(dbs.users, t.accounts, t.accounts.c.id == second) == 1


def test_r14_a_partial_job_shows_the_failed_step_and_resume_finishes_it(demo_copy, monkeypatch):
    dbs = demo_copy.dbs
    ready = ids_in_stage(dbs, SEED_AS_OF, "ready", 2)

    def support_down(conn, ctx):
        raise ConnectionError("support server went away")

    with monkeypatch.context() as patch:
        patch.setitem(deletion.HANDLERS, "delete_account_contacts", support_down)
        partial = retention.approve_deletions(
            dbs, ready, actor="dpo@plaato.example", as_of=SEED_AS_OF
        )
    assert partial.succeeded == []
    at = open_page("accounts_nearing_deletion")

    assert "1 account deletion(s) did not finish" in texts(at.warning)
    failed = table_with(at, "target", "store", "step", "error")
    assert sorted(failed["target"]) == sorted(f"account:{a}" for a in ready)
    assert set(failed["store"]) == {"support"}
    assert "ConnectionError: support server went away" in failed["error"].iloc[0]

    click(at, f"resume_job:{partial.job_id}")

    assert f"Resume job {partial.job_id}: 2 succeeded, 0 failed." in texts(at.success)
    assert "did not finish" not in texts(at.warning)
    assert jobs.unfinished_jobs(dbs).empty
    assert count(dbs.support, t.contacts, t.contacts.c.account_id.in_(ready)) == 0


def set_lease(dbs, job_id: int, expires_at) -> None:
    """Move the job's lease and forget the page's cached list of unfinished jobs."""
    interrupted_run.set_lease(dbs, job_id, expires_at)
    cached.clear()


def resume_buttons(at: AppTest) -> set[str]:
    return {b.key for b in at.button if (b.key or "").startswith("resume_job:")}


def test_r14_a_killed_deletion_shows_interrupted_and_a_dpo_resumes_it(demo_copy, tmp_path):
    dbs = demo_copy.dbs
    ready = ids_in_stage(dbs, SEED_AS_OF, "ready", 6)
    job_id = interrupted_run.killed_mid_job(
        dbs, tmp_path, "approve_deletions", batch_targets=2, account_ids=ready,
        actor=FIRST_DPO, as_of=SEED_AS_OF,
    )  # fmt: skip
    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(ready)) == 4  # mid-job

    set_lease(dbs, job_id, utc_now() + timedelta(minutes=5))  # the run still alive
    at = open_page("accounts_nearing_deletion", email=seeded.DPO_EMAIL)
    assert f"**Job {job_id}** (running)" in texts(at.markdown)
    assert "This job is running now" in texts(at.caption)
    assert resume_buttons(at) == set()

    set_lease(dbs, job_id, utc_now() - timedelta(seconds=1))  # its process is gone
    viewer = open_page("accounts_nearing_deletion", email=seeded.VIEWER_EMAIL)
    assert f"**Job {job_id}** (interrupted)" in texts(viewer.markdown)
    assert resume_buttons(viewer) == set()  # resuming is for DPOs
    at = open_page("accounts_nearing_deletion", email=seeded.DPO_EMAIL)
    shown = ui.escape_markdown(f"Interrupted: the run by {FIRST_DPO} stopped mid-job")
    assert shown in texts(at.caption)
    assert resume_buttons(at) == {f"resume_job:{job_id}"}

    click(at, f"resume_job:{job_id}")

    assert f"Resume job {job_id}: 6 succeeded, 0 failed." in texts(at.success)
    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(ready)) == 0
    assert count(dbs.support, t.contacts, t.contacts.c.account_id.in_(ready)) == 0
    assert jobs.unfinished_jobs(dbs).empty
    entries = audit.audit_entries(dbs, action="delete_account_contacts")
    entries = entries[entries["target"].isin([f"account:{a}" for a in ready])]
    assert sorted(entries["target"]) == sorted(f"account:{a}" for a in ready)  # once each
    assert set(entries["actor"]) == {seeded.DPO_EMAIL}  # the DPO who resumed it


def test_r13_deliver_outbox_when_smtp_is_configured(demo_copy, monkeypatch, tmp_path):
    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(envelope)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsender = "privacy@plaato.example"\n'
        config = seeded.write_config(tmp_path, demo_copy.folder, smtp)
        monkeypatch.setattr(cached, "CONFIG_PATH", config)
        dbs = demo_copy.dbs
        due = ids_in_stage(dbs, SEED_AS_OF, "notice_due", 3)
        retention.send_deletion_notices(dbs, due, actor="dpo@plaato.example", as_of=SEED_AS_OF)
        pending = mailer.outbox_counts(dbs)["pending"]
        at = open_page("accounts_nearing_deletion")
        assert {m.label: m.value for m in at.metric}["Outbox pending"] == str(pending)

        click(at, "accounts_deliver")
    finally:
        controller.stop()

    assert f"Deliver outbox: {pending} sent, 0 failed." in texts(at.success)
    assert len(received) == pending
    assert mailer.outbox_counts(dbs)["pending"] == 0


# --- purge and anonymise ---------------------------------------------------------------------


def test_r16_purge_all_shown_keeps_the_contacts_under_a_hold(demo_copy):
    dbs = demo_copy.dbs
    listed = retention.support_contacts_past_retention(dbs, SEED_AS_OF)
    held = int(listed["on_hold"].sum())
    at = open_page("retention")

    click(at, "purge_contacts_all")
    assert at.button(key="purge_contacts:confirm").disabled  # more than 50: type the count
    at.text_input(key="purge_contacts:typed").set_value(str(len(listed)))
    run(at)
    click(at, "purge_contacts:confirm")

    assert f"Purge: {len(listed) - held} succeeded, {held} failed." in texts(at.warning)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Support contacts past retention"] == str(held)
    assert (
        count(dbs.support, t.contacts, t.contacts.c.id.in_(listed["contact_id"].tolist())) == held
    )


def test_r15_anonymise_selected_invoices(demo_copy):
    dbs = demo_copy.dbs
    listed = retention.invoices_past_retention(dbs, SEED_AS_OF)
    chosen_ids = [int(i) for i in listed.loc[~listed["on_hold"], "invoice_id"].head(3)]
    at = open_page("retention")

    chosen = select_rows(at, "retention_invoices", "invoice_id", chosen_ids)
    click(at, "anonymise_invoices_selected")
    assert "3 invoice(s)" in texts(at.markdown)
    click(at, "anonymise_invoices:confirm")

    assert "Anonymise: 3 succeeded, 0 failed." in texts(at.success)
    with dbs.users.connect() as conn:
        names = conn.execute(
            select(t.invoices.c.customer_name, t.invoices.c.amount).where(
                t.invoices.c.id.in_(chosen)
            )
        ).all()
    assert [n for n, _ in names] == [None, None, None]
    assert all(amount is not None for _, amount in names)
    assert not set(chosen) & set(table(at, "retention_invoices")["invoice_id"])


# --- legal holds -----------------------------------------------------------------------------


def place(at: AppTest, scope: str, target: str, reason: str = "Tvist om refusjon") -> AppTest:
    at.selectbox(key="hold_scope").set_value(scope)
    at.text_input(key="hold_target").set_value(target)
    at.text_area(key="hold_reason").set_value(reason)
    at.text_input(key="hold_case_ref").set_value("SAK-2026-17")
    return click(at, "FormSubmitter:hold_form-Place hold")


def test_r17_place_a_hold_block_a_deletion_and_release_it(demo_copy):
    dbs = demo_copy.dbs
    [account] = ids_in_stage(dbs, SEED_AS_OF, "ready", 1)
    active_before = len(holds.active_holds(dbs, SEED_AS_OF))
    at = open_page("legal_holds")
    assert at.text_input(key="hold_owner").value == "demo@localhost"
    assert at.date_input(key="hold_review_on").value == date(2027, 11, 29)

    place(at, "account", "not-a-number")
    assert "The account id must be a whole number" in texts(at.error)
    place(at, "account", str(account), reason="")
    assert "A legal hold needs a reason" in texts(at.error)
    assert len(holds.active_holds(dbs, SEED_AS_OF)) == active_before  # nothing written

    place(at, "account", str(account))
    hold_id = int(holds.active_holds(dbs, SEED_AS_OF)["id"].max())
    assert f"Legal hold {hold_id} placed on account {account}" in texts(at.success)
    assert {m.label: m.value for m in at.metric}["Active holds"] == str(active_before + 1)

    at.switch_page("pages/accounts_nearing_deletion.py")
    run(at)
    shown = table(at, "accounts_table")
    assert shown.loc[shown["account_id"] == account, "stage"].tolist() == ["on_hold"]
    select_rows(at, "accounts_table", "account_id", [account])
    # Not ready, so "Approve deletion" stays disabled; the blocked attempt is made directly.
    assert at.button(key="accounts_approve").disabled
    retention.approve_deletions(dbs, [account], actor="dpo@plaato.example", as_of=SEED_AS_OF)

    at.switch_page("pages/legal_holds.py")
    run(at)
    cached.clear()
    run(at)
    assert holds.blocked_attempts(dbs).iloc[0]["hold_id"] == hold_id
    attempts = table_with(at, "hold_id", "actor", "action", "target")
    assert attempts.iloc[0]["target"] == f"account:{account}"
    assert attempts.iloc[0]["action"] == "account_deletion"

    select_rows(at, "holds_table", "id", [hold_id])
    click(at, "holds_release")
    click(at, "release_holds:confirm")

    assert "Release: 1 succeeded, 0 failed." in texts(at.success)
    assert hold_id not in set(holds.active_holds(dbs, SEED_AS_OF)["id"])
    assert retention.account_states(dbs, [account], SEED_AS_OF).iloc[0]["stage"] == "ready"


def test_r17_every_problem_of_the_hold_form_is_reported_at_once(demo_copy):
    dbs = demo_copy.dbs
    active_before = len(holds.active_holds(dbs, SEED_AS_OF))
    at = open_page("legal_holds")
    at.selectbox(key="hold_scope").set_value("account")
    at.text_input(key="hold_target").set_value("12a")
    at.text_area(key="hold_reason").set_value("   ")
    at.text_input(key="hold_case_ref").set_value("")
    at.date_input(key="hold_review_on").set_value(SEED_AS_OF)
    click(at, "FormSubmitter:hold_form-Place hold")

    assert len(at.error) == 1, texts(at.error)
    message = texts(at.error).replace("\\", "")
    assert "The hold was not placed; nothing was written." in message
    for problem in (
        "The account id must be a whole number, got '12a'.",
        "A legal hold needs a reason.",
        "A legal hold needs a case reference.",
        "The review date 2026-11-29 must be after 2026-11-29.",
    ):
        assert problem in message
    assert len(holds.active_holds(dbs, SEED_AS_OF)) == active_before

    at.selectbox(key="hold_scope").set_value("email")
    at.text_input(key="hold_target").set_value(" ")
    click(at, "FormSubmitter:hold_form-Place hold")
    assert "Enter the e-mail address to hold." in texts(at.error).replace("\\", "")
    assert len(holds.active_holds(dbs, SEED_AS_OF)) == active_before


def test_r17_a_hold_on_an_email_that_matches_nothing_needs_a_second_confirmation(demo_copy):
    dbs = demo_copy.dbs
    active_before = len(holds.active_holds(dbs, SEED_AS_OF))
    at = open_page("legal_holds")

    place(at, "email", "kari.nordman@example.no")  # a typo: nobody has this address

    assert "matches no account, member, consent record or support contact today" in (
        texts(at.warning).replace("\\", "")
    )
    assert len(holds.active_holds(dbs, SEED_AS_OF)) == active_before  # nothing written

    at.checkbox(key="hold_unmatched_ok").check()
    place(at, "email", "kari.nordman@example.no")

    assert len(holds.active_holds(dbs, SEED_AS_OF)) == active_before + 1
    assert "placed on e-mail kari.nordman@example.no" in texts(at.success).replace("\\", "")


def test_r17_a_hold_on_a_known_email_is_placed_at_once(demo_copy):
    dbs = demo_copy.dbs
    with dbs.users.connect() as conn:
        email = conn.execute(select(t.accounts.c.email).limit(1)).scalar_one()
    active_before = len(holds.active_holds(dbs, SEED_AS_OF))
    at = open_page("legal_holds")

    place(at, "email", email.upper())

    assert "matches no account" not in texts(at.warning)
    assert len(holds.active_holds(dbs, SEED_AS_OF)) == active_before + 1


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["accounts_nearing_deletion", "retention", "legal_holds"])
def test_r41_a_viewer_sees_the_lists_but_no_action(demo_copy, page):
    at = open_page(page, email=seeded.VIEWER_EMAIL)

    assert not at.exception, texts(at.exception)
    actions = {
        b.key for b in at.button if b.key and not b.key.startswith(("export:", "FormSubmitter:"))
    } - {"sign_out"}
    assert actions == set()
    assert "FormSubmitter:hold_form-Place hold" not in {b.key for b in at.button}
    assert "Actions are for the DPO role; you can browse and export." in texts(at.caption)
    assert at.dataframe, "the lists are shown"


def test_r13_accounts_whose_notice_was_not_delivered_are_left_out_unless_included(
    demo_copy, monkeypatch
):
    """No SMTP: the notices stay pending, nobody was told. The deletion dialog says so and
    leaves those accounts out (with the reason) unless the DPO ticks to include them."""
    dbs = demo_copy.dbs
    told, untold = ids_in_stage(dbs, SEED_AS_OF, "notice_due", 2)
    retention.send_deletion_notices(dbs, [told, untold], actor=ui.DEMO_ACTOR, as_of=SEED_AS_OF)
    deliver_notices(dbs, [told])
    ready_on = max(retention.account_states(dbs, [told, untold], SEED_AS_OF)["deletable_on"])
    seeded.pin_today(monkeypatch, ready_on)
    at = open_page("accounts_nearing_deletion")
    travel(at, ready_on)

    select_rows(at, "accounts_table", "account_id", [told, untold])
    click(at, "accounts_approve")

    assert "1 of these account(s) were not told" in texts(at.warning)
    assert table_with(at, "account_id", "status")["account_id"].tolist() == [untold]
    assert at.button(key="approve_deletion:confirm").label == "Delete 1 account(s)"
    click(at, "approve_deletion:confirm")

    results = table_with(at, "account_id", "outcome", "reason").set_index("account_id")
    assert results.loc[told, "outcome"] == "succeeded"
    assert "its notice was not delivered (pending)" in results.loc[untold, "reason"]
    assert count(dbs.users, t.accounts, t.accounts.c.id == untold) == 1

    select_rows(at, "accounts_table", "account_id", [untold])
    click(at, "accounts_approve")
    at.checkbox(key="approve_deletion:include_untold").check()
    run(at)
    assert at.button(key="approve_deletion:confirm").label == "Delete 1 account(s)"
    click(at, "approve_deletion:confirm")
    assert count(dbs.users, t.accounts, t.accounts.c.id == untold) == 0
