"""A data subject's phone numbers and names, and her e-mail inside free text (RULES.md R12,
R18).

R12 finds a person by e-mail and through the accounts she owns. Her phone number and name
also sit in rows with no e-mail (a phone call to customer service), and her e-mail inside
other rows' free text (a colleague's contact summary). This module holds what is known about
her besides the e-mail, and how each identifier is matched:

- **Phone numbers** are the ones on her own support contacts: those found by her e-mail, and
  those of accounts she owns that carry her name. Norwegian numbers are compared as their
  eight national digits, whatever the spelling (`+47 912 34 567`, `+4791234567`,
  `0047 91234567`, `912 34 567`); other numbers as `+` and all their digits. A number of
  fewer than eight digits identifies no one and is not used.
- **Names** are her full names as her own rows hold them: the owned account (`full_name` of
  a personal account, `contact_person` of a professional one, whose `full_name` is the
  company), her member rows, her newsletter subscription, her contacts found by e-mail and
  her request intake rows. A name is compared trimmed, whitespace collapsed and
  case-insensitive, and counts only with at least two words: a first name alone identifies
  no one.
- **Matching rule** (RULES.md says nothing of phones or names, so the narrower reading is
  taken): a name never finds anyone on its own, since another person can share it. A
  support contact is hers by phone when its phone is one of hers and nothing on it points
  to someone else: its e-mail is empty or hers, and its name is empty or one of hers.
- **Her e-mail inside free text** (a contact's `summary`, a request's `details`) is found as
  a whole address: not when it is part of a longer one (`xkari@example.no`,
  `kari@example.no.uk`).

Matching is done as for e-mails (`data_access.emails`): SQL selects a superset of the rows
on every backend, Python confirms each one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, func, or_, select

from data_access import tables as t
from data_access.emails import email_condition, same_email
from data_access.engines import Databases

NORWAY = "47"
NATIONAL_DIGITS = 8
# Characters people put between the digits of a phone number; SQL strips the same ones.
PHONE_SEPARATORS = " -.()/"
REDACTED = "[erased]"


@dataclass(frozen=True)
class Identifiers:
    """What identifies the person besides her e-mail: normalised phones and names, sorted."""

    phones: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def as_params(self) -> dict[str, list[str]]:
        return {"phones": list(self.phones), "names": list(self.names)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Identifiers:
        return cls(tuple(params.get("phones") or ()), tuple(params.get("names") or ()))


# --- normal forms --------------------------------------------------------------------------


def normalised_phone(value: Any) -> str | None:
    """A phone number in its comparable form, or None when it is none.

    Norwegian numbers (8 digits, optionally after +47, 0047 or 47) -> the 8 national digits,
    '+47 912 34 567' -> '91234567'; other numbers with a country code -> '+' and the digits;
    other digit strings of at least 8 digits -> the digits. Fewer than 8 digits -> None.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    international = text.startswith("+")
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True
    if len(digits) < NATIONAL_DIGITS:
        return None
    if digits.startswith(NORWAY) and len(digits) == len(NORWAY) + NATIONAL_DIGITS:
        return digits[len(NORWAY) :]  # +47 or a bare 47 before eight digits: Norwegian
    if international:
        return "+" + digits
    return digits


def normalised_name(value: Any) -> str | None:
    """A full name as compared: NFC, lower-case, whitespace collapsed; None when it has fewer
    than two words (a first name alone identifies no one)."""
    if not isinstance(value, str):
        return None
    words = unicodedata.normalize("NFC", value).lower().split()
    return " ".join(words) if len(words) >= 2 else None


def _text(value: str) -> str:
    return unicodedata.normalize("NFC", value)


# --- matching in Python (correct) ----------------------------------------------------------


def _email_pattern(norm: str) -> re.Pattern[str]:
    # Not inside a longer address: no address character before, no domain character after.
    return re.compile(
        r"(?<![\w.%+\-])" + re.escape(norm) + r"(?![\w\-]|\.\w)", re.IGNORECASE | re.UNICODE
    )


def _phone_pattern(phone: str) -> re.Pattern[str]:
    sep = "[" + re.escape(PHONE_SEPARATORS) + "]*"
    digits = phone.lstrip("+")
    body = sep.join(re.escape(d) for d in digits)
    if phone.startswith("+"):
        prefix = r"(?:\+|00)?" + sep
    else:  # national digits, optionally after the country code
        prefix = r"(?:(?:\+|00)?" + sep + NORWAY + sep + ")?"
    return re.compile(r"(?<![\d+])" + prefix + body + r"(?!\d)")


def _name_pattern(name: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(w) for w in name.split())
    return re.compile(r"(?<!\w)" + body + r"(?!\w)", re.IGNORECASE | re.UNICODE)


def contains_email(text: Any, norm: str) -> bool:
    """True when `text` holds the normalised address `norm` as a whole address."""
    return isinstance(text, str) and bool(_email_pattern(norm).search(_text(text)))


def contains_phone(text: Any, phone: str) -> bool:
    """True when `text` holds the normalised `phone` in any usual spelling."""
    return isinstance(text, str) and bool(_phone_pattern(phone).search(text))


def contains_name(text: Any, name: str) -> bool:
    """True when `text` holds the normalised full `name` as whole words."""
    return isinstance(text, str) and bool(_name_pattern(name).search(_text(text).lower()))


def redact_email(text: str, norm: str) -> str:
    """`text` with every whole occurrence of the address replaced by REDACTED."""
    return _email_pattern(norm).sub(REDACTED, _text(text))


# --- matching in SQL (a superset on every backend) -----------------------------------------


