"""The letter that comes with an access report, in Norwegian and English (GDPR art. 15;
RULES.md R9).

Per category of data held about the person: the purposes, the legal basis, the named
recipients (from the register, not only categories of recipients: CJEU C-154/21), the
retention period (from `Policy`), and the source. Then every recipient, the safeguards for
transfers to the US, the rights to rectify, erase, restrict and object (and the others),
the right to complain to Datatilsynet, and automated decision-making (none).

The letter is built once as a list of blocks and rendered to Markdown and to HTML, so both
say the same; every data value is escaped for the format it goes into.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from data_access.settings import Letters, Policy

DATATILSYNET = "Datatilsynet, Postboks 458 Sentrum, 0105 Oslo, www.datatilsynet.no"
# EEA member states (ISO 3166-1 alpha-2): a recipient elsewhere receives a transfer.
EEA = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE NO IS LI".split()
)

# The headings of the letter, one per item RULES.md R9 requires (tests look for each).
R9_ITEMS = {
    "data": {"nb": "Opplysningene vi har om deg", "en": "The data we hold about you"},
    "purposes": {"nb": "Formål", "en": "Purposes"},
    "legal_basis": {"nb": "Rettslig grunnlag", "en": "Legal basis"},
    "recipients": {"nb": "Mottakere", "en": "Recipients"},
    "retention": {"nb": "Lagringstid", "en": "Retention period"},
    "source": {"nb": "Kilde", "en": "Source"},
    "us_transfers": {
        "nb": "Overføring til USA og andre land utenfor EØS",
        "en": "Transfers to the United States and other countries outside the EEA",
    },
    "rights": {"nb": "Rettighetene dine", "en": "Your rights"},
    "complaint": {"nb": "Klage til Datatilsynet", "en": "Complaint to Datatilsynet"},
    "automated": {
        "nb": "Automatiserte avgjørelser og profilering",
        "en": "Automated decision-making and profiling",
    },
}

Text = dict[str, str]  # language -> text


@dataclass(frozen=True)
class Category:
    """One category of data: the tables that hold it and what the person must be told."""

    key: str
    tables: tuple[str, ...]
    activity: str | None  # the register's processing activity whose recipients apply
    name: Text
    purpose: Text
    basis: Text
    retention: Callable[[Policy], Text]
    source: Text


CATEGORIES = (
    Category(
        key="account",
        tables=("users.accounts", "users.account_members"),
        activity="Customer accounts",
        name={"nb": "Konto og brukere", "en": "Account and users"},
        purpose={
            "nb": "Å knytte brukerne til kontoen, gi tilgang til tjenesten og tilbakestille "
            "passord.",
            "en": "To connect users to their account, give access to the service and reset "
            "passwords.",
        },
        basis={
            "nb": "Avtalen med deg (personvernforordningen art. 6 nr. 1 bokstav b).",
            "en": "The contract with you (GDPR art. 6(1)(b)).",
        },
        retention=lambda p: {
            "nb": f"Så lenge kontoen er i bruk. En konto som har vært inaktiv i "
            f"{p.account_inactivity_months} måneder, slettes etter at vi har varslet minst "
            f"{p.notice_days} dager før.",
            "en": f"As long as the account is in use. An account inactive for "
            f"{p.account_inactivity_months} months is deleted after a notice at least "
            f"{p.notice_days} days before.",
        },
        source={
            "nb": "Deg selv, eller kontoinnehaveren som ga deg tilgang.",
            "en": "You, or the account holder who gave you access.",
        },
    ),
    Category(
        key="invoices",
        tables=("users.invoices",),
        activity="Invoicing and bookkeeping",
        name={"nb": "Fakturaer", "en": "Invoices"},
        purpose={
            "nb": "Å fakturere etter kundeavtalen og oppfylle bokføringsplikten.",
            "en": "To invoice under the customer agreement and keep the accounts.",
        },
        basis={
            "nb": "Avtalen (art. 6 nr. 1 bokstav b) og rettslig forpliktelse etter "
            "bokføringsloven § 13 (art. 6 nr. 1 bokstav c).",
            "en": "The contract (GDPR art. 6(1)(b)) and the legal obligation of the "
            "Norwegian Bookkeeping Act § 13 (art. 6(1)(c)).",
        },
        retention=lambda p: {
            "nb": f"{p.invoice_retention_years} år etter utløpet av regnskapsåret (som slutter "
            f"{_day_month(p.fiscal_year_end_md)}), deretter anonymiseres fakturaen.",
            "en": f"{p.invoice_retention_years} years after the end of the financial year "
            f"(which ends on {_day_month(p.fiscal_year_end_md)}), then the invoice is "
            "anonymised.",
        },
        source={"nb": "Bestillingene og betalingene dine.", "en": "Your orders and payments."},
    ),
    Category(
        key="usage",
        tables=("users.usage_sessions",),
        activity="Usage statistics and personalisation",
        name={"nb": "Bruksstatistikk", "en": "Usage statistics"},
        purpose={
            "nb": "Å forstå hvordan tjenesten brukes, forbedre den og tilpasse brukerpanelet.",
            "en": "To understand how the service is used, improve it and personalise the "
            "user panel.",
        },
        basis={
            "nb": "Samtykket ditt (art. 6 nr. 1 bokstav a).",
            "en": "Your consent (GDPR art. 6(1)(a)).",
        },
        retention=lambda p: {
            "nb": "Til du trekker samtykket tilbake eller kontoen slettes.",
            "en": "Until you withdraw your consent or the account is deleted.",
        },
        source={
            "nb": "Registrert når du bruker appen, med ditt samtykke.",
            "en": "Observed through your use of the app, with your consent.",
        },
    ),
    Category(
        key="consent",
        tables=("consent.consent_events",),
        activity=None,
        name={"nb": "Samtykker", "en": "Consents"},
        purpose={
            "nb": "Å dokumentere samtykkene du har gitt og trukket tilbake.",
            "en": "To document the consents you have given and withdrawn.",
        },
        basis={
            "nb": "Rettslig forpliktelse til å kunne påvise samtykke (art. 6 nr. 1 bokstav c, "
            "jf. art. 7 nr. 1).",
            "en": "The legal obligation to demonstrate consent (GDPR art. 6(1)(c) with art. 7(1)).",
        },
        retention=lambda p: {
            "nb": "Så lenge behandlingen samtykket gjelder, og til kontoen slettes.",
            "en": "As long as the processing the consent covers, and until the account is deleted.",
        },
        source={
            "nb": "Valgene dine i appen og på nettstedet.",
            "en": "Your choices in the app and on the website.",
        },
    ),
    Category(
        key="newsletter",
        tables=("consent.newsletter_subscribers",),
        activity="Newsletter",
        name={"nb": "Nyhetsbrev", "en": "Newsletter"},
        purpose={
            "nb": "Å sende deg nyhetsbrev om produktene og tjenestene våre.",
            "en": "To send you newsletters about our products and services.",
        },
        basis={
            "nb": "Samtykket ditt (art. 6 nr. 1 bokstav a).",
            "en": "Your consent (GDPR art. 6(1)(a)).",
        },
        retention=lambda p: {
            "nb": "Til du melder deg av eller ber om sletting.",
            "en": "Until you unsubscribe or ask for erasure.",
        },
        source={
            "nb": "Deg, da du meldte deg på.",
            "en": "You, when you subscribed.",
        },
    ),
    Category(
        key="support",
        tables=("support.contacts",),
        activity="Customer service and sales",
        name={"nb": "Kundeservice", "en": "Customer service"},
        purpose={
            "nb": "Å svare på henvendelser på chat, e-post og telefon og ta imot bestillinger.",
            "en": "To answer chat, e-mail and phone enquiries and take orders.",
        },
        basis={
            "nb": "Avtalen med deg (art. 6 nr. 1 bokstav b).",
            "en": "The contract with you (GDPR art. 6(1)(b)).",
        },
        retention=lambda p: {
            "nb": f"{p.support_log_months} måneder etter henvendelsen; lenger bare når det "
            "trengs for å forsvare et rettskrav (art. 17 nr. 3 bokstav e).",
            "en": f"{p.support_log_months} months after the contact; longer only when needed "
            "to defend a legal claim (GDPR art. 17(3)(e)).",
        },
        source={
            "nb": "Deg, da du kontaktet oss.",
            "en": "You, when you contacted us.",
        },
    ),
    Category(
        key="requests",
        tables=("support.data_subject_requests", "ledger.request_cases"),
        activity=None,
        name={"nb": "Forespørslene dine om rettigheter", "en": "Your data-subject requests"},
        purpose={
            "nb": "Å behandle forespørslene dine og dokumentere at de er besvart.",
            "en": "To handle your requests and document that they were answered.",
        },
        basis={
            "nb": "Rettslig forpliktelse (art. 6 nr. 1 bokstav c, jf. art. 5 nr. 2 og art. 12).",
            "en": "Legal obligation (GDPR art. 6(1)(c) with art. 5(2) and art. 12).",
        },
        retention=lambda p: {
            "nb": "Som dokumentasjon på at forespørslene er behandlet; sak og logg refererer "
            "bare til forespørselens nummer.",
            "en": "As proof that the requests were handled; the case and the log refer only "
            "to the request's number.",
        },
        source={"nb": "Deg.", "en": "You."},
    ),
    Category(
        key="notices",
        tables=("ledger.notices", "ledger.outbox"),
        activity=None,
        name={"nb": "Varsler vi har sendt deg", "en": "Notices we sent you"},
        purpose={
            "nb": "Å varsle deg før en inaktiv konto slettes.",
            "en": "To notify you before an inactive account is deleted.",
        },
        basis={
            "nb": "Avtalen med deg (art. 6 nr. 1 bokstav b).",
            "en": "The contract with you (GDPR art. 6(1)(b)).",
        },
        retention=lambda p: {
            "nb": "Til kontoen er slettet.",
            "en": "Until the account is deleted.",
        },
        source={"nb": "Oss.", "en": "Us."},
    ),
    Category(
        key="holds",
        tables=("ledger.legal_holds",),
        activity=None,
        name={"nb": "Rettslig tilbakehold", "en": "Legal holds"},
        purpose={
            "nb": "Å fastsette, gjøre gjeldende eller forsvare rettskrav.",
            "en": "To establish, exercise or defend legal claims.",
        },
        basis={
            "nb": "Berettiget interesse (art. 6 nr. 1 bokstav f, jf. art. 17 nr. 3 bokstav e).",
            "en": "Legitimate interest (GDPR art. 6(1)(f) with art. 17(3)(e)).",
        },
        retention=lambda p: {
            "nb": f"Til saken er avsluttet; vurderes minst hver {p.hold_review_months}. måned.",
            "en": f"Until the matter is closed; reviewed at least every "
            f"{p.hold_review_months} months.",
        },
        source={"nb": "Oss.", "en": "Us."},
    ),
)

ROLES = {
    "processor": {"nb": "databehandler", "en": "processor"},
    "joint_controller": {"nb": "felles behandlingsansvarlig", "en": "joint controller"},
    "independent_controller": {
        "nb": "selvstendig behandlingsansvarlig",
        "en": "independent controller",
    },
}
RIGHTS = (
    {
        "nb": "Retting (art. 16): be oss rette opplysninger som er feil.",
        "en": "Rectification (art. 16): ask us to correct data that is wrong.",
    },
    {
        "nb": "Sletting (art. 17): be oss slette opplysninger vi ikke lenger trenger.",
        "en": "Erasure (art. 17): ask us to erase data we no longer need.",
    },
    {
        "nb": "Begrensning (art. 18): be oss begrense behandlingen mens noe avklares.",
        "en": "Restriction (art. 18): ask us to restrict processing while a question is settled.",
    },
    {
        "nb": "Protest (art. 21): protestere mot behandling som bygger på berettiget interesse.",
        "en": "Objection (art. 21): object to processing based on legitimate interest.",
    },
    {
        "nb": "Dataportabilitet (art. 20): få opplysningene du har gitt oss i et maskinlesbart "
        "format.",
        "en": "Portability (art. 20): receive the data you gave us in a machine-readable format.",
    },
    {
        "nb": "Trekke tilbake samtykke (art. 7 nr. 3) når som helst, uten at det påvirker "
        "behandlingen før det.",
        "en": "Withdraw your consent (art. 7(3)) at any time, without affecting the "
        "processing before.",
    },
)


# --- building ------------------------------------------------------------------------------

Block = tuple  # ("h1" | "h2" | "h3" | "p", text) | ("ul", [text]) | ("table", header, rows)


def letter_blocks(
    *,
    email: str,
    name: str | None,
    as_of: date,
    row_counts: Mapping[str, int],
    recipients: list[dict[str, Any]],
    activities: list[dict[str, Any]],
    policy: Policy,
    letters: Letters,
) -> dict[str, list[Block]]:
    """The letter's blocks per language of `letters.languages` ("nb", "en"), in that order.

    `row_counts` is rows per "store.table" held about the person; `recipients` and
    `activities` are the register's rows (dicts, None for missing values).
    """
    return {
        lang: _blocks(lang, email, name, as_of, row_counts, recipients, activities, policy, letters)
        for lang in letters.languages
    }


def _blocks(lang, email, name, as_of, row_counts, recipients, activities, policy, letters):
    item = {key: headings[lang] for key, headings in R9_ITEMS.items()}
    nb = lang == "nb"
    receiving = [r for r in recipients if r.get("receives_personal_data")]
    blocks: list[Block] = [
        ("h1", "Innsyn i personopplysninger" if nb else "Access to your personal data"),
        (
            "p",
            (f"Til {name} ({email})" if name else f"Til {email}")
            if nb
            else (f"To {name} ({email})" if name else f"To {email}"),
        ),
        (
            "p",
            f"{letters.controller_name} er behandlingsansvarlig. Dette er en kopi av alle "
            f"personopplysningene vi har om deg per {as_of.isoformat()}, og det du har krav på å "
            "vite om behandlingen (personvernforordningen art. 15). Opplysningene ligger i "
            "data.json og i én CSV-fil per tabell."
            if nb
            else f"{letters.controller_name} is the controller. This is a copy of all personal "
            f"data we hold about you as of {as_of.isoformat()}, and what you are entitled to "
            "know about its processing (GDPR art. 15). The data is in data.json and in one CSV "
            "file per table.",
        ),
        ("h2", item["data"]),
    ]
    held = [c for c in CATEGORIES if any(row_counts.get(t, 0) for t in c.tables)]
    rows = [
        (c.name[lang], f"{t}.csv", str(row_counts.get(t, 0)))
        for c in CATEGORIES
        for t in c.tables
        if row_counts.get(t, 0)
    ]
    if rows:
        header = ("Kategori", "Fil", "Rader") if nb else ("Category", "File", "Rows")
        blocks.append(("table", header, rows))
    else:
        blocks.append(
            (
                "p",
                "Vi har ingen personopplysninger om deg utover forespørselen din."
                if nb
                else "We hold no personal data about you beyond your request.",
            )
        )
    for category in held:
        blocks += [
            ("h3", category.name[lang]),
            (
                "ul",
                [
                    f"{item['purposes']}: {category.purpose[lang]}",
                    f"{item['legal_basis']}: {category.basis[lang]}",
                    f"{item['recipients']}: "
                    + _category_recipients(category, activities, receiving, lang),
                    f"{item['retention']}: {category.retention(policy)[lang]}",
                    f"{item['source']}: {category.source[lang]}",
                ],
            ),
        ]
    blocks += _recipient_blocks(lang, item, receiving)
    blocks += _transfer_blocks(lang, item, receiving)
    blocks += [
        ("h2", item["rights"]),
        ("ul", [r[lang] for r in RIGHTS]),
        (
            "p",
            f"Skriv til {letters.controller_contact} for å bruke rettighetene dine."
            if nb
            else f"Write to {letters.controller_contact} to exercise your rights.",
        ),
        ("h2", item["complaint"]),
        (
            "p",
            f"Du kan klage til Datatilsynet ({DATATILSYNET}), eller til tilsynsmyndigheten "
            "der du bor hvis det er i EU/EØS (art. 77). Du kan også bringe saken inn for "
            "domstolene (art. 79)."
            if nb
            else f"You may lodge a complaint with Datatilsynet, the Norwegian Data Protection "
            f"Authority ({DATATILSYNET}), or with the authority where you live in the EU/EEA "
            "(art. 77). You may also take the matter to the courts (art. 79).",
        ),
        ("h2", item["automated"]),
        (
            "p",
            "Ingen. Vi treffer ingen avgjørelser om deg som utelukkende bygger på automatisert "
            "behandling, heller ikke profilering (art. 22)."
            if nb
            else "None. We make no decisions about you based solely on automated processing, "
            "including profiling (art. 22).",
        ),
        ("p", ("Vennlig hilsen" if nb else "Kind regards") + f"\n{letters.controller_name}"),
    ]
    return blocks


def _category_recipients(
    category: Category, activities: list[dict], receiving: list[dict], lang: str
) -> str:
    """The register recipients named by the category's processing activity."""
    names = []
    for activity in activities:
        if category.activity and activity.get("name") == category.activity:
            listed = str(activity.get("recipients") or "")
            names = [n.strip() for n in listed.split(",") if n.strip()]
    known = {r["name"]: r for r in receiving}
    named = [_recipient_label(known[n]) for n in names if n in known]
    if named:
        return "; ".join(named)
    return "Ingen utenfor selskapet." if lang == "nb" else "None outside the company."


