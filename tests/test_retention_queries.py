"""Retention read functions on hand-built rows, on SQLite, PostgreSQL and MariaDB
(RULES.md R13 accounts, R15 invoices, R16 support logs, with R17 holds)."""

from __future__ import annotations

from datetime import date, datetime

import factories as f
import pytest
from conftest import SEED_AS_OF, make_databases
from sqlalchemy import insert, update

from data_access import holds, retention
from data_access import tables as t
from data_access.ledger_tables import notices
from data_access.settings import Policy

AS_OF = SEED_AS_OF  # 2026-11-29
DPO = "dpo@plaato.example"


@pytest.fixture
def capped_dbs(backend, tmp_path):
    """Empty databases whose policy shows at most two rows per table."""
    yield from make_databases(backend, tmp_path, Policy(max_rows=2))


def add_notice(dbs, account_id: int, sent_on: date) -> None:
    """A deletion notice as the ledger records it (R13)."""
    with dbs.ledger.begin() as conn:
        conn.execute(
            insert(notices).values(
                account_id=account_id,
                sent_on=sent_on,
                created_at=f.oslo_noon(sent_on),
                actor=DPO,
                last_activity_on=sent_on,
                deletable_on=sent_on,
            )
        )


def hold(dbs, **scope) -> int:
    return holds.place_hold(
        dbs,
        **scope,
        reason="Tvist om refusjon",
        case_ref="SAK-2026-17",
        actor=DPO,
        as_of=date(2026, 11, 1),
        review_on=date(2027, 11, 1),
    )


def rows_by_id(frame) -> dict[int, dict]:
    return {row["account_id"]: row for row in frame.to_dict("records")}


# --- R13 accounts nearing deletion -----------------------------------------------------------


def test_r13_last_activity_is_latest_of_account_member_and_created(empty_dbs):
    by_member = f.add_account(empty_dbs, last_active_on=date(2025, 10, 1))
    f.add_member(empty_dbs, by_member, last_active_on=date(2025, 11, 10))
    by_created = f.add_account(empty_dbs, created_on=date(2025, 11, 5))
    by_account = f.add_account(empty_dbs, last_active_on=date(2025, 11, 20))
    f.add_member(empty_dbs, by_account, last_active_on=date(2025, 1, 1))

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30))

    assert rows[by_member]["last_activity_on"] == date(2025, 11, 10)
    assert rows[by_member]["last_activity_by"] == "member"
    assert rows[by_member]["eligible_on"] == date(2026, 11, 10)
    assert rows[by_created]["last_activity_on"] == date(2025, 11, 5)
    assert rows[by_created]["last_activity_by"] == "created"
    assert rows[by_account]["last_activity_on"] == date(2025, 11, 20)
    assert rows[by_account]["last_activity_by"] == "account"
    assert rows[by_account]["eligible_on"] == date(2026, 11, 20)


def test_r13_member_active_later_keeps_account_out(empty_dbs):
    owner_idle = f.add_account(empty_dbs, last_active_on=date(2024, 1, 1))
    f.add_member(empty_dbs, owner_idle, last_active_on=date(2026, 6, 1))

    frame = retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30)

    assert owner_idle not in frame["account_id"].tolist()
    assert frame.attrs == {"truncated": False, "total": 0}


def test_r13_window_is_inclusive_and_past_dates_come_first(empty_dbs):
    overdue = f.add_account(empty_dbs, last_active_on=date(2025, 1, 15))
    on_horizon = f.add_account(empty_dbs, last_active_on=date(2025, 12, 29))
    f.add_account(empty_dbs, last_active_on=date(2025, 12, 30))  # eligible 2026-12-30
    today = f.add_account(empty_dbs, last_active_on=date(2025, 11, 29))

    frame = retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30)  # horizon 2026-12-29

    assert frame["account_id"].tolist() == [overdue, today, on_horizon]
    assert frame["key_date"].tolist() == [date(2026, 1, 15), date(2026, 11, 29), date(2026, 12, 29)]


