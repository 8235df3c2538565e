"""Finding one person's rows in the four databases (RULES.md R9, R12)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, datetime

import factories as f
import pytest
from conftest import make_databases
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, literal, select
from sqlalchemy.dialects import sqlite

from data_access import audit, holds, identifiers, subjects
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.settings import Policy

DPO = "dpo@plaato.example"
KARI = "Kari.Nordmann@Example.NO"


def add_notice(dbs, account_id: int) -> int:
    return _ledger_insert(
        dbs,
        lt.notices,
        account_id=account_id,
        sent_on=date(2026, 10, 1),
        created_at=datetime(2026, 10, 1, 8),
        actor=DPO,
        last_activity_on=date(2025, 9, 1),
        deletable_on=date(2026, 10, 31),
    )


def add_outbox(dbs, to_email: str) -> int:
    return _ledger_insert(
        dbs,
        lt.outbox,
        created_at=datetime(2026, 10, 1, 8),
        kind="inactivity_notice",
        to_email=to_email,
        subject_ref=audit.keyed_hash(dbs, to_email),
        subject="Kontoen din blir slettet",
        body="Hei",
        status="pending",
        attempts=0,
    )


def add_case(dbs, request_id: int) -> None:
    _ledger_insert(
        dbs,
        lt.request_cases,
        request_id=request_id,
        status="in_progress",
        extended=False,
        updated_at=datetime(2026, 10, 2, 8),
        version=1,
    )


def _ledger_insert(dbs, table, **values) -> int:
    with dbs.ledger.begin() as conn:
        return conn.execute(insert(table).values(**values)).inserted_primary_key[0]


def hold(dbs, **scope) -> int:
    return holds.place_hold(
        dbs,
        **scope,
        reason="Tvist",
        case_ref="SAK-1",
        actor=DPO,
        as_of=date(2026, 10, 1),
        review_on=date(2027, 10, 1),
    )


def ids(frame, column: str = "id") -> list[int]:
    return frame[column].tolist()


def test_r12_finds_every_row_of_the_person_and_no_one_elses(empty_dbs):
    dbs = empty_dbs
    own = f.add_account(dbs, email=KARI)
    other = f.add_account(dbs, email="per@example.no", full_name="Per Hansen")
    lookalike = f.add_account(dbs, email="kari.nordmann@example.com")
    membership = f.add_member(dbs, other, email="kari.nordmann@EXAMPLE.no")
    f.add_member(dbs, own, email="ola@example.no")
    invoice = f.add_invoice(dbs, issued_on=date(2025, 3, 1), account_id=own)
    f.add_invoice(dbs, issued_on=date(2025, 3, 1), account_id=other)
    session = f.add_usage_session(dbs, own, on=date(2026, 5, 1))
    f.add_usage_session(dbs, other, on=date(2026, 5, 1))
    by_account = f.add_consent_event(
        dbs, purpose="usage_statistics", action="granted", on=date(2026, 1, 1), account_id=own
    )
    by_email = f.add_consent_event(
        dbs,
        purpose="newsletter",
        action="granted",
        on=date(2026, 1, 2),
        email="KARI.NORDMANN@example.no",
    )
    f.add_consent_event(
        dbs, purpose="newsletter", action="granted", on=date(2026, 1, 2), email="per@example.no"
    )
    f.add_consent_event(
        dbs, purpose="usage_statistics", action="granted", on=date(2026, 1, 2), account_id=other
    )
    subscriber = f.add_subscriber(dbs, email=" kari.nordmann@example.no")
    f.add_subscriber(dbs, email="kari.nordmann@example.com")
    contact_by_email = f.add_contact(
        dbs, started_on=date(2026, 6, 1), email="kari.nordmann@EXAMPLE.no"
    )
    contact_by_account = f.add_contact(dbs, started_on=date(2026, 6, 2), account_id=own)
    f.add_contact(dbs, started_on=date(2026, 6, 3), email="per@example.no", account_id=other)
    request = f.add_request(
        dbs, received_on=date(2026, 9, 1), subject_email="Kari.Nordmann@example.no"
    )
    other_request = f.add_request(dbs, received_on=date(2026, 9, 1), subject_email="per@example.no")
    notice = add_notice(dbs, own)
    add_notice(dbs, other)
    email_hold = hold(dbs, email="kari.nordmann@example.no")
    account_hold = hold(dbs, account_id=own)
    hold(dbs, account_id=other)
    message = add_outbox(dbs, KARI)
    add_outbox(dbs, "per@example.no")
    add_case(dbs, request)
    add_case(dbs, other_request)

    found = subjects.find_subject(dbs, "  kari.nordmann@example.no ")

    assert list(found) == list(subjects.TABLES)
    assert ids(found["users.accounts"]) == [own]
    assert found["users.accounts"].iloc[0]["email"] == KARI
    assert ids(found["users.account_members"]) == [membership]
    assert ids(found["users.invoices"]) == [invoice]
    assert ids(found["users.usage_sessions"]) == [session]
    assert ids(found["consent.consent_events"]) == [by_account, by_email]
    assert ids(found["consent.newsletter_subscribers"]) == [subscriber]
    assert ids(found["support.contacts"]) == [contact_by_email, contact_by_account]
    assert ids(found["support.data_subject_requests"]) == [request]
    assert ids(found["ledger.notices"]) == [notice]
    assert ids(found["ledger.legal_holds"]) == [email_hold, account_hold]
    assert ids(found["ledger.outbox"]) == [message]
    assert ids(found["ledger.request_cases"], "request_id") == [request]
    assert lookalike not in ids(found["users.accounts"])
    for name, frame in found.items():
        store, table_name = name.split(".")
        table = getattr(lt if store == "ledger" else t, table_name)
        assert frame.columns.tolist() == [c.name for c in table.columns], name
        assert frame.attrs["truncated"] is False


def test_r12_a_member_gets_their_member_rows_not_the_owners_data(empty_dbs):
    account = f.add_account(empty_dbs, email="per@example.no")
    member = f.add_member(empty_dbs, account, email="Ola@Example.no")
    f.add_invoice(empty_dbs, issued_on=date(2025, 3, 1), account_id=account)
    f.add_usage_session(empty_dbs, account, on=date(2026, 5, 1))
    f.add_contact(empty_dbs, started_on=date(2026, 6, 2), account_id=account)

    found = subjects.find_subject(empty_dbs, "ola@example.no")

    assert ids(found["users.account_members"]) == [member]
    assert found["users.account_members"].iloc[0]["account_id"] == account
    assert {name for name, frame in found.items() if not frame.empty} == {"users.account_members"}


def test_r12_non_ascii_and_like_wildcards_match_exactly(empty_dbs):
    stale = f.add_account(empty_dbs, email="STÅLE@EXAMPLE.NO")
    f.add_account(empty_dbs, email="stxle@example.no")
    underscore = f.add_account(empty_dbs, email="OLA_N@example.no")
    f.add_account(empty_dbs, email="olaxn@example.no")
    percent = f.add_account(empty_dbs, email="zoe%x@example.no")
    f.add_account(empty_dbs, email="zoe%%x@example.no")

    assert ids(subjects.find_subject(empty_dbs, "ståle@example.no")["users.accounts"]) == [stale]
    assert ids(subjects.find_subject(empty_dbs, "ola_n@example.no")["users.accounts"]) == [
        underscore
    ]
    assert ids(subjects.find_subject(empty_dbs, "Zoe%x@example.no")["users.accounts"]) == [percent]


@pytest.mark.parametrize("email", ["", "   ", "kari.example.no", "@example.no", "kari@", None])
def test_r12_empty_or_malformed_email_is_refused(sqlite_dbs, email):
    with pytest.raises(ValueError, match="e-mail address"):
        subjects.find_subject(sqlite_dbs, email)


def test_r12_each_table_is_capped(backend, tmp_path):
    for dbs in make_databases(backend, tmp_path, Policy(max_rows=2)):
        own = f.add_account(dbs, email="kari@example.no")
        sessions = [f.add_usage_session(dbs, own, on=date(2026, 5, day)) for day in (1, 2, 3)]
        contacts = [
            f.add_contact(dbs, started_on=date(2026, 6, 1), email=e)
            for e in ("KARI@example.no", "per@example.no", "kari@example.no", "Kari@Example.no")
        ]

        found = subjects.find_subject(dbs, "kari@example.no")

        assert ids(found["users.usage_sessions"]) == sessions[:2]
        assert found["users.usage_sessions"].attrs["truncated"] is True
        assert ids(found["support.contacts"]) == [contacts[0], contacts[2]]
        assert found["support.contacts"].attrs["truncated"] is True
        assert found["users.accounts"].attrs["truncated"] is False


def test_r12_email_condition_narrows_by_index_ranges_on_sqlite():
    condition = subjects.email_condition(t.accounts.c.email, "ka@x.no", "sqlite")
    sql = str(condition.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))

    for start, end in (("ka", "kb"), ("kA", "kB"), ("Ka", "Kb"), ("KA", "KB")):
        assert f"accounts.email >= '{start}' AND accounts.email < '{end}'" in sql
    assert "accounts.email < '!'" in sql
    assert "lower(trim(accounts.email)) LIKE 'ka@x.no'" in sql
    postgres = subjects.email_condition(t.accounts.c.email, "ka@x.no", "postgresql")
    assert ">=" not in str(postgres)


# --- beyond the e-mail column: her phones, and her e-mail inside free text ---------------------


@pytest.mark.parametrize(
    "spelling",
    ["+47 912 34 567", "+4791234567", "0047 912 34 567", "4791234567", "91234567", "912-34-567"],
)
def test_norwegian_phone_spellings_are_one_number(spelling):
    assert identifiers.normalised_phone(spelling) == "91234567"
    assert identifiers.contains_phone(f"Ring tilbake på {spelling}, takk", "91234567")


@pytest.mark.parametrize("value", [None, "", "1881", "+47 1881", "ukjent"])
def test_a_short_or_missing_number_identifies_no_one(value):
    assert identifiers.normalised_phone(value) is None


def test_foreign_numbers_keep_their_country_code():
    assert identifiers.normalised_phone("+46 70 123 45 67") == "+46701234567"
    assert identifiers.normalised_phone("0046701234567") == "+46701234567"
    assert identifiers.contains_phone("tlf. 0046 70 123 45 67", "+46701234567")


@pytest.mark.parametrize(
    "text", ["ordre 1291234567", "912345678", "kunde 91234567890", "faktura INV-0091234567-2"]
)
def test_a_number_inside_a_longer_number_is_not_her_phone(text):
    assert not identifiers.contains_phone(text, "91234567")


def test_her_e_mail_inside_text_is_found_only_as_a_whole_address():
    norm = "kari.nordmann@example.no"
    assert identifiers.contains_email("Skriv til KARI.Nordmann@example.NO.", norm)
    assert identifiers.contains_email("<kari.nordmann@example.no>", norm)
    for other in (
        "xkari.nordmann@example.no",
        "kari.nordmann@example.no.uk",
        "a.kari.nordmann@example.no",
    ):
        assert not identifiers.contains_email(f"fra {other} i går", norm), other
    assert identifiers.redact_email("Kari.Nordmann@example.no og per@example.no", norm) == (
        "[erased] og per@example.no"
    )


def test_a_first_name_alone_is_no_name():
    assert identifiers.normalised_name("Kari") is None
    assert identifiers.normalised_name("  KARI   Nordmann ") == "kari nordmann"
    assert identifiers.contains_name("Samtale med Kari  NORDMANN i dag", "kari nordmann")
    assert not identifiers.contains_name("Kari Nordmannsen ringte", "kari nordmann")


def _plant_her_beyond_email(dbs) -> dict[str, int]:
    """Kari by e-mail with a phone, and the rows that hold her without her e-mail column."""
    own = f.add_account(dbs, email=KARI, full_name="Kari Nordmann")
    rows = {"own": own}
    rows["by_email"] = f.add_contact(
        dbs, started_on=date(2026, 6, 1), email=KARI, phone="+47 912 34 567"
    )
    rows["phone_call"] = f.add_contact(
        dbs, started_on=date(2026, 6, 2), channel="phone", phone="0047 91234567"
    )
    rows["mentioning"] = f.add_contact(
        dbs,
        started_on=date(2026, 6, 3),
        email="per@example.no",
        full_name="Per Hansen",
        summary="Per vil gi tilgang til kari.nordmann@example.no",
    )
    rows["other_request"] = f.add_request(
        dbs, received_on=date(2026, 9, 2), subject_email="per@example.no", subject_name="Per"
    )
    with dbs.support.begin() as conn:
        conn.execute(
            t.data_subject_requests.update()
            .where(t.data_subject_requests.c.id == rows["other_request"])
            .values(details="Gjelder også meldinger til Kari.Nordmann@Example.no")
        )
    add_case(dbs, rows["other_request"])
    # Not her: the same first name and her number's neighbour; her number on a call that
    # names another person; her full name on another number; an address containing hers.
    rows["same_first_name"] = f.add_contact(
        dbs, started_on=date(2026, 6, 4), full_name="Kari Hansen", phone="+47 912 34 568"
    )
    rows["shared_line"] = f.add_contact(
        dbs, started_on=date(2026, 6, 5), full_name="Ola Nordmann", phone="91234567"
    )
    rows["namesake"] = f.add_contact(
        dbs, started_on=date(2026, 6, 6), email=None, full_name="Kari Nordmann", phone="40000000"
    )
    rows["longer_address"] = f.add_contact(
        dbs,
        started_on=date(2026, 6, 7),
        email="ola@example.no",
        summary="fra ikari.nordmann@example.no",
    )
    return rows


def test_r12_her_phone_contacts_and_her_e_mail_in_free_text_are_found(empty_dbs):
    dbs = empty_dbs
    rows = _plant_her_beyond_email(dbs)

    found = subjects.find_subject(dbs, KARI)

    assert ids(found["support.contacts"]) == [
        rows["by_email"],
        rows["phone_call"],
        rows["mentioning"],
    ]
    assert ids(found["support.data_subject_requests"]) == [rows["other_request"]]
    assert found["ledger.request_cases"].empty  # that case is Per's, not hers


def test_r12_lookup_and_the_access_report_find_the_same_rows(empty_dbs):
    from data_access import subject_reports

    dbs = empty_dbs
    rows = _plant_her_beyond_email(dbs)
    found = subjects.find_subject(dbs, KARI)
    assert found["support.contacts"].attrs["mentions_only"] == [rows["mentioning"]]

    report = subject_reports.build_access_report(dbs, KARI, as_of=date(2026, 11, 29))

    assert report.rows == {name: len(frame) for name, frame in found.items()}
    with zipfile.ZipFile(io.BytesIO(report.data)) as archive:
        tables = json.loads(archive.read("data.json"))["tables"]
    for name, frame in found.items():
        key = "request_id" if name == "ledger.request_cases" else "id"
        assert [row[key] for row in tables[name]] == ids(frame, key), name
    # Per's rows are in it for the text about her, without who Per is (art. 15(4)).
    per_contact = next(r for r in tables["support.contacts"] if r["id"] == rows["mentioning"])
    assert (per_contact["full_name"], per_contact["email"]) == (None, None)
    assert per_contact["summary"] == "Per vil gi tilgang til kari.nordmann@example.no"
    (per_request,) = tables["support.data_subject_requests"]
    assert (per_request["subject_email"], per_request["subject_name"]) == (None, None)
    assert "Kari.Nordmann@Example.no" in per_request["details"]
    own = next(r for r in tables["support.contacts"] if r["id"] == rows["by_email"])
    assert own["email"] == KARI and own["phone"] == "+47 912 34 567"  # hers stay whole
    with zipfile.ZipFile(io.BytesIO(report.data)) as archive:
        assert "Per Hansen" not in archive.read("support.contacts.csv").decode("utf-8-sig")


_SQLITE = create_engine("sqlite://")


def _sql_true(condition) -> bool:
    with _SQLITE.connect() as conn:
        return bool(conn.execute(select(condition)).scalar())


@given(
    national=st.integers(0, 9_999_999).map(lambda n: f"{9 if n % 2 else 4}{n:07d}"),
    prefix=st.sampled_from(["", "+47", "+47 ", "0047 ", "47", "(+47) "]),
    cuts=st.lists(st.integers(1, 7), max_size=3, unique=True),
    separator=st.sampled_from([" ", "-", ".", " - "]),
    before=st.sampled_from(["", "Ring ", "tlf: ", "nr. "]),
)
def test_any_spelling_of_her_number_is_found_by_sql_and_python(
    national, prefix, cuts, separator, before
):
    parts, last = [], 0
    for cut in sorted(cuts):
        parts.append(national[last:cut])
        last = cut
    spelling = prefix + separator.join(parts + [national[last:]])
    text = f"{before}{spelling}, takk"
    assert identifiers.normalised_phone(spelling) == national
    assert identifiers.contains_phone(text, national)
    assert _sql_true(identifiers.phone_condition(literal(text), national))


@given(
    address=st.from_regex(r"[a-zæøå][a-z0-9._%+æøå-]{0,12}@[a-z]{1,8}\.(no|com)", fullmatch=True),
    upper=st.booleans(),
)
def test_her_e_mail_in_any_case_is_found_by_sql_and_python(address, upper):
    norm = address.lower()
    text = f"Svar til {address.upper() if upper else address} i dag"
    assert identifiers.contains_email(text, norm)
    assert _sql_true(identifiers.text_condition(literal(text), norm, "sqlite"))
