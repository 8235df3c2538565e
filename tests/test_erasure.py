"""Erasure of a data subject (RULES.md R12, R18): no residue outside the allowed exceptions,
a receipt without the e-mail, holds respected, and a failed store resumable."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select, update

from data_access import (
    audit,
    erasure,
    holds,
    identifiers,
    jobs,
    requests,
    residue,
    retention,
    subjects,
)
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.settings import STORES
from tests import factories as f
from tests import interrupted_run

AS_OF = date(2026, 11, 29)
EMAIL = "Aase.Odegard@Example.no"
NAME = "Åse Ødegård"
PHONE = "+47 912 34 567"
ACTOR = "dpo@plaato.example"


def _seed_person(dbs) -> dict[str, int]:
    """Åse owns an account with a member, and is a member of someone else's account."""
    ids = {}
    ids["account"] = f.add_account(
        dbs, email=EMAIL.lower(), full_name=NAME, last_active_on=date(2025, 1, 5)
    )
    f.add_member(dbs, ids["account"], email="kollega@example.no", full_name="Kollega Kari")
    f.add_usage_session(dbs, ids["account"], on=date(2025, 1, 5))
    ids["invoice_kept"] = f.add_invoice(
        dbs, issued_on=date(2025, 6, 1), account_id=ids["account"], customer_name=NAME
    )
    ids["invoice_old"] = f.add_invoice(
        dbs, issued_on=date(2019, 6, 1), account_id=ids["account"], customer_name=NAME
    )
    ids["other_account"] = f.add_account(dbs, email="eier@example.no", full_name="Eier Eriksen")
    ids["member_row"] = f.add_member(
        dbs, ids["other_account"], email=" AASE.odegard@example.NO ", full_name=NAME
    )
    f.add_consent_event(
        dbs,
        purpose="usage_statistics",
        action="granted",
        on=date(2024, 1, 1),
        account_id=ids["account"],
    )
    f.add_consent_event(
        dbs, purpose="newsletter", action="granted", on=date(2024, 1, 1), email=EMAIL
    )
    f.add_subscriber(dbs, email=EMAIL.upper(), full_name=NAME)
    ids["contact_by_email"] = f.add_contact(
        dbs, started_on=date(2026, 10, 1), email=EMAIL, full_name=NAME, phone=PHONE
    )
    ids["contact_by_account"] = f.add_contact(
        dbs, started_on=date(2026, 9, 1), account_id=ids["account"], full_name=NAME, phone=PHONE
    )
    ids["contact_held"] = f.add_contact(
        dbs, started_on=date(2026, 8, 1), email=EMAIL, full_name=NAME, phone=PHONE
    )
    ids["request"] = f.add_request(
        dbs,
        received_on=date(2026, 11, 20),
        request_type="erasure",
        subject_email=EMAIL,
        subject_name=NAME,
    )
    # A notice and its outbox message: the ledger's copies of her e-mail and name.
    assert retention.send_deletion_notices(
        dbs, [ids["account"]], actor=ACTOR, as_of=AS_OF
    ).succeeded
    # Someone else, who must be untouched.
    ids["bystander"] = f.add_account(dbs, email="ola@example.no", full_name="Ola Nordmann")
    f.add_contact(
        dbs,
        started_on=date(2026, 10, 1),
        email="ola@example.no",
        full_name="Ola Nordmann",
        phone="+47 400 00 000",
    )
    return ids


def _seed_person_with_a_held_contact(dbs) -> dict[str, int]:
    """`_seed_person`, with a legal hold on one of her support contacts (R17)."""
    ids = _seed_person(dbs)
    holds.place_hold(
        dbs,
        contact_id=ids["contact_held"],
        reason="Klagesak",
        case_ref="SAK-7",
        review_on=date(2027, 6, 1),
        actor=ACTOR,
        as_of=AS_OF,
    )
    return ids


def _residue(dbs) -> dict[str, list]:
    """Every row, in every text column of all four databases, holding the e-mail, name or phone."""
    needles = [EMAIL.lower(), NAME.lower(), PHONE]
    found: dict[str, list] = {}
    for store in STORES:
        engine = dbs.engine(store)
        reflected = MetaData()
        reflected.reflect(engine)  # every table there is, the ledger's roll-ups included
        with engine.connect() as conn:
            for table_name, table in reflected.tables.items():
                columns = [c.name for c in table.columns if isinstance(c.type, String | Text)]
                for row in conn.execute(select(table)).mappings():
                    text = " ".join(str(row[c]) for c in columns if row[c] is not None).lower()
                    if any(n.lower() in text for n in needles):
                        found.setdefault(f"{store}.{table_name}", []).append(
                            row["id"] if "id" in row else row
                        )
    return found