def test_r13_upcoming_until_eligible_on_minus_notice_days(empty_dbs):
    due = f.add_account(empty_dbs, last_active_on=date(2025, 12, 29))  # eligible 2026-12-29
    upcoming = f.add_account(empty_dbs, last_active_on=date(2025, 12, 30))  # eligible 2026-12-30

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 60))

    # 2026-12-29 - 30 days = 2026-11-29 = as_of: the notice is due today.
    assert rows[due]["stage"] == "notice_due"
    assert rows[upcoming]["stage"] == "upcoming"
    assert rows[upcoming]["notice_sent_on"] is None
    assert rows[upcoming]["deletable_on"] is None


def test_r13_notice_voided_by_activity_on_the_notice_day(empty_dbs):
    voided = f.add_account(empty_dbs, last_active_on=date(2025, 11, 1))
    add_notice(empty_dbs, voided, date(2025, 11, 1))
    valid = f.add_account(empty_dbs, last_active_on=date(2025, 11, 1))
    add_notice(empty_dbs, valid, date(2025, 11, 2))

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30))

    assert rows[voided]["stage"] == "notice_due"
    assert rows[voided]["notice_sent_on"] is None
    assert rows[voided]["notice_voided"]
    assert rows[voided]["deletable_on"] is None
    assert rows[voided]["key_date"] == date(2026, 11, 1)
    assert rows[valid]["stage"] == "ready"
    assert rows[valid]["notice_sent_on"] == date(2025, 11, 2)
    assert not rows[valid]["notice_voided"]
    assert rows[valid]["deletable_on"] == date(2026, 11, 1)


def test_r13_deletable_on_is_max_of_eligible_and_notice_plus_30_days(empty_dbs):
    late_notice = f.add_account(empty_dbs, last_active_on=date(2025, 12, 10))
    add_notice(empty_dbs, late_notice, date(2026, 11, 20))  # + 30 days = 2026-12-20
    early_notice = f.add_account(empty_dbs, last_active_on=date(2025, 11, 10))
    add_notice(empty_dbs, early_notice, date(2026, 10, 1))  # + 30 days = 2026-10-31
    ready_today = f.add_account(empty_dbs, last_active_on=date(2025, 10, 1))
    add_notice(empty_dbs, ready_today, date(2026, 10, 30))  # + 30 days = 2026-11-29

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30))

    assert rows[late_notice]["eligible_on"] == date(2026, 12, 10)
    assert rows[late_notice]["deletable_on"] == date(2026, 12, 20)
    assert rows[late_notice]["key_date"] == date(2026, 12, 20)
    assert rows[late_notice]["stage"] == "notified"
    assert rows[early_notice]["deletable_on"] == date(2026, 11, 10)
    assert rows[early_notice]["stage"] == "ready"
    assert rows[ready_today]["deletable_on"] == AS_OF
    assert rows[ready_today]["stage"] == "ready"


def test_r13_key_date_is_deletable_on_once_notified(empty_dbs):
    notified = f.add_account(empty_dbs, last_active_on=date(2025, 11, 20))
    add_notice(empty_dbs, notified, date(2026, 11, 15))  # deletable 2026-12-15
    eligible = f.add_account(empty_dbs, last_active_on=date(2025, 11, 20))

    frame = retention.accounts_nearing_deletion(empty_dbs, AS_OF, 0)

    assert frame["account_id"].tolist() == [eligible]
    assert frame["key_date"].tolist() == [date(2026, 11, 20)]


def test_r13_cutoff_respects_month_end_clamping(empty_dbs):
    leap_day = f.add_account(empty_dbs, last_active_on=date(2024, 2, 29))

    frame = retention.accounts_nearing_deletion(empty_dbs, date(2025, 2, 28), 0)

    # add_months(2024-02-29, 12) = 2025-02-28, although 2025-02-28 - 12 months = 2024-02-28.
    assert frame["account_id"].tolist() == [leap_day]
    assert frame["eligible_on"].tolist() == [date(2025, 2, 28)]
    assert retention.latest_start_within(date(2027, 2, 28), 6) == date(2026, 8, 31)


