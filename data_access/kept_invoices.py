"""Invoices kept after their account is gone, and whose they were (RULES.md R9, R14, R15).

Deleting an inactive account (R14) or erasing its owner (R12) detaches the account's
invoices (`account_id` becomes NULL) and keeps them for bookkeeping (R15). Without a trace
of whose they were, a later access request (R9) would miss them: the invoice carries the
person's name but is found only by e-mail. So the deletion first links each detached invoice
to the owner's keyed hash (R18) in the ledger's `kept_invoices`. Anonymising an invoice
(R15) removes its link: a link to an anonymised invoice would re-identify it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Connection, and_, delete, insert, select

from data_access import ledger_tables as lt
from data_access import rules
from data_access import tables as t
from data_access.clock import utc_now
from data_access.engines import Databases

_CHUNK = 500  # ids per IN list


def link_account_invoices(
    ledger: Connection,
    dbs: Databases,
    account_ids: Iterable[int],
    subject_ref: str,
    *,
    cutoff: date | None = None,
) -> int:
    """Link the invoices of these accounts to `subject_ref` inside the ledger transaction
    `ledger`; with `cutoff`, only invoices issued after it (those the caller keeps). Reads
    the users database. Idempotent: an invoice already linked is left as it is. Returns the
    links written."""
    accounts = sorted({int(a) for a in account_ids})
    if not accounts:
        return 0
    policy = dbs.policy
    query = select(t.invoices.c.id, t.invoices.c.issued_on).where(
        t.invoices.c.account_id.in_(accounts)
    )
    if cutoff is not None:
        query = query.where(t.invoices.c.issued_on > cutoff)
    with dbs.users.connect() as users:
        found = users.execute(query).all()
    linked = set(_linked_among(ledger, [i for i, _ in found]))
    now = utc_now()
    rows = [
        {
            "invoice_id": invoice_id,
            "subject_ref": subject_ref,
            "retained_until": rules.invoice_retained_until(
                issued_on, policy.invoice_retention_years, policy.fiscal_year_end_md
            ),
            "created_at": now,
        }
        for invoice_id, issued_on in found
        if invoice_id not in linked and issued_on is not None
    ]
    if rows:
        ledger.execute(insert(lt.kept_invoices), rows)
    return len(rows)


def linked_invoice_ids(dbs: Databases, subject_ref: str) -> list[int]:
    """Ids of the kept invoices linked to this keyed hash, ascending (reads the ledger)."""
    query = (
        select(lt.kept_invoices.c.invoice_id)
        .where(lt.kept_invoices.c.subject_ref == subject_ref)
        .order_by(lt.kept_invoices.c.invoice_id)
    )
    with dbs.ledger.connect() as conn:
        return [i for (i,) in conn.execute(query)]


def forget_anonymised(dbs: Databases, as_of: date) -> int:
    """Delete the links of invoices past retention on `as_of` whose names are gone
    (anonymised, R15); returns how many. Cheap: reads only links past their date."""
    expired = lt.kept_invoices.c.retained_until < as_of
    with dbs.ledger.connect() as conn:
        ids = [i for (i,) in conn.execute(select(lt.kept_invoices.c.invoice_id).where(expired))]
    anonymised: list[int] = []
    with dbs.users.connect() as users:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            named = {
                i
                for (i,) in users.execute(
                    select(t.invoices.c.id).where(
                        t.invoices.c.id.in_(chunk),
                        (t.invoices.c.customer_name.is_not(None))
                        | (t.invoices.c.contact_person.is_not(None)),
                    )
                )
            }
            anonymised += [i for i in chunk if i not in named]
    removed = 0
    with dbs.ledger.begin() as conn:
        for start in range(0, len(anonymised), _CHUNK):
            chunk = anonymised[start : start + _CHUNK]
            removed += conn.execute(
                delete(lt.kept_invoices).where(
                    and_(expired, lt.kept_invoices.c.invoice_id.in_(chunk))
                )
            ).rowcount
    return max(removed, 0)


def _linked_among(ledger: Connection, invoice_ids: list[int]) -> list[int]:
    out: list[int] = []
    for start in range(0, len(invoice_ids), _CHUNK):
        chunk = invoice_ids[start : start + _CHUNK]
        out += [
            i
            for (i,) in ledger.execute(
                select(lt.kept_invoices.c.invoice_id).where(
                    lt.kept_invoices.c.invoice_id.in_(chunk)
                )
            )
        ]
    return out
