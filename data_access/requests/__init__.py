"""Data-subject requests (GDPR art. 12-21; RULES.md R1-R12, R23).

- `queries`: the open queue with legal deadlines, one request with its history (R1-R8).
- `workflow`: the steps on a request as an audited state machine (R3-R7).
- `completion`: completing by type: reports, erasure, consent withdrawal, checklists, and
  the recipient-notification tasks that gate completion (R9-R12, R23).
- `metrics`: on-time rate, days to close, open requests by type.
"""

from data_access.requests.completion import (
    CHECKLISTS,
    TASK_COLUMNS,
    TASK_OUTCOMES,
    TASK_TYPES,
    close_recipient_task,
    complete_request,
    erasure_receipt,
    prepare_report,
    recipient_tasks,
    unfinished_erasure,
)
from data_access.requests.metrics import (
    CLOSURE_COLUMNS,
    OPEN_BY_TYPE_COLUMNS,
    closure_metrics,
    open_by_type,
)
from data_access.requests.queries import (
    CLOSED_STATUSES,
    EVENT_COLUMNS,
    OPEN_REQUEST_COLUMNS,
    OPEN_STATUSES,
    base_due_date,
    deadline,
    open_requests,
    previous_request_on,
    request,
    request_counts,
    request_events,
)
from data_access.requests.workflow import (
    RequestRefused,
    confirm_identity,
    extend_request,
    refusal_letter,
    refuse_request,
    request_identity,
    withdraw_request,
)

__all__ = [
    "CHECKLISTS",
    "CLOSED_STATUSES",
    "CLOSURE_COLUMNS",
    "EVENT_COLUMNS",
    "OPEN_BY_TYPE_COLUMNS",
    "OPEN_REQUEST_COLUMNS",
    "OPEN_STATUSES",
    "TASK_COLUMNS",
    "TASK_OUTCOMES",
    "TASK_TYPES",
    "RequestRefused",
    "base_due_date",
    "close_recipient_task",
    "closure_metrics",
    "complete_request",
    "confirm_identity",
    "deadline",
    "extend_request",
    "open_by_type",
    "open_requests",
    "prepare_report",
    "previous_request_on",
    "recipient_tasks",
    "refusal_letter",
    "refuse_request",
    "request",
    "request_counts",
    "request_events",
    "request_identity",
    "erasure_receipt",
    "unfinished_erasure",
    "withdraw_request",
]
