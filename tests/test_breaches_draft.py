"""The Datatilsynet draft and the art. 34 letter (GDPR art. 33(3), 34(2); RULES.md R50, R52):
each form heading in the form's order and the facts entered, in Norwegian and English, as
text, HTML and PDF."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from datetime import date, datetime

import pytest

from data_access import breaches, documents, subjects
from data_access.breaches.draft import FORM_ORDER, HEADINGS

DPO = "dpo@plaato.example"
AWARE = datetime(2026, 3, 27, 10, 0)
FACTS = {
    "title": "Lost USB stick with order lists",
    "occurred_from": datetime(2026, 3, 26, 15, 0),
    "occurred_to": datetime(2026, 3, 27, 9, 0),
    "category": ["confidentiality"],
    "cause": "human_error",
    "how_arose": "The stick fell out of a bag on the tram.",
    "description": "An unencrypted USB stick with 412 order lines was lost.",
    "data_categories": ["Name", "Postal address"],
    "subjects_count": 412,
    "subjects_estimated": True,
    "records_count": 530,
    "subject_relations": ["customers"],
    "data_location": "Unknown; reported to the tram company's lost property.",
    "consequences": "Unwanted mail or parcels ordered in their name.",
    "measures_taken": "USB ports blocked on the warehouse PCs.",
    "measures_planned": "Encrypted drives only, from April.",
}


@pytest.fixture
def breach(sqlite_dbs):
    breach_id = breaches.log_breach(
        sqlite_dbs, aware_at=AWARE, reported_by="Warehouse", actor=DPO,
        now=datetime(2026, 3, 27, 11, 0), **FACTS,
    )  # fmt: skip
    breaches.assess(sqlite_dbs, breach_id, risk="high", reasoning="Names and addresses", actor=DPO,
                    now=datetime(2026, 3, 27, 12, 0))  # fmt: skip
    breaches.decide_subject_notice(
        sqlite_dbs, breach_id, notify=True, reasoning="High risk", how="Letter by post",
        notified_at=datetime(2026, 3, 28, 9, 0), actor=DPO, now=datetime(2026, 3, 28, 9, 5),
    )  # fmt: skip
    return sqlite_dbs, breach_id


ENTERED = [
    FACTS["description"],
    FACTS["how_arose"],
    FACTS["data_location"],
    FACTS["consequences"],
    FACTS["measures_taken"],
    FACTS["measures_planned"],
    "Name, Postal address",
    "412",
    "530",
    "Letter by post",
    "privacy@plaato.example",
]
IN_WORDS = {
    "nb": [
        "menneskelig feil",
        "kunder",
        "anslag",
        "2026-03-27 11:00 +01:00 (CET)",
        "2026-03-30 12:00 +02:00 (CEST)",
    ],  # fmt: skip
    "en": [
        "human error",
        "customers",
        "estimate",
        "2026-03-27 11:00 +01:00 (CET)",
        "2026-03-30 12:00 +02:00 (CEST)",
    ],  # fmt: skip
}


@pytest.mark.parametrize("language", ["nb", "en"])
def test_r50_the_draft_has_each_form_heading_in_order_and_the_facts(breach, language):
    dbs, breach_id = breach
    draft = breaches.datatilsynet_draft(dbs, breach_id, language=language)
    positions = [draft.index(f"\n{HEADINGS[language][h]}\n") for h in FORM_ORDER]
    assert positions == sorted(positions), "headings out of the form's order"
    for fact in ENTERED + IN_WORDS[language]:
        assert fact in draft, f"{fact!r} missing from the {language} draft"


def test_r50_headings_differ_by_language_and_an_unknown_language_is_refused(breach):
    dbs, breach_id = breach
    nb = breaches.datatilsynet_draft(dbs, breach_id, language="nb")
    en = breaches.datatilsynet_draft(dbs, breach_id, language="en")
    assert "Hvordan bruddet oppsto" in nb and "Hvordan bruddet oppsto" not in en
    assert "How the breach arose" in en and "How the breach arose" not in nb
    with pytest.raises(ValueError, match="nb, en"):
        breaches.datatilsynet_draft(dbs, breach_id, language="sv")


def test_r50_a_missing_fact_is_said_to_be_missing_not_left_out(sqlite_dbs):
    breach_id = breaches.log_breach(sqlite_dbs, title="Quick log", aware_at=AWARE, reported_by="IT",
                                    actor=DPO, now=datetime(2026, 3, 27, 11, 0))  # fmt: skip
    en = breaches.datatilsynet_draft(sqlite_dbs, breach_id, language="en")
    assert en.count("(not yet recorded)") >= 8
    assert "Whether and how those affected were told" in en


@pytest.mark.parametrize("language", ["nb", "en"])
def test_r52_the_letter_to_the_data_subjects_says_what_happened_and_whom_to_ask(breach, language):
    dbs, breach_id = breach
    letter = breaches.subject_letter(dbs, breach_id, language=language).as_text()
    for fact in (FACTS["description"], FACTS["consequences"], FACTS["measures_taken"],
                 "privacy@plaato.example", "Plaato Technologies AS", "Datatilsynet"):  # fmt: skip
        assert fact in letter
    assert ("Hva du kan gjøre" if language == "nb" else "What you can do") in letter


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext is not installed")
@pytest.mark.parametrize("language", ["nb", "en"])
def test_r50_the_pdf_and_html_carry_the_headings_and_facts(breach, language):
    dbs, breach_id = breach
    document = breaches.draft_document(dbs, breach_id, language=language)
    pdf = documents.to_pdf(document)
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    flat = " ".join(text.split())
    html = documents.to_html(document)
    for heading in HEADINGS[language].values():
        assert heading in flat
        assert f"<h2>{heading}</h2>" in html
    assert FACTS["measures_planned"] in flat
    assert f'lang="{language}"' in html


def test_r52_a_person_s_access_report_holds_her_own_breach_letters_only(sqlite_dbs):
    breach_id = breaches.log_breach(
        sqlite_dbs, aware_at=AWARE, reported_by="Warehouse", actor=DPO,
        affected_emails=["kari@example.no"], now=datetime(2026, 3, 27, 11, 0), **FACTS,
    )  # fmt: skip
    breaches.assess(sqlite_dbs, breach_id, risk="high", reasoning="Addresses", actor=DPO,
                    now=datetime(2026, 3, 27, 12, 0))  # fmt: skip
    assert breaches.own_breach_letters(sqlite_dbs, "kari@example.no") == {}  # not told yet
    breaches.decide_subject_notice(sqlite_dbs, breach_id, notify=True, reasoning="High risk",
                                   actor=DPO, now=datetime(2026, 3, 27, 13, 0))  # fmt: skip

    report = zipfile.ZipFile(io.BytesIO(subjects.access_report(sqlite_dbs, "Kari@Example.no",
                                                               as_of=date(2026, 3, 28))))  # fmt: skip
    letters = sorted(n for n in report.namelist() if n.startswith("breach-letters/"))
    assert letters == [
        f"breach-letters/breach-{breach_id}-en.txt",
        f"breach-letters/breach-{breach_id}-nb.txt",
    ]
    assert FACTS["description"] in report.read(letters[0]).decode("utf-8")
    other = zipfile.ZipFile(io.BytesIO(subjects.access_report(sqlite_dbs, "ola@example.no",
                                                              as_of=date(2026, 3, 28))))  # fmt: skip
    assert not [n for n in other.namelist() if n.startswith("breach-letters/")]
