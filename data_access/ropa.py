"""The "Record of processing activities" for Datatilsynet (GDPR art. 30; RULES.md R30, R31,
R24): one HTML document, in English or Norwegian, that prints well (A4, tables that do not
break across pages, the controller and date on top).

The document is built from the register in the ledger; every value is HTML-escaped, so a
register entry can never become markup.
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from data_access import register
from data_access.clock import today_oslo
from data_access.engines import Databases
from data_access.register_edit import country_name
from data_access.settings import Letters

LANGUAGES = ("en", "nb")

LABELS = {
    "en": {
        "title": "Record of processing activities",
        "subtitle": "GDPR article 30(1)",
        "controller": "Controller",
        "contact": "Contact",
        "date": "Date",
        "activities": "Processing activities",
        "purpose": "Purpose",
        "legal_basis": "Legal basis",
        "data_subjects": "Categories of data subjects",
        "data_categories": "Categories of personal data",
        "recipients": "Recipients",
        "third_country_transfers": "Transfers to third countries",
        "retention_rule": "Time limits for erasure",
        "security_measures": "Technical and organisational security measures",
        "updated_on": "Last updated",
        "recipient_table": "Recipients and processors",
        "name": "Name",
        "legal_name": "Legal name",
        "role": "Role",
        "country": "Country",
        "dpa_signed_on": "Data processing agreement",
        "transfer_mechanism": "Transfer mechanism",
        "last_review_on": "Last reviewed",
        "cookies": "Cookies and similar technologies",
        "provider": "Provider",
        "party": "Party",
        "category": "Category",
        "lifetime": "Lifetime",
        "consent_required": "Consent required",
        "none": "Not recorded",
        "yes": "Yes",
        "no": "No",
        "empty": "No entries.",
    },
    "nb": {
        "title": "Protokoll over behandlingsaktiviteter",
        "subtitle": "Personvernforordningen artikkel 30 nr. 1",
        "controller": "Behandlingsansvarlig",
        "contact": "Kontakt",
        "date": "Dato",
        "activities": "Behandlingsaktiviteter",
        "purpose": "Formål",
        "legal_basis": "Behandlingsgrunnlag",
        "data_subjects": "Kategorier av registrerte",
        "data_categories": "Kategorier av personopplysninger",
        "recipients": "Mottakere",
        "third_country_transfers": "Overføring til tredjeland",
        "retention_rule": "Frister for sletting",
        "security_measures": "Tekniske og organisatoriske sikkerhetstiltak",
        "updated_on": "Sist oppdatert",
        "recipient_table": "Mottakere og databehandlere",
        "name": "Navn",
        "legal_name": "Juridisk navn",
        "role": "Rolle",
        "country": "Land",
        "dpa_signed_on": "Databehandleravtale",
        "transfer_mechanism": "Overføringsgrunnlag",
        "last_review_on": "Sist gjennomgått",
        "cookies": "Informasjonskapsler og lignende teknologi",
        "provider": "Leverandør",
        "party": "Part",
        "category": "Kategori",
        "lifetime": "Levetid",
        "consent_required": "Krever samtykke",
        "none": "Ikke registrert",
        "yes": "Ja",
        "no": "Nei",
        "empty": "Ingen oppføringer.",
    },
}

VALUES = {
    "en": {
        "processor": "Processor",
        "joint_controller": "Joint controller",
        "independent_controller": "Independent controller",
        "eea": "Within the EEA",
        "adequacy": "Adequacy decision (art. 45)",
        "dpf": "EU-US Data Privacy Framework (adequacy decision)",
        "scc": "Standard contractual clauses 2021/914 (art. 46)",
        "first": "First party",
        "third": "Third party",
        "strictly_necessary": "Strictly necessary",
        "statistics": "Statistics",
        "marketing": "Marketing",
    },
    "nb": {
        "processor": "Databehandler",
        "joint_controller": "Felles behandlingsansvarlig",
        "independent_controller": "Selvstendig behandlingsansvarlig",
        "eea": "Innenfor EØS",
        "adequacy": "Beslutning om tilstrekkelig beskyttelsesnivå (art. 45)",
        "dpf": "EU-US Data Privacy Framework (beslutning om tilstrekkelig beskyttelsesnivå)",
        "scc": "Standard personvernbestemmelser 2021/914 (art. 46)",
        "first": "Førstepart",
        "third": "Tredjepart",
        "strictly_necessary": "Strengt nødvendig",
        "statistics": "Statistikk",
        "marketing": "Markedsføring",
    },
}

STYLE = """
@page { size: A4; margin: 18mm 16mm; }
body { font-family: "Helvetica Neue", Arial, sans-serif; font-size: 10.5pt; color: #111;
       max-width: 180mm; margin: 0 auto; line-height: 1.35; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
h2 { font-size: 13pt; margin: 8mm 0 3mm; border-bottom: 1px solid #999; }
h3 { font-size: 11.5pt; margin: 5mm 0 2mm; }
.meta { color: #444; margin-bottom: 6mm; }
table { border-collapse: collapse; width: 100%; margin-bottom: 4mm; }
th, td { border: 1px solid #bbb; padding: 1.5mm 2mm; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
table.activity th { width: 38%; }
section, tr { page-break-inside: avoid; break-inside: avoid; }
thead { display: table-header-group; }
@media print { h2 { page-break-after: avoid; } }
"""


def record_of_processing_html(
    dbs: Databases, *, language: str = "en", as_of: date | None = None
) -> bytes:
    """The record of processing activities (art. 30(1)) as a UTF-8 HTML document in
    `language` ('en' or 'nb'), dated `as_of` (Oslo date, default today): the controller,
    each processing activity, the recipients and processors with country and transfer
    mechanism, and the cookies. Raises ValueError for another language."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    as_of = as_of or today_oslo()
    labels = LABELS[language]
    letters = dbs.settings.letters if dbs.settings is not None else Letters()
    body = [
        f"<h1>{escape(labels['title'])}</h1>",
        f"<p class='meta'>{escape(labels['subtitle'])}<br>"
        f"{escape(labels['controller'])}: {escape(letters.controller_name)}<br>"
        f"{escape(labels['contact'])}: {escape(letters.controller_contact)}<br>"
        f"{escape(labels['date'])}: {as_of.isoformat()}</p>",
        _activities(register.processing_activities(dbs).to_dict("records"), labels),
        _recipients(register.recipients(dbs).to_dict("records"), labels, language),
        _cookies(register.cookies(dbs).to_dict("records"), labels, language),
    ]
    document = (
        f"<!DOCTYPE html>\n<html lang='{language}'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{escape(labels['title'])} – {escape(letters.controller_name)}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    return document.encode("utf-8")


def _cell(value: Any, labels: dict[str, str]) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return escape(labels["none"])
    if isinstance(value, bool):
        return escape(labels["yes"] if value else labels["no"])
    if isinstance(value, date):
        return value.isoformat()
    return escape(str(value)).replace("\n", "<br>")


def _activities(rows: list[dict], labels: dict[str, str]) -> str:
    fields = (
        "purpose",
        "legal_basis",
        "data_subjects",
        "data_categories",
        "recipients",
        "third_country_transfers",
        "retention_rule",
        "security_measures",
        "updated_on",
    )
    parts = [f"<h2>{escape(labels['activities'])}</h2>"]
    if not rows:
        parts.append(f"<p>{escape(labels['empty'])}</p>")
    for number, row in enumerate(rows, start=1):
        lines = "".join(
            f"<tr><th>{escape(labels[f])}</th><td>{_cell(row.get(f), labels)}</td></tr>"
            for f in fields
        )
        parts.append(
            f"<section><h3>{number}. {_cell(row['name'], labels)}</h3>"
            f"<table class='activity'>{lines}</table></section>"
        )
    return "\n".join(parts)


def _table(rows: list[list[str]], headers: list[str], labels: dict[str, str]) -> str:
    if not rows:
        return f"<p>{escape(labels['empty'])}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _value(value: Any, language: str, labels: dict[str, str]) -> str:
    return _cell(VALUES[language].get(value, value) if isinstance(value, str) else value, labels)


def _recipients(rows: list[dict], labels: dict[str, str], language: str) -> str:
    headers = [labels[k] for k in ("name", "legal_name", "role", "purpose", "country",
                                   "dpa_signed_on", "transfer_mechanism", "last_review_on")]  # fmt: skip
    table = []
    for r in rows:
        country = r.get("country")
        named = country_name(country) if country else None
        table.append(
            [
                _cell(r["name"], labels),
                _cell(r.get("legal_name"), labels),
                _value(r.get("role"), language, labels),
                _cell(r.get("purpose"), labels),
                _cell(f"{named} ({country})" if named else country, labels),
                _cell(r.get("dpa_signed_on"), labels),
                _value(r.get("transfer_mechanism"), language, labels),
                _cell(r.get("last_review_on"), labels),
            ]
        )
    return f"<h2>{escape(labels['recipient_table'])}</h2>\n" + _table(table, headers, labels)


def _cookies(rows: list[dict], labels: dict[str, str], language: str) -> str:
    headers = [labels[k] for k in ("name", "provider", "party", "category", "lifetime",
                                   "consent_required")]  # fmt: skip
    table = [
        [
            _cell(c["name"], labels),
            _cell(c.get("provider"), labels),
            _value(c.get("party"), language, labels),
            _value(c.get("category"), language, labels),
            _cell(c.get("lifetime"), labels),
            _cell(bool(c.get("consent_required")), labels),
        ]
        for c in rows
    ]
    return f"<h2>{escape(labels['cookies'])}</h2>\n" + _table(table, headers, labels)
