"""Readable documents: one structure rendered as HTML and as PDF.

The breach register's notification drafts, erasure receipts and the inspection pack are
documents a DPO hands to someone else (Datatilsynet, management, a data subject). Each is
built once as a `Document` (title, sections of paragraphs, tables and images) and rendered
by `to_html` (a self-contained page, for the browser and for pasting) and `to_pdf`
(reportlab, A4). Nothing here knows about the domain.

Text is Unicode throughout: the PDF embeds DejaVu Sans when the system has it (Debian's
fonts-dejavu-core), so "æ ø å" and "→" print; without it reportlab's Helvetica is used, which
covers Latin-1 (æ ø å) but not every symbol.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

# A table in a document shows at most this many rows; the CSV beside it holds them all.
MAX_TABLE_ROWS = 500

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)


@dataclass(frozen=True)
class Section:
    """One headed part of a document.

    `paragraphs` are plain text (escaped on rendering; a blank line is not needed between
    them). `table` is shown below them, at most MAX_TABLE_ROWS rows with a note when cut.
    `image` is PNG bytes (a chart), shown below the table, `image_caption` under it.
    """

    heading: str
    paragraphs: Sequence[str] = ()
    table: pd.DataFrame | None = None
    image: bytes | None = None
    image_caption: str = ""


@dataclass(frozen=True)
class Document:
    """A titled document in one language (`lang`: an ISO 639-1 code such as "nb" or "en")."""

    title: str
    sections: Sequence[Section]
    lang: str = "en"
    subtitle: str = ""
    footer: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_text(self) -> str:
        """The document as plain text (headings underlined; tables as aligned text), for
        pasting into a web form or an e-mail."""
        lines = [self.title, "=" * len(self.title)]
        if self.subtitle:
            lines.append(self.subtitle)
        for section in self.sections:
            lines += ["", section.heading, "-" * len(section.heading)]
            lines += list(section.paragraphs)
            if section.table is not None and not section.table.empty:
                shown = _shown_rows(section.table)
                lines.append(shown.to_string(index=False))
        if self.footer:
            lines += ["", self.footer]
        return "\n".join(lines) + "\n"


def _shown_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table.head(MAX_TABLE_ROWS)


def _cut_note(table: pd.DataFrame, lang: str) -> str:
    if len(table) <= MAX_TABLE_ROWS:
        return ""
    if lang == "nb":
        return f"Viser {MAX_TABLE_ROWS} av {len(table)} rader; CSV-filen har alle."
    return f"Showing {MAX_TABLE_ROWS} of {len(table)} rows; the CSV file has them all."


def _cell(value: object) -> str:
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return ""
    return str(value)


# --- HTML -----------------------------------------------------------------------------

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 60em; margin: 2em auto;
       color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.subtitle { color: #555; margin-top: 0; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.note, footer { color: #555; font-size: 0.85em; }
img { max-width: 100%; }
"""


def to_html(document: Document) -> str:
    """The document as one self-contained HTML page (UTF-8; images inline as data URIs)."""
    import base64

    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{html.escape(document.lang)}"><head><meta charset="utf-8">',
        f"<title>{html.escape(document.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(document.title)}</h1>",
    ]
    if document.subtitle:
        parts.append(f'<p class="subtitle">{html.escape(document.subtitle)}</p>')
    for section in document.sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        if section.table is not None and not section.table.empty:
            parts.append(_html_table(section.table))
            note = _cut_note(section.table, document.lang)
            if note:
                parts.append(f'<p class="note">{html.escape(note)}</p>')
        if section.image:
            data = base64.b64encode(section.image).decode("ascii")
            alt = html.escape(section.image_caption or section.heading)
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{alt}">')
            if section.image_caption:
                parts.append(f'<p class="note">{html.escape(section.image_caption)}</p>')
    if document.footer:
        parts.append(f"<footer>{html.escape(document.footer)}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_table(table: pd.DataFrame) -> str:
    shown = _shown_rows(table)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = [
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    ]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# --- PDF ------------------------------------------------------------------------------


def _font_names() -> tuple[str, str]:
    """(regular, bold) font names registered with reportlab: DejaVu Sans if found."""
    if "DejaVuSans" in pdfmetrics.getRegisteredFontNames():
        return "DejaVuSans", "DejaVuSans-Bold"
    for folder in _FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            return "DejaVuSans", "DejaVuSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = _font_names()
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName=bold, fontSize=18),
        "subtitle": ParagraphStyle(
            "subtitle", parent=base["Normal"], fontName=regular, textColor=colors.grey
        ),
        "heading": ParagraphStyle(
            "heading", parent=base["Heading2"], fontName=bold, fontSize=13, spaceBefore=10
        ),
        "body": ParagraphStyle(
            "body", parent=base["BodyText"], fontName=regular, fontSize=10, leading=13.5
        ),
        "cell": ParagraphStyle(
            "cell", parent=base["BodyText"], fontName=regular, fontSize=7.5, leading=9
        ),
        "head": ParagraphStyle(
            "head", parent=base["BodyText"], fontName=bold, fontSize=7.5, leading=9
        ),
        "note": ParagraphStyle(
            "note", parent=base["BodyText"], fontName=regular, fontSize=8, textColor=colors.grey
        ),
    }


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph reads a small markup language: escape so data is never taken as markup.
    return Paragraph(html.escape(text).replace("\n", "<br/>"), style)


