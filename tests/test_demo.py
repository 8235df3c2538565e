"""The demo data set: deterministic, and every situation the pages show is present.

Most tests share one small data set generated on SQLite as of SEED_AS_OF and recompute
what they check straight from the rows with the pure rules (RULES.md), independently of
the query modules. One test generates the same data on every backend.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from contextlib import closing
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from data_access import audit, breaches, demo, rules
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.clock import oslo_date
from data_access.engines import Databases
from data_access.settings import STORES, load_settings
from tests import seeded
from tests.conftest import SEED_AS_OF, TEST_PSEUDONYM_KEY

POLICY_RECIPIENTS = (
    "US payment processor",
    "Google Analytics",
    "Facebook Pixel",
    "Website provider",
)
SOCIAL_MEDIA = ("Facebook", "YouTube", "Instagram", "LinkedIn")
OPEN_STATUSES = ("received", "awaiting_identity", "in_progress", "extended")


def _sqlite(tmp_dir) -> Databases:
    return Databases.from_urls(
        **{s: f"sqlite:///{tmp_dir / f'{s}.sqlite'}" for s in STORES},
        pseudonym_key=TEST_PSEUDONYM_KEY,
    )


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """(databases, rows per table) of the small demo data as of SEED_AS_OF, seed 42."""
    dbs = _sqlite(tmp_path_factory.mktemp("demo"))
    counts = demo.generate(dbs, scale="small", seed=42, as_of=SEED_AS_OF)
    yield dbs, counts
    dbs.dispose()


def _rows(engine, table, order=None) -> list[dict]:
    query = select(table).order_by(*(order or list(table.primary_key.columns)))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def _digest(rows: list[dict]) -> str:
    """A hash of rows whose values print the same on every backend."""

    def norm(value):
        if isinstance(value, Decimal):
            return str(value.quantize(Decimal("0.01")))
        if isinstance(value, datetime | date):
            return value.isoformat()
        return value

    text = json.dumps([{k: norm(v) for k, v in row.items()} for row in rows], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


DIGEST_TABLES = (
    ("users", t.accounts),
    ("users", t.invoices),
    ("consent", t.consent_events),
    ("support", t.contacts),
    ("support", t.data_subject_requests),
    ("ledger", lt.request_cases),
    ("ledger", lt.notices),
)


def _digests(dbs: Databases) -> dict[str, str]:
    return {table.name: _digest(_rows(dbs.engine(store), table)) for store, table in DIGEST_TABLES}


# --- sizes and determinism ------------------------------------------------------------------


def test_small_scale_row_counts(demo_data):
    _, counts = demo_data
    assert counts["users.accounts"] == 2_000
    assert counts["consent.newsletter_subscribers"] == 600
    assert counts["support.contacts"] == 2_000
    assert counts["support.data_subject_requests"] == 100
    assert counts["ledger.legal_holds"] == 6
    assert counts["ledger.recipients"] == 8
    assert counts["consent.notice_versions"] == 12
    # Targets scaled from the large scale (about 2 invoices, 5 sessions, 10 consent events
    # and 0.3 members per account).
    assert 3_600 <= counts["users.invoices"] <= 4_400
    assert 9_000 <= counts["users.usage_sessions"] <= 11_000
    assert 19_000 <= counts["consent.consent_events"] <= 21_000
    assert 450 <= counts["users.account_members"] <= 750


def test_same_seed_and_as_of_give_identical_rows(demo_data, tmp_path):
    dbs, _ = demo_data
    again = _sqlite(tmp_path)
    demo.generate(again, scale="small", seed=42, as_of=SEED_AS_OF)
    assert _digests(again) == _digests(dbs)
    again.dispose()


def test_another_seed_gives_other_people(demo_data, tmp_path):
    dbs, _ = demo_data
    other = _sqlite(tmp_path)
    demo.generate(other, scale="small", seed=7, as_of=SEED_AS_OF)
    first = {r["email"] for r in _rows(dbs.users, t.accounts)}
    second = {r["email"] for r in _rows(other.users, t.accounts)}
    assert len(first & second) < 20
    other.dispose()


def test_generate_refuses_databases_with_rows(demo_data):
    dbs, counts = demo_data
    with pytest.raises(demo.DemoDataExists) as refused:
        demo.generate(dbs, scale="small", seed=42, as_of=SEED_AS_OF)
    assert "users.accounts" in refused.value.tables
    with dbs.users.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.accounts)).scalar() == 2_000


def test_unknown_scale_is_refused(sqlite_dbs):
    with pytest.raises(ValueError, match="huge"):
        demo.generate(sqlite_dbs, scale="huge")


def test_small_data_on_every_backend_matches_sqlite(empty_dbs, demo_data):
    sqlite_dbs, sqlite_counts = demo_data
    counts = demo.generate(empty_dbs, scale="small", seed=42, as_of=SEED_AS_OF)
    assert counts == sqlite_counts
    assert _digests(empty_dbs) == _digests(sqlite_dbs)
    assert audit.verify_chain(empty_dbs) == (True, None)
    # The dashboard's own inserts (a withdrawal, R23; a hold, R17) get fresh ids.
    with empty_dbs.consent.begin() as conn:
        new_id = conn.execute(
            insert(t.consent_events).values(
                account_id=1,
                purpose="usage_statistics",
                action="withdrawn",
                occurred_at=datetime(2026, 11, 29, 10),
                source="dpo_dashboard",
            )
        ).inserted_primary_key[0]
    assert new_id == counts["consent.consent_events"] + 1
    with empty_dbs.ledger.begin() as conn:
        hold_id = conn.execute(
            insert(lt.legal_holds).values(
                scope="account",
                account_id=1,
                reason="Test",
                case_ref="T-1",
                owner="dpo@x",
                placed_by="dpo@x",
                placed_on=SEED_AS_OF,
                review_on=date(2027, 11, 29),
            )
        ).inserted_primary_key[0]
    assert hold_id == 7


# --- people ---------------------------------------------------------------------------------


def test_norwegian_names_with_ae_oe_aa_and_ascii_emails(demo_data):
    dbs, _ = demo_data
    accounts = _rows(dbs.users, t.accounts)
    names = " ".join(a["full_name"] for a in accounts)
    assert {"æ", "ø", "å"} <= set(names.lower())
    emails = [a["email"] for a in accounts]
    assert all(e.isascii() and "@" in e for e in emails)
    assert len({e.lower() for e in emails}) == len(emails)
    # ASCII folding: Jørgen -> jorgen, Håkon -> hakon.
    folded = [a for a in accounts if a["full_name"].startswith("Jørgen ")]
    assert folded and all(
        "jorgen" in a["email"].lower() or a["email"].lower().startswith("j") for a in folded
    )


def test_some_emails_are_typed_in_mixed_case_in_every_person_table(demo_data):
    dbs, _ = demo_data
    for engine, table, column in (
        (dbs.users, t.accounts, "email"),
        (dbs.users, t.account_members, "email"),
        (dbs.consent, t.newsletter_subscribers, "email"),
        (dbs.consent, t.consent_events, "email"),
        (dbs.support, t.contacts, "email"),
    ):
        values = [r[column] for r in _rows(engine, table) if r[column]]
        mixed = [v for v in values if v != v.lower()]
        assert mixed, f"{table.name}.{column} has no mixed-case e-mail"


def test_professional_accounts_have_company_contact_person_and_members(demo_data):
    dbs, _ = demo_data
    accounts = {a["id"]: a for a in _rows(dbs.users, t.accounts)}
    members = _rows(dbs.users, t.account_members)
    pro = [a for a in accounts.values() if a["account_type"] == "professional"]
    assert pro and all(a["company_name"] and a["contact_person"] for a in pro)
    assert all(
        a["company_name"] is None for a in accounts.values() if a["account_type"] == "personal"
    )
    per_account: dict[int, list[dict]] = {}
    for m in members:
        per_account.setdefault(m["account_id"], []).append(m)
    assert set(per_account) == {a["id"] for a in pro}
    assert {len(v) for v in per_account.values()} <= set(range(1, 11))
    assert {m["role"] for m in members} == {"admin", "member"}
    later = [
        a
        for a in pro
        if a["last_active_at"]
        and any(
            m["last_active_at"] and m["last_active_at"] > a["last_active_at"]
            for m in per_account[a["id"]]
        )
    ]
    assert later, "no member was active after the account owner"


# --- R13 stages -----------------------------------------------------------------------------


def _r13_stages(dbs: Databases, as_of: date, within_days: int) -> dict[int, str]:
    """The R13 stage of every account nearing deletion, computed from the rows."""
    policy = dbs.policy
    accounts = _rows(dbs.users, t.accounts)
    last = {a["id"]: max(filter(None, [a["created_at"], a["last_active_at"]])) for a in accounts}
    member_emails: dict[int, set[str]] = {}
    for m in _rows(dbs.users, t.account_members):
        member_emails.setdefault(m["account_id"], set()).add(m["email"].strip().lower())
        if m["last_active_at"]:
            last[m["account_id"]] = max(last[m["account_id"]], m["last_active_at"])
    notices: dict[int, date] = {}
    for n in _rows(dbs.ledger, lt.notices):
        notices[n["account_id"]] = max(notices.get(n["account_id"], n["sent_on"]), n["sent_on"])
    holds = [h for h in _rows(dbs.ledger, lt.legal_holds) if h["released_on"] is None]
    held_accounts = {h["account_id"] for h in holds if h["scope"] == "account"}
    held_emails = {h["email"].lower() for h in holds if h["scope"] == "email"}
    stages = {}
    for a in accounts:
        last_on = oslo_date(last[a["id"]])
        eligible = rules.account_eligible_on(last_on, policy.account_inactivity_months)
        sent = notices.get(a["id"])
        valid = rules.notice_is_valid(sent, last_on)
        deletable = (
            rules.account_deletable_on(eligible, sent, policy.notice_days) if valid else None
        )
        if (deletable or eligible) > as_of + timedelta(days=within_days):
            continue
        emails = {a["email"].lower()} | member_emails.get(a["id"], set())
        if a["id"] in held_accounts or emails & held_emails:
            stage = "on_hold"
        elif valid:
            stage = "ready" if as_of >= deletable else "notified"
        elif as_of >= eligible - timedelta(days=policy.notice_days):
            stage = "notice_due"
        else:
            stage = "upcoming"
        stages[a["id"]] = stage
    return stages


def test_r13_every_stage_is_present(demo_data):
    dbs, _ = demo_data
    within_30 = _r13_stages(dbs, SEED_AS_OF, 30)
    within_90 = _r13_stages(dbs, SEED_AS_OF, 90)
    for stage in ("notice_due", "notified", "ready", "on_hold"):
        assert list(within_30.values()).count(stage) >= 3, stage
    assert "upcoming" not in within_30.values()
    assert list(within_90.values()).count("upcoming") >= 6
    # The account hold, the owner's e-mail hold, the member's e-mail hold and the hold
    # past its review date each cover one account; the released hold covers none.
    assert list(within_30.values()).count("on_hold") == 4


def test_r13_accounts_far_past_never_active_and_voided_notices(demo_data):
    dbs, _ = demo_data
    accounts = {a["id"]: a for a in _rows(dbs.users, t.accounts)}
    members_last: dict[int, datetime] = {}
    for m in _rows(dbs.users, t.account_members):
        if m["last_active_at"]:
            members_last[m["account_id"]] = max(
                members_last.get(m["account_id"], m["last_active_at"]), m["last_active_at"]
            )
    never = [
        a for a in accounts.values() if a["last_active_at"] is None and a["id"] not in members_last
    ]
    assert len(never) >= 10
    year_ago = SEED_AS_OF - timedelta(days=365)

    def last_on(a):
        return oslo_date(
            max(filter(None, [a["created_at"], a["last_active_at"], members_last.get(a["id"])]))
        )

    assert sum(last_on(a) < year_ago - timedelta(days=365) for a in accounts.values()) >= 10
    just_past = [
        a for a in accounts.values() if year_ago - timedelta(days=30) <= last_on(a) < year_ago
    ]
    assert just_past
    voided = [
        n
        for n in _rows(dbs.ledger, lt.notices)
        if n["sent_on"] <= last_on(accounts[n["account_id"]])
    ]
    assert len(voided) >= 3
    # The voided notice was valid when sent: it was based on an earlier activity.
    assert all(n["last_activity_on"] < n["sent_on"] for n in voided)
    assert all(
        oslo_date(accounts[n["account_id"]]["created_at"]) <= n["last_activity_on"]
        for n in _rows(dbs.ledger, lt.notices)
    )


def test_r13_notices_have_delivered_letters_and_audit_entries(demo_data):
    dbs, counts = demo_data
    notices = _rows(dbs.ledger, lt.notices)
    outbox = {m["id"]: m for m in _rows(dbs.ledger, lt.outbox)}
    assert len(notices) == counts["ledger.notices"] > 20
    for n in notices:
        message = outbox[n["outbox_id"]]
        assert message["kind"] == "inactivity_notice" and message["status"] == "sent"
        assert n["deletable_on"].isoformat() in message["subject"]
        assert n["sent_on"] < SEED_AS_OF
    sent_entries = [
        e for e in _rows(dbs.ledger, lt.audit_log) if e["action"] == "send_deletion_notices"
    ]
    assert len(sent_entries) == len(notices)


# --- R15, R16, R17 --------------------------------------------------------------------------


def test_r15_invoices_over_seven_financial_years_some_past_retention(demo_data):
    dbs, _ = demo_data
    invoices = _rows(dbs.users, t.invoices)
    years = {i["issued_on"].year for i in invoices}
    assert years == set(range(SEED_AS_OF.year - 7, SEED_AS_OF.year + 1))
    cutoff = rules.invoice_issued_cutoff(SEED_AS_OF)
    assert cutoff == date(2020, 12, 31)
    past = [i for i in invoices if i["issued_on"] <= cutoff]
    assert any(i["customer_name"] for i in past), "nothing left to anonymise"
    anonymised = [i for i in invoices if i["customer_name"] is None]
    assert anonymised and all(
        i["issued_on"] <= cutoff and i["contact_person"] is None for i in anonymised
    )
    assert any(i["account_id"] is None for i in invoices)
    assert any(i["contact_person"] for i in invoices if i["account_id"] is not None)
    assert all(i["currency"] == "NOK" and isinstance(i["amount"], Decimal) for i in invoices)
    assert {i["amount"] for i in invoices} >= {Decimal("123.75")}  # 99 NOK + 25 % VAT
    assert all(i["issued_on"] < SEED_AS_OF for i in invoices)


def test_r16_contacts_older_than_six_months_on_every_channel(demo_data):
    dbs, _ = demo_data
    contacts = _rows(dbs.support, t.contacts)
    old = {
        c["channel"]
        for c in contacts
        if SEED_AS_OF > rules.support_contact_retained_until(oslo_date(c["started_at"]))
    }
    assert old == {"chat", "email", "phone"}
    oldest = min(oslo_date(c["started_at"]) for c in contacts)
    assert oldest >= rules.add_months(SEED_AS_OF, -18)
    phones = [c for c in contacts if c["channel"] == "phone"]
    assert all(c["phone"].startswith("+47") for c in phones)
    assert sum(1 for c in phones if c["location"]) > len(phones) / 2
    assert any(c["account_id"] for c in contacts)
    assert any(any(ch in (c["summary"] or "") for ch in "æøå") for c in contacts)


def test_r17_six_legal_holds_of_every_kind(demo_data):
    dbs, _ = demo_data
    holds = _rows(dbs.ledger, lt.legal_holds)
    active = [h for h in holds if h["released_on"] is None]
    assert sorted(h["scope"] for h in holds) == [
        "account",
        "account",
        "account",
        "contact",
        "email",
        "email",
    ]
    assert len(active) == 5
    assert sum(1 for h in active if h["review_on"] < SEED_AS_OF) == 1
    emails = {h["email"] for h in holds if h["scope"] == "email"}
    owners = {a["email"].lower() for a in _rows(dbs.users, t.accounts)}
    members = {m["email"].lower() for m in _rows(dbs.users, t.account_members)}
    assert len(emails & owners) == 1 and len(emails & members) == 1
    contact_id = next(h["contact_id"] for h in holds if h["scope"] == "contact")
    with dbs.support.connect() as conn:
        started = conn.execute(
            select(t.contacts.c.started_at).where(t.contacts.c.id == contact_id)
        ).scalar_one()
    assert rules.support_contact_retained_until(oslo_date(started)) < SEED_AS_OF
    assert all(h["subject_ref"] == audit.keyed_hash(dbs, h["email"]) for h in holds if h["email"])


# --- requests (R1-R8) -----------------------------------------------------------------------


def _request_states(dbs: Databases, as_of: date) -> list[dict]:
    """Intake rows with their case status and R2-R5 deadline."""
    cases = {c["request_id"]: c for c in _rows(dbs.ledger, lt.request_cases)}
    out = []
    for req in _rows(dbs.support, t.data_subject_requests):
        case = cases.get(req["id"])
        received = oslo_date(req["received_at"])
        paused = 0
        if (
            case
            and case["identity_requested_on"]
            and (case["identity_requested_on"] - received).days <= 3
        ):
            until = case["identity_confirmed_on"] or as_of
            paused = (until - case["identity_requested_on"]).days
        due = rules.dsr_due_date(received, paused_days=paused)
        if case and case["extended"]:
            assert case["extension_reason"] and case["extension_notified_on"] <= due
            due = rules.dsr_due_date(received, extended=True, paused_days=paused)
        out.append(
            {
                **req,
                "received_on": received,
                "case": case,
                "status": case["status"] if case else "received",
                "due_on": due,
            }
        )
    return out


def test_requests_of_every_type_and_every_status(demo_data):
    dbs, _ = demo_data
    states = _request_states(dbs, SEED_AS_OF)
    assert {s["request_type"] for s in states} == set(t.REQUEST_TYPES)
    assert {s["status"] for s in states} == set(OPEN_STATUSES) | {
        "completed",
        "refused",
        "withdrawn",
    }
    assert {s["channel"] for s in states} == set(t.CHANNELS)
    received = [s["received_on"] for s in states]
    assert min(received) >= SEED_AS_OF - timedelta(days=731) and max(received) < SEED_AS_OF
    old = [s for s in states if s["received_on"] < SEED_AS_OF - timedelta(days=90)]
    closed = [s for s in old if s["status"] not in OPEN_STATUSES]
    assert len(closed) >= 0.95 * len(old)


def test_r5_r8_open_requests_overdue_due_soon_and_awaiting_identity(demo_data):
    dbs, _ = demo_data
    open_ = [s for s in _request_states(dbs, SEED_AS_OF) if s["status"] in OPEN_STATUSES]
    awaiting = [s for s in open_ if s["status"] == "awaiting_identity"]
    overdue = [s for s in open_ if s["status"] != "awaiting_identity" and SEED_AS_OF > s["due_on"]]
    due_soon = [s for s in open_ if 0 <= (s["due_on"] - SEED_AS_OF).days < 5]
    assert awaiting and overdue and due_soon
    for s in awaiting:
        case = s["case"]
        assert case["identity_confirmed_on"] is None
        assert 0 <= (case["identity_requested_on"] - s["received_on"]).days <= 3
    assert any(s["status"] == "received" and s["due_on"] < SEED_AS_OF for s in open_)
    assert any(s["status"] == "extended" for s in open_)


def test_r7_duplicate_and_repeated_requests_from_one_person(demo_data):
    dbs, _ = demo_data
    states = _request_states(dbs, SEED_AS_OF)
    by_person: dict[tuple[str, str], list[date]] = {}
    for s in states:
        by_person.setdefault((s["subject_email"].lower(), s["request_type"]), []).append(
            s["received_on"]
        )
    repeated = [sorted(days) for days in by_person.values() if len(days) >= 3]
    assert any((d[-1] - d[-2]).days <= 30 and (d[-2] - d[0]).days >= 365 for d in repeated)


def test_r1_request_received_before_midnight_utc_counts_from_the_oslo_day(demo_data):
    dbs, _ = demo_data
    late = [r for r in _rows(dbs.support, t.data_subject_requests) if r["received_at"].hour == 23]
    assert late
    assert all(
        oslo_date(r["received_at"]) == r["received_at"].date() + timedelta(days=1) for r in late
    )


def test_r11_completed_erasures_have_closed_recipient_tasks(demo_data):
    dbs, _ = demo_data
    cases = {c["request_id"]: c for c in _rows(dbs.ledger, lt.request_cases)}
    intake = {r["id"]: r for r in _rows(dbs.support, t.data_subject_requests)}
    tasks = _rows(dbs.ledger, lt.recipient_tasks)
    done = [
        i
        for i, c in cases.items()
        if c["status"] == "completed"
        and intake[i]["request_type"] in ("erasure", "rectification", "restriction")
    ]
    assert done
    for request_id in done:
        mine = [task for task in tasks if task["request_id"] == request_id]
        assert sorted(task["recipient"] for task in mine) == sorted(POLICY_RECIPIENTS)
        assert all(task["status"] in ("sent", "not_possible") for task in mine)
        assert all(task["reason"] for task in mine if task["status"] == "not_possible")


# --- consent (R20-R22) ----------------------------------------------------------------------


def test_r20_consent_events_for_all_purposes_both_actions_ids_in_time_order(demo_data):
    dbs, _ = demo_data
    events = _rows(dbs.consent, t.consent_events)
    pairs = {(e["purpose"], e["action"]) for e in events}
    assert pairs == {(p, a) for p in t.CONSENT_PURPOSES for a in ("granted", "withdrawn")}
    assert all(
        a["occurred_at"] <= b["occurred_at"] for a, b in zip(events, events[1:], strict=False)
    )
    assert {e["source"] for e in events} == {
        "signup_form",
        "app_settings",
        "cookie_banner",
        "newsletter_form",
        "unsubscribe_link",
        "support",
    }
    usage = [e for e in events if e["purpose"] == "usage_statistics"]
    assert all(e["account_id"] and e["email"] is None for e in usage)
    assert all(
        e["email"] and e["account_id"] is None for e in events if e["purpose"] == "newsletter"
    )
    web = [e for e in events if e["purpose"] in ("website_statistics", "marketing")]
    assert all(e["visitor_id"] for e in web) and any(e["account_id"] for e in web)
    assert all(e["occurred_at"] < datetime.combine(SEED_AS_OF, datetime.min.time()) for e in events)


def test_notice_versions_carry_the_sha256_of_their_text(demo_data):
    dbs, _ = demo_data
    versions = _rows(dbs.consent, t.notice_versions)
    assert {v["purpose"] for v in versions} == set(t.CONSENT_PURPOSES)
    assert all(v["text_sha256"] == hashlib.sha256(v["text"].encode()).hexdigest() for v in versions)
    used = {e["notice_version"] for e in _rows(dbs.consent, t.consent_events)}
    assert used == {v["version"] for v in versions}


def _state_on(events: list[dict], day: date) -> str | None:
    """R20: the action of the latest event on or before the Oslo date `day`."""
    state = None
    for e in events:  # in id order
        if oslo_date(e["occurred_at"]) <= day:
            state = e["action"]
    return state


def test_r22_sessions_without_consent_and_subscribers_without_consent(demo_data):
    dbs, _ = demo_data
    events = _rows(dbs.consent, t.consent_events)
    by_account: dict[int, list[dict]] = {}
    by_email: dict[str, list[dict]] = {}
    for e in events:
        if e["purpose"] == "usage_statistics":
            by_account.setdefault(e["account_id"], []).append(e)
        elif e["purpose"] == "newsletter":
            by_email.setdefault(e["email"].lower(), []).append(e)
    sessions = _rows(dbs.users, t.usage_sessions)
    without = [
        s
        for s in sessions
        if _state_on(by_account.get(s["account_id"], []), oslo_date(s["started_at"])) != "granted"
    ]
    assert 5 <= len(without) <= 0.1 * len(sessions)
    subscribers = _rows(dbs.consent, t.newsletter_subscribers)
    active = [s for s in subscribers if s["unsubscribed_at"] is None]
    lacking = [
        s
        for s in active
        if _state_on(by_email.get(s["email"].lower(), []), SEED_AS_OF) != "granted"
    ]
    assert 3 <= len(lacking) <= 0.05 * len(active)
    features = {s["feature"] for s in sessions}
    assert {"brew_log", "keg_monitor", "airlock_dashboard", "recipe_editor", "alerts"} <= features


# --- register (R24, R30, R31) and audit (R18) --------------------------------------------


def test_r31_recipients_seeded_from_the_policy_with_findings(demo_data):
    dbs, _ = demo_data
    register = {r["name"]: r for r in _rows(dbs.ledger, lt.recipients)}
    settings = load_settings()
    assert set(register) == set(settings.policy_facts.recipients) | set(
        settings.policy_facts.social_media
    )
    payment = register["US payment processor"]
    assert (
        payment["legal_name"] is None
        and payment["country"] == "US"
        and payment["role"] == "processor"
    )
    assert register["Google Analytics"]["transfer_mechanism"] == "dpf"
    assert (SEED_AS_OF - register["Google Analytics"]["dpf_checked_on"]).days > 90
    assert register["Website provider"]["dpa_signed_on"] is None
    assert register["Facebook Pixel"]["last_review_on"] < rules.add_months(SEED_AS_OF, -12)
    for name in SOCIAL_MEDIA:
        assert (
            register[name]["role"] == "joint_controller" and not register[name]["named_in_policy"]
        )
    assert all(register[n]["named_in_policy"] for n in POLICY_RECIPIENTS)


def test_r24_cookie_register_facts(demo_data):
    dbs, _ = demo_data
    cookies = {c["name"]: c for c in _rows(dbs.ledger, lt.cookies)}
    assert (
        cookies["_ga"]["category"],
        cookies["_ga"]["lifetime_days"],
        cookies["_ga"]["consent_required"],
    ) == ("statistics", 730, True)
    assert cookies["_ga_<container-id>"]["lifetime_days"] == 730
    for name in ("_fbp", "_fbc"):
        assert (
            cookies[name]["category"],
            cookies[name]["lifetime_days"],
            cookies[name]["consent_required"],
        ) == ("marketing", 90, True)
    necessary = [c for c in cookies.values() if c["category"] == "strictly_necessary"]
    assert len(necessary) == 3 and not any(c["consent_required"] for c in necessary)


def test_r30_record_of_processing_one_entry_per_purpose(demo_data):
    dbs, _ = demo_data
    activities = {a["name"]: a for a in _rows(dbs.ledger, lt.processing_activities)}
    assert len(activities) == 6
    assert activities["Invoicing and bookkeeping"]["legal_basis"] == "art. 6(1)(c)"
    assert activities["Newsletter"]["legal_basis"] == "art. 6(1)(a)"
    assert activities["Customer accounts"]["legal_basis"] == "art. 6(1)(b)"
    assert "12 months" in activities["Customer accounts"]["retention_rule"]
    assert "5 years" in activities["Invoicing and bookkeeping"]["retention_rule"]
    assert "6 months" in activities["Customer service and sales"]["retention_rule"]
    assert all(a["security_measures"] and a["data_categories"] for a in activities.values())


def test_r18_audit_chain_intact_and_pseudonymous(demo_data):
    dbs, counts = demo_data
    assert audit.verify_chain(dbs) == (True, None)
    entries = _rows(dbs.ledger, lt.audit_log)
    # + holds, release, and one entry per step of each demo breach
    expected = (
        counts["ledger.notices"]
        + counts["ledger.request_events"]
        + 6
        + 1
        + counts["ledger.breach_events"]
    )
    assert len(entries) == counts["ledger.audit_log"] == expected
    assert all("@" not in (e["target"] or "") + (e["details"] or "") for e in entries)
    times = [e["occurred_at"] for e in entries]
    assert times == sorted(times)
    assert {e["action"] for e in entries} >= {
        "place_hold",
        "release_hold",
        "send_deletion_notices",
        "complete_request",
        "request_identity",
        "log_breach",
        "close_breach",
    }


# --- first start and command line -----------------------------------------------------------


def _config(tmp_path) -> str:
    path = tmp_path / "config.toml"
    path.write_text('[databases]\ndemo_dir = "data"\n', encoding="utf-8")
    return str(path)


def test_ensure_demo_data_generates_once(tmp_path):
    settings = load_settings(_config(tmp_path), environ={})
    assert settings.demo_mode
    assert demo.ensure_demo_data(settings) is True
    assert demo.ensure_demo_data(settings) is False
    dbs = Databases.from_settings(settings)
    with dbs.users.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.accounts)).scalar() == 2_000
    dbs.dispose()


def test_ensure_demo_data_two_starts_at_once_generate_once(tmp_path):
    settings = load_settings(_config(tmp_path), environ={})
    results: list[bool] = []
    messages: list[str] = []
    starts = [
        threading.Thread(
            target=lambda: results.append(
                demo.ensure_demo_data(settings, progress=lambda f, m: messages.append(m))
            )
        )
        for _ in range(2)
    ]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join()
    assert sorted(results) == [False, True]
    assert messages[-1] == "Demo data ready"


def test_ensure_demo_data_regenerates_an_interrupted_first_start(tmp_path):
    settings = load_settings(_config(tmp_path), environ={})
    dbs = Databases.from_settings(settings)

    def stop(_fraction, _message):
        raise KeyboardInterrupt  # the process stops as the first rows are planned

    with pytest.raises(KeyboardInterrupt):
        demo.generate(dbs, progress=stop)  # files exist, accounts empty
    dbs.dispose()
    assert settings.demo_mode
    assert demo.ensure_demo_data(settings) is True


def test_ensure_demo_data_never_touches_other_databases(tmp_path):
    other = tmp_path / "company.sqlite"
    settings = load_settings(_config(tmp_path), environ={"DPO_USERS_URL": f"sqlite:///{other}"})
    assert not settings.demo_mode
    assert demo.ensure_demo_data(settings) is False
    assert not other.exists() and not (tmp_path / "data").exists()


def test_cli_refuses_to_write_over_rows_without_replace(tmp_path, monkeypatch, capsys):
    for store in STORES:
        monkeypatch.delenv(f"DPO_{store.upper()}_URL", raising=False)
    config = _config(tmp_path)
    args = ["--config", config, "--scale", "small", "--seed", "42", "--as-of", "2026-11-29"]
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert "users.accounts" in out and "2,000" in out
    assert demo.main(args) == 1
    assert "already have rows" in capsys.readouterr().err
    anchors = tmp_path / "data" / "audit-anchors.log"
    assert anchors.read_text().count("\n") == 1  # the new chain's first anchor (R18)
    assert demo.main([*args, "--seed", "7", "--replace"]) == 0
    settings = load_settings(config, environ={})
    dbs = Databases.from_settings(settings)
    with dbs.users.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.accounts)).scalar() == 2_000
    # The old demo's anchors went with its ledger; the new one is anchored and intact.
    assert dbs.anchors_file == anchors and anchors.read_text().count("\n") == 1
    report = audit.verify_chain(dbs)
    assert report == (True, None) and report.warnings == ()
    assert report.anchor.entries == report.entries > 0
    dbs.dispose()


def test_cli_replace_is_refused_outside_the_demo_files(tmp_path, monkeypatch, capsys):
    company = tmp_path / "company.sqlite"
    company.write_bytes(b"")
    monkeypatch.setenv("DPO_USERS_URL", f"sqlite:///{company}")
    assert demo.main(["--config", _config(tmp_path), "--replace"]) == 2
    assert "only recreates the demo SQLite files" in capsys.readouterr().err
    assert company.exists()


def test_r18_append_many_builds_the_chain_append_would(tmp_path):
    """The bulk append the demo history uses gives the very hashes of one-by-one appends."""
    entries = [
        {
            "actor": "dpo@plaato.example",
            "action": "complete_request",
            "rule": "R9",
            "store": "ledger",
            "subject_ref": "ab" * 32,
            "target": f"request:{i}",
            "counts": {"request_events": 1},
            "details": {"effective_on": date(2026, 11, i + 1)},
            "now": datetime(2026, 11, i + 1, 9, 30),
        }
        for i in range(7)
    ]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one_by_one, bulk = _sqlite(tmp_path / "a"), _sqlite(tmp_path / "b")
    for dbs in (one_by_one, bulk):
        dbs.create_all()
    with one_by_one.ledger.begin() as conn:
        for entry in entries:
            audit.append(conn, **entry)
    with bulk.ledger.begin() as conn:
        assert audit.append_many(conn, entries[:3], chunk=2) == 3
    with bulk.ledger.begin() as conn:
        audit.append_many(conn, entries[3:])
    hashes = [[r["hash"] for r in _rows(d.ledger, lt.audit_log)] for d in (one_by_one, bulk)]
    assert hashes[0] == hashes[1] and len(hashes[0]) == 7
    heads = [_rows(d.ledger, lt.audit_head) for d in (one_by_one, bulk)]
    assert heads[0] == heads[1] and heads[0][0]["entries"] == 7
    assert audit.verify_chain(bulk) == (True, None)
    for dbs in (one_by_one, bulk):
        dbs.dispose()


# --- what counts as demo mode (RULES.md R41) ----------------------------------------------------


def _demo_settings(config_dir: Path, demo_dir: str):
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "config.toml"
    path.write_text(f"[databases]\ndemo_dir = {demo_dir!r}\n", encoding="utf-8")
    return load_settings(path, environ={})


@pytest.fixture(scope="module")
def generated_demo(tmp_path_factory) -> Path:
    """A folder the generator filled (tiny: only the marker and empty files matter here)."""
    folder = tmp_path_factory.mktemp("generated")
    dbs = _sqlite(folder)
    with pytest.raises(KeyboardInterrupt):
        demo.generate(dbs, progress=lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    dbs.dispose()
    return folder


def test_r41_the_generators_files_are_demo_mode_and_a_first_start_too(generated_demo, tmp_path):
    assert (generated_demo / "demo-files.json").is_file()
    assert _demo_settings(tmp_path / "a", str(generated_demo)).demo_mode
    assert _demo_settings(tmp_path / "b", "data").demo_mode  # nothing there yet


def test_r41_real_databases_outside_the_project_are_not_demo_mode(tmp_path):
    real = tmp_path / "srv" / "real"
    real.mkdir(parents=True)
    for store in STORES:  # real SQLite databases under the demo names, no marker
        sqlite3.connect(real / f"{store}.sqlite").close()
    settings = _demo_settings(tmp_path / "app" / "conf", "../../srv/real")
    assert settings.urls["users"] == f"sqlite:///{real / 'users.sqlite'}"
    assert settings.demo_mode is False


def test_r41_a_folder_of_links_to_demo_files_is_not_demo_mode(generated_demo, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    for name in [f"{s}.sqlite" for s in STORES] + ["demo-files.json"]:
        (links / name).symlink_to(generated_demo / name)
    assert _demo_settings(tmp_path, str(links)).demo_mode is False
    (tmp_path / "linked-folder").symlink_to(generated_demo, target_is_directory=True)
    assert _demo_settings(tmp_path, "linked-folder").demo_mode is False


def test_r41_a_database_copied_over_a_demo_file_is_not_demo_mode(generated_demo, tmp_path):
    folder = seeded.copy_demo(generated_demo, tmp_path / "demo")  # a copy stays demo data
    assert _demo_settings(tmp_path, str(folder)).demo_mode is True
    (folder / "users.sqlite").unlink()
    with closing(sqlite3.connect(folder / "users.sqlite")) as real:  # not the generator's
        real.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT)")
    assert _demo_settings(tmp_path, str(folder)).demo_mode is False
    (folder / "demo-files.json").write_text('{"application_id": 0}', encoding="utf-8")
    assert _demo_settings(tmp_path, str(folder)).demo_mode is False


def test_r41_files_not_made_by_the_generator_are_named_as_not_demo_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    sqlite3.connect(folder / "users.sqlite").close()
    settings = _demo_settings(tmp_path, "data")
    assert settings.demo_mode is False
    assert settings.not_demo_files() == list(STORES)
    with pytest.raises(ValueError, match="Only the demo SQLite files"):
        demo.remove_demo_files(settings)  # real files are never deleted as demo files
    assert (folder / "users.sqlite").exists()


def test_r51_demo_ledger_has_breaches_of_each_status_with_their_timelines(demo_data):
    dbs, counts = demo_data
    register = breaches.breach_list(dbs, SEED_AS_OF)
    assert set(register["status"]) == set(breaches.STATUSES)
    assert register["status"].value_counts().min() >= 2
    assert counts["ledger.breach_events"] >= len(register) * 2
    # Four clocks still running, one of them run out (a finding); one notified late with reasons.
    running = breaches.radar_items(dbs, SEED_AS_OF)
    assert sorted(running["overdue"].tolist()) == [False, False, False, True]
    late = register[register["notified_late"]]
    assert len(late) == 1
    assert breaches.breach_detail(dbs, int(late["breach_id"].iloc[0]))["delay_reasons"]
