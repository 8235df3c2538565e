"""Demo rows of the ledger: the register, breaches (a few of each status), legal holds,
inactivity notices with their outbox messages, data-subject request cases, and the audit
entries of every action among them.

The register is seeded from the privacy policy (RULES.md R24, R30, R31) with a few
realistic findings (R32). Actions are written as the DPO would have taken them: each has
its audit entry, dated when it happened, appended in time order so the hash chain verifies.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy import Connection, Table, insert

from data_access import audit, letters, rules
from data_access.breaches.demo import demo_breaches
from data_access.demo_load import advance_sequences
from data_access.demo_people import HOLD_REASONS
from data_access.demo_plan import AccountPlan, Scale
from data_access.demo_support import PlannedRequest
from data_access.demo_users import member_emails
from data_access.engines import Databases
from data_access.ledger_tables import (
    breach_events,
    breach_links,
    breaches,
    cookies,
    legal_holds,
    notices,
    outbox,
    processing_activities,
    recipient_tasks,
    recipients,
    request_cases,
    request_events,
)
from data_access.settings import Letters, Policy

DPO = "dpo@plaato.example"
LEGAL = "legal@plaato.example"

# request event -> (audit action, rule); a completion's rule depends on the request type.
EVENT_ACTIONS = {
    "identity_requested": ("request_identity", "R5"),
    "identity_confirmed": ("confirm_identity", "R5"),
    "extended": ("extend_request", "R3"),
    "completed": ("complete_request", None),
    "refused": ("refuse_request", "R6"),
    "withdrawn": ("withdraw_request", None),
}
COMPLETION_RULES = {
    "access": "R9",
    "portability": "R10",
    "rectification": "R11",
    "restriction": "R11",
    "erasure": "R12",
    "withdraw_consent": "R23",
}


class _Audit:
    """Audit entries of all ledger actions, kept compact and appended in time order."""

    FIELDS = ("action", "rule", "subject_ref", "target", "counts", "details")

    def __init__(self):
        self.entries: list[tuple] = []

    def add(self, when: datetime, *, action, rule, subject_ref, target, counts, details) -> None:
        self.entries.append(
            (when, len(self.entries), action, rule, subject_ref, target, counts, details)
        )

    def write(self, conn: Connection) -> int:
        self.entries.sort(key=lambda e: (e[0], e[1]))
        return audit.append_many(
            conn,
            (
                {
                    "actor": DPO,
                    "store": "ledger",
                    "now": e[0],
                    **dict(zip(self.FIELDS, e[2:], strict=True)),
                }
                for e in self.entries
            ),
        )


def write_ledger(
    dbs: Databases,
    accounts: AccountPlan,
    requests: list[PlannedRequest],
    scale: Scale,
    seed: int,
) -> dict[str, int]:
    """Write every demo ledger row in one transaction; returns rows per "ledger.table".

    Notices and request cases are written in chunks, so memory stays small at any scale."""
    policy, tl = dbs.policy, accounts.tl
    letter_settings = dbs.settings.letters if dbs.settings else Letters()
    log = _Audit()
    rng = random.Random(f"{seed}-ledger")
    register = _recipients(tl.as_of, policy)
    recipient_ids = {r["name"]: r["id"] for r in register}
    counts: dict[str, int] = {}
    max_ids: dict[str, int] = {}

    def write(conn: Connection, table: Table, rows: list[dict]) -> None:
        if rows:
            conn.execute(insert(table), rows)
            max_ids[table.name] = max(
                max_ids.get(table.name, 0), max(r.get("id") or 0 for r in rows)
            )
        counts[f"ledger.{table.name}"] = counts.get(f"ledger.{table.name}", 0) + len(rows)

    with dbs.ledger.begin() as conn:
        write(conn, recipients, register)
        write(conn, cookies, _cookies())
        activities = _activities(tl.as_of, policy)
        write(conn, processing_activities, activities)
        seeded = demo_breaches(
            tl.as_of, {a["name"]: a["id"] for a in activities}, recipient_ids, log
        )
        for table in (breaches, breach_events, breach_links):
            write(conn, table, seeded[table.name])
        write(conn, legal_holds, _holds(dbs, accounts, scale, seed, log))
        for messages, rows in _notices(dbs, accounts, letter_settings, log, rng):
            write(conn, outbox, messages)
            write(conn, notices, rows)
        for cases, events, tasks in _request_rows(dbs, requests, recipient_ids, log, rng):
            write(conn, request_cases, cases)
            write(conn, request_events, events)
            write(conn, recipient_tasks, tasks)
        if conn.dialect.name == "postgresql":
            advance_sequences(conn, LEDGER_ID_TABLES, max_ids)
        counts["ledger.audit_log"] = log.write(conn)
    return counts


LEDGER_ID_TABLES = (
    breaches,
    breach_events,
    breach_links,
    recipients,
    cookies,
    processing_activities,
    legal_holds,
    outbox,
    notices,
    request_events,
    recipient_tasks,
)
CHUNK = 5000


def _when(d: date, rng: random.Random, low: int = 7, high: int = 14) -> datetime:
    """A UTC time on the Oslo working day `d` (08:00-16:00 in Oslo)."""
    return datetime.combine(d, time(rng.randint(low, high), rng.randint(0, 59), rng.randint(0, 59)))


# --- register ------------------------------------------------------------------------------


def _recipients(as_of: date, policy: Policy) -> list[dict]:
    """The policy's recipients and social media pages (R31), with three findings (R32): the
    payment processor has no legal name, the website provider no DPA, the Google Analytics
    DPF listing was last checked 140 days ago, and the Pixel's review is 15 months old."""

    def ago(days: int) -> date:
        return as_of - timedelta(days=days)

    base = {
        "legal_name": None,
        "dpa_signed_on": None,
        "dpf_checked_on": None,
        "tia_on": None,
        "named_in_policy": True,
        "receives_personal_data": True,
        "notes": None,
    }
    rows = [
        {
            **base,
            "name": "US payment processor",
            "role": "processor",
            "purpose": "Card payments for orders and subscriptions",
            "data_categories": "Name, e-mail address, amount, card token",
            "country": "US",
            "dpa_signed_on": ago(1100),
            "transfer_mechanism": "scc",
            "tia_on": ago(700),
            "last_review_on": ago(100),
            "notes": "The privacy policy calls it only 'Payment Processor US'.",
        },
        {
            **base,
            "name": "Google Analytics",
            "legal_name": "Google Ireland Ltd / Google LLC",
            "role": "processor",
            "purpose": "Website statistics",
            "data_categories": "Cookie identifiers (_ga), pages visited, shortened IP address, device",
            "country": "US",
            "dpa_signed_on": ago(1500),
            "transfer_mechanism": "dpf",
            "dpf_checked_on": ago(140),
            "last_review_on": ago(60),
            "notes": "Google LLC is listed under the EU-US Data Privacy Framework.",
        },
        {
            **base,
            "name": "Facebook Pixel",
            "legal_name": "Meta Platforms Ireland Ltd",
            "role": "joint_controller",
            "purpose": "Marketing: measuring and targeting adverts on Facebook and Instagram",
            "data_categories": "Cookie identifiers (_fbp, _fbc), pages visited, IP address",
            "country": "IE",
            "dpa_signed_on": ago(900),
            "transfer_mechanism": "dpf",
            "dpf_checked_on": ago(20),
            "last_review_on": rules.add_months(as_of, -15),
            "notes": "Joint controller for collection and transmission (CJEU C-40/17, Fashion ID).",
        },
        {
            **base,
            "name": "Website provider",
            "legal_name": "Fjordweb AS",
            "role": "processor",
            "purpose": "Hosting of the website, its chat and contact forms",
            "data_categories": "Form and chat contents, IP addresses in server logs",
            "country": "NO",
            "transfer_mechanism": "eea",
            "last_review_on": ago(30),
        },
    ]
    social = (
        ("Facebook", "Meta Platforms Ireland Ltd", ago(800)),
        ("YouTube", "Google Ireland Ltd", None),
        ("Instagram", "Meta Platforms Ireland Ltd", ago(800)),
        ("LinkedIn", "LinkedIn Ireland Unlimited Company", None),
    )
    for name, legal_name, addendum in social:
        rows.append(
            {
                **base,
                "name": name,
                "legal_name": legal_name,
                "role": "joint_controller",
                "purpose": "Page statistics (Insights) for the company's page",
                "data_categories": "Visitors' interactions with the page, shown to us aggregated",
                "country": "IE",
                "dpa_signed_on": addendum,
                "transfer_mechanism": "eea",
                "last_review_on": ago(90),
                "named_in_policy": False,
                "receives_personal_data": False,
                "notes": "Joint controller for page statistics (CJEU C-210/16); the policy says such "
                "data 'is not available to us'.",
            }
        )
    return [{"id": i, **row} for i, row in enumerate(rows, start=1)]


