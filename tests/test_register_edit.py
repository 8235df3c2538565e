"""Editing the register (RULES.md R24, R30-R32): validation, audited before/after, refusal of
stale edits, the record of processing document, and the Register page's form, on SQLite,
PostgreSQL and MariaDB (the page on the seeded demo)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from data_access import audit, register, register_edit, ropa
from data_access.register_edit import RegisterError
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF

AS_OF = date(2026, 11, 29)
ACTOR = "dpo@plaato.example"
PROCESSOR = {
    "name": "Website provider",
    "legal_name": "Fjordweb AS",
    "role": "processor",
    "purpose": "Hosting",
    "country": "no",
    "transfer_mechanism": "eea",
    "last_review_on": date(2026, 10, 1),
    "named_in_policy": True,
    "receives_personal_data": True,
}
NO_DPA = "Processor without a signed data processing agreement (art. 28(3))."

seeded_demo = seeded.seeded_demo


def audit_details(dbs, action: str) -> list[dict]:
    entries = audit.audit_entries(dbs, action=action)
    return [json.loads(d) for d in entries["details"]]


def findings_for(dbs, item: str) -> list[str]:
    frame = register.findings(dbs, AS_OF)
    return list(frame.loc[frame["item"] == item, "finding"])


# --- validation (pure) -------------------------------------------------------------------------


def test_r31_validation_names_every_bad_field():
    with pytest.raises(RegisterError) as caught:
        register_edit.validate_recipient(
            {
                "name": "  ",
                "role": "sub-processor",
                "country": "XX",
                "transfer_mechanism": "bcr",
                "dpa_signed_on": "2026-13-01",
                "last_review_on": date(2026, 12, 1),
            },
            as_of=AS_OF,
        )
    assert caught.value.errors == {
        "name": "Required.",
        "role": "One of processor, joint_controller, independent_controller.",
        "country": "'XX' is not an ISO 3166-1 alpha-2 country code (e.g. NO, IE, US).",
        "transfer_mechanism": "One of eea, adequacy, dpf, scc, none.",
        "dpa_signed_on": "A date as YYYY-MM-DD.",
        "last_review_on": "Cannot be after 2026-11-29.",
    }


@pytest.mark.parametrize(
    ("country", "mechanism", "error"),
    [
        ("US", "eea", "'eea' is only for countries in the EEA, not US."),
        ("IE", "dpf", "The EU-US Data Privacy Framework covers recipients in the US (country US)."),
    ],
)
def test_r31_the_mechanism_must_fit_the_country(country, mechanism, error):
    values = {**PROCESSOR, "country": country, "transfer_mechanism": mechanism}
    with pytest.raises(RegisterError) as caught:
        register_edit.validate_recipient(values, as_of=AS_OF)
    assert caught.value.errors == {"transfer_mechanism": error}


def test_r31_clean_values_are_normalised():
    clean = register_edit.validate_recipient(
        {**PROCESSOR, "name": "  Website   provider ", "dpa_signed_on": "2024-05-02"}, as_of=AS_OF
    )
    assert clean["name"] == "Website provider"
    assert clean["country"] == "NO"
    assert clean["dpa_signed_on"] == date(2024, 5, 2)
    assert clean["legal_name"] == "Fjordweb AS"
    assert clean["notes"] is None


def test_r24_cookie_lifetime_must_be_whole_days():
    with pytest.raises(RegisterError) as caught:
        register_edit.validate_cookie(
            {
                "name": "_ga",
                "provider": "Google",
                "party": "first",
                "category": "statistics",
                "lifetime_days": -3,
            },  # fmt: skip
        )
    assert caught.value.errors == {"lifetime_days": "A whole number of days, 0 or more, or empty."}


def test_r30_activity_needs_a_legal_basis_of_article_6():
    with pytest.raises(RegisterError) as caught:
        register_edit.validate_activity(
            {"name": "Newsletter", "purpose": "News", "legal_basis": "consent"}
        )
    assert caught.value.errors == {
        "legal_basis": "One of art. 6(1)(a), art. 6(1)(b), art. 6(1)(c), art. 6(1)(d), "
        "art. 6(1)(e), art. 6(1)(f)."
    }


# --- saving, on every backend -------------------------------------------------------------------


def test_r32_editing_a_processors_dpa_date_is_audited_and_clears_its_finding(empty_dbs):
    dbs = empty_dbs
    added = register_edit.save_recipient(dbs, PROCESSOR, actor=ACTOR, as_of=AS_OF)
    (recipient_id,) = added.succeeded
    assert findings_for(dbs, "Website provider") == [NO_DPA]
    seen = register_edit.entry(dbs, "recipient", recipient_id)

    result = register_edit.save_recipient(
        dbs,
        {**PROCESSOR, "dpa_signed_on": date(2026, 11, 2)},
        actor=ACTOR,
        recipient_id=recipient_id,
        expected=seen,
        as_of=AS_OF,
    )

    assert result.succeeded == [recipient_id] and result.failed == {}
    assert findings_for(dbs, "Website provider") == []
    assert register_edit.entry(dbs, "recipient", recipient_id)["dpa_signed_on"] == date(2026, 11, 2)
    entry = audit.audit_entries(dbs, action="register_update").iloc[0]
    assert (entry["actor"], entry["rule"], entry["store"]) == (ACTOR, "R31", "ledger")
    assert entry["target"] == f"recipients:{recipient_id}"
    assert json.loads(entry["details"]) == {
        "before": {"dpa_signed_on": None},
        "after": {"dpa_signed_on": "2026-11-02"},
    }
    assert audit.verify_chain(dbs) == (True, None)


def test_r31_an_edit_of_a_row_changed_meanwhile_is_refused(empty_dbs):
    dbs = empty_dbs
    (recipient_id,) = register_edit.save_recipient(
        dbs, PROCESSOR, actor=ACTOR, as_of=AS_OF
    ).succeeded
    seen = register_edit.entry(dbs, "recipient", recipient_id)
    register_edit.save_recipient(  # someone else records a review first
        dbs, {**PROCESSOR, "last_review_on": date(2026, 11, 20)}, actor="other@plaato.example",
        recipient_id=recipient_id, expected=seen, as_of=AS_OF,
    )  # fmt: skip

    result = register_edit.save_recipient(
        dbs, {**PROCESSOR, "notes": "Checked"}, actor=ACTOR, recipient_id=recipient_id,
        expected=seen, as_of=AS_OF,
    )  # fmt: skip

    assert result.succeeded == []
    assert result.failed[recipient_id].startswith(
        "Changed by someone else since you opened it (last_review_on)"
    )
    assert register_edit.entry(dbs, "recipient", recipient_id)["notes"] is None
    assert len(audit.audit_entries(dbs, action="register_update")) == 1


def test_r32_a_duplicate_name_and_invalid_values_are_refused_without_writing(empty_dbs):
    dbs = empty_dbs
    register_edit.save_recipient(dbs, PROCESSOR, actor=ACTOR, as_of=AS_OF)

    duplicate = register_edit.save_recipient(
        dbs, {**PROCESSOR, "name": "WEBSITE PROVIDER"}, actor=ACTOR, as_of=AS_OF
    )
    invalid = register_edit.save_recipient(dbs, {**PROCESSOR, "country": "Norway"}, actor=ACTOR)

    assert duplicate.failed == {
        "new": "A recipient named WEBSITE PROVIDER is already in the register."
    }
    assert invalid.failed == {
        "new": "country: 'NORWAY' is not an ISO 3166-1 alpha-2 country code (e.g. NO, IE, US)."
    }
    assert list(register.recipients(dbs)["name"]) == ["Website provider"]
    assert len(audit.audit_entries(dbs, action="register_insert")) == 1


def test_r24_cookie_added_then_removed_is_audited_with_its_values(empty_dbs):
    dbs = empty_dbs
    values = {"name": "_fbp", "provider": "Meta", "party": "first", "category": "marketing",
              "lifetime_days": 90, "lifetime": "3 months", "consent_required": False}  # fmt: skip
    (cookie_id,) = register_edit.save_cookie(dbs, values, actor=ACTOR).succeeded
    cookie_findings = register.findings(dbs, AS_OF).query("area == 'cookies'")
    assert list(cookie_findings["item"]) == ["_fbp (Meta)"]

    removed = register_edit.delete_entry(dbs, "cookie", cookie_id, actor=ACTOR)

    assert removed.succeeded == [cookie_id]
    assert register.cookies(dbs).empty
    (details,) = audit_details(dbs, "register_delete")
    assert details["after"] is None
    assert details["before"]["name"] == "_fbp" and details["before"]["lifetime_days"] == 90


def test_r30_activity_saved_with_the_as_of_date(empty_dbs):
    dbs = empty_dbs
    result = register_edit.save_activity(
        dbs,
        {
            "name": "Newsletter",
            "purpose": "News about products",
            "legal_basis": "art. 6(1)(a)",
            "data_subjects": "Subscribers",
        },  # fmt: skip
        actor=ACTOR,
        as_of=AS_OF,
    )
    (row,) = register.processing_activities(dbs).to_dict("records")
    assert result.succeeded == [row["id"]]
    assert (row["name"], row["legal_basis"], row["updated_on"]) == (
        "Newsletter",
        "art. 6(1)(a)",
        AS_OF,
    )


# --- the record of processing activities -----------------------------------------------------


def test_r30_record_of_processing_in_english_and_norwegian(empty_dbs):
    dbs = empty_dbs
    register_edit.save_activity(
        dbs, {"name": "Customer <accounts>", "purpose": "Log-in & reset", "legal_basis": "art. 6(1)(b)"},
        actor=ACTOR, as_of=AS_OF,
    )  # fmt: skip
    register_edit.save_recipient(dbs, {**PROCESSOR, "dpa_signed_on": date(2024, 5, 2)}, actor=ACTOR)

    english = ropa.record_of_processing_html(dbs, language="en", as_of=AS_OF).decode("utf-8")
    norwegian = ropa.record_of_processing_html(dbs, language="nb", as_of=AS_OF).decode("utf-8")

    assert "<h1>Record of processing activities</h1>" in english
    assert "<h1>Protokoll over behandlingsaktiviteter</h1>" in norwegian
    assert "Date: 2026-11-29" in english and "Dato: 2026-11-29" in norwegian
    assert "Customer &lt;accounts&gt;" in english and "<accounts>" not in english
    assert "Log-in &amp; reset" in english
    assert "<td>Norway (NO)</td>" in english
    assert "<td>2024-05-02</td>" in english
    assert "<td>Databehandler</td>" in norwegian and "<td>Innenfor EØS</td>" in norwegian
    assert "@page { size: A4" in english
    # A value the register does not hold is said to be missing, not printed as "None".
    assert "<td>Not recorded</td>" in english and "<td>Ikke registrert</td>" in norwegian
    assert ">None<" not in english and ">Ingen<" not in norwegian
    with pytest.raises(ValueError):
        ropa.record_of_processing_html(dbs, language="de")


# --- the Register page ----------------------------------------------------------------------------


demo_copy = seeded.demo_copy


def test_r32_register_page_form_saves_the_dpa_date_and_the_finding_goes(demo_copy):
    dbs = demo_copy.dbs
    provider = register.recipients(dbs).set_index("name").loc["Website provider"]
    frame = register.findings(dbs, SEED_AS_OF)
    assert NO_DPA in list(frame.loc[frame["item"] == "Website provider", "finding"])

    at = AppTest.from_file(str(ROOT / "pages" / "register.py"), default_timeout=120)
    at.session_state["as_of"] = SEED_AS_OF
    at.run()
    assert not at.exception, at.exception
    at.selectbox(key="register_edit_recipient").set_value(int(provider["id"])).run()
    at.date_input(key=f"edit:register_recipient_{int(provider['id'])}_dpa_signed_on").set_value(
        date(2026, 11, 2)
    )
    at.button(
        key=f"FormSubmitter:register_recipient_form_{int(provider['id'])}-Save recipient"
    ).click()
    at.run()

    assert not at.exception, at.exception
    assert "Saving the recipient: 1 succeeded, 0 failed." in [s.value for s in at.success]
    frame = register.findings(dbs, SEED_AS_OF)
    assert NO_DPA not in list(frame.loc[frame["item"] == "Website provider", "finding"])
    entry = audit.audit_entries(dbs, action="register_update").iloc[0]
    assert entry["target"] == f"recipients:{int(provider['id'])}"
    assert json.loads(entry["details"]) == {
        "before": {"dpa_signed_on": None},
        "after": {"dpa_signed_on": "2026-11-02"},
    }