def test_r13_last_activity_is_the_oslo_date(empty_dbs):
    # 22:30 UTC on 29 Nov is 23:30 in Oslo (same day); 23:30 UTC is 00:30 on 30 Nov.
    same_day = f.add_account(empty_dbs, created_at=datetime(2025, 11, 29, 22, 30))
    next_day = f.add_account(empty_dbs, created_at=datetime(2025, 11, 29, 23, 30))

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 0))

    assert list(rows) == [same_day]
    assert rows[same_day]["last_activity_on"] == date(2025, 11, 29)
    assert next_day not in rows


def test_r13_hold_on_member_email_covers_account(empty_dbs):
    account = f.add_account(empty_dbs, last_active_on=date(2025, 11, 1))
    f.add_member(empty_dbs, account, email="Ola.Nordmann@Example.NO")
    hold_id = hold(empty_dbs, email=" ola.nordmann@example.no ")

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30))

    assert rows[account]["stage"] == "on_hold"
    assert rows[account]["on_hold"]
    assert rows[account]["hold_ids"] == str(hold_id)


def test_r13_holds_on_account_and_owner_email_are_listed_together(empty_dbs):
    account = f.add_account(empty_dbs, email="Kari@Example.no", last_active_on=date(2025, 11, 1))
    add_notice(empty_dbs, account, date(2026, 10, 1))
    by_account = hold(empty_dbs, account_id=account)
    by_email = hold(empty_dbs, email="kari@example.no")

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30))

    assert rows[account]["stage"] == "on_hold"  # overrides 'ready'
    assert rows[account]["hold_ids"] == f"{by_account},{by_email}"


def test_r13_hold_on_a_contact_does_not_cover_the_account(empty_dbs):
    account = f.add_account(empty_dbs, email="kari@example.no", last_active_on=date(2025, 11, 1))
    contact = f.add_contact(
        empty_dbs, started_on=date(2026, 1, 5), email="kari@example.no", account_id=account
    )
    hold(empty_dbs, contact_id=contact)

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30))

    assert rows[account]["stage"] == "notice_due"
    assert not rows[account]["on_hold"]
    assert rows[account]["hold_ids"] is None


def test_r13_released_hold_no_longer_covers(empty_dbs):
    account = f.add_account(empty_dbs, last_active_on=date(2025, 11, 1))
    hold_id = hold(empty_dbs, account_id=account)
    holds.release_hold(empty_dbs, hold_id, actor=DPO, as_of=date(2026, 11, 20))

    rows = rows_by_id(retention.accounts_nearing_deletion(empty_dbs, AS_OF, 30))

    assert rows[account]["stage"] == "notice_due"


def test_r13_stage_filter_cap_and_exact_counts(capped_dbs):
    for day in (1, 2, 3):
        f.add_account(capped_dbs, last_active_on=date(2025, 11, day))
    upcoming = f.add_account(capped_dbs, last_active_on=date(2025, 12, 31))
    held = f.add_account(capped_dbs, last_active_on=date(2025, 11, 4))
    hold(capped_dbs, account_id=held)

    frame = retention.accounts_nearing_deletion(capped_dbs, AS_OF, 60, stages=["notice_due"])
    everything = retention.accounts_nearing_deletion(capped_dbs, AS_OF, 60)
    upcoming_only = retention.accounts_nearing_deletion(capped_dbs, AS_OF, 60, stages="upcoming")

    assert len(frame) == 2
    assert frame["key_date"].tolist() == [date(2026, 11, 1), date(2026, 11, 2)]
    assert frame.attrs == {"truncated": True, "total": 3}
    assert everything.attrs == {"truncated": True, "total": 5}
    assert upcoming_only["account_id"].tolist() == [upcoming]
    assert upcoming_only.attrs == {"truncated": False, "total": 1}
    assert retention.stage_counts(capped_dbs, AS_OF, 60) == {
        "upcoming": 1,
        "notice_due": 3,
        "notified": 0,
        "ready": 0,
        "on_hold": 1,
    }


