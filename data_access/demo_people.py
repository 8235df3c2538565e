"""Norwegian names, places, e-mail addresses, phone numbers and texts for the demo data.

Faker's Norwegian locale (`no_NO`, bokmål) is called only to build small pools once; rows
combine pool entries by index with numpy, because calling Faker per row is far too slow for
a million accounts. Every function is deterministic for a given seed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
from faker import Faker

STR = np.dtypes.StringDType()
FAKER_LOCALE = "no_NO"  # Faker's name for Norwegian bokmål (nb_NO)

_FOLD = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "Ae", "Ø": "O", "Å": "A"})

PERSONAL_DOMAINS = (
    "gmail.com",
    "hotmail.com",
    "online.no",
    "outlook.com",
    "icloud.com",
    "live.no",
    "yahoo.no",
    "altibox.no",
)
PERSONAL_DOMAIN_WEIGHTS = (0.38, 0.16, 0.12, 0.1, 0.1, 0.06, 0.04, 0.04)

# Brewing businesses and clubs: "{}" is a surname or a place.
COMPANY_PATTERNS = (
    "{} Bryggeri AS",
    "{} Bryghus AS",
    "{} Mikrobryggeri AS",
    "Bryggeriet {} AS",
    "{} Ølkompani AS",
    "{} Hjemmebryggerlag",
    "{} Cideri AS",
    "{} Gårdsbryggeri",
)


def ascii_fold(text: str) -> str:
    """Lower-case ASCII for e-mail local parts: æ→ae, ø→o, å→a, accents dropped, only a-z0-9."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return "".join(c for c in plain if c.isascii() and c.isalnum())


def _unique(values) -> list[str]:
    return list(dict.fromkeys(values))


@dataclass(frozen=True)
class Pools:
    """Name and place pools; `*_ascii` are the e-mail forms of the same entries."""

    first: np.ndarray
    first_ascii: np.ndarray
    last: np.ndarray
    last_ascii: np.ndarray
    cities: np.ndarray
    companies: np.ndarray
    company_domains: np.ndarray

    def full_names(self, first: np.ndarray, last: np.ndarray, last2: np.ndarray) -> np.ndarray:
        """'First Last' or, where `last2` >= 0, 'First Last Last2' (double surnames)."""
        names = np.strings.add(np.strings.add(self.first[first], " "), self.last[last])
        double = last2 >= 0
        if double.any():
            extra = np.strings.add(" ", self.last[np.where(double, last2, 0)])
            names = np.where(double, np.strings.add(names, extra), names)
        return names


def build_pools(seed: int) -> Pools:
    """Pools of Norwegian first names, surnames, places and brewing companies (deterministic)."""
    fake = Faker(FAKER_LOCALE)
    fake.seed_instance(seed)
    first = _unique(
        [fake.first_name_female() for _ in range(1500)]
        + [fake.first_name_male() for _ in range(1500)]
    )
    last = _unique(fake.last_name() for _ in range(3000))
    cities = _unique(fake.city() for _ in range(3000))
    companies = _unique(
        COMPANY_PATTERNS[i % len(COMPANY_PATTERNS)].format(
            fake.last_name() if i % 3 == 0 else fake.city()
        )
        for i in range(4000)
    )
    return Pools(
        first=np.array(first, dtype=STR),
        first_ascii=np.array([ascii_fold(n) for n in first], dtype=STR),
        last=np.array(last, dtype=STR),
        last_ascii=np.array([ascii_fold(n) for n in last], dtype=STR),
        cities=np.array(cities, dtype=STR),
        companies=np.array(companies, dtype=STR),
        company_domains=np.array([_company_domain(c) for c in companies], dtype=STR),
    )


def _company_domain(company: str) -> str:
    words = [w for w in company.split() if w not in ("AS",)]
    return "-".join(ascii_fold(w) for w in words) + ".no"


def join(*parts) -> np.ndarray:
    """Element-wise concatenation of string arrays, numbers and literals."""
    result = None
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype.kind in "iu":
            part = part.astype(STR)
        result = part if result is None else np.strings.add(result, part)
    return result


