"""Retention actions on hand-built rows, on SQLite, PostgreSQL and MariaDB: inactivity
notices (RULES.md R13), approved deletions as resumable jobs (R14), invoice anonymisation
(R15), support-log purges (R16), legal holds (R17) and the audit trail (R18).

The worked example used throughout: an account last active on 2025-10-01 is eligible on
2026-10-01; a notice sent on 2026-11-29 makes it deletable on max(2026-10-01, 2026-12-29)
= 2026-12-29, so it is *notified* on 2026-12-28 and *ready* on 2026-12-29.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, func, select, update

from data_access import audit, holds, jobs, mailer, retention, subjects
from data_access import tables as t
from data_access.ledger_tables import audit_log, hold_blocks, notices, outbox
from data_access.ledger_tables import jobs as jobs_table
from data_access.ledger_tables import kept_invoices as kept_invoices_table
from data_access.retention import deletion
from data_access.retention import plan as plan_module
from data_access.settings import Smtp
from tests import factories as f
from tests import interrupted_run
from tests.conftest import SEED_AS_OF

AS_OF = SEED_AS_OF  # 2026-11-29: notices are sent on this day
NOTIFIED = date(2026, 12, 28)  # one day short of the 30 days
READY = date(2026, 12, 29)  # notice + 30 days
DPO = "dpo@plaato.example"
LAST_ACTIVE = date(2025, 10, 1)  # eligible on 2026-10-01


# --- helpers ---------------------------------------------------------------------------------


def inactive_account(dbs, email: str, *, last_active_on: date = LAST_ACTIVE, **extra) -> int:
    return f.add_account(
        dbs, email=email, created_on=date(2021, 3, 1), last_active_on=last_active_on, **extra
    )


def notified(dbs, *emails: str) -> list[int]:
    """Inactive accounts with a notice sent on AS_OF: ready on READY."""
    ids = [inactive_account(dbs, email) for email in emails]
    result = retention.send_deletion_notices(dbs, ids, actor=DPO, as_of=AS_OF)
    assert result.succeeded == ids, result.failed
    return ids


def hold(dbs, *, as_of: date = AS_OF, **scope) -> int:
    return holds.place_hold(
        dbs,
        **scope,
        reason="Tvist om refusjon av bryggeutstyr",
        case_ref="SAK-2026-17",
        actor=DPO,
        as_of=as_of,
        review_on=date(2027, 11, 1),
    )


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def stage(dbs, account_id: int, as_of: date) -> str:
    states = retention.account_states(dbs, [account_id], as_of)
    return states.iloc[0]["stage"]


def audit_rows(dbs, *, action: str | None = None, target: str | None = None) -> list[dict]:
    query = select(audit_log).order_by(audit_log.c.id)
    if action:
        query = query.where(audit_log.c.action == action)
    if target:
        query = query.where(audit_log.c.target == target)
    with dbs.ledger.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def ledger_jobs(dbs) -> int:
    return count(dbs.ledger, jobs_table)


def broken_engine(tmp_path):
    """An engine whose database cannot be opened: every connection attempt fails."""
    return create_engine(f"sqlite:///{tmp_path / 'missing' / 'store.sqlite'}")


# --- R13 inactivity notices ------------------------------------------------------------------


def test_r13_notice_goes_only_to_notice_due_accounts_with_reasons_for_the_others(empty_dbs):
    dbs = empty_dbs
    due = inactive_account(dbs, "kari.nordmann@example.no", full_name="Kari Nordmann")
    upcoming = inactive_account(dbs, "ola@example.no", last_active_on=date(2025, 12, 31))
    held = inactive_account(dbs, "per@example.no")
    hold_id = hold(dbs, account_id=held)

    result = retention.send_deletion_notices(
        dbs, [due, upcoming, held, 999_999], actor=DPO, as_of=AS_OF
    )

    assert result.succeeded == [due]
    assert result.failed == {
        upcoming: "not due yet: inactive until 2026-12-31, notice from 2026-12-01",
        held: f"under legal hold ({hold_id})",
        999_999: "no such account (deleted or never existed)",
    }
    with dbs.ledger.connect() as conn:
        notice = conn.execute(select(notices)).mappings().one()
        message = conn.execute(select(outbox)).mappings().one()
    assert (notice["account_id"], notice["sent_on"], notice["deletable_on"]) == (
        due,
        AS_OF,
        READY,
    )
    assert notice["last_activity_on"] == LAST_ACTIVE
    assert message["to_email"] == "kari.nordmann@example.no"
    assert message["status"] == "pending"
    assert message["subject"] == (
        "Kontoen din slettes 2026-12-29 / Your account will be deleted on 2026-12-29"
    )
    assert "Hei Kari Nordmann" in message["body"]
    assert "bokføringsloven § 13" in message["body"]
    entry = audit_rows(dbs, action="send_deletion_notices")[0]
    assert entry["rule"] == "R13"
    assert entry["target"] == f"account:{due}"
    assert entry["subject_ref"] == audit.keyed_hash(dbs, "Kari.Nordmann@example.no ")
    assert "kari" not in json.dumps(entry, default=str).lower()


def test_r13_a_second_notice_is_refused_and_nothing_is_written_twice(empty_dbs):
    dbs = empty_dbs
    [account] = notified(dbs, "kari@example.no")

    again = retention.send_deletion_notices(dbs, [account], actor=DPO, as_of=AS_OF)

    assert again.succeeded == []
    assert again.failed == {account: "already notified on 2026-11-29"}
    assert count(dbs.ledger, notices) == 1
    assert count(dbs.ledger, outbox) == 1


def test_r13_ready_thirty_days_after_the_notice_not_one_day_earlier(empty_dbs):
    dbs = empty_dbs
    [account] = notified(dbs, "kari@example.no")
    assert stage(dbs, account, NOTIFIED) == "notified"
    assert stage(dbs, account, READY) == "ready"

    early = retention.approve_deletions(dbs, [account], actor=DPO, as_of=NOTIFIED)

    assert early.succeeded == []
    assert early.failed == {account: "not ready for deletion: stage is notified"}
    assert count(dbs.users, t.accounts, t.accounts.c.id == account) == 1
    assert ledger_jobs(dbs) == 0  # nothing was planned


def test_r13_activity_after_the_notice_voids_it_and_deletion_is_refused(empty_dbs):
    dbs = empty_dbs
    [account] = notified(dbs, "kari@example.no")
    # The holder signs in on 2026-12-01, after the notice: the notice no longer counts.
    with dbs.users.begin() as conn:
        conn.execute(
            update(t.accounts)
            .where(t.accounts.c.id == account)
            .values(last_active_at=f.oslo_noon(date(2026, 12, 1)))
        )

    states = retention.account_states(dbs, [account], READY).iloc[0]
    result = retention.approve_deletions(dbs, [account], actor=DPO, as_of=READY)

    assert bool(states["notice_voided"]) is True
    assert states["notice_sent_on"] is None
    assert states["eligible_on"] == date(2027, 12, 1)
    assert result.failed == {account: "not ready for deletion: stage is upcoming"}
    assert count(dbs.users, t.accounts, t.accounts.c.id == account) == 1


# --- R14 deletion ----------------------------------------------------------------------------


def _account_with_everything(dbs) -> dict[str, int]:
    """Kari's account with a member, sessions, invoices, consent, newsletter and contacts,
    one contact under a hold, and Ola's active account that must not be touched."""
    ids = {"account": inactive_account(dbs, "kari@example.no", full_name="Kari Nordmann")}
    account = ids["account"]
    ids["member"] = f.add_member(
        dbs, account, email="ola.member@example.no", last_active_on=date(2025, 9, 1)
    )
    f.add_usage_session(dbs, account, on=date(2025, 9, 1))
    f.add_usage_session(dbs, account, on=date(2025, 10, 1))
    ids["invoice_2024"] = f.add_invoice(dbs, issued_on=date(2024, 3, 15), account_id=account)
    ids["invoice_2025"] = f.add_invoice(
        dbs, issued_on=date(2025, 6, 1), account_id=account, contact_person="Ola Member"
    )
    for on in (date(2024, 1, 5), date(2025, 2, 1)):
        f.add_consent_event(
            dbs, purpose="usage_statistics", action="granted", on=on, account_id=account
        )
    ids["email_consent"] = f.add_consent_event(
        dbs, purpose="newsletter", action="granted", on=date(2024, 1, 5), email="kari@example.no"
    )
    ids["subscriber"] = f.add_subscriber(dbs, email="kari@example.no", full_name="Kari Nordmann")
    ids["contact"] = f.add_contact(
        dbs, started_on=date(2025, 9, 2), account_id=account, email="kari@example.no"
    )
    ids["held_contact"] = f.add_contact(
        dbs, started_on=date(2025, 9, 3), account_id=account, email="kari@example.no"
    )
    ids["other_contact"] = f.add_contact(
        dbs, started_on=date(2025, 9, 2), email="nils@example.no", full_name="Nils Berg"
    )
    ids["other"] = f.add_account(
        dbs, email="ola@example.no", created_on=date(2021, 1, 1), last_active_on=date(2026, 11, 1)
    )
    f.add_usage_session(dbs, ids["other"], on=date(2026, 11, 1))
    f.add_consent_event(
        dbs, purpose="usage_statistics", action="granted", on=date(2026, 1, 1),
        account_id=ids["other"],
    )  # fmt: skip
    ids["hold"] = hold(dbs, contact_id=ids["held_contact"])
    return ids