def _recipient_label(recipient: Mapping[str, Any]) -> str:
    legal = recipient.get("legal_name")
    return f"{recipient['name']} ({legal})" if legal else str(recipient["name"])


def _recipient_blocks(lang: str, item: Mapping[str, str], receiving: list[dict]) -> list[Block]:
    nb = lang == "nb"
    if not receiving:
        text = "Vi deler ikke personopplysninger med andre." if nb else "We share no personal data."
        return [("h2", item["recipients"]), ("p", text)]
    header = (
        ("Mottaker", "Juridisk navn", "Rolle", "Formål", "Land")
        if nb
        else ("Recipient", "Legal name", "Role", "Purpose", "Country")
    )
    rows = [
        (
            str(r["name"]),
            str(r.get("legal_name") or "—"),
            ROLES.get(r.get("role"), {}).get(lang, str(r.get("role") or "—")),
            str(r.get("purpose") or "—"),
            str(r.get("country") or "—"),
        )
        for r in receiving
    ]
    return [("h2", item["recipients"]), ("table", header, rows)]


def _transfer_blocks(lang: str, item: Mapping[str, str], receiving: list[dict]) -> list[Block]:
    nb = lang == "nb"
    lines = [_safeguard(r, lang) for r in receiving if _transfers(r)]
    if not lines:
        text = (
            "Vi overfører ikke personopplysninger til land utenfor EØS."
            if nb
            else "We transfer no personal data to countries outside the EEA."
        )
        return [("h2", item["us_transfers"]), ("p", text)]
    return [("h2", item["us_transfers"]), ("ul", lines)]