def mixed_case(emails: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`emails` with the masked ones written as people type them ('Kari.Nordmann7@Gmail.Com').
    The dashboard must find them case-insensitively (RULES.md R12)."""
    return np.where(mask, np.strings.title(emails), emails)


def phone_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Norwegian mobile numbers, '+47 912 34 567' or '+4791234567'."""
    digits = (rng.choice([4, 9], size=n) * 10_000_000 + rng.integers(0, 10_000_000, n)).astype(STR)
    spaced = join(
        "+47 ",
        np.strings.slice(digits, 0, 3),
        " ",
        np.strings.slice(digits, 3, 5),
        " ",
        np.strings.slice(digits, 5, 8),
    )
    return np.where(rng.random(n) < 0.6, spaced, join("+47", digits))


def pick(rng: np.random.Generator, values, n: int, weights=None) -> np.ndarray:
    """`n` entries of `values` (an object array), optionally weighted."""
    values = np.asarray(values, dtype=object)
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    return values[rng.choice(len(values), size=n, p=p)]


# --- Norwegian texts --------------------------------------------------------------------------

SUPPORT_SUMMARIES = {
    "chat": (
        "Spørsmål om hvordan Airlock kobles til Wi-Fi",
        "Keg Monitor viser feil vekt etter fylling",
        "Ønsker å endre e-postadressen på kontoen",
        "Spørsmål om levering av ny Airlock",
        "Får ikke logget inn i appen",
        "Hvordan eksportere bryggelogg til CSV?",
        "Spørsmål om abonnement for bedrifter",
        "Varsler om gjæring kommer ikke fram",
        "Hjelp med å sette opp ny bruker på kontoen",
        "Spørsmål om garanti på Keg Monitor",
    ),
    "email": (
        "Faktura mottatt to ganger for samme måned",
        "Reklamasjon: Airlock sluttet å virke etter tre uker",
        "Ønsker kopi av faktura for regnskapet",
        "Spørsmål om oppsigelse av abonnement",
        "Tilbakemelding på oppskriftseditoren",
        "Bytte av kontaktperson for bedriftskonto",
        "Purring på faktura som allerede er betalt",
        "Spørsmål om personvern og informasjonskapsler",
        "Retur av Keg Monitor, feil på sensor",
        "Ønsker å legge til flere brukere i bryggeriet",
    ),
    "phone": (
        "Bestilling av tre Keg Monitor til bryggeriet",
        "Ringte om forsinket levering",
        "Spørsmål om pris for bedriftsabonnement",
        "Hjelp med oppsett av gjæringsvarsler",
        "Klage på faktura, avtalt kreditnota",
        "Bestilling av reservedeler til Airlock",
        "Spørsmål om hvordan slette kontoen",
        "Feil temperatur i appen, feilsøking over telefon",
    ),
}

REQUEST_DETAILS = {
    "access": (
        "Jeg ber om innsyn i alle personopplysninger dere har om meg, jf. personvernforordningen art. 15.",
        "Hvilke opplysninger har dere lagret om meg, og hvem har dere delt dem med?",
        "Ønsker kopi av alt dere har registrert på meg og kontoen min.",
    ),
    "rectification": (
        "Navnet mitt er feilstavet på kontoen og på fakturaene. Vennligst rett det.",
        "E-postadressen på kontoen er feil, jeg har byttet adresse.",
    ),
    "erasure": (
        "Jeg ønsker at dere sletter kontoen min og alle opplysninger om meg.",
        "Vennligst slett meg fra alle registre, jeg bruker ikke tjenesten lenger.",
        "Be om sletting etter art. 17. Jeg har solgt utstyret.",
    ),
    "restriction": (
        "Jeg bestrider at opplysningene er riktige og ber om begrensning av behandlingen mens dere sjekker.",
    ),
    "portability": (
        "Jeg vil ha bryggeloggene og bruksdataene mine i et maskinlesbart format.",
        "Ønsker eksport av alle mine data fra appen, helst CSV eller JSON.",
    ),
    "objection": (
        "Jeg protesterer mot at dere bruker opplysningene mine til markedsføring.",
        "Jeg ønsker ikke at bruken min av appen analyseres.",
    ),
    "withdraw_consent": (
        "Jeg trekker tilbake samtykket til nyhetsbrev og statistikk.",
        "Trekker samtykket til bruksstatistikk i appen.",
        "Vil ikke ha informasjonskapsler for markedsføring, trekker samtykket.",
    ),
}

HOLD_REASONS = (
    "Tvist om faktura; kravet er sendt til forliksrådet (art. 17(3)(e)).",
    "Reklamasjonssak om Keg Monitor under behandling i Forbrukertilsynet.",
    "Politiet har bedt om at opplysningene bevares (straffeprosessloven § 215a).",
    "Inkassosak mot kunden; dokumentasjon må bevares til saken er avsluttet.",
    "Varslet søksmål om produktansvar for Airlock.",
    "Klage til Datatilsynet fra den registrerte; saken er ikke avsluttet.",
)

NOTICE_TEXTS = {
    "usage_statistics": "Vi samler inn statistikk om hvordan appen brukes (antall økter, varighet "
    "og mest brukte funksjoner) for å forbedre tjenesten og tilpasse brukerpanelet ditt. "
    "Behandlingsgrunnlaget er samtykke, personvernforordningen art. 6 (1) (a).",
    "newsletter": "Vi sender nyhetsbrev om produktene og tjenestene våre til deg som ønsker det. "
    "Vi lagrer navn og e-postadresse. Du kan melde deg av når som helst via lenken i nyhetsbrevet.",
    "website_statistics": "Nettstedet bruker Google Analytics (_ga, _ga_<id>) for å telle "
    "besøkende og se hvilke sider som leses. Informasjonskapslene lagres i 2 år.",
    "marketing": "Vi bruker Facebook-pikselen (_fbp, _fbc) for å vise deg annonser fra oss på "
    "Facebook og Instagram. Informasjonskapslene lagres i 3 måneder.",
}
