"""Documents rendered as HTML and PDF (data_access/documents.py)."""

from __future__ import annotations

import io
import shutil
import subprocess

import pandas as pd
import pytest

from data_access import documents
from data_access.documents import Document, Section

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed"
)


def _pdf_text(pdf: bytes) -> str:
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    )
    return result.stdout.decode("utf-8")


def _document(rows: int = 3) -> Document:
    table = pd.DataFrame({"Kategori": [f"Rad {i} æøå" for i in range(rows)], "Antall": range(rows)})
    return Document(
        title="Avviksmelding → Datatilsynet",
        subtitle="Utkast",
        lang="nb",
        footer="Plaato AS",
        sections=[
            Section("Beskrivelse", ["Hva skjedde: <b>ikke markup</b> & mer", "Linje to"], table),
        ],
    )


def test_pdf_keeps_norwegian_letters_symbols_and_text_that_looks_like_markup() -> None:
    pdf = documents.to_pdf(_document())
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf)
    for expected in ("Avviksmelding → Datatilsynet", "Rad 2 æøå", "<b>ikke markup</b> & mer"):
        assert expected in text


def test_html_escapes_data_and_declares_the_language() -> None:
    page = documents.to_html(_document())
    assert '<html lang="nb">' in page
    assert "&lt;b&gt;ikke markup&lt;/b&gt; &amp; mer" in page
    assert "<b>ikke" not in page


def test_long_tables_are_cut_with_a_note_in_the_documents_language() -> None:
    document = _document(rows=documents.MAX_TABLE_ROWS + 5)
    page = documents.to_html(document)
    assert f"Viser {documents.MAX_TABLE_ROWS} av {documents.MAX_TABLE_ROWS + 5} rader" in page
    assert f"Rad {documents.MAX_TABLE_ROWS - 1} æøå" in page
    assert f"Rad {documents.MAX_TABLE_ROWS} æøå" not in page


def test_plain_text_has_every_heading_and_paragraph() -> None:
    text = _document().as_text()
    assert text.splitlines()[0] == "Avviksmelding → Datatilsynet"
    assert "Beskrivelse\n-----------" in text
    assert "Linje to" in text


def test_images_are_embedded_in_both_forms() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(buffer, format="PNG")
    document = Document(
        title="Chart", sections=[Section("Trend", image=buffer.getvalue(), image_caption="Rate")]
    )
    assert "data:image/png;base64," in documents.to_html(document)
    pdf = documents.to_pdf(document)
    assert b"/Subtype /Image" in pdf


def test_pdf_columns_keep_dates_and_short_codes_on_one_line() -> None:
    long_text = "A finding worded at length, as register findings are, " * 4
    table = pd.DataFrame(
        {
            "severity": ["medium"] * 3,
            "signed_on": ["2024-06-12", "2022-10-21", "2023-11-25"],
            "role": ["Processor", "Joint controller", "Processor"],
            "finding": [long_text] * 3,
            "rule": ["R32", "R31", "R32"],
            **{f"checked_{n}": ["2026-07-12"] * 3 for n in range(4)},
        }
    )
    pdf = documents.to_pdf(Document(title="Widths", sections=[Section("T", table=table)]))
    words = _pdf_text(pdf).split()
    assert {"2024-06-12", "2022-10-21", "2023-11-25", "Processor", "medium", "R32"} <= set(words)
    widths = documents._column_widths(table, 500)
    assert sum(widths) == pytest.approx(500)
    assert widths[3] == max(widths)  # the long text gets the room
