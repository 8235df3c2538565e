"""The inspection pack: the controller's answer to Datatilsynet's written control, as one
ZIP (GDPR art. 5(2), 24, 30, 31, 58(1)(a)).

`SECTIONS` is the pack's table of contents: a list of section builders (`parts.Context ->
parts.Part`), each in its own module, run in order. Adding a section is adding one function
to that list; the cover letter lists whatever the list produced, so a section not built is
never named. The breach log (art. 33(5); RULES.md R50-R53, "08-breach-log") and the
retention schedule with the daily runs ("09-daily-run") are in `breach_part`.

Layout of the ZIP: `00-cover-letter.<lang>.html|pdf` at the top; one folder per section
(`<key>/`) holding `<key-without-number>.<lang>.html` and `.pdf` for every language of
`letters.languages` and, per table behind the documents, `<table>.csv` (RULES.md R40 Excel
dialect) and the same rows as `<table>.xlsx`. No file names a data subject: people appear as keyed hashes (R18).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from datetime import date

import pandas as pd

from data_access import audit, documents, export, stores
from data_access.documents import Section
from data_access.engines import Databases
from data_access.inspection import (
    breach_part,
    consent_part,
    register_part,
    requests_part,
    retention_part,
)
from data_access.inspection.parts import Context, Part, SectionBuilder, shown, text
from data_access.settings import Letters

Progress = Callable[[float, str], None]

SECTIONS: list[SectionBuilder] = [
    register_part.record_of_processing,
    register_part.cookie_register,
    requests_part.requests_in_period,
    retention_part.retention_evidence,
    retention_part.receipts,
    consent_part.consent_in_period,
    consent_part.audit_verification,
    breach_part.breach_log,
    breach_part.daily_duties,
]
COVER = "00-cover-letter"
AUDIT_ACTION = "prepare_inspection_pack"


def context(dbs: Databases, *, period_start: date, period_end: date, as_of: date) -> Context:
    """The Context of a pack, after checking the period: raises ValueError when
    `period_start` is after `period_end` or `period_end` is after `as_of` (a pack reports
    what has happened)."""
    if period_start > period_end:
        raise ValueError(
            f"The period starts ({period_start.isoformat()}) after it ends "
            f"({period_end.isoformat()})."
        )
    if period_end > as_of:
        raise ValueError(
            f"The period ends ({period_end.isoformat()}) after the day the pack is prepared "
            f"({as_of.isoformat()})."
        )
    letters = dbs.settings.letters if dbs.settings is not None else Letters()
    return Context(dbs, period_start, period_end, as_of, letters)


def build_parts(
    ctx: Context,
    *,
    sections: Sequence[SectionBuilder] = SECTIONS,
    progress: Progress | None = None,
) -> list[Part]:
    """Every section of `sections` built for `ctx`, in order (what the page previews)."""
    parts = []
    for number, builder in enumerate(sections):
        if progress:
            progress(number / max(len(sections), 1) * 0.5, f"Reading {builder.__name__}")
        parts.append(builder(ctx))
    return parts


LANGUAGE_NAMES = {"nb": ("norsk", "Norwegian"), "en": ("engelsk", "English")}


def document_path(part: Part, lang: str, suffix: str) -> str:
    """Where a section's document in `lang` lies in the ZIP, e.g.
    "03-data-subject-requests/data-subject-requests.nb.pdf"."""
    return f"{part.key}/{part.key.split('-', 1)[1]}.{lang}.{suffix}"


def file_list(ctx: Context, parts: Sequence[Part], lang: str) -> pd.DataFrame:
    """Every file of the sections with what it holds, in `lang`. Columns: file, holds."""
    rows = []
    for part in parts:
        for doc_lang in part.documents:
            nb, en = LANGUAGE_NAMES.get(doc_lang, (doc_lang, doc_lang))
            for suffix in ("html", "pdf"):
                holds = text(lang, f"{part.titles[lang]}, {nb}, {suffix.upper()}",
                             f"{part.titles[lang]}, {en}, {suffix.upper()}")  # fmt: skip
                rows.append([document_path(part, doc_lang, suffix), holds])
        for name, frame in part.tables.items():
            words = name.replace("-", " ")
            for suffix in ("csv", "xlsx"):
                holds = text(lang, f"Tabell: {words} ({len(frame)} rader), {suffix.upper()}",
                             f"Table: {words} ({len(frame)} rows), {suffix.upper()}")  # fmt: skip
                rows.append([f"{part.key}/{name}.{suffix}", holds])
    return pd.DataFrame(rows, columns=["file", "holds"])


def cover_letter(ctx: Context, parts: Sequence[Part], lang: str) -> documents.Document:
    """The cover letter in `lang`: the controller, the DPO contact, the period and, per
    section present, its files and what they hold."""
    letters = ctx.letters
    rows = [[f"{part.key}/", part.titles[lang], part.summaries[lang]] for part in parts]
    contents = pd.DataFrame(rows, columns=["file", "title", "holds"])
    intro = text(
        lang,
        f"{letters.controller_name} oversender med dette dokumentasjon for perioden "
        f"{ctx.period_start.isoformat()} – {ctx.period_end.isoformat()}, utarbeidet "
        f"{ctx.as_of.isoformat()} fra selskapets egne registre.",
        f"{letters.controller_name} hereby submits documentation for the period "
        f"{ctx.period_start.isoformat()} – {ctx.period_end.isoformat()}, prepared on "
        f"{ctx.as_of.isoformat()} from the company's own registers.",
    )
    contact = text(
        lang,
        f"Kontakt for personvern og personvernombudet: {letters.controller_contact}.",
        f"Privacy and data protection officer contact: {letters.controller_contact}.",
    )
    layout = text(
        lang,
        "Hver mappe har samme dokument på norsk og engelsk, som HTML og PDF, og CSV-filene "
        "tallene bygger på (UTF-8, semikolon). Registrerte er bare angitt med pseudonym.",
        "Each folder holds the same document in Norwegian and English, as HTML and PDF, and "
        "the CSV files its figures come from (UTF-8, semicolon). Data subjects appear only "
        "by pseudonym.",
    )
    sections = [
        Section(
            heading=text(lang, "Behandlingsansvarlig", "Controller"),
            paragraphs=[letters.controller_name, contact],
        ),
        Section(
            heading=text(lang, "Innhold", "Contents"),
            paragraphs=[intro, layout],
            table=shown(contents, lang),
        ),  # fmt: skip
        Section(
            heading=text(lang, "Filer", "Files"), table=shown(file_list(ctx, parts, lang), lang)
        ),
    ]
    title = text(lang, "Oversendelsesbrev", "Cover letter")
    return documents.Document(
        title=title,
        sections=sections,
        lang=lang,
        subtitle=text(lang, "Til Datatilsynet", "To Datatilsynet"),
        footer=f"{letters.controller_name} · {title} · {ctx.as_of.isoformat()}",
    )


def files_of(
    ctx: Context, parts: Sequence[Part], progress: Progress | None = None
) -> dict[str, bytes]:
    """The pack's files by path in the ZIP (see the module docstring for the layout)."""
    files: dict[str, bytes] = {}
    for lang in ctx.languages:
        letter = cover_letter(ctx, parts, lang)
        files[f"{COVER}.{lang}.html"] = documents.to_html(letter).encode("utf-8")
        files[f"{COVER}.{lang}.pdf"] = documents.to_pdf(letter)
    for number, part in enumerate(parts):
        if progress:
            progress(0.5 + number / max(len(parts), 1) * 0.5, f"Writing {part.key}")
        for lang, doc in part.documents.items():
            files[document_path(part, lang, "html")] = documents.to_html(doc).encode("utf-8")
            files[document_path(part, lang, "pdf")] = documents.to_pdf(doc)
        for name, frame in part.tables.items():
            files[f"{part.key}/{name}.csv"] = export.to_csv_bytes(frame)
            files[f"{part.key}/{name}.xlsx"] = export.to_xlsx_bytes(frame, sheet=name[:31])
    return files