def test_r13_explicit_limit_and_unknown_stage(sqlite_dbs):
    first = f.add_account(sqlite_dbs, last_active_on=date(2025, 11, 1))
    f.add_account(sqlite_dbs, last_active_on=date(2025, 11, 2))

    frame = retention.accounts_nearing_deletion(sqlite_dbs, AS_OF, 30, limit=1)

    assert frame["account_id"].tolist() == [first]
    assert frame.attrs == {"truncated": True, "total": 2}
    with pytest.raises(ValueError, match="Unknown stage"):
        retention.accounts_nearing_deletion(sqlite_dbs, AS_OF, stages=["deleted"])


def test_r13_columns_and_empty_result(sqlite_dbs):
    frame = retention.accounts_nearing_deletion(sqlite_dbs, AS_OF)

    assert frame.columns.tolist() == retention.ACCOUNT_COLUMNS
    assert frame.empty
    assert retention.stage_counts(sqlite_dbs, AS_OF) == dict.fromkeys(retention.STAGES, 0)


# --- R16 support contacts --------------------------------------------------------------------


def test_r16_month_end_contact_purgeable_from_the_next_day(empty_dbs):
    end_of_august = f.add_contact(empty_dbs, started_on=date(2026, 8, 31))
    f.add_contact(empty_dbs, started_on=date(2026, 9, 1))

    on_last_day = retention.support_contacts_past_retention(empty_dbs, date(2027, 2, 28))
    next_day = retention.support_contacts_past_retention(empty_dbs, date(2027, 3, 1))

    assert on_last_day.empty
    assert next_day["contact_id"].tolist() == [end_of_august]
    row = next_day.iloc[0]
    assert row["started_on"] == date(2026, 8, 31)
    assert row["retained_until"] == date(2027, 2, 28)
    assert row["started_at"] == datetime(2026, 8, 31, 11, 0)
    assert retention.count_support_contacts_past_retention(empty_dbs, date(2027, 2, 28)) == 0
    assert retention.count_support_contacts_past_retention(empty_dbs, date(2027, 3, 1)) == 1


def test_r16_started_on_is_the_oslo_date(empty_dbs):
    # 22:30 UTC on 31 Aug is 00:30 on 1 Sep in Oslo: retained until 2027-03-01.
    f.add_contact(empty_dbs, started_at=datetime(2026, 8, 31, 22, 30))
    evening = f.add_contact(empty_dbs, started_at=datetime(2026, 8, 31, 21, 30))

    frame = retention.support_contacts_past_retention(empty_dbs, date(2027, 3, 1))

    assert frame["contact_id"].tolist() == [evening]


def test_r16_oldest_first_channel_filter_and_cap(capped_dbs):
    phone = f.add_contact(capped_dbs, started_on=date(2026, 1, 10), channel="phone")
    chat_old = f.add_contact(capped_dbs, started_on=date(2026, 1, 5), channel="chat")
    chat_new = f.add_contact(capped_dbs, started_on=date(2026, 2, 1), channel="chat")

    frame = retention.support_contacts_past_retention(capped_dbs, AS_OF)
    chats = retention.support_contacts_past_retention(capped_dbs, AS_OF, channel="chat")

    assert frame["contact_id"].tolist() == [chat_old, phone]
    assert frame.attrs == {"truncated": True, "total": 3}
    assert chats["contact_id"].tolist() == [chat_old, chat_new]
    assert chats.attrs == {"truncated": False, "total": 2}
    assert retention.count_support_contacts_past_retention(capped_dbs, AS_OF, channel="phone") == 1
    with pytest.raises(ValueError, match="Unknown channel"):
        retention.support_contacts_past_retention(capped_dbs, AS_OF, channel="fax")


