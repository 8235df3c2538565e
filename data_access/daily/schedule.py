"""The retention schedule ("sletteplan"): every data category of the privacy policy with its
rule and legal basis, and the evidence that the rule runs: the last enforcement (when, by
whom — a DPO or the daily run — and how many rows), what is overdue now, what a legal hold
keeps, and the next due date (RULES.md R12-R18, R23; GDPR art. 5(1)(e), 5(2)).

The last enforcement comes from the ledger's job records: the latest finished job whose
steps deleted or anonymised rows of the category's tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import select

from data_access import retention, rules
from data_access.daily.deadline_radar import next_support_due
from data_access.engines import Databases
from data_access.ledger_tables import job_steps, jobs

SCHEDULE_COLUMNS = [
    "category",
    "rule",
    "retention",
    "legal_basis",
    "last_enforced_at",
    "last_enforced_by",
    "last_job_id",
    "last_rows",
    "overdue",
    "on_hold",
    "next_due_on",
    "page",
]
# The latest finished jobs read for the evidence: far more than a day's or a week's work.
RECENT_JOBS = 500


@dataclass(frozen=True)
class Category:
    name: str
    rule: str
    retention: str
    legal_basis: str
    tables: tuple[str, ...]  # tables whose deleted/anonymised rows are this category's
    job_kinds: tuple[str, ...]
    figures: str  # which due figures apply: accounts | support | invoices | none
    page: str  # a pages/_ui.py PAGE_FILES key


CATEGORIES = (
    Category(
        "Accounts and members",
        "R13, R14",
        "Deleted after {months} months without activity, {notice} days after a notice",
        "Contract, GDPR art. 6(1)(b)",
        ("accounts", "account_members"),
        ("account_deletion", "erasure"),
        "accounts",
        "accounts",
    ),
    Category(
        "Usage statistics",
        "R14, R20",
        "Deleted with the account; not recorded without consent",
        "Consent, GDPR art. 6(1)(a)",
        ("usage_sessions",),
        ("account_deletion", "erasure"),
        "none",  # due with the account: counted once, under accounts
        "accounts",
    ),
    Category(
        "Newsletter",
        "R12, R23",
        "Kept until the subscriber unsubscribes or asks for erasure",
        "Consent, GDPR art. 6(1)(a)",
        ("newsletter_subscribers",),
        ("erasure",),
        "none",
        "requests",
    ),
    Category(
        "Website statistics and marketing consent",
        "R14, R20, R24",
        "Consent records kept as proof of consent while the account or subscription lasts; "
        "cookies expire on the visitor's device (R24)",
        "Consent, GDPR art. 6(1)(a), ekomloven §3-15; proof: art. 6(1)(c) with art. 7(1)",
        ("consent_events",),
        ("account_deletion", "erasure"),
        "none",
        "consent",
    ),
    Category(
        "Customer-service logs",
        "R16",
        "Purged {support} months after the contact",
        "Legitimate interest in following up enquiries, GDPR art. 6(1)(f)",
        ("contacts",),
        ("support_purge", "account_deletion", "erasure"),
        "support",
        "retention",
    ),
    Category(
        "Invoices",
        "R15",
        "Anonymised {years} years after the end of the financial year (bokføringsloven §13)",
        "Legal obligation, GDPR art. 6(1)(c), bokføringsloven §13",
        ("invoices", "invoices_anonymised"),
        ("invoice_anonymisation", "erasure"),
        "invoices",
        "retention",
    ),
    Category(
        "Data-subject request intake",
        "R18",
        "Kept as proof that each request was handled; details redacted on erasure",
        "Accountability, GDPR art. 5(2) and art. 6(1)(c)",
        ("data_subject_requests_details_redacted",),
        ("erasure",),
        "none",
        "requests",
    ),
    Category(
        "The ledger's notices and outbox",
        "R18",
        "Removed with the account's deletion or the person's erasure",
        "Contract, GDPR art. 6(1)(b) (the inactivity notice of R13)",
        ("notices", "outbox"),
        ("account_deletion", "erasure"),
        "none",
        "accounts",
    ),
)


def retention_schedule(dbs: Databases, as_of: date) -> pd.DataFrame:
    """One row per data category of the policy, in the policy's order.

    Columns: category, rule, retention (the period in words, from the Policy), legal_basis,
    last_enforced_at (UTC; when the latest job that removed rows of the category finished),
    last_enforced_by (who ran it last: a DPO's e-mail or 'daily-run'), last_job_id,
    last_rows (rows deleted or anonymised by that job in the category's tables), overdue
    (records past their date on `as_of` and not under a hold: due now; None where the
    category has no dated rule of its own), on_hold (records past their date kept under a
    legal hold, R17; held rows counted among the listed ones, up to policy.max_rows), next_due_on (the next Oslo date a
    record falls due after `as_of`, within a year; None when none), page (PAGE_FILES key).
    Raises DatabaseUnavailable when the ledger, users or support database is down.
    """
    evidence = _evidence(dbs)
    due = _due_figures(dbs, as_of)
    rows = []
    for category in CATEGORIES:
        last = next(
            (
                e
                for e in evidence
                if _rows_in(e["rows"], category) > 0 and e["kind"] in category.job_kinds
            ),
            None,
        )
        overdue, held, next_due = due.get(category.figures, (None, None, None))
        rows.append(
            {
                "category": category.name,
                "rule": category.rule,
                "retention": _period(category.retention, dbs),
                "legal_basis": category.legal_basis,
                "last_enforced_at": last["finished_at"] if last else None,
                "last_enforced_by": last["by"] if last else None,
                "last_job_id": last["job_id"] if last else None,
                "last_rows": _rows_in(last["rows"], category) if last else None,
                "overdue": overdue,
                "on_hold": held,
                "next_due_on": next_due,
                "page": category.page,
            }
        )
    whole = {c: "Int64" for c in ("last_job_id", "last_rows", "overdue", "on_hold")}
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS).astype(whole)


def _period(text: str, dbs: Databases) -> str:
    p = dbs.policy
    return text.format(
        months=p.account_inactivity_months,
        notice=p.notice_days,
        support=p.support_log_months,
        years=p.invoice_retention_years,
    )


def _rows_in(rows: dict[str, int], category: Category) -> int:
    """Rows of `rows` ({"table" or "store.table": n}) in the category's tables."""
    return sum(int(n) for key, n in rows.items() if key.split(".")[-1] in category.tables)


def _evidence(dbs: Databases) -> list[dict]:
    """The latest finished jobs, newest first: job_id, kind, finished_at (UTC), by, rows
    (the summed rows of their done steps per table)."""
    query = (
        select(jobs.c.id, jobs.c.kind, jobs.c.finished_at, jobs.c.actor, jobs.c.claimed_by)
        .where(jobs.c.status == "done", jobs.c.finished_at.is_not(None))
        .order_by(jobs.c.finished_at.desc(), jobs.c.id.desc())
        .limit(RECENT_JOBS)
    )
    with dbs.ledger.connect() as conn:
        found = [dict(r) for r in conn.execute(query).mappings()]
        ids = [j["id"] for j in found]
        steps = (
            conn.execute(
                select(job_steps.c.job_id, job_steps.c.counts).where(
                    job_steps.c.job_id.in_(ids), job_steps.c.status == "done"
                )
            ).all()
            if ids
            else []
        )
    totals: dict[int, dict[str, int]] = {i: {} for i in ids}
    for job_id, counts in steps:
        for table, n in (json.loads(counts or "{}").get("rows") or {}).items():
            if isinstance(n, int):
                totals[job_id][table] = totals[job_id].get(table, 0) + n
    return [
        {
            "job_id": j["id"],
            "kind": j["kind"],
            "finished_at": j["finished_at"],
            "by": j["claimed_by"] or j["actor"],
            "rows": totals[j["id"]],
        }
        for j in found
    ]


def _due_figures(dbs: Databases, as_of: date) -> dict[str, tuple]:
    """(overdue, on_hold, next_due_on) for accounts, support logs and invoices."""
    year = as_of + timedelta(days=366)
    nearing = retention.accounts_nearing_deletion(dbs, as_of, 366)
    ready = nearing[nearing["stage"] == "ready"]
    later = nearing.loc[nearing["key_date"] > as_of, "key_date"]
    accounts = (
        len(ready),
        int((nearing["stage"] == "on_hold").sum()),
        min(later) if len(later) else None,
    )
    contacts = retention.support_contacts_past_retention(dbs, as_of)
    next_contact = next_support_due(dbs, as_of)
    support = (
        int(contacts.attrs.get("total", len(contacts))) - int(contacts["on_hold"].sum()),
        int(contacts["on_hold"].sum()),
        next_contact if next_contact is not None and next_contact <= year else None,
    )
    invoices = retention.invoices_past_retention(dbs, as_of)
    policy = dbs.policy
    next_end = rules.invoice_retained_until(
        rules.invoice_issued_cutoff(
            year, policy.invoice_retention_years, policy.fiscal_year_end_md
        ),
        policy.invoice_retention_years,
        policy.fiscal_year_end_md,
    ) + timedelta(days=1)
    invoice_figures = (
        int(invoices.attrs.get("total", len(invoices))) - int(invoices["on_hold"].sum()),
        int(invoices["on_hold"].sum()),
        next_end if as_of < next_end <= year else None,
    )
    return {"accounts": accounts, "support": support, "invoices": invoice_figures}
