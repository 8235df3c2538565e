"""What approving the deletion of some accounts would do, per database (RULES.md R14, R15,
R17): the confirmation the DPO reads before a deletion runs.

Counts come from the same keys the deletion's steps use (account ids, the ledger's notices),
read in chunks of account ids so any selection stays within the backends' parameter limits.
Nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

import pandas as pd
from sqlalchemy import func, select

from data_access import holds, rules
from data_access.engines import Databases
from data_access.ledger_tables import notices
from data_access.tables import account_members, accounts, consent_events, contacts, invoices
from data_access.tables import usage_sessions as sessions

PLAN_COLUMNS = ["store", "data", "action", "rows", "kept_until", "why"]
_CHUNK = 500  # account ids per IN list
INVOICES_KEPT = "invoices (detached from the account: account_id cleared), kept"
INVOICES_PAST = "invoices past retention (detached from the account: account_id cleared)"


def deletion_plan(dbs: Databases, account_ids: Iterable[int], as_of: date) -> pd.DataFrame:
    """Per database, what deleting the given accounts deletes and what it keeps, and until
    when (RULES.md R14; invoices under R15 / bokføringsloven §13; held contacts under R17).

    Columns: store ('users' | 'consent' | 'support' | 'ledger'), data (what, in words),
    action ('delete' | 'detach and keep' | 'detach; anonymise now' | 'keep'), rows (nullable
    Int64; <NA> where the plan does not count), kept_until (Oslo date: for each group of
    invoices still inside retention, their `retained_until`, after which they are
    anonymised; None otherwise), why (the rule). Invoices past retention on `as_of` are one
    row of their own, due for anonymisation now (R15). One row per line of
    the plan, in store order. `.attrs["accounts"]` is how many of the ids exist.
    It describes the deletion of every given account; the page passes the *ready* ones
    (R13), and `approve_deletions` re-checks each account when it runs. `as_of` dates the
    plan (invoices past retention on it are shown as already due for anonymisation).
    Raises DatabaseUnavailable when a store is down.
    """
    ids = sorted({int(i) for i in account_ids})
    users = _users_counts(dbs, ids)
    frame = pd.DataFrame(
        [
            *_users_rows(dbs, users, as_of),
            *_consent_rows(dbs, ids),
            *_support_rows(dbs, ids),
            *_ledger_rows(dbs, ids),
        ],
        columns=PLAN_COLUMNS,
    )
    frame["rows"] = frame["rows"].astype("Int64")  # counts stay whole numbers beside None
    frame.attrs["accounts"] = users["accounts"]
    return frame


def _users_counts(dbs: Databases, ids: list[int]) -> dict:
    """Rows per users table, and the invoices as {issued_on: count}."""
    counts: dict = {"accounts": 0, "account_members": 0, "usage_sessions": 0}
    issued: dict[date, int] = {}
    with dbs.users.connect() as conn:
        for chunk in _chunks(ids):
            for name, table in (
                ("accounts", accounts),
                ("account_members", account_members),
                ("usage_sessions", sessions),
            ):
                column = table.c.id if table is accounts else table.c.account_id
                counts[name] += _count(conn, table, column.in_(chunk))
            query = (
                select(invoices.c.issued_on, func.count())
                .where(invoices.c.account_id.in_(chunk))
                .group_by(invoices.c.issued_on)
            )
            for day, n in conn.execute(query):
                issued[day] = issued.get(day, 0) + int(n)
    counts["invoices_issued"] = issued
    return counts


def _users_rows(dbs: Databases, counts: dict, as_of: date) -> Iterator[list]:
    yield ["users", "accounts (name, e-mail, company)", "delete", counts["accounts"], None, "R14"]
    yield ["users", "account members", "delete", counts["account_members"], None, "R14"]
    yield ["users", "usage sessions", "delete", counts["usage_sessions"], None, "R14"]
    yield from _invoice_rows(dbs, counts["invoices_issued"], as_of)


def _invoice_rows(dbs: Databases, issued: dict[date | None, int], as_of: date) -> Iterator[list]:
    """One row per retention end among the invoices still inside retention on `as_of`
    (kept until that date, then anonymised), and one for those past it already (R15): they
    are detached too, and due for anonymisation now. No invoices: one row of 0."""
    policy = dbs.policy
    until: dict[date, int] = {}
    past = 0
    for day, n in issued.items():
        if day is None:
            continue  # no issue date: no retention end to name (R15 cannot date it)
        end = rules.invoice_retained_until(
            day, policy.invoice_retention_years, policy.fiscal_year_end_md
        )
        if end < as_of:
            past += n
        else:
            until[end] = until.get(end, 0) + n
    why = (
        f"bokføringsloven §13 (R15): kept {policy.invoice_retention_years} years after the "
        "end of their financial year, then anonymised"
    )
    for end in sorted(until):
        yield ["users", f"{INVOICES_KEPT} until {end.isoformat()}", "detach and keep",
               until[end], end, why]  # fmt: skip
    if past:
        yield ["users", INVOICES_PAST, "detach; anonymise now", past, None,
               "past bookkeeping retention already (R15): anonymise them on the Retention page"]  # fmt: skip
    if not until and not past:
        yield ["users", INVOICES_KEPT, "detach and keep", 0, None, why]


def _consent_rows(dbs: Databases, ids: list[int]) -> Iterator[list]:
    with dbs.consent.connect() as conn:
        events = sum(
            _count(conn, consent_events, consent_events.c.account_id.in_(chunk))
            for chunk in _chunks(ids)
        )
    yield ["consent", "consent events with the account's id", "delete", events, None, "R14"]
    yield [
        "consent",
        "newsletter subscriptions and e-mail-keyed consent events",
        "keep",
        None,
        None,
        "separate processing (R14); an erasure request removes them (R12)",
    ]


def _support_rows(dbs: Databases, ids: list[int]) -> Iterator[list]:
    """Contacts with the accounts' ids; those a hold keeps (on the contact or its e-mail,
    as the deletion's support step decides) are counted apart."""
    found: dict[int, str | None] = {}
    with dbs.support.connect() as conn:
        for chunk in _chunks(ids):
            query = (
                select(contacts.c.id, contacts.c.email)
                .where(contacts.c.account_id.in_(chunk))
                .order_by(contacts.c.id)
            )
            found.update(conn.execute(query).all())
    covering = holds.covering_holds(
        dbs, contact_ids=list(found), emails=[e for e in found.values() if e]
    )
    held = sum(
        1
        for contact_id, email in found.items()
        if contact_id in covering["contact"]
        or (email and holds.normalise_email(email) in covering["email"])
    )
    yield [
        "support",
        "support contacts with the account's id",
        "delete",
        len(found) - held,
        None,
        "R14, R16",
    ]
    yield [
        "support",
        "support contacts under a legal hold",
        "keep",
        held,
        None,
        "legal hold (R17): kept until the hold is released",
    ]


def _ledger_rows(dbs: Databases, ids: list[int]) -> Iterator[list]:
    sent = messages = 0
    with dbs.ledger.connect() as conn:
        for chunk in _chunks(ids):
            n, with_message = conn.execute(
                select(func.count(), func.count(notices.c.outbox_id)).where(
                    notices.c.account_id.in_(chunk)
                )
            ).one()
            sent, messages = sent + int(n), messages + int(with_message)
    yield ["ledger", "inactivity notices", "delete", sent, None, "R18: the ledger's copies go too"]
    yield ["ledger", "outbox messages of those notices", "delete", messages, None, "R18"]
    yield [
        "ledger",
        "audit entries (pseudonymous references only)",
        "keep",
        None,
        None,
        "R18: proof of the deletion",
    ]


def _count(conn, table, condition) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one())


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
