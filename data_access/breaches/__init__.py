"""The breach register (avviksprotokoll): every personal-data breach, its 72-hour clock, the
decisions under art. 33 and 34, and the Datatilsynet draft (GDPR art. 33, 34; RULES.md
R50-R53). DESIGN.md "Breaches" lists the public API; the modules:

- `clock`: due = aware + 72 hours (UTC), hours left, Oslo display with the offset;
- `facts`: the facts of a breach and their allowed values;
- `workflow`: log, update, list those affected (keyed hashes), assess, decide, close;
- `records`: the register's lists (open breaches with hours left, radar items) and one breach;
- `draft`: the notification draft and the art. 34 letter in Norwegian and English;
- `findings`: clocks run out, decisions without reasoning, no breach logged for 12 months;
- `erasure`: what an erasure of a person removes from the register (R18).
"""

from data_access.breaches.clock import (
    NOTIFICATION_HOURS,
    hours_left,
    instant_of,
    is_late,
    notification_due_at,
    oslo_text,
    oslo_to_utc,
)
from data_access.breaches.draft import (
    datatilsynet_draft,
    draft_document,
    own_breach_letters,
    subject_letter,
)
from data_access.breaches.facts import (
    CATEGORIES,
    CAUSES,
    CHANNELS,
    EXEMPTIONS,
    RELATIONS,
    RISKS,
    STATUSES,
)
from data_access.breaches.records import (
    breach_counts,
    breach_detail,
    breach_events_frame,
    breach_list,
    open_breaches,
    radar_items,
    register_choices,
)
from data_access.breaches.workflow import (
    add_affected_emails,
    assess,
    close,
    decide_notification,
    decide_subject_notice,
    decide_subjects,
    log_breach,
    update_breach,
)

__all__ = [
    "CATEGORIES",
    "CAUSES",
    "CHANNELS",
    "EXEMPTIONS",
    "NOTIFICATION_HOURS",
    "RELATIONS",
    "RISKS",
    "STATUSES",
    "add_affected_emails",
    "assess",
    "breach_counts",
    "breach_detail",
    "breach_events_frame",
    "breach_list",
    "close",
    "datatilsynet_draft",
    "decide_notification",
    "decide_subject_notice",
    "decide_subjects",
    "draft_document",
    "hours_left",
    "instant_of",
    "is_late",
    "log_breach",
    "notification_due_at",
    "open_breaches",
    "own_breach_letters",
    "oslo_text",
    "oslo_to_utc",
    "radar_items",
    "register_choices",
    "subject_letter",
    "update_breach",
]
