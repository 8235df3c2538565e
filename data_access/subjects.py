"""Finding one data subject's records in all four databases (RULES.md R9, R12).

The person is found by e-mail, trimmed and case-insensitive, in every table that has an
e-mail column, and through the accounts they own (by `account_id`). A member of someone
else's account is found by their member row only: the account's other data is the owner's.
Support contacts are also found by her phone numbers (a phone call with no e-mail), and
contacts and request intake rows by her e-mail inside their free text; what counts as her
phone and name, and why a name alone finds no one, is in `data_access.identifiers`.

E-mails are matched by `data_access.emails` (correct first, then fast; see there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Table, false, or_, select

from data_access import audit, identifiers, kept_invoices
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.emails import email_condition, normalised_email, same_email
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
_STREAM_ROWS = 1000


def find_subject(dbs: Databases, email: str) -> dict[str, pd.DataFrame]:
    """Every row held about the person with this e-mail, per table (RULES.md R9, R12).

    Returns {"store.table": DataFrame} for the twelve tables in `TABLES`, each frame with
    all columns of its table (times naive UTC, dates Oslo) in primary-key order, empty when
    nothing is held. Found by e-mail (trimmed, case-insensitive) in accounts,
    account_members, consent_events, newsletter_subscribers, contacts,
    data_subject_requests (subject_email), legal_holds and outbox (to_email, or the keyed
    hash in subject_ref); through the accounts the person owns for invoices
    (also the invoices kept after her account was deleted or erased, listed in
    `.attrs["kept_after_deletion"]`, `data_access.kept_invoices`),
    usage_sessions, consent_events, contacts, notices and account holds; contacts also by
    her phone numbers and by the e-mail inside `summary`, request intake rows by the
    e-mail inside `details` (`data_access.identifiers`); request_cases through the
    person's own request ids (by subject_email). The contacts and request frames list in
    `.attrs["mentions_only"]` the ids of rows that are someone else's and only mention her
    e-mail. Each frame is capped at policy.max_rows with
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
    ref = audit.keyed_hash(dbs, norm)
    kept = kept_invoices.linked_invoice_ids(dbs, ref)
    invoices = _matching_rows(dbs.users, t.invoices, limit, ids={"account_id": owned, "id": kept})
    invoices.attrs["kept_after_deletion"] = [i for i in invoices["id"] if i in set(kept)]
    found["users.invoices"] = invoices
    found["users.usage_sessions"] = _matching_rows(
        dbs.users, t.usage_sessions, limit, ids={"account_id": owned}
    )
    by_email("consent", t.consent_events, "email", ids={"account_id": owned})
    by_email("consent", t.newsletter_subscribers, "email")
    with dbs.support.connect() as conn:
        by_phone, mentioning, mentioned_in = _support_rows_beyond_email(dbs, conn, norm, owned)
    contacts = by_email(
        "support", t.contacts, "email", ids={"account_id": owned, "id": by_phone + mentioning}
    )
    contacts.attrs["mentions_only"] = [
        cid
        for cid, email, account in zip(
            contacts["id"], contacts["email"], contacts["account_id"], strict=True
        )
        if cid not in by_phone and not same_email(email, norm) and account not in owned
    ]
    requests = by_email(
        "support", t.data_subject_requests, "subject_email", ids={"id": mentioned_in}
    )
    own_requests = [
        r
        for r, e in zip(requests["id"], requests["subject_email"], strict=True)
        if same_email(e, norm)
    ]
    requests.attrs["mentions_only"] = [r for r in requests["id"] if r not in own_requests]
    found["ledger.notices"] = _matching_rows(
        dbs.ledger, lt.notices, limit, ids={"account_id": owned}
    )
    by_email("ledger", lt.legal_holds, "email", ids={"account_id": owned, "subject_ref": {ref}})
    by_email("ledger", lt.outbox, "to_email", ids={"subject_ref": {ref}})
    found["ledger.request_cases"] = _matching_rows(
        dbs.ledger, lt.request_cases, limit, ids={"request_id": set(own_requests)}
    )
    return {name: found[name] for name in TABLES}


def _support_rows_beyond_email(
    dbs: Databases, conn: Connection, norm: str, owned: set[int]
) -> tuple[list[int], list[int], list[int]]:
    """Contact ids found by her phone, contact ids with her e-mail in `summary`, and request
    intake ids with it in `details` (`data_access.identifiers`; the erasure uses the same)."""
    known = identifiers.person_identifiers(dbs, norm, owned)
    return (
        identifiers.contact_ids_by_phone(conn, norm, known),
        identifiers.ids_with_email_in_text(conn, t.contacts, norm),
        identifiers.ids_with_email_in_text(conn, t.data_subject_requests, norm),
    )


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


# Erasure lives in its own module; it is part of this module's public API (DESIGN.md).
from data_access.erasure import ErasureReceipt, erase_subject, resume_erasure  # noqa: E402, F401, I001

# What the data subject receives (R9, R10) lives in its own module, also public API here.
from data_access.subject_reports import access_report, portability_export  # noqa: E402, F401, I001