def _like_pattern(needle: str) -> str:
    """'%needle%' for `lower(column) LIKE`: wildcards escaped; every non-ASCII character and
    every run of whitespace a '%' (SQLite lowers ASCII only, text may be decomposed)."""
    out = ["%"]
    for c in needle:
        if c in "%_\\":
            out.append("\\" + c)
        elif c.isascii() and not c.isspace():
            out.append(c)
        elif out[-1] != "%":
            out.append("%")
    if out[-1] != "%":
        out.append("%")
    return "".join(out)


def text_condition(column: ColumnElement, needle: str, dialect: str) -> ColumnElement[bool]:
    """Rows whose text may contain the lower-case `needle` (an e-mail or a name): a superset,
    confirm with `contains_email` / `contains_name`. `dialect` is the engine's dialect name:
    SQLite's LIKE already ignores ASCII case (and lower() would cost a third of a scan),
    PostgreSQL has ILIKE, others compare lower(column)."""
    pattern = _like_pattern(needle)
    if dialect == "sqlite":
        return column.like(pattern, escape="\\")
    if dialect == "postgresql":
        return column.ilike(pattern, escape="\\")
    return func.lower(column).like(pattern, escape="\\")


def phone_condition(column: ColumnElement, phone: str) -> ColumnElement[bool]:
    """Rows whose text may contain `phone`: its digits in order with anything between (a
    cheap first test that drops most rows), then its digits once the separators are removed
    (replace() is costly, so it runs on the few rows left); a superset, confirm with
    `contains_phone`."""
    digits = phone.lstrip("+")
    stripped = column
    for c in PHONE_SEPARATORS:
        stripped = func.replace(stripped, c, "")
    return and_(column.like("%" + "%".join(digits) + "%"), stripped.like("%" + digits + "%"))


# --- the person's identifiers and rows -----------------------------------------------------


def person_identifiers(dbs: Databases, norm: str, owned: Iterable[int]) -> Identifiers:
    """Phones and names known from the person's own rows (see the module docstring).

    `norm` is the normalised e-mail, `owned` the ids of the accounts she owns. Reads users,
    consent and support."""
    owned = sorted(set(owned))
    names: set[str] = set()
    with dbs.users.connect() as conn:
        if owned:
            a = t.accounts
            rows = conn.execute(
                select(a.c.account_type, a.c.full_name, a.c.contact_person).where(a.c.id.in_(owned))
            )
            for kind, full_name, person in rows:
                names.add(normalised_name(person if kind == "professional" else full_name))
        names |= _names_by_email(conn, t.account_members, "email", "full_name", norm)
    with dbs.consent.connect() as conn:
        names |= _names_by_email(conn, t.newsletter_subscribers, "email", "full_name", norm)
    with dbs.support.connect() as conn:
        names |= _names_by_email(
            conn, t.data_subject_requests, "subject_email", "subject_name", norm
        )
        names.discard(None)
        phones = _phones_of_contacts(conn, norm, owned, names)
    names.discard(None)
    return Identifiers(tuple(sorted(phones)), tuple(sorted(names)))


def _names_by_email(
    conn: Connection, table: Table, email_column: str, name_column: str, norm: str
) -> set[str | None]:
    e, n = table.c[email_column], table.c[name_column]
    query = select(e, n).where(email_condition(e, norm, conn.dialect.name))
    return {normalised_name(name) for email, name in conn.execute(query) if same_email(email, norm)}


def _phones_of_contacts(
    conn: Connection, norm: str, owned: list[int], names: set[str | None]
) -> set[str]:
    """Phones of her contacts found by e-mail, and of her owned accounts' contacts that carry
    her name (another member may call about the account); her names from the former too."""
    c = t.contacts
    query = select(c.c.email, c.c.full_name, c.c.phone, c.c.account_id).where(
        or_(email_condition(c.c.email, norm, conn.dialect.name), c.c.account_id.in_(owned or [-1]))
    )
    rows = [r for r in conn.execute(query) if same_email(r.email, norm) or r.account_id in owned]
    names.update(normalised_name(r.full_name) for r in rows if same_email(r.email, norm))
    phones = {
        normalised_phone(r.phone)
        for r in rows
        if same_email(r.email, norm) or normalised_name(r.full_name) in names - {None}
    }
    phones.discard(None)
    return phones


def contact_ids_by_phone(conn: Connection, norm: str, known: Identifiers) -> list[int]:
    """Support contacts that are the person's by phone: the phone is one of hers, the e-mail
    empty or hers, the name empty or one of hers (the module docstring's rule)."""
    if not known.phones:
        return []
    c = t.contacts
    query = select(c.c.id, c.c.phone, c.c.email, c.c.full_name).where(
        or_(*(phone_condition(c.c.phone, p) for p in known.phones))
    )
    names = set(known.names)
    found = []
    for cid, phone, email, full_name in conn.execute(query):
        unnamed = not (isinstance(full_name, str) and full_name.strip())
        no_email = not (isinstance(email, str) and email.strip())
        if (
            normalised_phone(phone) in known.phones
            and (no_email or same_email(email, norm))
            and (unnamed or normalised_name(full_name) in names)
        ):
            found.append(cid)
    return sorted(found)


# Free-text columns of the source tables that may mention another person's e-mail.
FREE_TEXT = {"contacts": "summary", "data_subject_requests": "details"}


def ids_with_email_in_text(conn: Connection, table: Table, norm: str) -> list[int]:
    """Keys of the rows of `table` whose free-text column (FREE_TEXT) holds the address."""
    column = table.c[FREE_TEXT[table.name]]
    query = select(table.c.id, column).where(text_condition(column, norm, conn.dialect.name))
    return sorted(i for i, text in conn.execute(query) if contains_email(text, norm))