def test_r16_contacts_under_hold_are_listed_as_held(empty_dbs):
    account = f.add_account(empty_dbs, email="kari@example.no")
    by_contact = f.add_contact(empty_dbs, started_on=date(2026, 1, 1))
    by_email = f.add_contact(empty_dbs, started_on=date(2026, 1, 2), email="Per@Example.no")
    by_account = f.add_contact(empty_dbs, started_on=date(2026, 1, 3), account_id=account)
    free = f.add_contact(empty_dbs, started_on=date(2026, 1, 4), email="liv@example.no")
    contact_hold = hold(empty_dbs, contact_id=by_contact)
    email_hold = hold(empty_dbs, email="per@example.no")
    owner_hold = hold(empty_dbs, email="KARI@example.no")

    frame = retention.support_contacts_past_retention(empty_dbs, AS_OF)
    held = dict(zip(frame["contact_id"], frame["hold_ids"], strict=True))

    assert held == {
        by_contact: str(contact_hold),
        by_email: str(email_hold),
        by_account: str(owner_hold),
        free: None,
    }
    assert frame["on_hold"].tolist() == [True, True, True, False]
    assert frame["account_id"].tolist() == [None, None, account, None]


# --- R15 invoices ----------------------------------------------------------------------------


def test_r15_invoice_kept_through_end_of_fifth_financial_year(empty_dbs):
    invoice = f.add_invoice(empty_dbs, issued_on=date(2024, 3, 15))

    kept = retention.invoices_past_retention(empty_dbs, date(2029, 12, 31))
    due = retention.invoices_past_retention(empty_dbs, date(2030, 1, 1))

    assert kept.empty
    assert due["invoice_id"].tolist() == [invoice]
    assert due.iloc[0]["issued_on"] == date(2024, 3, 15)
    assert due.iloc[0]["retained_until"] == date(2029, 12, 31)
    assert retention.count_invoices_past_retention(empty_dbs, date(2029, 12, 31)) == 0
    assert retention.count_invoices_past_retention(empty_dbs, date(2030, 1, 1)) == 1


def test_r15_anonymised_invoices_are_not_listed(empty_dbs):
    named = f.add_invoice(empty_dbs, issued_on=date(2020, 5, 1))
    contact_only = f.add_invoice(empty_dbs, issued_on=date(2020, 6, 1), contact_person="Per Hansen")
    anonymised = f.add_invoice(empty_dbs, issued_on=date(2020, 4, 1))
    with empty_dbs.users.begin() as conn:
        conn.execute(
            update(t.invoices)
            .where(t.invoices.c.id.in_([anonymised, contact_only]))
            .values(customer_name=None)
        )

    frame = retention.invoices_past_retention(empty_dbs, AS_OF)

    assert frame["invoice_id"].tolist() == [named, contact_only]
    assert retention.count_invoices_past_retention(empty_dbs, AS_OF) == 2


def test_r15_oldest_first_cap_and_holds(capped_dbs):
    account = f.add_account(capped_dbs)
    member_held = f.add_account(capped_dbs)
    f.add_member(capped_dbs, member_held, email="Ola@example.no")
    newer = f.add_invoice(capped_dbs, issued_on=date(2020, 2, 1), account_id=account)
    older = f.add_invoice(capped_dbs, issued_on=date(2019, 2, 1), account_id=member_held)
    f.add_invoice(capped_dbs, issued_on=date(2020, 3, 1))
    account_hold = hold(capped_dbs, account_id=account)
    member_hold = hold(capped_dbs, email="ola@example.no")

    frame = retention.invoices_past_retention(capped_dbs, AS_OF)

    assert frame["invoice_id"].tolist() == [older, newer]
    assert frame["retained_until"].tolist() == [date(2024, 12, 31), date(2025, 12, 31)]
    assert frame["hold_ids"].tolist() == [str(member_hold), str(account_hold)]
    assert frame.attrs == {"truncated": True, "total": 3}
    assert frame.columns.tolist() == retention.INVOICE_COLUMNS


def test_r15_split_financial_year(backend, tmp_path):
    for dbs in make_databases(backend, tmp_path, Policy(fiscal_year_end="06-30")):
        invoice = f.add_invoice(dbs, issued_on=date(2024, 3, 15))  # year ends 2024-06-30

        assert retention.invoices_past_retention(dbs, date(2029, 6, 30)).empty
        due = retention.invoices_past_retention(dbs, date(2029, 7, 1))
        assert due["invoice_id"].tolist() == [invoice]
        assert due.iloc[0]["retained_until"] == date(2029, 6, 30)