def test_r12_r18_erasure_leaves_no_residue_outside_the_exceptions(empty_dbs):
    dbs = empty_dbs
    ids = _seed_person_with_a_held_contact(dbs)

    receipt = subjects.erase_subject(
        dbs, "  " + EMAIL + " ", actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )

    assert receipt.status == "done"
    assert _residue(dbs) == {
        "users.invoices": [ids["invoice_kept"]],  # inside bookkeeping retention (R15)
        "support.contacts": [ids["contact_held"]],  # under a legal hold (R17)
        "support.data_subject_requests": [ids["request"]],  # the request's own intake (R18)
    }
    assert receipt.erased["users.accounts"] == 1
    assert (
        receipt.erased["users.account_members"] == 2
    )  # the colleague on her account + her membership elsewhere
    assert receipt.erased["users.invoices_anonymised"] == 1
    assert receipt.erased["consent.consent_events"] == 2
    assert receipt.erased["consent.newsletter_subscribers"] == 1
    assert receipt.erased["support.contacts"] == 2
    assert (receipt.erased["ledger.notices"], receipt.erased["ledger.outbox"]) == (1, 1)
    kept = {k["why"].split(",")[0]: k for k in receipt.kept}
    assert kept["bookkeeping retention"]["until"] == "2030-12-31"
    assert any("legal hold" in k["why"] for k in receipt.kept)
    # The bystander is untouched.
    assert subjects.find_subject(dbs, "ola@example.no")["users.accounts"]["id"].tolist() == [
        ids["bystander"]
    ]
    assert len(subjects.find_subject(dbs, "ola@example.no")["support.contacts"]) == 1


def test_r18_receipt_jobs_and_audit_carry_only_the_keyed_hash(sqlite_dbs):
    dbs = sqlite_dbs
    ids = _seed_person(dbs)
    receipt = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )
    assert receipt.subject_ref == audit.keyed_hash(dbs, EMAIL)
    head = audit.current_head(dbs)  # the receipt prints the chain's head (R18)
    assert head.entries > 0 and receipt.audit_head == head.head_label
    assert receipt.audit_head == f"{head.entries:,} entries, head {head.head[:12]}"
    with dbs.ledger.connect() as conn:
        stored = conn.execute(select(lt.erasure_receipts.c.receipt)).scalar_one()
        params = conn.execute(
            select(lt.jobs.c.params).where(lt.jobs.c.id == receipt.job_id)
        ).scalar_one()
    assert EMAIL.lower() not in stored.lower() and NAME.lower() not in stored.lower()
    assert json.loads(params)["email"] is None  # dropped once the job was done
    entries = audit.audit_entries(dbs)
    assert (
        not entries.astype(str)
        .apply(lambda col: col.str.lower().str.contains("odegard"))
        .any()
        .any()
    )
    assert audit.verify_chain(dbs) == (True, None)


def test_r17_a_hold_on_the_e_mail_keeps_everything(sqlite_dbs):
    dbs = sqlite_dbs
    ids = _seed_person(dbs)
    hold_id = holds.place_hold(
        dbs,
        email=EMAIL,
        reason="Tvist",
        case_ref="SAK-9",
        review_on=date(2027, 6, 1),
        actor=ACTOR,
        as_of=AS_OF,
    )
    before = _residue(dbs)

    receipt = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )

    after = _residue(dbs)
    after.pop("ledger.legal_holds", None)
    before.pop("ledger.legal_holds", None)
    assert after == before
    # The scan finds all of it, and all of it kept under the hold.
    assert receipt.residue["residue_rows"] == 0
    assert {w["why"] for w in receipt.residue["allowed"] if w["where"] != "ledger.jobs.params"} == {
        "legal hold on the e-mail (R17)"
    }
    assert len(receipt.residue["allowed"]) > 5
    assert all("legal hold" in k["why"] for k in receipt.kept[:3])
    assert set(holds.blocked_attempts(dbs)["hold_id"]) == {hold_id}


