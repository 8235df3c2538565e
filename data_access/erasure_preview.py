"""What an erasure would do, store by store, before the DPO confirms it (RULES.md R12, R14,
R15, R17; GDPR art. 17).

Built from `subjects.find_subject` (the rows the erasure will find) and the holds that
cover them, so the confirmation names counts instead of a generic paragraph. It reads only;
the erasure itself (`data_access.erasure`) decides row by row when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import select

from data_access import holds, rules, subjects
from data_access import tables as t
from data_access.emails import normalised_email, same_email
from data_access.engines import Databases

COLUMNS = ["where", "rows", "outcome"]

# What the erasure does with the person's own rows of each table (erasure.py's steps).
_OWN_OUTCOME = {
    "users.account_members": "removed from the account (R12)",
    "users.usage_sessions": "deleted with the account (R14)",
    "consent.consent_events": "deleted (R12, R14)",
    "consent.newsletter_subscribers": "deleted (R12)",
    "support.contacts": "deleted (R12, R14)",
    "support.data_subject_requests": "kept: proof that requests were handled, art. 5(2) (R18)",
    "ledger.notices": "deleted with the account (R14)",
    "ledger.outbox": "deleted (R12)",
    "ledger.legal_holds": "kept: the hold itself (R17); e-mail cleared once released",
    "ledger.request_cases": "kept: proof that requests were handled, art. 5(2) (R18)",
}
_LABELS = {
    "users.accounts": "Accounts the person owns",
    "users.account_members": "Her member rows",
    "users.invoices": "Invoices of her accounts",
    "users.usage_sessions": "Usage sessions",
    "consent.consent_events": "Consent events",
    "consent.newsletter_subscribers": "Newsletter subscription",
    "support.contacts": "Support contacts",
    "support.data_subject_requests": "Data-subject requests (intake)",
    "ledger.notices": "Deletion notices",
    "ledger.outbox": "Messages in the outbox",
    "ledger.legal_holds": "Legal holds naming her",
    "ledger.request_cases": "Request cases",
}


@dataclass(frozen=True)
class ErasurePreview:
    """`table`: one row per store and table with rows found (columns `COLUMNS`: where,
    rows, outcome in words), in the order of `subjects.TABLES`, only tables with rows.
    `other_members`: {owned account id: number of other people's member rows} for her
    accounts that have them (a professional account: those people lose their access).
    `held`: True when an active legal hold covers her e-mail or one of her accounts."""

    table: pd.DataFrame
    other_members: dict[int, int]
    held: bool

    @property
    def empty(self) -> bool:
        return self.table.empty


def erasure_preview(dbs: Databases, email: str, *, as_of: date) -> ErasurePreview:
    """The erasure of the person with this e-mail, as it would run on `as_of` (Oslo date).

    Raises ValueError for an empty or malformed e-mail and DatabaseUnavailable when a store
    is down (as `subjects.find_subject`)."""
    found = subjects.find_subject(dbs, email)
    owned = [int(a) for a in found["users.accounts"]["id"]]
    covering = holds.covering_holds(dbs, account_ids=owned, emails=[normalised_email(email)])
    held_accounts = set(covering["account"])
    held = bool(held_accounts or covering["email"])
    rows: list[tuple[str, int, str]] = []
    for name in subjects.TABLES:
        frame = found[name]
        if frame.empty:
            continue
        rows += _rows_of(dbs, name, frame, held_accounts, as_of)
    if held:
        rows.append(("Legal hold", 0, "an active hold covers her: what it reaches is kept (R17)"))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return ErasurePreview(table, _other_members(dbs, owned, email), held)


def _rows_of(
    dbs: Databases, name: str, frame: pd.DataFrame, held_accounts: set[int], as_of: date
) -> list[tuple[str, int, str]]:
    label = _LABELS[name]
    if name == "users.accounts":
        held = int(frame["id"].isin(held_accounts).sum())
        out = [(label, len(frame) - held, "deleted with members, sessions, consent (R14)")]
        if held:
            out.append((label, held, "kept: legal hold (R17)"))
        return [r for r in out if r[1]]
    if name == "users.invoices":
        return _invoice_rows(dbs, frame, as_of)
    mentions = set(frame.attrs.get("mentions_only", ()))
    own = len(frame) - len(mentions)
    out = []
    if own:
        out.append((label, own, _OWN_OUTCOME[name]))
    if mentions:
        out.append(
            (label, len(mentions), 'someone else\'s: her e-mail in the text becomes "[erased]"')
        )
    return out


def _invoice_rows(dbs: Databases, frame: pd.DataFrame, as_of: date) -> list[tuple[str, int, str]]:
    policy = dbs.policy
    cutoff = rules.invoice_issued_cutoff(
        as_of, policy.invoice_retention_years, policy.fiscal_year_end_md
    )
    issued = pd.to_datetime(frame["issued_on"]).dt.date
    past = int((issued <= cutoff).sum())
    kept = len(frame) - past
    out = []
    if kept:
        newest = max(issued)
        until = rules.invoice_retained_until(
            newest, policy.invoice_retention_years, policy.fiscal_year_end_md
        )
        out.append(
            (
                _LABELS["users.invoices"],
                kept,
                f"kept for bookkeeping until {until.isoformat()} at the latest (R15), restricted",
            )
        )
    if past:
        out.append((_LABELS["users.invoices"], past, "anonymised: past retention (R15)"))
    return out


def _other_members(dbs: Databases, owned: list[int], email: str) -> dict[int, int]:
    """Other people's member rows in her accounts: they go with the account (R14)."""
    if not owned:
        return {}
    members = t.account_members
    norm = normalised_email(email)
    query = select(members.c.account_id, members.c.email).where(members.c.account_id.in_(owned))
    counts: dict[int, int] = {}
    with dbs.users.connect() as conn:
        for account_id, member_email in conn.execute(query):
            if not same_email(member_email, norm):
                counts[int(account_id)] = counts.get(int(account_id), 0) + 1
    return counts
