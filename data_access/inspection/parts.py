"""The building blocks of the inspection pack: what a section builder gets (`Context`) and
what it returns (`Part`).

A section builder is a function `Context -> Part`. It reads the databases through the same
functions the pages call, so the pack's figures are the pages' figures for the same dates,
and it returns one readable `documents.Document` per language plus the tables behind them
(written as CSV beside the documents). Nothing in a Part may carry a data subject's e-mail
or name: people appear only as keyed hashes (RULES.md R18), staff by their work e-mail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from data_access import documents
from data_access.engines import Databases
from data_access.settings import Letters

# Norwegian headings for the table columns the sections show; the CSV files keep the
# column names themselves, so tools reading them need no translation.
NB_COLUMNS = {
    "name": "Navn",
    "legal_name": "Juridisk navn",
    "role": "Rolle",
    "purpose": "Formål",
    "legal_basis": "Behandlingsgrunnlag",
    "country": "Land",
    "dpa_signed_on": "Databehandleravtale",
    "transfer_mechanism": "Overføringsgrunnlag",
    "dpf_checked_on": "DPF sist sjekket",
    "tia_on": "Vurdering av overføring",
    "last_review_on": "Sist gjennomgått",
    "severity": "Alvorlighet",
    "area": "Område",
    "item": "Gjelder",
    "finding": "Funn",
    "rule": "Regel",
    "provider": "Leverandør",
    "party": "Part",
    "category": "Kategori",
    "lifetime": "Levetid",
    "consent_required": "Krever samtykke",
    "request_type": "Type",
    "received": "Mottatt",
    "answered": "Besvart",
    "on_time": "I tide",
    "late": "For sent",
    "on_time_rate": "Andel i tide",
    "median_days_to_close": "Median dager til svar",
    "month": "Måned",
    "request_id": "Henvendelse",
    "received_on": "Mottatt dato",
    "reason": "Begrunnelse",
    "notified_on": "Varslet dato",
    "closed_on": "Lukket dato",
    "kind": "Type",
    "runs": "Kjøringer",
    "records": "Poster",
    "actor": "Utført av",
    "actors": "Utført av",
    "first_run_on": "Første kjøring",
    "last_run_on": "Siste kjøring",
    "job_id": "Jobb",
    "status": "Status",
    "as_of": "Dato",
    "scope": "Omfang",
    "target": "Gjelder",
    "case_ref": "Saksreferanse",
    "owner": "Ansvarlig",
    "placed_on": "Opprettet",
    "review_on": "Gjennomgås",
    "released_on": "Opphevet",
    "subject_ref": "Pseudonym (nøkkelbasert hash)",
    "receipt_id": "Kvittering",
    "hold_id": "Hold",
    "erased": "Slettet",
    "kept": "Beholdt",
    "residue": "Rester funnet",
    "allowed": "Tillatt etter R18",
    "subjects": "Registrerte",
    "granted": "Samtykket",
    "withdrawn": "Trukket",
    "rate": "Andel",
    "source": "Kilde",
    "notice_version": "Versjon av informasjon",
    "withdrawals": "Tilbaketrekninger",
    "finding_count": "Antall",
    "entries": "Oppføringer",
    "actions": "Handlinger",
    "first_at": "Første (UTC)",
    "last_at": "Siste (UTC)",
    "at": "Tidspunkt (UTC)",
    "head": "Hode",
    "file": "Fil",
    "holds": "Innhold",
    "value": "Verdi",
    "figure": "Tall",
    "count": "Antall",
    "store": "Database",
    "rows": "Rader",
    "due_on": "Frist",
    "reality": "Virkelighet",
    "promise": "Løfte",
    "where": "Hvor",
    "found": "Funnet",
    "why": "Hvorfor tillatt",
    "title": "Tittel",
    "records_changed": "Poster endret",
    "first_broken": "Første brutte",
}


# English headings where the column name's own words would not do (abbreviations).
EN_COLUMNS = {
    "dpa_signed_on": "DPA signed on",
    "dpf_checked_on": "DPF checked on",
    "tia_on": "TIA on",
    "subject_ref": "Subject (keyed hash)",
    "request_id": "Request",
    "job_id": "Job",
    "receipt_id": "Receipt",
    "hold_id": "Hold",
    "due_on": "Due on",
}


@dataclass(frozen=True)
class Context:
    """What every section builder reads: the databases, the period (Oslo dates, both ends
    included), the day the pack is prepared on (`as_of`, Oslo date: "current" findings and
    holds are those of this day), and the controller as letters name it."""

    dbs: Databases
    period_start: date
    period_end: date
    as_of: date
    letters: Letters

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.letters.languages)

    def period_label(self, lang: str) -> str:
        word = "Periode" if lang == "nb" else "Period"
        return f"{word}: {self.period_start.isoformat()} – {self.period_end.isoformat()}"


@dataclass(frozen=True)
class Part:
    """One section of the pack.

    `key`: the folder name in the ZIP, e.g. "02-register" (its number orders the pack).
    `titles` and `summaries`: per language, the section's title and one sentence on what
    its files hold (the cover letter lists them). `documents`: one Document per language.
    `tables`: CSV file stem -> the frame written as `<stem>.csv` (RULES.md R40 dialect).
    `figures`: the section's headline numbers by name, for the preview and for checks.
    """

    key: str
    titles: Mapping[str, str]
    summaries: Mapping[str, str]
    documents: Mapping[str, documents.Document]
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    figures: Mapping[str, Any] = field(default_factory=dict)


SectionBuilder = Callable[[Context], Part]


def text(lang: str, nb: str, en: str) -> str:
    """The Norwegian or the English wording (any language but "nb" gets the English)."""
    return nb if lang == "nb" else en


def shown(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """`frame` with column headings in `lang` (Norwegian from NB_COLUMNS), for a document."""
    if lang != "nb":
        return frame.rename(
            columns=lambda c: EN_COLUMNS.get(str(c), str(c).replace("_", " ").capitalize())
        )
    return frame.rename(columns=lambda c: NB_COLUMNS.get(str(c), str(c)))


def document(
    ctx: Context,
    lang: str,
    title: str,
    sections: Sequence[documents.Section],
    *,
    subtitle: str = "",
) -> documents.Document:
    """A section's document in `lang`: titled, with the controller and period under the
    title and the preparation date in the footer."""
    controller = ctx.letters.controller_name
    prepared = text(lang, "Utarbeidet", "Prepared")
    lines = [controller, ctx.period_label(lang)] + ([subtitle] if subtitle else [])
    return documents.Document(
        title=title,
        sections=sections,
        lang=lang,
        subtitle=" · ".join(lines),
        footer=f"{controller} · {title} · {prepared} {ctx.as_of.isoformat()}",
    )


def empty_note(lang: str) -> str:
    return text(lang, "Ingen oppføringer i perioden.", "No entries in the period.")


def count_words(value: Any) -> str:
    """A whole number with thousands separators, or "–" for none."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{int(value):,}"


def percent(value: Any) -> str:
    """A 0..1 rate as a whole percent, "–" for NaN (no rate is not 0 %, RULES.md R21)."""
    if value is None or pd.isna(value):
        return "–"
    return f"{float(value):.0%}"
