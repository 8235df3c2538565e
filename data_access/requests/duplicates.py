"""Duplicate requests: the same data subject asking the same thing twice.

A request of a type in IDENTITY_TYPES *duplicates* another of the same type from the same e-mail (trimmed,
case-insensitive) received within policy.duplicate_request_days days, either side (Oslo
dates; the queue's `duplicate` flag). The *original* is the one received first (the lower
id on the same day). A duplicate is answered through its original: while the original is
open the duplicate cannot be completed, and it is never completed on a bare e-mail — its
own identity must be confirmed (RULES.md R5) — so that a second request nobody checked
cannot erase or disclose a person's data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from data_access.clock import day_end_utc, day_start_utc, oslo_date
from data_access.engines import Databases
from data_access.ledger_tables import request_cases
from data_access.requests.queries import OPEN_STATUSES, _requests_from
from data_access.requests.workflow import CaseState, RequestRefused, intake_row, read_state

# The requests that disclose or change a person's data: a duplicate of these is never
# answered on a bare e-mail. Withdrawing consent or objecting takes nothing from anyone.
IDENTITY_TYPES = frozenset({"access", "portability", "erasure", "rectification", "restriction"})


def originals_of(dbs: Databases, row: Mapping[str, Any]) -> list[int]:
    """Ids of the requests the intake `row` duplicates, received before it (the lower id on
    the same day first), oldest first. Empty for a request that is nobody's duplicate."""
    days = dbs.policy.duplicate_request_days
    received_on = oslo_date(row["received_at"])
    email = str(row["subject_email"] or "").strip().lower()
    nearby = _requests_from(
        dbs,
        [email],
        day_start_utc(received_on - timedelta(days=days)),
        day_end_utc(received_on + timedelta(days=days)),
    )
    earlier = [
        (when, rid)
        for rid, when in nearby.get((email, row["request_type"]), [])
        if (when, rid) < (received_on, int(row["id"]))
    ]
    return [rid for _, rid in sorted(earlier)]


def open_requests_among(dbs: Databases, request_ids: list[int]) -> list[int]:
    """Those of `request_ids` that are still open (a request without a case is 'received')."""
    if not request_ids:
        return []
    with dbs.ledger.connect() as conn:
        closed = {
            int(rid)
            for rid, status in conn.execute(
                select(request_cases.c.request_id, request_cases.c.status).where(
                    request_cases.c.request_id.in_(request_ids)
                )
            )
            if status not in OPEN_STATUSES
        }
    return [rid for rid in request_ids if rid not in closed]


def refuse_unchecked_duplicate(dbs: Databases, state: CaseState) -> None:
    """Raise RequestRefused when the request duplicates another and may not be answered on
    its own: its original is still open (answer that one, then withdraw this one as its
    duplicate), or its own identity was never confirmed (R5). Only for IDENTITY_TYPES."""
    if state.request_type not in IDENTITY_TYPES:
        return
    originals = originals_of(dbs, state.intake)
    if not originals:
        return
    still_open = open_requests_among(dbs, originals)
    if still_open:
        raise RequestRefused(
            f"This request duplicates request {still_open[0]} of the same data subject, which "
            "is still open: answer that one, and withdraw this one as its duplicate."
        )
    if state.get("identity_confirmed_on") is None:
        raise RequestRefused(
            f"This request duplicates request {originals[0]}, and the data subject's identity "
            "has not been confirmed on it: confirm it, and how it was checked, before "
            "answering (R5)."
        )


def duplicate_blocker(dbs: Databases, request_id: int) -> str | None:
    """Why the request may not be answered on its own (`refuse_unchecked_duplicate`'s
    message), or None when it may; for the Request page to say so before any click."""
    row = intake_row(dbs, request_id)
    with dbs.ledger.connect() as conn:
        state = read_state(conn, row)
    try:
        refuse_unchecked_duplicate(dbs, state)
    except RequestRefused as exc:
        return str(exc)
    return None
