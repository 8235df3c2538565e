"""Helpers for the inspection-pack tests: the seeded subjects' e-mails and names, the text
of every file in a ZIP (PDFs through Debian's pdftotext), and PDF pages as images
(pdftoppm)."""

from __future__ import annotations

import io
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

from data_access import tables as t
from data_access.engines import Databases

# (engine name, table, columns holding a data subject's e-mail or name)
PERSONAL_COLUMNS = (
    ("users", t.accounts, ("email", "full_name", "contact_person")),
    ("users", t.account_members, ("email", "full_name")),
    ("users", t.invoices, ("customer_name", "contact_person")),
    ("consent", t.consent_events, ("email",)),
    ("consent", t.newsletter_subscribers, ("email", "full_name")),
    ("support", t.contacts, ("email", "full_name")),
    ("support", t.data_subject_requests, ("subject_email", "subject_name")),
)


def subject_needles(dbs: Databases) -> set[str]:
    """Every data subject's e-mail and name in the source databases, lower-cased."""
    needles: set[str] = set()
    for store, table, columns in PERSONAL_COLUMNS:
        with getattr(dbs, store).connect() as conn:
            for row in conn.execute(select(*(table.c[c] for c in columns))):
                needles |= {str(v).strip().lower() for v in row if v and str(v).strip()}
    return {n for n in needles if len(n) >= 5}  # "Ola" alone is not a name to look for


def pdf_text(data: bytes) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file.pdf"
        path.write_bytes(data)
        done = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True
        )
    return done.stdout.decode("utf-8")


def xlsx_text(data: bytes) -> str:
    """Every cell of every sheet of a workbook, as text."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return "\n".join(
        " ".join("" if v is None else str(v) for v in row)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
    )


def zip_texts(data: bytes) -> dict[str, str]:
    """Every file of the ZIP as text: PDFs extracted, workbooks' cells joined, PNGs skipped
    (charts hold no text we put there but the chart's own labels), the rest decoded as
    UTF-8."""
    texts = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            raw = archive.read(name)
            if name.endswith(".pdf"):
                texts[name] = pdf_text(raw)
            elif name.endswith(".xlsx"):
                texts[name] = xlsx_text(raw)
            elif not name.endswith(".png"):
                texts[name] = raw.decode("utf-8-sig")
    return texts


def found_needles(texts: dict[str, str], needles: set[str]) -> dict[str, list[str]]:
    """File -> the needles its text holds (case-insensitive)."""
    hits = {}
    for name, content in texts.items():
        lowered = content.lower()
        found = sorted(n for n in needles if n in lowered)
        if found:
            hits[name] = found
    return hits


def pdf_pages(data: bytes, resolution: int = 60) -> list[tuple[str, Image.Image]]:
    """(text, image) of each page: pdftotext per page and pdftoppm's PNG."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file.pdf"
        path.write_bytes(data)
        subprocess.run(
            ["pdftoppm", "-r", str(resolution), "-png", str(path), str(Path(folder) / "page")],
            check=True,
            capture_output=True,
        )
        images = sorted(Path(folder).glob("page-*.png"))
        pages = []
        for number, image_path in enumerate(images, start=1):
            done = subprocess.run(
                ["pdftotext", "-f", str(number), "-l", str(number), str(path), "-"],
                capture_output=True,
                check=True,
            )
            with Image.open(image_path) as image:
                pages.append((done.stdout.decode("utf-8"), image.convert("RGB").copy()))
    return pages


def coloured_pixels(image: Image.Image) -> int:
    """Pixels that are clearly coloured (not white, grey or black): chart lines and bars,
    never text, which the documents print in black and grey."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())