def _pdf_table(table: pd.DataFrame, styles: dict[str, ParagraphStyle], width: float) -> LongTable:
    shown = _shown_rows(table)
    data = [[_para(str(c), styles["head"]) for c in shown.columns]]
    data += [
        [_para(_cell(v), styles["cell"]) for v in row] for row in shown.itertuples(index=False)
    ]
    result = LongTable(data, colWidths=_column_widths(shown, width), repeatRows=1)
    result.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f0f0")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return result


_CELL_PADDING = 14.0  # points: the table's 6 pt of padding each side, the grid and a margin
_LONGEST_WORD = 160.0  # points: a longer word (a 64-digit hash) may wrap; a file name does not


def _column_widths(table: pd.DataFrame, width: float) -> list[float]:
    """Column widths (points) summing to `width`: each column gets at least its longest
    word (dates and codes stay on one line) and the rest is shared by how much text the
    column holds; when even the words do not fit, in proportion to them."""
    regular, bold = _font_names()
    least, wanted = [], []
    for number, column in enumerate(table.columns):
        cells = [(_cell(v), regular) for v in table.iloc[:, number]] + [(str(column), bold)]
        words = [pdfmetrics.stringWidth(w, font, 7.5) for text, font in cells for w in text.split()]
        whole = [pdfmetrics.stringWidth(text, font, 7.5) for text, font in cells]
        least.append(min(max(words, default=0), _LONGEST_WORD) + _CELL_PADDING)
        wanted.append(max(min(max(whole, default=0), 3 * _LONGEST_WORD) + _CELL_PADDING, least[-1]))
    if sum(least) >= width:
        return [width * w / sum(least) for w in least]
    spare, extra = width - sum(least), [w - m for w, m in zip(wanted, least, strict=True)]
    if sum(extra) <= 0:
        return [m + spare / len(least) for m in least]
    return [m + spare * e / sum(extra) for m, e in zip(least, extra, strict=True)]


def _pdf_image(png: bytes, width: float) -> Image:
    from reportlab.lib.utils import ImageReader

    reader = ImageReader(io.BytesIO(png))
    pixels_wide, pixels_high = reader.getSize()
    scale = min(width / pixels_wide, 1.0) if pixels_wide else 1.0
    return Image(io.BytesIO(png), width=pixels_wide * scale, height=pixels_high * scale)


def to_pdf(document: Document) -> bytes:
    """The document as an A4 PDF (bytes), with page numbers and the footer on every page."""
    styles = _styles()
    buffer = io.BytesIO()
    margin = 18 * mm
    pdf = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=document.title,
        lang=document.lang,
    )
    width = A4[0] - 2 * margin
    story: list = [_para(document.title, styles["title"])]
    if document.subtitle:
        story.append(_para(document.subtitle, styles["subtitle"]))
    for section in document.sections:
        story.append(_para(section.heading, styles["heading"]))
        story += [_para(p, styles["body"]) for p in section.paragraphs]
        if section.table is not None and not section.table.empty:
            story += [Spacer(1, 3 * mm), _pdf_table(section.table, styles, width)]
            note = _cut_note(section.table, document.lang)
            if note:
                story.append(_para(note, styles["note"]))
        if section.image:
            story += [Spacer(1, 3 * mm), _pdf_image(section.image, width)]
            if section.image_caption:
                story.append(_para(section.image_caption, styles["note"]))

    regular, _ = _font_names()

    def decorate(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(regular, 7.5)
        canvas.setFillColor(colors.grey)
        footer = f"{document.footer}  ·  " if document.footer else ""
        canvas.drawString(margin, 10 * mm, f"{footer}{doc.page}")
        canvas.restoreState()

    pdf.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()