def test_r14_deletion_plan_says_what_each_database_deletes_and_keeps(empty_dbs):
    dbs = empty_dbs
    ids = _account_with_everything(dbs)
    retention.send_deletion_notices(dbs, [ids["account"]], actor=DPO, as_of=AS_OF)

    plan = retention.deletion_plan(dbs, [ids["account"]], READY)

    rows = {(r["store"], r["data"]): r for r in plan.to_dict("records")}
    assert list(plan["store"].unique()) == ["users", "consent", "support", "ledger"]
    assert plan.attrs["accounts"] == 1
    assert rows[("users", "accounts (name, e-mail, company)")]["rows"] == 1
    assert rows[("users", "account members")]["rows"] == 1
    assert rows[("users", "usage sessions")]["rows"] == 2
    # Each invoice is kept until the end of its own financial year + 5 years (§13).
    kept = [r for r in plan.to_dict("records") if r["data"].startswith(plan_module.INVOICES_KEPT)]
    assert [(r["action"], r["rows"], r["kept_until"]) for r in kept] == [
        ("detach and keep", 1, date(2029, 12, 31)),
        ("detach and keep", 1, date(2030, 12, 31)),
    ]
    assert not any(r["data"] == plan_module.INVOICES_PAST for r in plan.to_dict("records"))
    assert rows[("consent", "consent events with the account's id")]["rows"] == 2
    assert rows[("support", "support contacts with the account's id")]["rows"] == 1
    assert rows[("support", "support contacts under a legal hold")]["rows"] == 1
    assert rows[("ledger", "inactivity notices")]["rows"] == 1
    assert rows[("ledger", "outbox messages of those notices")]["rows"] == 1


