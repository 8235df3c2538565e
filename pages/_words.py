"""Codes as a DPO reads them: the words shown for stages (RULES.md R13), request statuses and
timeline events (R2–R8), recipient-task and outbox statuses, and register roles (R31).

One mapping for every page: tables show a code column through `column_config` (the data and
its exports keep the codes), metrics and choices through `word`. A code not listed is shown
as its own words ("report_prepared" → "Report prepared").
"""

from __future__ import annotations

from typing import Any

STAGES = {
    "upcoming": "Upcoming",
    "notice_due": "Notice due",
    "notified": "Notified",
    "ready": "Ready to delete",
    "on_hold": "On hold",
}
STATUSES = {
    "received": "Received",
    "awaiting_identity": "Awaiting identity",
    "in_progress": "In progress",
    "extended": "Extended",
    "completed": "Completed",
    "refused": "Refused",
    "withdrawn": "Withdrawn",
    "not_possible": "Not possible",
}
ROLES = {
    "processor": "Processor",
    "joint_controller": "Joint controller",
    "independent_controller": "Independent controller",
}
EVENTS = {
    "identity_requested": "Identity requested",
    "identity_confirmed": "Identity confirmed",
    "recipient_tasks_created": "Recipients to notify listed",
    "recipient_notified": "Recipient notified",
    "report_prepared": "Report prepared",
    "erased": "Erased",
}
WORDS = {**STATUSES, **STAGES, **ROLES, **EVENTS}
# Columns that hold such codes, wherever a table shows them.
CODE_COLUMNS = frozenset({"stage", "status", "role", "event", "request_type", "new_status"})


def word(code: Any) -> str:
    """The words for `code` (WORDS, else the code with spaces for '_', capitalised); a
    missing value is blank."""
    if code is None or (isinstance(code, float) and code != code):
        return ""
    text = str(code)
    if text in WORDS:
        return WORDS[text]
    words = text.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:]


if __name__ == "__main__":  # served as a page in "pages folder" mode
    from pages import _gate

    _gate.not_a_page()