def test_a_failed_store_leaves_the_erasure_partial_and_resume_finishes_it(sqlite_dbs, monkeypatch):
    dbs = sqlite_dbs
    ids = _seed_person(dbs)

    def broken(conn, ctx):
        raise ConnectionError("consent database went away")

    monkeypatch.setitem(erasure.HANDLERS, "erase_consent", broken)
    receipt = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )
    assert receipt.status == "partial"
    assert "consent database went away" in next(iter(receipt.failed.values()))
    assert not subjects.find_subject(dbs, EMAIL)["consent.newsletter_subscribers"].empty
    assert jobs.unfinished_jobs(dbs)["job_id"].tolist() == [receipt.job_id]

    monkeypatch.undo()
    resumed = subjects.resume_erasure(dbs, receipt.job_id, actor=ACTOR)
    assert resumed.status == "done"
    assert resumed.receipt_id == receipt.receipt_id
    assert subjects.find_subject(dbs, EMAIL)["consent.newsletter_subscribers"].empty
    assert resumed.erased["users.accounts"] == 1  # done once, not repeated


def test_the_same_click_erases_once(sqlite_dbs):
    dbs = sqlite_dbs
    ids = _seed_person(dbs)
    first = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"], idempotency_key="k1"
    )
    again = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"], idempotency_key="k1"
    )
    assert again.job_id == first.job_id and again.receipt_id == first.receipt_id
    with dbs.ledger.connect() as conn:
        assert len(conn.execute(select(lt.erasure_receipts.c.id)).all()) == 1


def test_malformed_email_is_refused_and_changes_nothing(sqlite_dbs):
    with pytest.raises(ValueError, match="not an e-mail address"):
        subjects.erase_subject(sqlite_dbs, "kari.example.no", actor=ACTOR, as_of=AS_OF)
    assert jobs.unfinished_jobs(sqlite_dbs).empty


def test_r20_erasure_keeps_the_consent_roll_up_equal_to_the_events(empty_dbs):
    """The person's e-mail on an event of someone else's account: that event belongs to the
    account's subject (R20), and the roll-up must forget it there too."""
    from data_access import consent, consent_rollup

    dbs = empty_dbs
    ids = _seed_person(dbs)
    f.add_consent_event(
        dbs,
        purpose="marketing",
        action="granted",
        on=date(2025, 3, 1),
        account_id=ids["other_account"],
        email=EMAIL,
    )
    f.add_consent_event(
        dbs,
        purpose="marketing",
        action="withdrawn",
        on=date(2025, 2, 1),
        account_id=ids["other_account"],
    )
    consent_rollup.refresh(dbs)

    subjects.erase_subject(dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"])

    for day in (date(2025, 2, 15), AS_OF):
        rolled = consent.consent_rates(dbs, day)
        direct = consent._direct_rates(dbs, day)
        assert rolled[["purpose", "subjects", "granted", "withdrawn"]].to_dict("records") == direct[
            ["purpose", "subjects", "granted", "withdrawn"]
        ].to_dict("records")
    marketing = consent.consent_rates(dbs, AS_OF).set_index("purpose").loc["marketing"]
    assert (marketing["subjects"], marketing["withdrawn"]) == (1, 1)  # the owner's own event stays


# --- phone contacts, her e-mail in free text, and the residue scan (R12, R18) -------------------

PHONE_OTHER_SPELLING = "0047 91234567"  # the same number as PHONE


def _plant_beyond_email(dbs, ids) -> dict[str, int]:
    """Rows that hold Åse without her e-mail column, and neighbours that must stay as they are."""
    planted = {
        # She called from her phone; the log has her name and number, no e-mail.
        "phone_contact": f.add_contact(
            dbs,
            started_on=date(2026, 10, 5),
            channel="phone",
            full_name="ÅSE  ødegård",
            phone=PHONE_OTHER_SPELLING,
            summary="Spør om faktura",
        ),
        # A nameless call from her number.
        "nameless_call": f.add_contact(
            dbs, started_on=date(2026, 10, 6), channel="phone", full_name=None, phone="91234567"
        ),
        # Ola's chat mentions her address: his contact stays, her e-mail goes.
        "mentioning": f.add_contact(
            dbs,
            started_on=date(2026, 10, 7),
            email="ola@example.no",
            full_name="Ola Nordmann",
            summary=f"Vil dele bryggeloggen med {EMAIL.upper()}, og med per@example.no.",
        ),
        # Another person's request naming her in its details: their proof, minus her e-mail.
        "other_request": f.add_request(
            dbs,
            received_on=date(2026, 11, 1),
            subject_email="ola@example.no",
            subject_name="Ola Nordmann",
        ),
        # Not her: the same first name; an address that only contains hers.
        "same_first_name": f.add_contact(
            dbs,
            started_on=date(2026, 10, 8),
            channel="phone",
            full_name="Åse Hansen",
            phone="+47 400 11 222",
            summary="Åse ringte om Keg Management",
        ),
        "longer_address": f.add_contact(
            dbs,
            started_on=date(2026, 10, 11),
            email="x@example.no",
            full_name="Xena Li",
            summary="Skrev fra x" + EMAIL.lower() + " og " + EMAIL.lower() + ".uk",
        ),
    }
    with dbs.support.begin() as conn:
        conn.execute(
            update(t.data_subject_requests)
            .where(t.data_subject_requests.c.id == planted["other_request"])
            .values(details=f"Ber om innsyn, også om meldinger til {EMAIL}.")
        )
    return planted


def _plant_shared_phone(dbs) -> dict[str, int]:
    """Her number on calls that name someone else: a shared line, not her (the rule)."""
    return {
        "shared_line": f.add_contact(
            dbs,
            started_on=date(2026, 10, 9),
            channel="phone",
            email="per.odegard@example.no",
            full_name="Per Ødegård",
            phone=PHONE,
        ),
        "other_name_same_phone": f.add_contact(
            dbs,
            started_on=date(2026, 10, 10),
            channel="phone",
            full_name="Per Ødegård",
            phone=PHONE,
        ),
    }


def _contacts(dbs) -> dict[int, dict]:
    with dbs.support.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(select(t.contacts)).mappings()}


