"""The erasure receipt as a document and the confirmation letter (data_access/erasure_documents.py)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date

import pytest

from data_access import documents, erasure_documents
from data_access.erasure import ErasureReceipt

RECEIPT = ErasureReceipt(
    receipt_id=7,
    subject_ref="ab" * 32,
    request_id=42,
    job_id=3,
    status="done",
    as_of=date(2026, 11, 29),
    erased={"users.accounts": 1, "consent.consent_events": 4, "ledger.outbox": 0},
    kept=[
        {
            "what": "2 invoice(s)",
            "why": "bookkeeping retention, bokføringsloven §13 (R15)",
            "until": "2030-12-31",
        },
        {"what": "1 support contact(s)", "why": "legal hold (R17)", "until": None},
    ],
    audit_head="1,000 entries, head 3fa9c2e1b0d4",
    residue={
        "scanned": {"tables": 20, "text_columns": 80},
        "residue_rows": 0,
        "residue": [],
        "allowed": [],
    },
)


def test_the_norwegian_receipt_is_in_norwegian_and_names_no_one():
    document = erasure_documents.receipt_document(RECEIPT, lang="nb")
    text = document.as_text()
    assert text.startswith("Kvittering for sletting")
    assert "Kontoer" in text and "Samtykkehendelser" in text
    assert "Meldinger i utboksen" not in text  # nothing erased there: not listed
    assert "2 faktura(er)" in text and "så lenge holdet varer" in text
    assert "ababababab" in text and RECEIPT.subject_ref not in text  # only the hash's start


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="nb, en"):
        erasure_documents.receipt_document(RECEIPT, lang="sv")


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed")
def test_the_receipt_pdf_holds_the_headings_and_counts():
    pdf = documents.to_pdf(erasure_documents.receipt_document(RECEIPT, lang="en"))
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    words = text.stdout.decode()
    for expected in (
        "Erasure receipt",
        "Erased",
        "Kept, and why",
        "Residue scan",
        "Consent events",
    ):
        assert expected in words


def test_the_letter_says_what_is_kept_in_each_language_without_rule_codes():
    letter = erasure_documents.confirmation_letter(
        full_name=None, email="kari@example.no", receipt=RECEIPT
    )
    assert letter.body.startswith("Hei,")
    assert (
        "2 faktura(er): bokføringsloven § 13 krever det; brukes bare til regnskap (til 2030-12-31)"
        in letter.body
    )
    assert "2 invoice(s): the Bookkeeping Act § 13 requires it" in letter.body
    assert "R15" not in letter.body and "R17" not in letter.body
