"""The erasure receipt as a readable document, and the confirmation to the data subject
(GDPR art. 17, art. 12(3); RULES.md R12, R18).

`receipt_document` turns an `erasure.ErasureReceipt` into a `documents.Document` in
Norwegian (bokmål) or English: what was erased per store, what was kept with the reason and
until when, the residue scan and the audit chain's head. Like the receipt it names no one:
the person appears as the start of the keyed hash only. `confirmation_letter` is what the
DPO sends the person: it uses the name and address from the request's intake, which is kept
as proof that the request was handled (R18).
"""

from __future__ import annotations

import re

import pandas as pd

from data_access.documents import Document, Section
from data_access.erasure import ErasureReceipt
from data_access.letters import Letter
from data_access.settings import Letters

# "store.table" keys of the receipt's `erased` counts, in words (en, nb).
ERASED_LABELS = {
    "users.accounts": ("Accounts", "Kontoer"),
    "users.account_members": ("Account members", "Brukere på kontoer"),
    "users.usage_sessions": ("Usage sessions", "Bruksøkter"),
    "users.invoices_anonymised": (
        "Invoices anonymised (past retention)",
        "Fakturaer anonymisert (etter oppbevaringstiden)",
    ),
    "users.invoices_detached_kept": (
        "Invoices detached and kept for bookkeeping",
        "Fakturaer frakoblet og oppbevart for regnskap",
    ),
    "consent.consent_events": ("Consent events", "Samtykkehendelser"),
    "consent.newsletter_subscribers": ("Newsletter subscription", "Nyhetsbrevabonnement"),
    "support.contacts": ("Support contacts", "Kundeservicehenvendelser"),
    "support.contacts_summary_redacted": (
        "Other people's support contacts: her e-mail removed from the text",
        "Andres henvendelser: e-postadressen fjernet fra teksten",
    ),
    "support.data_subject_requests_details_redacted": (
        "Other people's requests: her e-mail removed from the text",
        "Andres forespørsler: e-postadressen fjernet fra teksten",
    ),
    "ledger.notices": ("Deletion notices", "Varsler om sletting"),
    "ledger.outbox": ("Messages in the outbox", "Meldinger i utboksen"),
    "ledger.legal_holds_email_cleared": (
        "Released legal holds: e-mail cleared",
        "Opphevede rettslige hold: e-post fjernet",
    ),
}

_TEXT = {
    "en": {
        "title": "Erasure receipt",
        "subtitle": "Receipt {receipt} · request {request} · as of {as_of}",
        "summary": "Summary",
        "status": "Status: {status}. Data subject (keyed hash, RULES.md R18): {ref}…",
        "chain": "Audit log when the receipt was read: {head}.",
        "erased": "Erased",
        "nothing_erased": "Nothing was erased: no row was found.",
        "kept": "Kept, and why",
        "nothing_kept": "Nothing was kept.",
        "residue": "Residue scan",
        "residue_text": (
            "Every text column of the four databases was searched for her e-mail, phone "
            "numbers and name ({tables} tables, {columns} text columns). Rows still holding "
            "them outside the exceptions: {rows}."
        ),
        "allowed": "Allowed to remain, with the reason:",
        "columns": ("What", "Rows"),
        "kept_columns": ("What", "Why", "Until"),
        "residue_columns": ("Where", "Rows", "Found", "Why"),
        "while_hold": "while the hold lasts",
        "footer": "Erasure receipt {receipt}",
    },
    "nb": {
        "title": "Kvittering for sletting",
        "subtitle": "Kvittering {receipt} · forespørsel {request} · per {as_of}",
        "summary": "Sammendrag",
        "status": "Status: {status}. Den registrerte (nøkkelhash, RULES.md R18): {ref}…",
        "chain": "Revisjonsloggen da kvitteringen ble lest: {head}.",
        "erased": "Slettet",
        "nothing_erased": "Ingenting ble slettet: ingen rader ble funnet.",
        "kept": "Beholdt, og hvorfor",
        "nothing_kept": "Ingenting ble beholdt.",
        "residue": "Søk etter rester",
        "residue_text": (
            "Alle tekstkolonner i de fire databasene ble søkt etter e-postadressen, "
            "telefonnumrene og navnet ({tables} tabeller, {columns} tekstkolonner). Rader "
            "som fortsatt har dem utenom unntakene: {rows}."
        ),
        "allowed": "Tillatt å bli stående, med begrunnelse:",
        "columns": ("Hva", "Rader"),
        "kept_columns": ("Hva", "Hvorfor", "Til"),
        "residue_columns": ("Hvor", "Rader", "Funnet", "Hvorfor"),
        "while_hold": "så lenge holdet varer",
        "footer": "Kvittering for sletting {receipt}",
    },
}


# What the receipt keeps, in words for the person (no rule codes), by pattern of its
# English "what" and "why" (data_access.erasure writes them).
_KEPT_WHAT = (
    (r"^(\d+) invoice\(s\)$", ("{0} invoice(s)", "{0} faktura(er)")),
    (r"^(\d+) support contact\(s\)$", ("{0} support contact(s)", "{0} kundeservicehenvendelse(r)")),
    (
        r"^(\d+) data-subject request intake record\(s\)$",
        ("the record of your request ({0})", "registreringen av forespørselen din ({0})"),
    ),
    (r"^account (\d+) and its data$", ("account {0} and its data", "konto {0} med data")),
    (r"^all data in (\w+)$", ("all data in the {0} database", "alle data i databasen {0}")),
)
_KEPT_WHY = (
    (
        "bookkeeping",
        (
            "the Bookkeeping Act § 13 requires it; used for bookkeeping only",
            "bokføringsloven § 13 krever det; brukes bare til regnskap",
        ),
    ),
    (
        "legal hold",
        ("a legal claim or investigation requires it", "et rettskrav eller en sak krever det"),
    ),
    (
        "proof that requests were handled",
        (
            "to show that your request was handled (GDPR art. 5(2))",
            "for å vise at forespørselen ble behandlet (personvernforordningen art. 5(2))",
        ),
    ),
)