def test_r15_the_plan_shows_invoices_past_retention_as_due_now_not_a_past_date(empty_dbs):
    dbs = empty_dbs
    account = inactive_account(dbs, "kari@example.no")
    f.add_invoice(dbs, issued_on=date(2019, 5, 1), account_id=account)
    f.add_invoice(dbs, issued_on=date(2020, 2, 1), account_id=account)
    f.add_invoice(dbs, issued_on=date(2025, 6, 1), account_id=account)

    plan = retention.deletion_plan(dbs, [account], READY).to_dict("records")

    past = [r for r in plan if r["data"] == plan_module.INVOICES_PAST]
    assert [(r["action"], r["rows"], r["kept_until"]) for r in past] == [
        ("detach; anonymise now", 2, None)
    ]
    kept = [r for r in plan if r["data"].startswith(plan_module.INVOICES_KEPT)]
    assert [(r["rows"], r["kept_until"]) for r in kept] == [(1, date(2030, 12, 31))]
    assert all(r["kept_until"] is None or r["kept_until"] >= READY for r in plan)


def test_r14_approved_deletion_removes_exactly_the_r14_set(empty_dbs):
    dbs = empty_dbs
    ids = _account_with_everything(dbs)
    account = ids["account"]
    retention.send_deletion_notices(dbs, [account], actor=DPO, as_of=AS_OF)

    result = retention.approve_deletions(dbs, [account], actor=DPO, as_of=READY)

    assert (result.succeeded, result.failed) == ([account], {})
    users, consent, support = dbs.users, dbs.consent, dbs.support
    assert count(users, t.accounts, t.accounts.c.id == account) == 0
    assert count(users, t.account_members, t.account_members.c.account_id == account) == 0
    assert count(users, t.usage_sessions, t.usage_sessions.c.account_id == account) == 0
    # Invoices are detached and kept whole under R15.
    with users.connect() as conn:
        kept = conn.execute(
            select(t.invoices.c.id, t.invoices.c.account_id, t.invoices.c.customer_name)
            .where(t.invoices.c.id.in_([ids["invoice_2024"], ids["invoice_2025"]]))
            .order_by(t.invoices.c.id)
        ).all()
    assert [tuple(r) for r in kept] == [
        (ids["invoice_2024"], None, "Kari Nordmann"),
        (ids["invoice_2025"], None, "Kari Nordmann"),
    ]
    assert count(consent, t.consent_events, t.consent_events.c.account_id == account) == 0
    # The newsletter and its e-mail-keyed consent are separate processing: kept.
    assert count(consent, t.consent_events, t.consent_events.c.id == ids["email_consent"]) == 1
    assert count(consent, t.newsletter_subscribers) == 1
    assert count(support, t.contacts, t.contacts.c.id == ids["contact"]) == 0
    assert count(support, t.contacts, t.contacts.c.id == ids["held_contact"]) == 1
    assert count(support, t.contacts, t.contacts.c.id == ids["other_contact"]) == 1
    # Ola's account is untouched.
    other = ids["other"]
    assert count(users, t.usage_sessions, t.usage_sessions.c.account_id == other) == 1
    assert count(consent, t.consent_events, t.consent_events.c.account_id == other) == 1
    # The ledger's copies go too (R18).
    assert count(dbs.ledger, notices) == 0
    assert count(dbs.ledger, outbox) == 0
    steps = audit_rows(dbs, target=f"account:{account}")
    assert [(e["action"], e["store"], e["rule"]) for e in steps[-4:]] == [
        ("delete_account", "users", "R14"),
        ("delete_account_consent_events", "consent", "R14"),
        ("delete_account_contacts", "support", "R14"),
        ("delete_account_ledger_copies", "ledger", "R14"),
    ]
    assert json.loads(steps[-4]["counts"]) == {
        "accounts": 1,
        "account_members": 1,
        "invoices_detached": 2,
        "usage_sessions": 2,
    }
    assert json.loads(steps[-2]["counts"]) == {"contacts": 1, "contacts_kept_on_hold": 1}
    # The audit keeps whether the holder was told after the message is gone (R13, R18).
    assert json.loads(steps[-1]["counts"]) == {
        "notices": 1, "outbox": 1, "notices_delivered": 0, "notices_undelivered": 1,
    }  # fmt: skip
    assert {e["subject_ref"] for e in steps[-4:]} == {audit.keyed_hash(dbs, "kari@example.no")}
    assert jobs.unfinished_jobs(dbs).empty
    assert audit.verify_chain(dbs) == (True, None)


