"""Demo breaches for the demo ledger (`data_access.demo_ledger`): a few of each status, dated
relative to the demo's as-of day, each step with its timeline event and audit entry as the
workflow would have written them (RULES.md R50-R53).

Among them: two open breaches whose clocks run (one with under a day left), one assessed
breach whose clock has run out (a finding, R50), one notified in time and one notified late
with the reasons for the delay, two decided not to notify, and closed ones, one a
processor's notice (art. 33(2)).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from data_access.audit_chain import canonical_json
from data_access.breaches.clock import notification_due_at
from data_access.clock import day_start_utc

DPO = "dpo@plaato.example"


class AuditLog(Protocol):
    def add(self, when: datetime, *, action, rule, subject_ref, target, counts, details): ...


# (title, aware: days before as_of and Oslo hour, status, facts, decisions)
_SPECS: list[dict[str, Any]] = [
    {
        "title": "Invoice e-mails sent to the wrong customers",
        "aware": (1, 14),
        "status": "open",
        "report_channel": "employee",
        "reported_by": "Customer service (Oslo office)",
        "category": "confidentiality",
        "cause": "human_error",
        "description": "A batch of 38 invoice e-mails went to the previous customer's address.",
        "subjects_count": 38,
        "records_count": 38,
        "subject_relations": "customers",
        "data_categories": '["Name", "Invoice number", "Amount"]',
        "activities": ["Invoicing and bookkeeping"],
    },
    {
        "title": "Website provider reports unauthorised access to the contact form log",
        "aware": (2, 11),
        "status": "open",
        "report_channel": "processor",
        "reported_by": "Website provider's security team",
        "processor": "Website provider",
        "category": "confidentiality",
        "cause": "attack",
        "description": "An attacker read the contact form's log for about six hours.",
        "subjects_count": 400,
        "subjects_estimated": True,
        "subject_relations": "visitors",
        "data_categories": '["Name", "E-mail address"]',
        "recipients": ["Website provider"],
    },
    {
        "title": "Support inbox exported to a personal drive",
        "aware": (6, 9),
        "status": "assessed",
        "risk": "risk",
        "risk_reasoning": "Chat logs with names and phone numbers left the company's control.",
        "notify_decision": True,
        "notify_reasoning": "A risk to those affected cannot be excluded (art. 33(1)).",
        "report_channel": "monitoring",
        "reported_by": "Data-loss-prevention alert",
        "category": "confidentiality",
        "cause": "process",
        "subjects_count": 1200,
        "subjects_estimated": True,
        "subject_relations": "customers,members",
        "activities": ["Customer service and sales"],
    },
    {
        "title": "Backup restore overwrote a day of account changes",
        "aware": (1, 8),
        "status": "assessed",
        "risk": "none",
        "risk_reasoning": "Changes were restored from the audit trail the same day.",
        "report_channel": "employee",
        "reported_by": "Operations on call",
        "category": "integrity,availability",
        "cause": "technical",
        "subjects_count": 75,
        "subject_relations": "customers",
    },
    {
        "title": "Payment processor reports card tokens in a debug log",
        "aware": (45, 8),
        "status": "notified",
        "risk": "risk",
        "risk_reasoning": "Card tokens are not card numbers, but names and e-mails were with them.",
        "notify_decision": True,
        "notify_reasoning": "Risk to those affected; the processor notified within a day.",
        "notified_after_hours": 30,
        "notification_reference": "DT-2026-4411",
        "report_channel": "processor",
        "reported_by": "US payment processor",
        "processor": "US payment processor",
        "category": "confidentiality",
        "cause": "technical",
        "subjects_count": 2300,
        "subjects_estimated": True,
        "subject_relations": "customers",
        "recipients": ["US payment processor"],
    },
    {
        "title": "Newsletter list shared with a printing company without a DPA",
        "aware": (120, 13),
        "status": "notified",
        "risk": "high",
        "risk_reasoning": "The whole newsletter list left the company without safeguards.",
        "notify_decision": True,
        "notify_reasoning": "High risk to those affected.",
        "notified_after_hours": 96,
        "delay_reasons": "The extent was only clear once the printing company answered.",
        "notification_reference": "DT-2026-2179",
        "subjects_decision": True,
        "subjects_reasoning": "High risk: those affected are told (art. 34(1)).",
        "subjects_how": "E-mail to every subscriber",
        "report_channel": "employee",
        "reported_by": "Marketing",
        "category": "confidentiality",
        "cause": "process",
        "subjects_count": 5100,
        "subject_relations": "newsletter_subscribers",
    },
    {
        "title": "Laptop with an encrypted disk stolen from a car",
        "aware": (60, 17),
        "status": "not_notified",
        "risk": "none",
        "risk_reasoning": "Full-disk encryption with a strong passphrase; remote wipe confirmed.",
        "notify_decision": False,
        "notify_reasoning": "Unlikely to result in a risk: the data were unintelligible.",
        "report_channel": "employee",
        "reported_by": "Sales",
        "category": "availability",
        "cause": "other",
    },
    {
        "title": "Order confirmation with the wrong attachment, deleted unread",
        "aware": (9, 12),
        "status": "not_notified",
        "risk": "none",
        "risk_reasoning": "One recipient, a business customer who confirmed deletion unread.",
        "notify_decision": False,
        "notify_reasoning": "Unlikely to result in a risk to the one person concerned.",
        "report_channel": "third_party",
        "reported_by": "The customer who received it",
        "category": "confidentiality",
        "cause": "human_error",
        "subjects_count": 1,
        "records_count": 1,
        "subject_relations": "customers",
    },
    {
        "title": "Analytics cookie set before consent on one landing page",
        "aware": (200, 9),
        "status": "closed",
        "risk": "none",
        "risk_reasoning": "Pseudonymous identifiers only, for three hours.",
        "notify_decision": False,
        "notify_reasoning": "No risk to rights and freedoms; fixed the same day.",
        "report_channel": "monitoring",
        "reported_by": "Cookie scanner",
        "category": "confidentiality",
        "cause": "technical",
        "subject_relations": "visitors",
        "recipients": ["Google Analytics"],
        "closing_note": "Tag manager rule corrected and tested.",
    },
    {
        "title": "Shared account password posted in a public chat",
        "aware": (300, 15),
        "status": "closed",
        "risk": "risk",
        "risk_reasoning": "An administrator account could have been misused.",
        "notify_decision": True,
        "notify_reasoning": "Risk to customers' account data.",
        "notified_after_hours": 50,
        "notification_reference": "DT-2026-0307",
        "subjects_decision": False,
        "subjects_reasoning": "No high risk: the password was changed within minutes.",
        "report_channel": "employee",
        "reported_by": "IT",
        "category": "confidentiality",
        "cause": "human_error",
        "subjects_count": 12,
        "subject_relations": "members",
        "closing_note": "Password manager rolled out to the support team.",
    },
]
_FACT_KEYS = (
    "report_channel",
    "reported_by",
    "category",
    "cause",
    "description",
    "subjects_count",
    "records_count",
    "subject_relations",
    "data_categories",
    "risk",
    "risk_reasoning",
    "notify_decision",
    "notify_reasoning",
    "notification_reference",
    "delay_reasons",
    "subjects_decision",
    "subjects_reasoning",
    "subjects_how",
    "closing_note",
)


def demo_breaches(
    as_of: date,
    activity_ids: Mapping[str, int],
    recipient_ids: Mapping[str, int],
    log: AuditLog,
) -> dict[str, list[dict]]:
    """Rows for ledger.breaches, breach_events and breach_links ({"table": rows}); the audit
    entries go into `log` (the demo ledger's, appended in time order)."""
    tables: dict[str, list[dict]] = {"breaches": [], "breach_events": [], "breach_links": []}
    for breach_id, spec in enumerate(_SPECS, start=1):
        days, hour = spec["aware"]
        aware = day_start_utc(as_of - timedelta(days=days)) + timedelta(hours=hour)
        logged = aware + timedelta(minutes=40)
        row = _row(breach_id, spec, aware, logged, recipient_ids)
        tables["breaches"].append(row)
        steps = _steps(row, spec, logged)
        for n, (when, event, action, rule, details) in enumerate(steps):
            tables["breach_events"].append(
                {
                    "id": breach_id * 10 + n,
                    "breach_id": breach_id,
                    "occurred_at": when,
                    "actor": DPO,
                    "event": event,
                    "details": canonical_json(details),
                }
            )
            log.add(when, action=action, rule=rule, subject_ref=None,
                    target=f"breach:{breach_id}", counts={"breaches": 1}, details=details)  # fmt: skip
        links = [("activity", activity_ids[n]) for n in spec.get("activities", ())]
        links += [("recipient", recipient_ids[n]) for n in spec.get("recipients", ())]
        for n, (kind, ref_id) in enumerate(links):
            tables["breach_links"].append(
                {"id": breach_id * 10 + n, "breach_id": breach_id, "kind": kind, "ref_id": ref_id}
            )
    return tables


def _row(breach_id: int, spec: dict, aware: datetime, logged: datetime, recipient_ids) -> dict:
    row: dict[str, Any] = dict.fromkeys(
        (
            "occurred_from", "occurred_to", "processor_id", "processor_notice_at", "how_arose",
            "data_location", "consequences", "measures_taken", "measures_planned",
            "assessed_at", "assessed_by", "notify_decided_at", "notify_decided_by",
            "notified_at", "phase_missing", "phase_follows_on", "subjects_exemption",
            "subjects_notified_at", "subjects_decided_at", "subjects_decided_by",
            "closed_at", "closed_by", "records_count", "subjects_count",
        )
    )  # fmt: skip
    row.update({k: spec.get(k) for k in _FACT_KEYS})
    row.update(
        id=breach_id,
        title=spec["title"],
        status=spec["status"],
        aware_at=aware,
        due_at=notification_due_at(aware),
        occurred_from=aware - timedelta(hours=20),
        occurred_to=aware - timedelta(hours=2),
        subjects_estimated=bool(spec.get("subjects_estimated")),
        records_estimated=False,
        subjects_listed=0,
        measures_taken="Access closed and the cause found.",
        consequences="Possible unwanted contact or phishing.",
        created_at=logged,
        created_by=DPO,
        updated_at=logged,
        version=1,
    )
    if spec.get("processor"):
        row.update(processor_id=recipient_ids[spec["processor"]], processor_notice_at=aware)
    return row


def _steps(row: dict, spec: dict, logged: datetime) -> list[tuple]:
    """(when, event, audit action, rule, details) of each step the breach went through, with
    the row's decision columns filled in as the step would have set them."""
    steps = [
        (logged, "logged", "log_breach", "R51", {"fields": ["aware_at", "reported_by", "title"]})
    ]
    at = logged
    if spec.get("risk"):
        at = logged + timedelta(hours=3)
        row.update(assessed_at=at, assessed_by=DPO)
        steps.append((at, "assessed", "assess_breach", "R51", {"risk": spec["risk"], "status": "assessed"}))  # fmt: skip
    if spec.get("notify_decision") is not None:
        at = at + timedelta(hours=1)
        row.update(notify_decided_at=at, notify_decided_by=DPO)
        details = {"notify": spec["notify_decision"], "status": spec["status"]}
        if spec.get("notified_after_hours"):
            sent = row["aware_at"] + timedelta(hours=spec["notified_after_hours"])
            at = max(at, sent)
            row["notified_at"] = sent
            details.update(notified=True, late=sent > row["due_at"], status="notified")
        steps.append((at, "notification_decided", "decide_breach_notification", "R50", details))
    if spec.get("subjects_decision") is not None:
        at = at + timedelta(hours=5)
        row.update(subjects_decided_at=at, subjects_decided_by=DPO)
        if spec["subjects_decision"]:
            row["subjects_notified_at"] = at
        steps.append((at, "subjects_decided", "decide_breach_subject_notice", "R52",
                      {"notify": spec["subjects_decision"]}))  # fmt: skip
    if spec["status"] == "closed":
        at = at + timedelta(days=7)
        row.update(closed_at=at, closed_by=DPO)
        steps.append((at, "closed", "close_breach", "R51", {"status": "closed"}))
    row["updated_at"] = at
    row["version"] = len(steps)
    return steps