def kept_in_words(entry: dict, lang: str) -> tuple[str, str]:
    """(what, why) of one kept entry in `lang`, without rule codes; an entry of a kind not
    known here keeps its own text."""
    index = 0 if lang == "en" else 1
    what, why = entry["what"], entry["why"]
    for pattern, forms in _KEPT_WHAT:
        match = re.match(pattern, what)
        if match:
            what = forms[index].format(*match.groups())
            break
    for needle, forms in _KEPT_WHY:
        if needle in entry["why"]:
            why = forms[index]
            break
    return what, why


def receipt_document(receipt: ErasureReceipt, *, lang: str = "en") -> Document:
    """The receipt in `lang` ("nb" or "en"; anything else raises ValueError)."""
    if lang not in _TEXT:
        raise ValueError(f"No erasure receipt text in language {lang!r}: use one of nb, en.")
    text = _TEXT[lang]
    index = 0 if lang == "en" else 1
    erased = pd.DataFrame(
        [
            (ERASED_LABELS.get(key, (key, key))[index], rows)
            for key, rows in receipt.erased.items()
            if rows
        ],
        columns=list(text["columns"]),
    )
    kept = pd.DataFrame(
        [
            (
                *(kept_in_words(k, lang) if lang == "nb" else (k["what"], k["why"])),
                k.get("until") or text["while_hold"],
            )
            for k in receipt.kept
        ],
        columns=list(text["kept_columns"]),
    )
    return Document(
        title=text["title"],
        subtitle=text["subtitle"].format(
            receipt=receipt.receipt_id,
            request=receipt.request_id if receipt.request_id is not None else "–",
            as_of=receipt.as_of.isoformat(),
        ),
        lang=lang,
        footer=text["footer"].format(receipt=receipt.receipt_id),
        sections=[
            Section(
                text["summary"],
                [
                    text["status"].format(status=receipt.status, ref=receipt.subject_ref[:12]),
                    text["chain"].format(head=receipt.audit_head or "–"),
                ],
            ),
            Section(text["erased"], [] if not erased.empty else [text["nothing_erased"]], erased),
            Section(text["kept"], [] if not kept.empty else [text["nothing_kept"]], kept),
            _residue_section(receipt, text),
        ],
    )


def _residue_section(receipt: ErasureReceipt, text: dict) -> Section:
    scan = receipt.residue or {}
    scanned = scan.get("scanned", {})
    paragraphs = [
        text["residue_text"].format(
            tables=scanned.get("tables", "–"),
            columns=scanned.get("text_columns", "–"),
            rows=scan.get("residue_rows", "–"),
        )
    ]
    entries = [
        (e["where"], e["rows"], ", ".join(e.get("found", [])), e.get("why", ""))
        for e in [*scan.get("residue", []), *scan.get("allowed", [])]
    ]
    table = pd.DataFrame(entries, columns=list(text["residue_columns"]))
    if scan.get("allowed"):
        paragraphs.append(text["allowed"])
    return Section(text["residue"], paragraphs, table)


def confirmation_letter(
    *,
    full_name: str | None,
    email: str,
    receipt: ErasureReceipt,
    letters: Letters | None = None,
) -> Letter:
    """The letter telling the data subject that the erasure is done (art. 12(3), art. 17),
    Norwegian first, then English: what was erased, what is kept by law and until when."""
    letters = letters or Letters()
    greeting_nb = f"Hei {full_name}," if full_name else "Hei,"
    greeting_en = f"Dear {full_name}," if full_name else "Hello,"
    kept_nb = _kept_lines(receipt, "nb")
    kept_en = _kept_lines(receipt, "en")
    day = receipt.as_of.isoformat()
    norwegian = f"""{greeting_nb}

Vi har slettet personopplysningene dine knyttet til {email}, slik du ba om
(personvernforordningen artikkel 17). Slettingen ble fullført {day}.

{kept_nb}

Har du spørsmål, eller mener du at vi ikke har fulgt reglene, kan du kontakte oss på
{letters.controller_contact}. Du kan også klage til Datatilsynet.

Vennlig hilsen
{letters.controller_name}"""
    english = f"""{greeting_en}

We have erased your personal data linked to {email}, as you asked (GDPR article 17).
The erasure was completed on {day}.

{kept_en}

If you have questions, or think we have not followed the rules, contact us at
{letters.controller_contact}. You may also complain to Datatilsynet, the Norwegian Data
Protection Authority.

Kind regards,
{letters.controller_name}"""
    subject = "Opplysningene dine er slettet / Your data has been erased"
    return Letter(subject=subject, body=f"{norwegian}\n\n-- English --\n\n{english}\n")


def _kept_lines(receipt: ErasureReceipt, lang: str) -> str:
    if not receipt.kept:
        return (
            "Vi har ikke beholdt noe om deg." if lang == "nb" else "We have kept nothing about you."
        )
    head = (
        "Dette må vi beholde etter loven, og bare til dette formålet:"
        if lang == "nb"
        else "The law requires us to keep the following, and only for that purpose:"
    )
    until = "til" if lang == "nb" else "until"
    lines = []
    for entry in receipt.kept:
        what, why = kept_in_words(entry, lang)
        lines.append(
            f"- {what}: {why}" + (f" ({until} {entry['until']})" if entry.get("until") else "")
        )
    return "\n".join([head, *lines])