def test_r9_r14_kept_invoices_are_found_by_e_mail_after_the_deletion_until_anonymised(empty_dbs):
    """An access request after the deletion must still find the invoices kept with her name
    (R9); anonymising them (R15) removes the link too, or it would re-identify them."""
    dbs = empty_dbs
    ids = _account_with_everything(dbs)
    retention.send_deletion_notices(dbs, [ids["account"]], actor=DPO, as_of=AS_OF)
    retention.approve_deletions(dbs, [ids["account"]], actor=DPO, as_of=READY)

    found = subjects.find_subject(dbs, " KARI@example.no ")["users.invoices"]
    kept = [ids["invoice_2024"], ids["invoice_2025"]]
    assert found["id"].tolist() == kept
    assert found.attrs["kept_after_deletion"] == kept
    assert set(found["customer_name"]) == {"Kari Nordmann"}
    assert subjects.find_subject(dbs, "ola@example.no")["users.invoices"].empty

    past_2024 = date(2030, 1, 2)  # the 2024 invoice is kept until 2029-12-31 (R15)
    result = retention.anonymise_invoices(dbs, [ids["invoice_2024"]], actor=DPO, as_of=past_2024)

    assert result.succeeded == [ids["invoice_2024"]], result.failed
    left = subjects.find_subject(dbs, "kari@example.no")["users.invoices"]
    assert left["id"].tolist() == [ids["invoice_2025"]]
    assert count(dbs.ledger, kept_invoices_table) == 1


def test_r14_a_double_click_with_the_same_key_deletes_once(empty_dbs):
    dbs = empty_dbs
    first_id, second_id = notified(dbs, "kari@example.no", "ola@example.no")

    first = retention.approve_deletions(
        dbs, [first_id], actor=DPO, as_of=READY, idempotency_key="click-1"
    )
    again = retention.approve_deletions(
        dbs, [first_id], actor=DPO, as_of=READY, idempotency_key="click-1"
    )

    assert first.succeeded == again.succeeded == [first_id]
    assert again.failed == {}
    assert again.job_id == first.job_id
    assert ledger_jobs(dbs) == 1
    assert len(audit_rows(dbs, action="delete_account")) == 1
    assert stage(dbs, second_id, READY) == "ready"  # the other account is untouched


def test_r14_a_stale_selection_never_acts_on_another_account(empty_dbs):
    dbs = empty_dbs
    first_id, second_id = notified(dbs, "kari@example.no", "ola@example.no")
    retention.approve_deletions(dbs, [first_id], actor=DPO, as_of=READY, idempotency_key="a")

    # The same account selected again from a list that is out of date, with a new click.
    stale = retention.approve_deletions(
        dbs, [first_id], actor=DPO, as_of=READY, idempotency_key="b"
    )

    assert stale.succeeded == []
    assert stale.failed == {first_id: f"already deleted by {DPO} (job 1)"}
    assert count(dbs.users, t.accounts, t.accounts.c.id == second_id) == 1
    assert len(audit_rows(dbs, action="delete_account")) == 1
    unknown = retention.approve_deletions(dbs, [999_999], actor=DPO, as_of=READY)
    assert unknown.failed == {999_999: "no such account (already deleted or never existed)"}


def test_r14_a_store_that_fails_leaves_the_job_partial_and_resume_completes(
    empty_dbs, monkeypatch, tmp_path
):
    dbs = empty_dbs
    accounts = notified(dbs, "kari@example.no", "ola@example.no", "per@example.no")
    for account in accounts:
        f.add_consent_event(
            dbs, purpose="usage_statistics", action="granted", on=date(2025, 1, 1),
            account_id=account,
        )  # fmt: skip
        f.add_contact(dbs, started_on=date(2025, 9, 1), account_id=account)

    with monkeypatch.context() as patch:
        patch.setitem(dbs.engines, "consent", broken_engine(tmp_path))
        first = retention.approve_deletions(dbs, accounts, actor=DPO, as_of=READY)

    assert first.succeeded == []
    assert set(first.failed) == set(accounts)
    reason = first.failed[accounts[0]]
    assert reason.startswith("consent failed at delete_account_consent_events: OperationalError")
    unfinished = jobs.unfinished_jobs(dbs, "account_deletion")
    assert unfinished["job_id"].tolist() == [first.job_id]
    assert unfinished.iloc[0]["status"] == "partial"
    # Each store is consistent: users done, consent failed, support and ledger not run.
    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(accounts)) == 0
    assert count(dbs.consent, t.consent_events, t.consent_events.c.account_id.in_(accounts)) == 3
    assert count(dbs.support, t.contacts, t.contacts.c.account_id.in_(accounts)) == 3
    assert count(dbs.ledger, notices) == 3
    failed = jobs.job_steps_frame(dbs, first.job_id, status="failed")
    assert failed["store"].tolist() == ["consent"] * 3

    resumed = retention.resume_job(dbs, first.job_id, actor=DPO)

    assert sorted(resumed.succeeded) == sorted(accounts)
    assert resumed.failed == {}
    assert count(dbs.consent, t.consent_events, t.consent_events.c.account_id.in_(accounts)) == 0
    assert count(dbs.support, t.contacts, t.contacts.c.account_id.in_(accounts)) == 0
    assert count(dbs.ledger, notices) == 0
    assert jobs.unfinished_jobs(dbs).empty
    # Nothing ran twice: one audit entry per account and step.
    for action in ("delete_account", "delete_account_consent_events", "delete_account_contacts"):
        assert len(audit_rows(dbs, action=action)) == 3
    assert audit.verify_chain(dbs) == (True, None)


