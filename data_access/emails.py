"""Matching a data subject's e-mail address in any table (RULES.md R12: trimmed,
case-insensitive).

How the e-mail is matched (correct first, then fast):
- Correct: a row matches when `row_email.strip().lower() == email.strip().lower()` in
  Python (Unicode-aware; SQLite's lower() folds ASCII only, so SQL alone is not enough).
- SQL selects a superset of those rows: `lower(trim(col)) LIKE pattern`, where the pattern
  is the normalised address with every non-ASCII character a one-character wildcard. No
  false negatives on any backend, and the Python check drops the false positives.
- Fast: `col IN (as given, lower-case)` would use the index but miss `Kari@Example.NO`, so
  it is not used. Instead, where the column's collation orders ASCII letters and digits
  the usual way whatever the case (SQLite's BINARY, MariaDB's *_ci and *_bin), the query
  adds index ranges for the upper/lower-case spellings of the address's first characters
  (at most sixteen ranges) plus the range of values that begin with whitespace, so the e-mail
  index narrows the scan to a handful of rows. PostgreSQL's locale collations may order
  punctuation differently, so there the predicate is a scan; an expression index on
  `lower(trim(email))` lets PostgreSQL serve it from an index for ASCII addresses.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_

# Letters and digits sort in the same order in byte-wise and case-insensitive collations,
# so a range over them is safe to narrow with; a prefix stops at any other character.
_RANGE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_RANGE_DIALECTS = ("sqlite", "mysql", "mariadb")
_PREFIX_CHARS = 4


# RFC 5321: a path of at most 256 octets, so an address of at most 254 characters.
LONGEST_EMAIL = 254


def normalised_email(email: str) -> str:
    """`email` trimmed and lower-cased (R12). Raises ValueError when it is empty, has no '@'
    or is longer than an e-mail address can be (LONGEST_EMAIL characters)."""
    norm = (email or "").strip().lower() if isinstance(email, str) else ""
    if not norm:
        raise ValueError("Enter an e-mail address to look up.")
    shown = email.strip()
    shown = shown if len(shown) <= 80 else shown[:77] + "…"  # never echo a wall of text
    if len(norm) > LONGEST_EMAIL:
        raise ValueError(
            f"{shown!r} is not an e-mail address: it has {len(norm):,} characters, "
            f"at most {LONGEST_EMAIL} are possible."
        )
    if (
        "@" not in norm
        or norm.startswith("@")
        or norm.endswith("@")
        or has_control_characters(norm)
    ):
        raise ValueError(f"{shown!r} is not an e-mail address.")
    return norm


def has_control_characters(text: str) -> bool:
    """True when `text` holds a control character (NUL, tab, newline, ...). PostgreSQL
    rejects NUL in text, so such input is refused with a clear message before any query."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def same_email(value: Any, norm: str) -> bool:
    """True when a stored e-mail equals the normalised `norm`, trimmed and case-insensitive."""
    return isinstance(value, str) and value.strip().lower() == norm


def email_condition(column: ColumnElement, norm: str, dialect: str) -> ColumnElement[bool]:
    """An SQL predicate true for every row whose `column` may equal `norm` (R12).

    A superset: confirm each row with `same_email`. `norm` is already normalised; `dialect`
    is the engine's dialect name and decides whether index ranges narrow the scan (see the
    module docstring for why).
    """
    pattern = "".join(_like_char(c) for c in norm)
    exactish = func.lower(func.trim(column)).like(pattern, escape="\\")
    prefix = _range_prefix(norm)
    if dialect not in _RANGE_DIALECTS or not prefix:
        return exactish
    ranges = [
        and_(column >= start, column < start[:-1] + chr(ord(start[-1]) + 1))
        for start in _case_spellings(prefix)
    ]
    # A stored value with leading blanks sorts before '!' in these collations.
    ranges.append(column < "!")
    return and_(or_(*ranges), exactish)


def _like_char(c: str) -> str:
    if c in "%_\\":
        return "\\" + c
    return c if c.isascii() else "_"  # lower() folds only ASCII on SQLite; Python decides


def _range_prefix(norm: str) -> str:
    prefix = ""
    for c in norm[:_PREFIX_CHARS]:
        if c not in _RANGE_SAFE:
            break
        prefix += c
    # The range's upper bound is the last character plus one: keep it a letter or digit.
    while prefix and prefix[-1] in "z9":
        prefix = prefix[:-1]
    return prefix


def _case_spellings(prefix: str) -> list[str]:
    options = [sorted({c.lower(), c.upper()}) for c in prefix]
    return ["".join(p) for p in itertools.product(*options)]