def _transfers(recipient: Mapping[str, Any]) -> bool:
    """Outside the EEA, or inside it under a mechanism that covers an onward US transfer."""
    country = (recipient.get("country") or "").upper()
    mechanism = recipient.get("transfer_mechanism")
    return (bool(country) and country not in EEA) or mechanism in ("dpf", "scc", "adequacy")


def _safeguard(recipient: Mapping[str, Any], lang: str) -> str:
    nb = lang == "nb"
    mechanism = recipient.get("transfer_mechanism")
    label = _recipient_label(recipient)
    if mechanism == "dpf":
        checked = recipient.get("dpf_checked_on")
        when = f" {_iso(checked)}" if checked else ""
        return (
            f"{label}: sertifisert under EU–US Data Privacy Framework (EU-kommisjonens "
            f"adekvansbeslutning av 10. juli 2023); oppføringen sist kontrollert{when}."
            if nb
            else f"{label}: certified under the EU–US Data Privacy Framework (the European "
            f"Commission's adequacy decision of 10 July 2023); listing last checked{when}."
        )
    if mechanism == "scc":
        tia = recipient.get("tia_on")
        done = f" {_iso(tia)}" if tia else ""
        return (
            f"{label}: EUs standardpersonvernbestemmelser (SCC, beslutning 2021/914) med "
            f"vurdering av overføringen (TIA){done}."
            if nb
            else f"{label}: the EU standard contractual clauses (SCC, decision 2021/914) with a "
            f"transfer impact assessment (TIA){done}."
        )
    if mechanism == "adequacy":
        return (
            f"{label}: EU-kommisjonens adekvansbeslutning for mottakerlandet."
            if nb
            else f"{label}: the European Commission's adequacy decision for the country."
        )
    return (
        f"{label}: ingen overføringsgrunnlag er registrert; ta kontakt med oss."
        if nb
        else f"{label}: no transfer mechanism is recorded; please contact us."
    )