def test_r14_a_failure_inside_a_batch_fails_exactly_that_account(empty_dbs, monkeypatch):
    dbs = empty_dbs
    accounts = notified(dbs, "kari@example.no", "ola@example.no", "per@example.no")
    for account in accounts:
        f.add_contact(dbs, started_on=date(2025, 9, 1), account_id=account)
    unlucky = accounts[1]
    real = deletion.HANDLERS["delete_account_contacts"]

    def support_goes_away_for_one(conn, ctx):
        if ctx.target_id == unlucky:
            raise ConnectionError("support server went away")
        return real(conn, ctx)

    with monkeypatch.context() as patch:
        patch.setitem(deletion.HANDLERS, "delete_account_contacts", support_goes_away_for_one)
        first = retention.approve_deletions(dbs, accounts, actor=DPO, as_of=READY)

    assert sorted(first.succeeded) == sorted([accounts[0], accounts[2]])
    assert first.failed == {
        unlucky: "support failed at delete_account_contacts: ConnectionError: "
        "support server went away"
    }
    assert count(dbs.support, t.contacts, t.contacts.c.account_id == unlucky) == 1
    assert count(dbs.support, t.contacts, t.contacts.c.account_id.in_(accounts)) == 1

    resumed = retention.resume_job(dbs, first.job_id, actor=DPO)

    assert sorted(resumed.succeeded) == sorted(accounts)
    assert count(dbs.support, t.contacts, t.contacts.c.account_id.in_(accounts)) == 0
    assert len(audit_rows(dbs, action="delete_account_contacts")) == 3
    assert len(audit_rows(dbs, action="delete_account")) == 3


def test_r14_activity_after_approval_makes_the_users_step_refuse_on_resume(empty_dbs, monkeypatch):
    dbs = empty_dbs
    accounts = notified(dbs, "kari@example.no", "ola@example.no", "per@example.no")
    for account in accounts:
        f.add_usage_session(dbs, account, on=date(2025, 9, 1))

    def users_down(conn, ctx):
        raise ConnectionError("users server went away")

    with monkeypatch.context() as patch:
        patch.setitem(deletion.HANDLERS, "delete_account", users_down)
        first = retention.approve_deletions(dbs, accounts, actor=DPO, as_of=READY)
    assert first.succeeded == [] and len(first.failed) == 3
    # Ola signs in while the job waits: his notice is void (R13).
    returning = accounts[1]
    with dbs.users.begin() as conn:
        conn.execute(
            update(t.accounts)
            .where(t.accounts.c.id == returning)
            .values(last_active_at=f.oslo_noon(READY))
        )

    resumed = retention.resume_job(dbs, first.job_id, actor=DPO)

    assert sorted(resumed.succeeded) == sorted([accounts[0], accounts[2]])
    assert resumed.failed == {
        returning: "the account was active after it was approved; the notice is void (R13)"
    }
    assert count(dbs.users, t.accounts, t.accounts.c.id == returning) == 1
    assert count(dbs.users, t.usage_sessions, t.usage_sessions.c.account_id == returning) == 1
    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(accounts)) == 1
    # A refusal is final: the job is done, not resumable, and the rest of Ola's steps skipped.
    assert jobs.unfinished_jobs(dbs).empty
    steps = jobs.job_steps_frame(dbs, first.job_id)
    assert steps.loc[steps["target"] == f"account:{returning}", "status"].tolist() == [
        "refused",
        "skipped",
        "skipped",
        "skipped",
    ]


def test_r14_small_pages_and_batches_delete_the_same_set(empty_dbs, monkeypatch):
    dbs = empty_dbs
    monkeypatch.setattr(jobs, "_PAGE_STEPS", 5)  # pages end mid-account
    monkeypatch.setattr(jobs, "BATCH_TARGETS", 2)
    accounts = notified(dbs, *(f"user{n}@example.no" for n in range(5)))
    for account in accounts:
        f.add_consent_event(
            dbs, purpose="usage_statistics", action="granted", on=date(2025, 1, 1),
            account_id=account,
        )  # fmt: skip
    seen = []

    result = retention.approve_deletions(
        dbs, accounts, actor=DPO, as_of=READY, progress=lambda share, _: seen.append(share)
    )

    assert sorted(result.succeeded) == sorted(accounts)
    assert count(dbs.users, t.accounts) == 0
    assert count(dbs.consent, t.consent_events) == 0
    assert count(dbs.ledger, notices) == 0
    assert len(audit_rows(dbs, action="delete_account_ledger_copies")) == 5
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert audit.verify_chain(dbs) == (True, None)


# --- R14 a deletion killed mid-job ------------------------------------------------------------

DELETION_STEPS = (
    "delete_account",
    "delete_account_consent_events",
    "delete_account_contacts",
    "delete_account_ledger_copies",
)
RESUMING_DPO = "other.dpo@plaato.example"


def ready_accounts_with_data(dbs, n: int) -> list[int]:
    """`n` notified accounts, each with a usage session, a consent event, a support contact,
    a notice and its outbox message (names and e-mails): ready on READY."""
    accounts = notified(dbs, *(f"kunde{i}@example.no" for i in range(n)))
    for account in accounts:
        f.add_usage_session(dbs, account, on=date(2025, 9, 1))
        f.add_consent_event(
            dbs, purpose="usage_statistics", action="granted", on=date(2025, 1, 1),
            account_id=account,
        )  # fmt: skip
        f.add_contact(dbs, started_on=date(2025, 9, 1), account_id=account)
    return accounts