def _scan(dbs):
    norm = EMAIL.lower()
    owned = subjects.find_subject(dbs, norm)["users.accounts"]["id"].tolist()
    known = identifiers.person_identifiers(dbs, norm, owned)
    return residue.scan(dbs, residue.Needles(norm, known.phones, known.names)).as_dict()


def _where(scan_part) -> dict[str, tuple[int, list[str]]]:
    return {w["where"]: (w["rows"], w["found"]) for w in scan_part}


def test_r12_r18_phone_contacts_and_her_e_mail_in_free_text_go_and_the_scan_shows_it(empty_dbs):
    dbs = empty_dbs
    ids = _seed_person(dbs)
    planted = _plant_beyond_email(dbs, ids)
    holds.place_hold(
        dbs,
        contact_id=ids["contact_held"],
        reason="Klagesak",
        case_ref="SAK-7",
        review_on=date(2027, 6, 1),
        actor=ACTOR,
        as_of=AS_OF,
    )

    before = _scan(dbs)
    assert before["searched"] == {"email": 1, "phone": 1, "name": 1}
    where = _where(before["residue"])
    assert where["support.contacts.phone"][0] == 5  # her own contacts, any spelling
    assert where["support.contacts.full_name"][0] == 4  # her spelling with two blanks too
    assert where["support.contacts.summary"] == (1, ["email"])  # not the longer address
    assert where["support.data_subject_requests.details"] == (1, ["email"])
    lookup = subjects.find_subject(dbs, EMAIL)
    found_contacts = set(lookup["support.contacts"]["id"])
    assert {planted["phone_contact"], planted["nameless_call"], planted["mentioning"]} <= (
        found_contacts
    )
    assert not found_contacts & {planted["same_first_name"], planted["longer_address"]}
    assert planted["other_request"] in set(lookup["support.data_subject_requests"]["id"])

    receipt = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )

    assert receipt.status == "done"
    assert receipt.erased["support.contacts"] == 4  # the held one stays
    assert receipt.erased["support.contacts_summary_redacted"] == 1
    assert receipt.erased["support.data_subject_requests_details_redacted"] == 1
    contacts = _contacts(dbs)
    assert planted["phone_contact"] not in contacts and planted["nameless_call"] not in contacts
    assert contacts[planted["mentioning"]]["summary"] == (
        "Vil dele bryggeloggen med [erased], og med per@example.no."
    )
    assert contacts[planted["same_first_name"]]["summary"] == "Åse ringte om Keg Management"
    assert contacts[planted["longer_address"]]["summary"].startswith("Skrev fra x")
    # The receipt's scan: nothing outside R18's exceptions, each exception with its reason.
    assert receipt.residue["residue_rows"] == 0, receipt.residue["residue"]
    assert receipt.residue["residue"] == []
    allowed = {w["where"]: w for w in receipt.residue["allowed"]}
    assert allowed["users.invoices.customer_name"]["rows"] == 1
    assert "R15" in allowed["users.invoices.customer_name"]["why"]
    assert "R17" in allowed["support.contacts.email"]["why"]  # the held contact
    assert "art. 5(2)" in allowed["support.data_subject_requests.subject_email"]["why"]
    assert receipt.residue["scanned"]["databases"] == 4
    assert receipt.residue["scanned"]["text_columns"] > 40
    # Run again afterwards, the scan agrees: the same needles, the same exceptions.
    again = residue.scan(
        dbs,
        residue.Needles(EMAIL.lower(), ("91234567",), ("åse ødegård",)),
        allowed=residue.allowed_by_r18(dbs, EMAIL.lower(), as_of=AS_OF),
    ).as_dict()
    assert again["residue"] == []
    assert allowed.pop("ledger.jobs.params")["why"].startswith("this erasure's own parameters")
    assert {w["where"]: w for w in again["allowed"]} == allowed  # cleared since
    # The receipt as stored says the same and holds none of what was searched.
    stored = subjects.resume_erasure(dbs, receipt.job_id, actor=ACTOR)
    assert stored.residue == receipt.residue
    text = json.dumps(dataclasses.asdict(receipt), ensure_ascii=False, default=str).lower()
    assert EMAIL.lower() not in text and "ødegård" not in text and "91234567" not in text