def _day_month(md: tuple[int, int]) -> str:
    return f"{md[1]:02d}.{md[0]:02d}."


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# --- rendering -----------------------------------------------------------------------------

LANGUAGE_TITLES = {"nb": "Norsk (bokmål)", "en": "English"}


def to_markdown(letter: Mapping[str, list[Block]]) -> str:
    """The letter as Markdown, its languages in order; data values are escaped for Markdown."""
    parts = []
    for lang in letter:
        parts.append(f"<!-- {LANGUAGE_TITLES[lang]} -->")
        parts += [_markdown_block(block) for block in letter[lang]]
        parts.append("---")
    return "\n\n".join(parts[:-1]) + "\n"


def _md(text: str) -> str:
    """Markdown-escaped text: characters that would start markup are backslashed."""
    out = []
    for ch in str(text):
        out.append("\\" + ch if ch in "\\`*_{}[]<>#|!" else ch)
    return "".join(out)


def _markdown_block(block: Block) -> str:
    kind = block[0]
    if kind in ("h1", "h2", "h3"):
        return "#" * int(kind[1]) + " " + _md(block[1])
    if kind == "p":
        return "  \n".join(_md(line) for line in block[1].split("\n"))
    if kind == "ul":
        return "\n".join(f"- {_md(item)}" for item in block[1])
    if kind == "table":
        header, rows = block[1], block[2]
        lines = ["| " + " | ".join(_md(h) for h in header) + " |"]
        lines.append("|" + "|".join(" --- " for _ in header) + "|")
        lines += ["| " + " | ".join(_md(_one_line(c)) for c in row) + " |" for row in rows]
        return "\n".join(lines)
    raise ValueError(f"unknown block {kind!r}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def to_html(letter: Mapping[str, list[Block]], *, title: str) -> str:
    """The letter as one HTML document, a <section lang> per language; every value escaped."""
    sections = []
    for lang in letter:
        body = "\n".join(_html_block(block) for block in letter[lang])
        sections.append(f'<section lang="{lang}">\n{body}\n</section>')
    return (
        f'<!DOCTYPE html>\n<html lang="{next(iter(letter))}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;"
        "text-align:left;vertical-align:top}section+section{border-top:2px solid #333;"
        "margin-top:2em}</style>\n</head>\n<body>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def _html_block(block: Block) -> str:
    kind = block[0]
    if kind in ("h1", "h2", "h3"):
        return f"<{kind}>{html.escape(block[1])}</{kind}>"
    if kind == "p":
        return "<p>" + "<br>".join(html.escape(line) for line in block[1].split("\n")) + "</p>"
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block[1]) + "</ul>"
    if kind == "table":
        header, rows = block[1], block[2]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    raise ValueError(f"unknown block {kind!r}")