def left_of(dbs, accounts: list[int]) -> dict[str, int]:
    """Rows the deleted accounts left in each store (all zero when the deletion is done)."""
    refs = [audit.keyed_hash(dbs, f"kunde{i}@example.no") for i in range(len(accounts))]
    return {
        "accounts": count(dbs.users, t.accounts, t.accounts.c.id.in_(accounts)),
        "usage_sessions": count(
            dbs.users, t.usage_sessions, t.usage_sessions.c.account_id.in_(accounts)
        ),
        "consent_events": count(
            dbs.consent, t.consent_events, t.consent_events.c.account_id.in_(accounts)
        ),
        "contacts": count(dbs.support, t.contacts, t.contacts.c.account_id.in_(accounts)),
        "notices": count(dbs.ledger, notices, notices.c.account_id.in_(accounts)),
        "outbox": count(dbs.ledger, outbox, outbox.c.subject_ref.in_(refs)),
    }


@pytest.mark.parametrize("pause_at", ["after_batch", "before_done_marks"])
def test_r14_a_deletion_killed_mid_job_is_interrupted_and_resumes_to_done(
    empty_dbs, tmp_path, pause_at
):
    """SIGKILL after the first batch (3 of 12 accounts' first step) is committed, or between
    its store commit and its done marks: the job shows interrupted once its lease expires,
    resumes to done, no store keeps anything of the deleted accounts, and every step of
    every account has exactly one audit entry, the resumed ones by the resuming DPO."""
    dbs = empty_dbs
    accounts = ready_accounts_with_data(dbs, 12)
    bystander = notified(dbs, "nabo@example.no")[0]
    f.add_contact(dbs, started_on=date(2025, 9, 1), account_id=bystander)

    job_id = interrupted_run.killed_mid_job(
        dbs, tmp_path, "approve_deletions", pause_at=pause_at, account_ids=accounts, actor=DPO,
        as_of=READY,
    )  # fmt: skip

    assert count(dbs.users, t.accounts, t.accounts.c.id.in_(accounts)) == 9  # 3 went
    assert left_of(dbs, accounts)["contacts"] == 12  # mid-job: the support step never ran
    done_before = len(jobs.job_steps_frame(dbs, job_id, status="done"))
    assert done_before == (3 if pause_at == "after_batch" else 0)
    interrupted_run.wait_for_lease_to_expire(dbs, job_id)
    listed = jobs.interrupted_jobs(dbs, "account_deletion")
    assert listed[["job_id", "status", "claimed_by"]].values.tolist() == [
        [job_id, "interrupted", DPO]
    ]

    resumed = jobs.resume_interrupted_jobs(dbs, RESUMING_DPO)

    assert (resumed.succeeded, resumed.failed) == ([job_id], {})
    assert left_of(dbs, accounts) == dict.fromkeys(left_of(dbs, accounts), 0)
    assert count(dbs.users, t.accounts, t.accounts.c.id == bystander) == 1
    assert count(dbs.support, t.contacts, t.contacts.c.account_id == bystander) == 1
    assert count(dbs.ledger, notices, notices.c.account_id == bystander) == 1
    assert jobs.unfinished_jobs(dbs).empty
    for action in DELETION_STEPS:
        entries = audit_rows(dbs, action=action)
        assert sorted(e["target"] for e in entries) == sorted(f"account:{a}" for a in accounts)
    actors = [e["actor"] for a in DELETION_STEPS for e in audit_rows(dbs, action=a)]
    assert actors.count(DPO) == done_before
    assert actors.count(RESUMING_DPO) == 4 * 12 - done_before
    assert audit.verify_chain(dbs) == (True, None)