def _cookies() -> list[dict]:
    """The cookie register with the providers' stated lifetimes (R24, ekomloven §3-15)."""
    google, meta, us = (
        "Google Analytics (Google Ireland Ltd)",
        "Meta Platforms Ireland Ltd",
        "Plaato Technologies AS",
    )
    rows = [
        ("_ga", google, "first", "statistics", 730, "2 years", True),
        ("_ga_<container-id>", google, "first", "statistics", 730, "2 years", True),
        ("_fbp", meta, "first", "marketing", 90, "3 months", True),
        ("_fbc", meta, "first", "marketing", 90, "3 months", True),
        ("sessionid", us, "first", "strictly_necessary", None, "session", False),
        ("csrftoken", us, "first", "strictly_necessary", 365, "1 year", False),
        ("cookie_consent", us, "first", "strictly_necessary", 365, "12 months", False),
    ]
    keys = (
        "name",
        "provider",
        "party",
        "category",
        "lifetime_days",
        "lifetime",
        "consent_required",
    )
    return [{"id": i, **dict(zip(keys, row, strict=True))} for i, row in enumerate(rows, start=1)]


def _activities(as_of: date, policy: Policy) -> list[dict]:
    """The record of processing activities, one per purpose in the policy (R30)."""
    measures = (
        "Access by role with sign-in, TLS in transit, encrypted backups, audit log of "
        "deletions and exports"
    )
    rows = [
        (
            "Customer accounts",
            "Connect users to their accounts and reset passwords",
            "art. 6(1)(b)",
            "Customers, their employees and others using the service on their behalf",
            "Name, e-mail address, company name, contact person",
            "Website provider",
            "No transfer outside the EEA",
            f"Deleted after {policy.account_inactivity_months} months without activity, following a "
            f"notice {policy.notice_days} days before (R13, R14)",
        ),
        (
            "Invoicing and bookkeeping",
            "Invoice customers under the customer agreement",
            "art. 6(1)(c)",
            "Customers and their contact persons",
            "Name, contact person, amount, invoice number",
            "US payment processor",
            "United States: US payment processor (SCC 2021/914 with transfer impact assessment)",
            f"{policy.invoice_retention_years} years after the end of the financial year "
            "(bokføringsloven §13), then anonymised (R15)",
        ),
        (
            "Usage statistics and personalisation",
            "Improve the service; personalise the user panel",
            "art. 6(1)(a)",
            "Users who consented",
            "Sessions, their duration and features used",
            "No recipients",
            "No transfer outside the EEA",
            "Until consent is withdrawn or the account is deleted (R14, R23)",
        ),
        (
            "Newsletter",
            "Send news about products and services",
            "art. 6(1)(a)",
            "Subscribers",
            "Name, e-mail address",
            "No recipients",
            "No transfer outside the EEA",
            "Until the subscriber unsubscribes or asks for erasure (R12)",
        ),
        (
            "Website statistics and marketing",
            "Understand website use; advertise on platforms",
            "art. 6(1)(a)",
            "Website visitors who consented",
            "Cookie identifiers, pages visited, IP address",
            "Google Analytics, Facebook Pixel",
            "United States: Google LLC and Meta Platforms Inc. (EU-US Data Privacy Framework)",
            "Cookie lifetimes: _ga 2 years, _fbp and _fbc 3 months (R24)",
        ),
        (
            "Customer service and sales",
            "Answer chat, e-mail and phone enquiries and take orders",
            "art. 6(1)(b)",
            "Customers and prospective customers",
            "Name, location, phone number, e-mail address, enquiry",
            "Website provider",
            "No transfer outside the EEA",
            f"{policy.support_log_months} months, longer only under a legal hold (R16, R17)",
        ),
    ]
    keys = (
        "name",
        "purpose",
        "legal_basis",
        "data_subjects",
        "data_categories",
        "recipients",
        "third_country_transfers",
        "retention_rule",
    )
    return [
        {
            "id": i,
            **dict(zip(keys, row, strict=True)),
            "security_measures": measures,
            "updated_on": as_of - timedelta(days=45),
        }
        for i, row in enumerate(rows, start=1)
    ]


