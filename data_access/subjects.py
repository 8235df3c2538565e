"""Finding one data subject's records in all four databases (RULES.md R9, R12).

The person is found by e-mail, trimmed and case-insensitive, in every table that has an
e-mail column, and through the accounts they own (by `account_id`). A member of someone
else's account is found by their member row only: the account's other data is the owner's.

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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Table, and_, false, func, or_, select

from data_access import audit
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.engines import Databases

TABLES = (
    "users.accounts",
    "users.account_members",
    "users.invoices",
    "users.usage_sessions",
    "consent.consent_events",
    "consent.newsletter_subscribers",
    "support.contacts",
    "support.data_subject_requests",
    "ledger.notices",
    "ledger.legal_holds",
    "ledger.outbox",
    "ledger.request_cases",
)
# Letters and digits sort in the same order in byte-wise and case-insensitive collations,
# so a range over them is safe to narrow with; a prefix stops at any other character.
_RANGE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_RANGE_DIALECTS = ("sqlite", "mysql", "mariadb")
_PREFIX_CHARS = 4
_STREAM_ROWS = 1000


def normalised_email(email: str) -> str:
    """`email` trimmed and lower-cased (R12). Raises ValueError when it is empty or has no '@'."""
    norm = (email or "").strip().lower() if isinstance(email, str) else ""
    if not norm:
        raise ValueError("Enter an e-mail address to look up.")
    if "@" not in norm or norm.startswith("@") or norm.endswith("@"):
        raise ValueError(f"'{email.strip()}' is not an e-mail address.")
    return norm


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


def find_subject(dbs: Databases, email: str) -> dict[str, pd.DataFrame]:
    """Every row held about the person with this e-mail, per table (RULES.md R9, R12).

    Returns {"store.table": DataFrame} for the twelve tables in `TABLES`, each frame with
    all columns of its table (times naive UTC, dates Oslo) in primary-key order, empty when
    nothing is held. Found by e-mail (trimmed, case-insensitive) in accounts,
    account_members, consent_events, newsletter_subscribers, contacts,
    data_subject_requests (subject_email), legal_holds and outbox (to_email, or the keyed
    hash in subject_ref); through the accounts the person owns for invoices,
    usage_sessions, consent_events, contacts, notices and account holds; request_cases
    through the person's request ids. Each frame is capped at policy.max_rows with
    `.attrs["truncated"]`. Raises ValueError for an empty or malformed e-mail and
    DatabaseUnavailable when a store is down.
    """
    norm = normalised_email(email)
    limit = dbs.policy.max_rows
    found: dict[str, pd.DataFrame] = {}

    def by_email(store: str, table: Table, column: str, **other) -> pd.DataFrame:
        frame = _matching_rows(dbs.engine(store), table, limit, emails={column: norm}, **other)
        found[f"{store}.{table.name}"] = frame
        return frame

    owners = by_email("users", t.accounts, "email")
    owned = set(owners["id"].tolist())
    by_email("users", t.account_members, "email")
    for table in (t.invoices, t.usage_sessions):
        found[f"users.{table.name}"] = _matching_rows(
            dbs.users, table, limit, ids={"account_id": owned}
        )
    by_email("consent", t.consent_events, "email", ids={"account_id": owned})
    by_email("consent", t.newsletter_subscribers, "email")
    by_email("support", t.contacts, "email", ids={"account_id": owned})
    requests = by_email("support", t.data_subject_requests, "subject_email")
    found["ledger.notices"] = _matching_rows(
        dbs.ledger, lt.notices, limit, ids={"account_id": owned}
    )
    ref = audit.keyed_hash(dbs, norm)
    by_email("ledger", lt.legal_holds, "email", ids={"account_id": owned, "subject_ref": {ref}})
    by_email("ledger", lt.outbox, "to_email", ids={"subject_ref": {ref}})
    found["ledger.request_cases"] = _matching_rows(
        dbs.ledger, lt.request_cases, limit, ids={"request_id": set(requests["id"].tolist())}
    )
    return {name: found[name] for name in TABLES}


def _matching_rows(
    engine: Engine,
    table: Table,
    limit: int,
    *,
    emails: Mapping[str, str] | None = None,
    ids: Mapping[str, Iterable[Any]] | None = None,
) -> pd.DataFrame:
    """Rows of `table` whose e-mail column equals the normalised address, or whose key column
    holds one of the given values; primary-key order, at most `limit` (attrs truncated)."""
    emails = emails or {}
    ids = {column: set(values) for column, values in (ids or {}).items() if values}
    conditions = [email_condition(table.c[c], n, engine.dialect.name) for c, n in emails.items()]
    conditions += [table.c[c].in_(sorted(values)) for c, values in ids.items()]
    columns = [c.name for c in table.columns]
    if not conditions:
        return _frame([], columns, truncated=False)

    def wanted(row: Mapping[str, Any]) -> bool:
        return any(same_email(row[c], n) for c, n in emails.items()) or any(
            row[c] in values for c, values in ids.items()
        )

    (key,) = table.primary_key.columns
    # Keys first, then rows by key: SQLite would otherwise scan in key order to skip the
    # sort instead of using the e-mail index (the matches are few).
    matching = select(key).where(or_(false(), *conditions))
    query = select(table).where(key.in_(matching)).order_by(key)
    rows = _first_rows(engine, query, wanted, limit + 1)
    return _frame(rows[:limit], columns, truncated=len(rows) > limit)


def _first_rows(
    engine: Engine, query, wanted: Callable[[Mapping[str, Any]], bool], count: int
) -> list[dict[str, Any]]:
    """Stream `query` and keep the first `count` rows that pass `wanted`."""
    kept: list[dict[str, Any]] = []
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=_STREAM_ROWS).execute(query)
        for row in result.mappings():
            if wanted(row):
                kept.append(dict(row))
                if len(kept) >= count:
                    break
        result.close()
    return kept


def _frame(rows: list[dict[str, Any]], columns: list[str], *, truncated: bool) -> pd.DataFrame:
    # object dtype: the stored values as they are (ids stay ints next to NULLs, amounts
    # stay Decimals), which is what an access report must copy (R9).
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    frame.attrs["truncated"] = truncated
    return frame