def test_r18_her_number_under_another_name_stays_and_the_scan_reports_it(empty_dbs):
    """A call from her number that names someone else (a shared line), and a namesake with
    another number, are not hers by the rule: they stay untouched, and the scan lists them as
    residue (phone-only and name-only hits) for the DPO to judge."""
    dbs = empty_dbs
    ids = _seed_person(dbs)
    shared = _plant_shared_phone(dbs)
    namesake = f.add_contact(
        dbs, started_on=date(2026, 10, 12), channel="phone", full_name=NAME, phone="+4740055666"
    )
    found = set(subjects.find_subject(dbs, EMAIL)["support.contacts"]["id"])
    assert not found & {*shared.values(), namesake}

    receipt = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )

    assert receipt.status == "done"
    contacts = _contacts(dbs)
    assert [contacts[i]["phone"] for i in shared.values()] == [PHONE, PHONE]
    assert contacts[namesake]["full_name"] == NAME
    assert _where(receipt.residue["residue"]) == {
        "support.contacts.phone": (2, ["phone"]),
        "support.contacts.full_name": (1, ["name"]),
    }
    assert (receipt.residue["residue_rows"], receipt.residue["name_only_rows"]) == (3, 1)


def test_r18_the_scan_reads_every_table_there_is_not_a_hand_list(empty_dbs):
    """A table the dashboard does not know (a CRM's notes) is scanned too, and what is left
    there is reported as residue with its column."""
    dbs = empty_dbs
    ids = _seed_person(dbs)
    notes = Table(
        "crm_notes",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("note", Text),
        Column("caller", String(40)),
    )
    notes.create(dbs.support)
    with dbs.support.begin() as conn:
        conn.execute(
            notes.insert(),
            [
                {"note": f"Ring {NAME} tilbake", "caller": "+47 91 23 45 67"},
                {"note": "Ingen personopplysninger", "caller": "+47 400 00 000"},
            ],
        )

    receipt = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )

    assert receipt.status == "done"
    assert receipt.residue["residue_rows"] == 1  # one row, hit in two columns
    assert _where(receipt.residue["residue"]) == {
        "support.crm_notes.caller": (1, ["phone"]),
        "support.crm_notes.note": (1, ["name"]),
    }


def test_r18_a_failed_scan_leaves_the_erasure_partial_and_resume_finishes_it(
    sqlite_dbs, monkeypatch
):
    dbs = sqlite_dbs
    ids = _seed_person(dbs)

    def down(*args, **kwargs):
        raise ConnectionError("support database went away")

    monkeypatch.setattr(residue, "scan", down)
    receipt = subjects.erase_subject(
        dbs, EMAIL, actor=ACTOR, as_of=AS_OF, request_id=ids["request"]
    )
    assert receipt.status == "partial" and receipt.residue == {}
    with dbs.ledger.connect() as conn:
        params = conn.execute(
            select(lt.jobs.c.params).where(lt.jobs.c.id == receipt.job_id)
        ).scalar_one()
    assert json.loads(params)["phones"] == ["91234567"]  # still needed to finish

    monkeypatch.undo()
    resumed = subjects.resume_erasure(dbs, receipt.job_id, actor=ACTOR)
    assert resumed.status == "done"
    assert resumed.residue["residue_rows"] == 0
    with dbs.ledger.connect() as conn:
        params = json.loads(
            conn.execute(
                select(lt.jobs.c.params).where(lt.jobs.c.id == receipt.job_id)
            ).scalar_one()
        )
    assert (params["email"], params["phones"], params["names"]) == (None, None, None)