# --- legal holds ---------------------------------------------------------------------------


def _holds(
    dbs: Databases, accounts: AccountPlan, scale: Scale, seed: int, log: _Audit
) -> list[dict]:
    """Six holds (R17): on an account, an owner's e-mail, a member's e-mail and a support
    contact; one released; one past its review date."""
    tl, policy = accounts.tl, dbs.policy
    as_of = tl.as_of
    reasons = iter(HOLD_REASONS)

    def owner_email(key: str) -> str:
        return str(accounts.emails(np.array([accounts.holds[key]]), as_typed=False)[0])

    def account_id(key: str) -> int:
        return int(accounts.ids[accounts.holds[key]])

    member = member_emails(accounts, seed, accounts.holds["member_email"])[0].strip().lower()
    specs = [
        ("account", {"account_id": account_id("account")}, 150, None, DPO),
        ("email", {"email": owner_email("owner_email")}, 90, None, LEGAL),
        ("email", {"email": member}, 60, None, LEGAL),
        ("contact", {"contact_id": max(1, scale.contacts // 10)}, 120, None, DPO),
        ("account", {"account_id": account_id("released")}, 200, 40, DPO),
        ("account", {"account_id": account_id("past_review")}, 420, None, LEGAL),
    ]
    rows = []
    for hold_id, (scope, target, placed_ago, released_ago, owner) in enumerate(specs, start=1):
        placed = as_of - timedelta(days=placed_ago)
        review = rules.hold_review_default(placed, policy.hold_review_months)
        email = target.get("email")
        row = {
            "id": hold_id,
            "scope": scope,
            "email": email,
            "subject_ref": audit.keyed_hash(dbs, email) if email else None,
            "account_id": target.get("account_id"),
            "contact_id": target.get("contact_id"),
            "reason": next(reasons),
            "case_ref": f"SAK-{placed.year}-{1040 + 17 * hold_id}",
            "owner": owner,
            "placed_by": DPO,
            "placed_on": placed,
            "review_on": review,
            "released_on": None,
            "released_by": None,
        }
        details = {"scope": scope, "placed_on": placed, "review_on": review}
        if scope != "email":
            details[f"{scope}_id"] = target[f"{scope}_id"]
        log.add(
            datetime.combine(placed, time(9, 30)),
            action="place_hold",
            rule="R17",
            subject_ref=row["subject_ref"],
            target=f"hold:{hold_id}",
            counts={"legal_holds": 1},
            details=details,
        )
        if released_ago is not None:
            released = as_of - timedelta(days=released_ago)
            row.update(released_on=released, released_by=DPO)
            log.add(
                datetime.combine(released, time(10, 15)),
                action="release_hold",
                rule="R17",
                subject_ref=row["subject_ref"],
                target=f"hold:{hold_id}",
                counts={"legal_holds": 1},
                details={k: v for k, v in details.items() if k not in ("placed_on", "review_on")}
                | {"released_on": released},
            )
        rows.append(row)
    return rows


# --- inactivity notices --------------------------------------------------------------------


def _notices(
    dbs: Databases, accounts: AccountPlan, letter_settings: Letters, log: _Audit, rng: random.Random
) -> Iterator[tuple[list[dict], list[dict]]]:
    """The notices sent so far (R13) and their delivered e-mails, in chunks."""
    tl, policy, planned = accounts.tl, dbs.policy, accounts.notices
    for low in range(0, len(planned.account), CHUNK):
        idx = planned.account[low : low + CHUNK]
        emails, names = accounts.emails(idx).tolist(), accounts.full_names(idx).tolist()
        messages, rows = [], []
        for k, (i, sent_day, based_day, deletable_day) in enumerate(
            zip(
                idx.tolist(),
                planned.sent_day[low : low + CHUNK].tolist(),
                planned.last_activity_day[low : low + CHUNK].tolist(),
                planned.deletable_day[low : low + CHUNK].tolist(),
                strict=True,
            )
        ):
            n = low + k + 1
            sent, based, deletable = tl.date(sent_day), tl.date(based_day), tl.date(deletable_day)
            created = _when(sent, rng, 6, 7)
            letter = letters.inactivity_notice(
                full_name=names[k],
                email=emails[k],
                last_activity_on=based,
                deletable_on=deletable,
                inactivity_months=policy.account_inactivity_months,
                invoice_years=policy.invoice_retention_years,
                letters=letter_settings,
            )
            ref = audit.keyed_hash(dbs, emails[k])
            messages.append(
                {
                    "id": n,
                    "created_at": created,
                    "kind": "inactivity_notice",
                    "to_email": emails[k],
                    "subject_ref": ref,
                    "subject": letter.subject,
                    "body": letter.body,
                    "status": "sent",
                    "attempts": 1,
                    "last_error": None,
                    "sent_at": created + timedelta(minutes=2),
                }
            )
            account_id = int(accounts.ids[i])
            rows.append(
                {
                    "id": n,
                    "account_id": account_id,
                    "sent_on": sent,
                    "created_at": created,
                    "actor": DPO,
                    "last_activity_on": based,
                    "deletable_on": deletable,
                    "outbox_id": n,
                }
            )
            log.add(
                created,
                action="send_deletion_notices",
                rule="R13",
                subject_ref=ref,
                target=f"account:{account_id}",
                counts={"notices": 1, "outbox": 1},
                details={"sent_on": sent, "deletable_on": deletable},
            )
        yield messages, rows


# --- request cases -------------------------------------------------------------------------


def _request_rows(
    dbs: Databases,
    requests: list[PlannedRequest],
    recipient_ids: dict[str, int],
    log: _Audit,
    rng: random.Random,
) -> Iterator[tuple[list[dict], list[dict], list[dict]]]:
    """request_cases, request_events and recipient_tasks (R11) of the planned requests,
    in chunks of requests."""
    event_id = task_id = 0
    for low in range(0, len(requests), CHUNK):
        cases, events, tasks = [], [], []
        for req in requests[low : low + CHUNK]:
            if req.case is None:
                continue  # intake only: the requests page shows it as 'received'
            ref = audit.keyed_hash(dbs, req.email)
            when = None
            for effective, event, details in req.events:
                when = _when(effective, rng)
                event_id += 1
                events.append(
                    {
                        "id": event_id,
                        "request_id": req.id,
                        "occurred_at": when,
                        "effective_on": effective,
                        "actor": DPO,
                        "event": event,
                        "details": audit.canonical_json(details),
                    }
                )
                action, rule = EVENT_ACTIONS[event]
                if event == "completed":
                    rule = COMPLETION_RULES.get(req.request_type)
                log.add(
                    when,
                    action=action,
                    rule=rule,
                    subject_ref=ref,
                    target=f"request:{req.id}",
                    counts={"request_events": 1},
                    details={"event": event, "effective_on": effective},
                )
            cases.append(
                {
                    "request_id": req.id,
                    **req.case,
                    "updated_at": when,
                    "version": 1 + len(req.events),
                }
            )
            for name, status, reason, closed in req.tasks:
                task_id += 1
                tasks.append(
                    {
                        "id": task_id,
                        "request_id": req.id,
                        "recipient_id": recipient_ids[name],
                        "recipient": name,
                        "status": status,
                        "reason": reason,
                        "closed_by": DPO if closed else None,
                        "closed_on": closed,
                    }
                )
        yield cases, events, tasks