@pytest.mark.parametrize("batch_targets", [3, 200])
def test_r14_two_dpos_approving_the_same_accounts_delete_each_once(
    empty_dbs, monkeypatch, batch_targets
):
    """Two DPO sessions approve the same twelve ready accounts at the same moment (each
    with its own click): each account is deleted and audited once, credited to one of them;
    the other's result says who already deleted it."""
    dbs = empty_dbs
    monkeypatch.setattr(jobs, "BATCH_TARGETS", batch_targets)
    accounts = ready_accounts_with_data(dbs, 12)
    dpos = (DPO, RESUMING_DPO)
    barrier = threading.Barrier(2)
    results = {}

    def approve(actor):
        barrier.wait(timeout=30)
        results[actor] = retention.approve_deletions(
            dbs, accounts, actor=actor, as_of=READY, idempotency_key=f"click:{actor}"
        )

    threads = [threading.Thread(target=approve, args=(actor,)) for actor in dpos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert set(results) == set(dpos)
    for account in accounts:
        winners = [a for a in dpos if account in results[a].succeeded]
        assert len(winners) == 1, (account, {a: results[a].failed.get(account) for a in dpos})
        [loser] = set(dpos) - set(winners)
        assert results[loser].failed[account].startswith(f"already deleted by {winners[0]} ")
    assert left_of(dbs, accounts) == dict.fromkeys(left_of(dbs, accounts), 0)
    deleted = audit_rows(dbs, action="delete_account")
    assert sorted(e["target"] for e in deleted) == sorted(f"account:{a}" for a in accounts)
    assert all(json.loads(e["counts"])["accounts"] == 1 for e in deleted)
    for action in DELETION_STEPS[1:]:
        entries = audit_rows(dbs, action=action)
        assert sorted(e["target"] for e in entries) == sorted(f"account:{a}" for a in accounts)
    credited = {e["target"]: e["actor"] for e in deleted}
    for account in accounts:
        assert account in results[credited[f"account:{account}"]].succeeded
    assert audit.verify_chain(dbs) == (True, None)


# --- R17 legal holds -------------------------------------------------------------------------


def test_r17_a_hold_blocks_deletion_and_releasing_it_makes_the_account_deletable_at_once(
    empty_dbs,
):
    dbs = empty_dbs
    [account] = notified(dbs, "kari@example.no")
    hold_id = hold(dbs, email=" Kari@Example.no", as_of=READY)
    assert stage(dbs, account, READY) == "on_hold"

    blocked = retention.approve_deletions(dbs, [account], actor=DPO, as_of=READY)

    assert blocked.failed == {account: f"under legal hold ({hold_id}): deletion blocked (R17)"}
    assert count(dbs.users, t.accounts, t.accounts.c.id == account) == 1
    attempts = holds.blocked_attempts(dbs)
    assert attempts[["hold_id", "actor", "action", "target"]].to_dict("records") == [
        {
            "hold_id": hold_id,
            "actor": DPO,
            "action": "account_deletion",
            "target": f"account:{account}",
        }
    ]

    holds.release_hold(dbs, hold_id, actor=DPO, as_of=READY)
    assert stage(dbs, account, READY) == "ready"
    released = retention.approve_deletions(dbs, [account], actor=DPO, as_of=READY)

    assert released.succeeded == [account]
    assert count(dbs.users, t.accounts, t.accounts.c.id == account) == 0


def test_r17_a_hold_on_a_member_email_blocks_the_account(empty_dbs):
    dbs = empty_dbs
    [account] = notified(dbs, "kari@example.no")
    f.add_member(dbs, account, email="ola.member@example.no", last_active_on=date(2025, 1, 1))
    hold_id = hold(dbs, email="OLA.member@example.no", as_of=READY)

    result = retention.approve_deletions(dbs, [account], actor=DPO, as_of=READY)

    assert result.failed == {account: f"under legal hold ({hold_id}): deletion blocked (R17)"}
    assert count(dbs.users, t.account_members, t.account_members.c.account_id == account) == 1


def test_r17_a_hold_placed_while_the_job_waits_refuses_the_deletion(empty_dbs, monkeypatch):
    dbs = empty_dbs
    [account] = notified(dbs, "kari@example.no")

    def users_down(conn, ctx):
        raise ConnectionError("users server went away")

    with monkeypatch.context() as patch:
        patch.setitem(deletion.HANDLERS, "delete_account", users_down)
        first = retention.approve_deletions(dbs, [account], actor=DPO, as_of=READY)
    hold_id = hold(dbs, account_id=account, as_of=READY)

    resumed = retention.resume_job(dbs, first.job_id, actor=DPO)

    assert resumed.failed == {
        account: f"a legal hold was placed ({hold_id}); deletion blocked (R17)"
    }
    assert count(dbs.users, t.accounts, t.accounts.c.id == account) == 1
    assert count(dbs.ledger, hold_blocks, hold_blocks.c.hold_id == hold_id) == 1


def test_r17_release_holds_reports_each_hold(empty_dbs):
    dbs = empty_dbs
    account = inactive_account(dbs, "kari@example.no")
    first, second = hold(dbs, account_id=account), hold(dbs, email="ola@example.no")
    holds.release_hold(dbs, second, actor=DPO, as_of=AS_OF)

    result = holds.release_holds(dbs, [first, second, 404], actor=DPO, as_of=AS_OF)

    assert result.succeeded == [first]
    assert result.failed == {
        second: f"Legal hold {second} was already released on 2026-11-29.",
        404: "There is no legal hold 404.",
    }


# --- R16 support-log purges ------------------------------------------------------------------


def test_r16_purge_respects_the_retention_boundary_and_holds(empty_dbs):
    dbs = empty_dbs
    # Kept 6 months: started 2026-05-28 -> retained until 2026-11-28, purgeable 2026-11-29.
    past = f.add_contact(dbs, started_on=date(2026, 5, 28), email="nils@example.no")
    # Started 2026-05-29 -> retained until 2026-11-29 itself: purgeable only from 11-30.
    boundary = f.add_contact(dbs, started_on=date(2026, 5, 29))
    held_contact = f.add_contact(dbs, started_on=date(2026, 1, 10))
    held_email = f.add_contact(dbs, started_on=date(2026, 1, 11), email="Per@Example.no")
    owner = inactive_account(dbs, "kari@example.no")
    # No e-mail on the contact: covered through its account's owner (R13 coverage).
    of_held_owner = f.add_contact(dbs, started_on=date(2026, 1, 12), account_id=owner)
    contact_hold = hold(dbs, contact_id=held_contact)
    email_hold = hold(dbs, email="per@example.no")
    owner_hold = hold(dbs, email="kari@example.no")
    listed = retention.support_contacts_past_retention(dbs, AS_OF)
    assert set(listed["contact_id"]) == {past, held_contact, held_email, of_held_owner}

    result = retention.purge_support_contacts(
        dbs,
        [past, boundary, held_contact, held_email, of_held_owner, 404],
        actor=DPO,
        as_of=AS_OF,
    )

    assert result.succeeded == [past]
    assert result.failed == {
        boundary: "not past retention on 2026-11-29 (R16)",
        held_contact: f"under legal hold ({contact_hold}) (R17)",
        held_email: f"under legal hold ({email_hold}) (R17)",
        of_held_owner: f"under legal hold ({owner_hold}) (R17)",
        404: "no such contact (already purged?)",
    }
    assert count(dbs.support, t.contacts) == 4
    assert sorted(holds.blocked_attempts(dbs)["hold_id"]) == sorted(
        [contact_hold, email_hold, owner_hold]
    )
    [entry] = audit_rows(dbs, action="purge_support_contact")
    assert (entry["rule"], entry["store"], entry["target"]) == ("R16", "support", f"contact:{past}")
    assert entry["subject_ref"] == audit.keyed_hash(dbs, "nils@example.no")

    next_day = retention.purge_support_contacts(
        dbs, [boundary], actor=DPO, as_of=AS_OF + timedelta(days=1)
    )
    assert next_day.succeeded == [boundary]


def test_r16_a_double_click_purges_once(empty_dbs):
    dbs = empty_dbs
    contact = f.add_contact(dbs, started_on=date(2026, 1, 5))

    first = retention.purge_support_contacts(
        dbs, [contact], actor=DPO, as_of=AS_OF, idempotency_key="purge-1"
    )
    again = retention.purge_support_contacts(
        dbs, [contact], actor=DPO, as_of=AS_OF, idempotency_key="purge-1"
    )

    assert first.succeeded == again.succeeded == [contact]
    assert again.failed == {}
    assert len(audit_rows(dbs, action="purge_support_contact")) == 1


# --- R15 invoice anonymisation ---------------------------------------------------------------


def test_r15_anonymise_from_the_day_after_the_fifth_financial_year_end(empty_dbs):
    dbs = empty_dbs
    invoice = f.add_invoice(
        dbs, issued_on=date(2024, 3, 15), contact_person="Ola Nordmann", amount="1290.50"
    )

    early = retention.anonymise_invoices(dbs, [invoice], actor=DPO, as_of=date(2029, 12, 31))
    due = retention.anonymise_invoices(dbs, [invoice], actor=DPO, as_of=date(2030, 1, 1))

    assert early.failed == {invoice: "kept until 2029-12-31 under bokføringsloven §13 (R15)"}
    assert due.succeeded == [invoice]
    with dbs.users.connect() as conn:
        row = conn.execute(select(t.invoices).where(t.invoices.c.id == invoice)).mappings().one()
    assert (row["customer_name"], row["contact_person"]) == (None, None)
    assert (row["amount"], row["currency"], row["issued_on"]) == (
        Decimal("1290.50"),
        "NOK",
        date(2024, 3, 15),
    )
    assert row["invoice_number"].startswith("INV-")
    [entry] = audit_rows(dbs, action="anonymise_invoice")
    assert (entry["rule"], json.loads(entry["counts"])) == ("R15", {"invoices_anonymised": 1})


def test_r15_an_invoice_of_a_held_account_is_not_anonymised(empty_dbs):
    dbs = empty_dbs
    account = inactive_account(dbs, "kari@example.no")
    invoice = f.add_invoice(dbs, issued_on=date(2020, 6, 1), account_id=account)
    hold_id = hold(dbs, email="kari@example.no")

    result = retention.anonymise_invoices(dbs, [invoice], actor=DPO, as_of=AS_OF)

    assert result.failed == {invoice: f"under legal hold ({hold_id}) (R17)"}
    with dbs.users.connect() as conn:
        name = conn.execute(
            select(t.invoices.c.customer_name).where(t.invoices.c.id == invoice)
        ).scalar_one()
    assert name == "Kari Nordmann"


# --- R18 audit -------------------------------------------------------------------------------


def test_r18_chain_is_intact_after_the_actions_and_broken_by_any_edit(empty_dbs):
    dbs = empty_dbs
    accounts = notified(dbs, "kari@example.no", "ola@example.no")
    retention.approve_deletions(dbs, accounts, actor=DPO, as_of=READY)
    contact = f.add_contact(dbs, started_on=date(2026, 1, 5))
    retention.purge_support_contacts(dbs, [contact], actor=DPO, as_of=READY)
    assert audit.verify_chain(dbs) == (True, None)

    entry = audit_rows(dbs, action="delete_account_consent_events")[0]
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(audit_log)
            .where(audit_log.c.id == entry["id"])
            .values(counts='{"consent_events":999}')
        )

    assert audit.verify_chain(dbs) == (False, entry["id"])


# --- the outbox over SMTP --------------------------------------------------------------------


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, inbox
    controller.stop()


def test_r13_notice_is_delivered_over_smtp_and_marked_sent(sqlite_dbs, smtp_server):
    dbs = sqlite_dbs
    controller, inbox = smtp_server
    notified(dbs, "kari@example.no")
    assert mailer.outbox_counts(dbs) == {"pending": 1, "sent": 0, "failed": 0}

    delivery = mailer.deliver_outbox(
        dbs, Smtp(host="127.0.0.1", port=controller.port, sender="privacy@plaato.example")
    )

    assert (delivery.sent, delivery.failed) == (1, 0)
    assert [m.rcpt_tos for m in inbox.messages] == [["kari@example.no"]]
    body = inbox.messages[0].content.decode("utf-8", "replace")
    assert "2026-12-29" in body
    assert mailer.outbox_counts(dbs) == {"pending": 0, "sent": 1, "failed": 0}