def zipped(files: dict[str, bytes], as_of: date) -> bytes:
    """The files as a deflated ZIP, every entry dated `as_of` (noon) so a pack is
    reproducible byte for byte from the same data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(as_of.year, as_of.month, as_of.day, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def record_preparation(ctx: Context, parts: Sequence[Part], *, actor: str, files: int) -> None:
    """Audit the preparation: who, which period, which sections, how many files (R18).
    Then anchor the chain, as exports do."""
    with ctx.dbs.ledger.begin() as conn:
        audit.append(
            conn,
            actor=actor,
            action=AUDIT_ACTION,
            target=f"period:{ctx.period_start.isoformat()}..{ctx.period_end.isoformat()}",
            counts={"files": files, "sections": len(parts)},
            details={"sections": [p.key for p in parts], "as_of": ctx.as_of.isoformat()},
        )
    audit.anchor_now(ctx.dbs)


@stores.writes(*stores.AUDIT)
def pack(
    dbs: Databases,
    *,
    period_start: date,
    period_end: date,
    actor: str,
    as_of: date,
    progress: Progress | None = None,
) -> bytes:
    """The inspection pack for the period [period_start, period_end] (Oslo dates), prepared
    on `as_of` by `actor`, as ZIP bytes (layout in the module docstring).

    Every section of SECTIONS in each language of `letters.languages`, as HTML and A4 PDF,
    with its CSV files, and a cover letter listing the sections present. The preparation is
    audited (action "prepare_inspection_pack"). `progress(fraction 0..1, message)` is called
    as sections are read and written. Raises ValueError for a bad period (see `context`).
    """
    ctx = context(dbs, period_start=period_start, period_end=period_end, as_of=as_of)
    parts = build_parts(ctx, progress=progress)
    files = files_of(ctx, parts, progress)
    data = zipped(files, as_of)
    record_preparation(ctx, parts, actor=actor, files=len(files))
    if progress:
        progress(1.0, "Done")
    return data