# --- an erasure killed mid-job -----------------------------------------------------------------

RESUMING = "other.dpo@plaato.example"
ERASURE_STEPS = (
    "erase_users",
    "erase_consent",
    "erase_support",
    "erase_ledger_copies",
    "scan_residue",
)


@pytest.mark.parametrize("pause_at", ["after_batch", "before_done_marks"])
def test_r12_an_erasure_killed_mid_job_resumes_when_the_request_is_completed_again(
    empty_dbs, tmp_path, pause_at
):
    """The request's completion is SIGKILLed after the users step of its erasure committed
    (with or without its done mark): once the lease expires the job is interrupted, and
    completing the request again as another DPO finishes the erasure with the same residue
    and receipt as an uninterrupted one, each step audited once."""
    dbs = empty_dbs
    ids = _seed_person_with_a_held_contact(dbs)
    rid = ids["request"]
    confirmed = requests.confirm_identity(
        dbs, rid, method="Svar fra e-posten", actor=ACTOR, as_of=AS_OF
    )
    assert confirmed.succeeded == [rid]

    job_id = interrupted_run.killed_mid_job(
        dbs, tmp_path, "complete_request", pause_at=pause_at, request_id=rid, actor=ACTOR,
        as_of=AS_OF,
    )  # fmt: skip

    found = subjects.find_subject(dbs, EMAIL)
    assert found["users.accounts"].empty  # the users step committed
    contacts = [ids[k] for k in ("contact_by_email", "contact_by_account", "contact_held")]
    with dbs.support.connect() as conn:
        left = conn.execute(select(t.contacts.c.id).where(t.contacts.c.id.in_(contacts)))
        assert sorted(left.scalars()) == sorted(contacts)  # the support step never ran
    assert len(found["consent.consent_events"]) == 1  # nor the consent step
    interrupted_run.wait_for_lease_to_expire(dbs, job_id)
    listed = jobs.interrupted_jobs(dbs, erasure.KIND)
    assert listed[["job_id", "status"]].values.tolist() == [[job_id, "interrupted"]]

    done = requests.complete_request(dbs, rid, actor=RESUMING, as_of=AS_OF)

    assert (done.succeeded, done.failed) == ([rid], {})
    assert _residue(dbs) == {
        "users.invoices": [ids["invoice_kept"]],
        "support.contacts": [ids["contact_held"]],
        "support.data_subject_requests": [rid],
    }
    receipt = erasure.receipt_of_job(dbs, job_id)
    assert receipt.status == "done"
    assert (receipt.erased["users.accounts"], receipt.erased["users.account_members"]) == (1, 2)
    assert receipt.erased["consent.consent_events"] == 2
    assert receipt.erased["support.contacts"] == 2
    steps = audit.audit_entries(dbs)
    steps = steps[steps["action"].isin(ERASURE_STEPS)].sort_values("id")
    assert sorted(steps["action"]) == sorted(ERASURE_STEPS)  # each once
    resumed = ERASURE_STEPS[1:] if pause_at == "after_batch" else ERASURE_STEPS
    assert steps.set_index("action")["actor"].to_dict() == {
        step: RESUMING if step in resumed else ACTOR for step in ERASURE_STEPS
    }
    events = list(requests.request(dbs, rid, as_of=AS_OF)["events"]["event"])
    assert (events.count("erased"), events.count("completed")) == (1, 1)
    assert jobs.unfinished_jobs(dbs).empty
    assert audit.verify_chain(dbs) == (True, None)


def test_r9_after_the_erasure_her_kept_invoices_are_still_found_by_her_e_mail(empty_dbs):
    """The invoice kept for bookkeeping still carries her name: an access request after the
    erasure must find it (R9); the anonymised one is not hers any more and is not linked."""
    dbs = empty_dbs
    ids = _seed_person(dbs)

    subjects.erase_subject(dbs, EMAIL, actor=ACTOR, as_of=AS_OF)

    invoices = subjects.find_subject(dbs, EMAIL.upper())["users.invoices"]
    assert invoices["id"].tolist() == [ids["invoice_kept"]]
    assert invoices.attrs["kept_after_deletion"] == [ids["invoice_kept"]]
    assert subjects.find_subject(dbs, "ola@example.no")["users.invoices"].empty
