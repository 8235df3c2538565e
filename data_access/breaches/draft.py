"""The Datatilsynet notification draft and the letter to the data subjects, in Norwegian
(bokmål, "nb") and English ("en") (GDPR art. 33(3), 34(2); RULES.md R50, R52).

The draft follows the order and headings of Datatilsynet's breach form (description: main
cause, period, when discovered, number affected, what happened, how it arose, types of
personal data, relation to those affected, where the data are now; consequences; measures;
whether and how those affected were told; contact: the DPO), so the DPO can paste it section
by section. Each is a `documents.Document`: `as_text()` to paste, `to_html` / `to_pdf` to
download. A fact not yet recorded is printed as "not yet recorded", never left out, so the
draft shows what is still missing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from data_access import audit
from data_access.breaches import facts as f
from data_access.breaches.clock import oslo_text
from data_access.breaches.records import breach_detail
from data_access.documents import Document, Section
from data_access.emails import normalised_email
from data_access.engines import Databases
from data_access.ledger_tables import breach_subjects, breaches
from data_access.settings import Letters

LANGUAGES = ("nb", "en")

# Form headings in the form's order, per language.
HEADINGS = {
    "nb": {
        "cause": "Hovedårsak til bruddet",
        "period": "Tidsrom for bruddet",
        "discovered": "Når bruddet ble oppdaget",
        "affected": "Antall berørte",
        "what": "Hva har skjedd",
        "how": "Hvordan bruddet oppsto",
        "types": "Typer personopplysninger",
        "relation": "Forholdet til de berørte",
        "location": "Hvor opplysningene er nå",
        "consequences": "Konsekvenser for de berørte",
        "measures": "Tiltak",
        "told": "Om og hvordan de berørte er informert",
        "contact": "Kontaktperson: personvernombudet",
    },
    "en": {
        "cause": "Main cause of the breach",
        "period": "Period of the breach",
        "discovered": "When the breach was discovered",
        "affected": "Number of people affected",
        "what": "What happened",
        "how": "How the breach arose",
        "types": "Types of personal data",
        "relation": "Relation to those affected",
        "location": "Where the data are now",
        "consequences": "Consequences for those affected",
        "measures": "Measures",
        "told": "Whether and how those affected were told",
        "contact": "Contact: the data protection officer",
    },
}
FORM_ORDER = tuple(HEADINGS["en"])
WORDS = {
    "nb": {
        "title": "Melding om brudd på personopplysningssikkerheten",
        "draft": "Utkast til melding til Datatilsynet (personvernforordningen art. 33)",
        "missing": "ikke registrert ennå",
        "estimated": "anslag",
        "people": "personer",
        "records": "registreringer",
        "from": "fra",
        "to": "til",
        "aware": "Virksomheten ble kjent med bruddet",
        "due": "Fristen på 72 timer løper ut",
        "processor": "Databehandleren {name} varslet oss",
        "category": "Type brudd",
        "taken": "Tiltak som er gjennomført",
        "planned": "Tiltak som er planlagt",
        "yes_told": "De berørte er informert: {how}, {when}.",
        "will_tell": "De berørte skal informeres.",
        "not_told": "De berørte informeres ikke. Begrunnelse: {why}",
        "undecided": "Det er ikke avgjort ennå om de berørte skal informeres.",
        "exemption": "Unntak: {what}",
        "phase": "Melding i flere omganger (art. 33(4))",
        "phase_text": "Dette mangler og ettersendes {when}: {what}",
        "delay": "Årsaker til forsinkelsen (art. 33(1))",
        "reference": "Virksomhetens referanse: {ref}",
        "controller": "Behandlingsansvarlig: {name}",
        "letter_title": "Informasjon om et brudd på personopplysningssikkerheten",
        "letter_intro": (
            "Vi skriver til deg fordi personopplysninger om deg var berørt av et brudd på "
            "personopplysningssikkerheten hos {name}."
        ),
        "letter_what": "Hva har skjedd",
        "letter_consequences": "Mulige konsekvenser for deg",
        "letter_measures": "Hva vi har gjort og gjør",
        "letter_advice": "Hva du kan gjøre",
        "letter_advice_text": (
            "Vær oppmerksom på e-post, SMS og telefoner som ber om passord eller betaling, "
            "og bytt passord dersom du har brukt det samme andre steder."
        ),
        "letter_contact": "Kontakt",
        "letter_contact_text": (
            "Spørsmål kan rettes til vårt personvernombud: {contact}. Du kan også klage til "
            "Datatilsynet (www.datatilsynet.no)."
        ),
    },
    "en": {
        "title": "Notification of a personal data breach",
        "draft": "Draft notification to Datatilsynet (GDPR art. 33)",
        "missing": "not yet recorded",
        "estimated": "estimate",
        "people": "people",
        "records": "records",
        "from": "from",
        "to": "to",
        "aware": "The company became aware of the breach",
        "due": "The 72-hour deadline ends",
        "processor": "The processor {name} notified us",
        "category": "Kind of breach",
        "taken": "Measures taken",
        "planned": "Measures planned",
        "yes_told": "Those affected were told: {how}, {when}.",
        "will_tell": "Those affected will be told.",
        "not_told": "Those affected are not told. Reasoning: {why}",
        "undecided": "Whether those affected are told is not decided yet.",
        "exemption": "Exemption: {what}",
        "phase": "Notification in phases (art. 33(4))",
        "phase_text": "Still missing, to follow {when}: {what}",
        "delay": "Reasons for the delay (art. 33(1))",
        "reference": "The company's breach reference: {ref}",
        "controller": "Controller: {name}",
        "letter_title": "About a personal data breach",
        "letter_intro": (
            "We are writing to you because personal data about you were affected by a "
            "personal data breach at {name}."
        ),
        "letter_what": "What happened",
        "letter_consequences": "What it may mean for you",
        "letter_measures": "What we have done and are doing",
        "letter_advice": "What you can do",
        "letter_advice_text": (
            "Be careful with e-mails, text messages and calls that ask for passwords or "
            "payment, and change your password if you used it elsewhere too."
        ),
        "letter_contact": "Contact",
        "letter_contact_text": (
            "Questions can be sent to our data protection officer: {contact}. You may also "
            "complain to Datatilsynet (www.datatilsynet.no)."
        ),
    },
}
CHOICE_WORDS = {
    "nb": {
        "human_error": "menneskelig feil",
        "attack": "angrep utenfra (ondsinnet handling)",
        "technical": "teknisk feil",
        "process": "svikt i rutiner",
        "other": "annet",
        "confidentiality": "konfidensialitet (uautorisert innsyn eller utlevering)",
        "integrity": "integritet (uautorisert endring)",
        "availability": "tilgjengelighet (tap av tilgang eller sletting)",
        "customers": "kunder",
        "members": "brukere av kundekontoer",
        "newsletter_subscribers": "abonnenter på nyhetsbrev",
        "visitors": "besøkende på nettstedet",
        "employees": "ansatte",
    },
    "en": {
        "human_error": "human error",
        "attack": "attack from outside (malicious act)",
        "technical": "technical failure",
        "process": "failure of procedures",
        "other": "other",
        "confidentiality": "confidentiality (unauthorised access or disclosure)",
        "integrity": "integrity (unauthorised alteration)",
        "availability": "availability (loss of access or destruction)",
        "customers": "customers",
        "members": "users of customer accounts",
        "newsletter_subscribers": "newsletter subscribers",
        "visitors": "website visitors",
        "employees": "employees",
    },
}


def datatilsynet_draft(dbs: Databases, breach_id: int, *, language: str) -> str:
    """The draft notification as plain text to paste into Datatilsynet's form, its headings
    in the form's order (RULES.md R50). `language`: 'nb' or 'en'. Raises KeyError for an
    unknown breach, ValueError for another language."""
    return draft_document(dbs, breach_id, language=language).as_text()


def draft_document(dbs: Databases, breach_id: int, *, language: str) -> Document:
    """The draft notification as a Document (to_html / to_pdf / as_text)."""
    words, headings = _words(language), HEADINGS[language]
    b = breach_detail(dbs, breach_id)
    letters = _letters(dbs)
    say = _sayer(words)
    sections = [
        Section(
            headings["cause"],
            [
                say(_choice(b["cause"], language)),
                f"{words['category']}: " + say(_choices(b["category"], language)),
            ],
        ),  # fmt: skip
        Section(headings["period"], [_period(b, words)]),
        Section(headings["discovered"], _discovered(b, words)),
        Section(headings["affected"], [_affected(b, words)]),
        Section(headings["what"], [say(b["description"])]),
        Section(headings["how"], [say(b["how_arose"])]),
        Section(headings["types"], [say(", ".join(b["data_categories"]))]),
        Section(headings["relation"], [say(_choices(b["subject_relations"], language))]),
        Section(headings["location"], [say(b["data_location"])]),
        Section(headings["consequences"], [say(b["consequences"])]),
        Section(
            headings["measures"],
            [
                f"{words['taken']}: {say(b['measures_taken'])}",
                f"{words['planned']}: {say(b['measures_planned'])}",
            ],
        ),  # fmt: skip
        Section(headings["told"], _told(b, words)),
        Section(
            headings["contact"],
            [letters.controller_contact, words["controller"].format(name=letters.controller_name)],
        ),  # fmt: skip
    ]
    if b["phase_missing"]:
        when = b["phase_follows_on"].isoformat() if b["phase_follows_on"] else words["missing"]
        sections.append(Section(words["phase"], [words["phase_text"].format(when=when, what=b["phase_missing"])]))  # fmt: skip
    if b["delay_reasons"]:
        sections.append(Section(words["delay"], [b["delay_reasons"]]))
    return Document(
        title=words["title"],
        subtitle=f"{words['draft']} · {b['title']} · "
        + words["reference"].format(ref=f"breach:{b['id']}"),
        sections=sections,
        lang=language,
        footer=letters.controller_name,
    )


def subject_letter(dbs: Databases, breach_id: int, *, language: str) -> Document:
    """The letter to the data subjects (art. 34(2); RULES.md R52) in clear language: what
    happened, the likely consequences, the measures, the DPO's contact. Raises KeyError for
    an unknown breach, ValueError for another language."""
    words = _words(language)
    b = breach_detail(dbs, breach_id)
    letters = _letters(dbs)
    say = _sayer(words)
    return Document(
        title=words["letter_title"],
        subtitle=letters.controller_name,
        sections=[
            Section(
                words["letter_what"],
                [
                    words["letter_intro"].format(name=letters.controller_name),
                    say(b["description"]),
                    _period(b, words),
                ],
            ),  # fmt: skip
            Section(words["letter_consequences"], [say(b["consequences"])]),
            Section(
                words["letter_measures"], [say(b["measures_taken"]), say(b["measures_planned"])]
            ),
            Section(words["letter_advice"], [words["letter_advice_text"]]),
            Section(
                words["letter_contact"],
                [words["letter_contact_text"].format(contact=letters.controller_contact)],
            ),  # fmt: skip
        ],
        lang=language,
        footer=letters.controller_name,
    )


def _words(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"Drafts are written in {', '.join(LANGUAGES)}, not {language!r}.")
    return WORDS[language]


def _letters(dbs: Databases) -> Letters:
    return dbs.settings.letters if dbs.settings else Letters()


def _sayer(words: dict[str, str]):
    return lambda value: str(value).strip() if value not in (None, "") else f"({words['missing']})"


def _choice(value: str | None, language: str) -> str | None:
    return CHOICE_WORDS[language].get(value, value) if value else None


def _choices(values: list[str], language: str) -> str | None:
    return ", ".join(_choice(v, language) for v in values) or None


def _period(b: dict[str, Any], words: dict[str, str]) -> str:
    start, end = oslo_text(b["occurred_from"]), oslo_text(b["occurred_to"])
    if not start and not end:
        return f"({words['missing']})"
    return f"{words['from']} {start or '?'} {words['to']} {end or '?'}"


def _discovered(b: dict[str, Any], words: dict[str, str]) -> list[str]:
    lines = [f"{words['aware']}: {oslo_text(b['aware_at'])}", f"{words['due']}: {b['due_oslo']}"]
    if b["processor_notice_at"]:
        name = b["processor"] or "?"
        lines.append(
            f"{words['processor'].format(name=name)}: {oslo_text(b['processor_notice_at'])}"
        )
    return lines


def _affected(b: dict[str, Any], words: dict[str, str]) -> str:
    def count(n, estimated, noun):
        if n is None:
            return f"{noun}: ({words['missing']})"
        return f"{_number(n, words)} {noun}" + (f" ({words['estimated']})" if estimated else "")

    return ", ".join(
        [
            count(b["subjects_count"], b["subjects_estimated"], words["people"]),
            count(b["records_count"], b["records_estimated"], words["records"]),
        ]
    )


def _number(n: int, words: dict[str, str]) -> str:
    """A count as the language writes it: 5 100 in Norwegian (a no-break space), 5,100 in
    English."""
    return f"{n:,}".replace(",", "\u00a0") if words is WORDS["nb"] else f"{n:,}"


def _told(b: dict[str, Any], words: dict[str, str]) -> list[str]:
    decision = b["subjects_decision"]
    if decision is None:
        return [words["undecided"]]
    if decision and b["subjects_notified_at"]:
        return [words["yes_told"].format(how=b["subjects_how"] or "?", when=oslo_text(b["subjects_notified_at"]))]  # fmt: skip
    if decision:
        return [words["will_tell"], b["subjects_reasoning"] or ""]
    lines = [words["not_told"].format(why=b["subjects_reasoning"])]
    if b["subjects_exemption"]:
        lines.append(words["exemption"].format(what=f.EXEMPTIONS[b["subjects_exemption"]]))
    return lines


def own_breach_letters(dbs: Databases, email: str) -> dict[str, bytes]:
    """The art. 34 letters of the breaches that list this person among those affected and
    whose data subjects are told, for her access report (art. 15; RULES.md R9, R52):
    "breach-letters/breach-<id>-<language>.txt" -> UTF-8 text, one per language. Nothing
    else of the breach register is hers to receive; a person not listed gets {}."""
    ref = audit.keyed_hash(dbs, normalised_email(email))
    query = (
        select(breaches.c.id)
        .join(breach_subjects, breach_subjects.c.breach_id == breaches.c.id)
        .where(breach_subjects.c.subject_ref == ref, breaches.c.subjects_decision.is_(True))
        .order_by(breaches.c.id)
    )
    with dbs.ledger.connect() as conn:
        ids = list(conn.execute(query).scalars())
    return {
        f"breach-letters/breach-{breach_id}-{language}.txt": subject_letter(
            dbs, breach_id, language=language
        )
        .as_text()
        .encode("utf-8")
        for breach_id in ids
        for language in LANGUAGES
    }
