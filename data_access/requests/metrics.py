"""How well data-subject requests are answered: on-time rate and days to close per month,
and the open requests by type (GDPR art. 12(3); RULES.md R2-R8).

A request counts as answered when it was completed or refused (a withdrawn request needed
no answer). It was on time when closed on or before its deadline: the deadline with its
extension and identity pause for a completion (R3-R5), the base deadline for a refusal,
which is due within the first month even when extended (R6).
"""

from __future__ import annotations

import statistics
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import select

from data_access.clock import oslo_date, today_oslo
from data_access.engines import Databases
from data_access.ledger_tables import request_cases
from data_access.requests.queries import (
    OPEN_STATUSES,
    _chunks,
    _open_index,
    base_due_date,
    deadline,
)
from data_access.tables import REQUEST_TYPES
from data_access.tables import data_subject_requests as intake

CLOSURE_COLUMNS = [
    "month",
    "answered",
    "on_time",
    "late",
    "on_time_rate",
    "median_days_to_close",
]
OPEN_BY_TYPE_COLUMNS = ["request_type", "status", "requests", "overdue"]
ANSWERED = ("completed", "refused")
_STREAM = 10_000


def closure_metrics(dbs: Databases, start: date, end: date) -> pd.DataFrame:
    """Requests answered per month between two Oslo dates, and how fast (R2-R6).

    Columns: month (first day, date), answered (completed or refused with `closed_on` in
    the month and in [start, end]), on_time, late (counts), on_time_rate (on_time /
    answered as a float 0..1; NaN for a month without answers), median_days_to_close
    (calendar days from received_on to closed_on; NaN without answers). One row per month,
    oldest first. `.attrs` holds the whole period's "answered", "on_time_rate" and
    "median_days_to_close". Raises ValueError when start > end.
    """
    if start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")
    closed = _answered(dbs, start, end)
    received = _received_on(dbs, [c["request_id"] for c in closed])
    rows: dict[date, list[tuple[bool, int]]] = {m: [] for m in _months(start, end)}
    for case in closed:
        received_on = received.get(case["request_id"])
        if received_on is None:
            continue  # intake row gone: nothing to measure against
        closed_on = case["closed_on"]
        if case["status"] == "refused":
            due_on = base_due_date(received_on, case, closed_on, dbs.policy)
        else:
            due_on = deadline(received_on, case, closed_on, dbs.policy)[0]
        month = closed_on.replace(day=1)
        rows[month].append((closed_on <= due_on, (closed_on - received_on).days))
    frame = pd.DataFrame(
        [_month_row(month, values) for month, values in rows.items()], columns=CLOSURE_COLUMNS
    )
    everything = [v for values in rows.values() for v in values]
    total = _month_row(start, everything)
    frame.attrs = {
        "answered": total["answered"],
        "on_time_rate": total["on_time_rate"],
        "median_days_to_close": total["median_days_to_close"],
    }
    return frame.astype({"on_time_rate": float, "median_days_to_close": float})


def open_by_type(dbs: Databases, as_of: date | None = None) -> pd.DataFrame:
    """Open requests per type and status on the Oslo date `as_of` (R5, R8).

    Columns: request_type, status ('received' | 'awaiting_identity' | 'in_progress' |
    'extended'), requests, overdue (counts). Only combinations with open requests, in the
    order of `tables.REQUEST_TYPES` and the statuses' order.
    """
    as_of = as_of or today_oslo()
    index = _open_index(dbs, as_of, None)
    if index.empty:
        return pd.DataFrame(columns=OPEN_BY_TYPE_COLUMNS).astype(
            {"requests": "int64", "overdue": "int64"}
        )
    grouped = (
        index.groupby(["request_type", "status"], sort=False)
        .agg(requests=("request_id", "size"), overdue=("overdue", "sum"))
        .reset_index()
    )
    type_rank = {t: n for n, t in enumerate(REQUEST_TYPES)}
    status_rank = {s: n for n, s in enumerate(OPEN_STATUSES)}
    grouped["_order"] = [
        (type_rank.get(t, len(type_rank)), t, status_rank.get(s, len(status_rank)))
        for t, s in zip(grouped["request_type"], grouped["status"], strict=True)
    ]
    grouped = grouped.sort_values("_order", kind="stable").drop(columns="_order")
    return grouped.astype({"requests": "int64", "overdue": "int64"}).reset_index(drop=True)[
        OPEN_BY_TYPE_COLUMNS
    ]


def _month_row(month: date, values: list[tuple[bool, int]]) -> dict[str, Any]:
    answered = len(values)
    on_time = sum(1 for in_time, _days in values if in_time)
    return {
        "month": month,
        "answered": answered,
        "on_time": on_time,
        "late": answered - on_time,
        "on_time_rate": on_time / answered if answered else float("nan"),
        "median_days_to_close": (
            float(statistics.median(d for _t, d in values)) if answered else float("nan")
        ),
    }


def _months(start: date, end: date) -> list[date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def _answered(dbs: Databases, start: date, end: date) -> list[dict[str, Any]]:
    """Completed and refused cases closed in [start, end], streamed in request_id order."""
    query = (
        select(request_cases)
        .where(
            request_cases.c.status.in_(ANSWERED),
            request_cases.c.closed_on >= start,
            request_cases.c.closed_on <= end,
        )
        .order_by(request_cases.c.request_id)
    )
    with dbs.ledger.connect() as conn:
        result = conn.execution_options(yield_per=_STREAM).execute(query)
        return [dict(row) for row in result.mappings()]


def _received_on(dbs: Databases, request_ids: list[int]) -> dict[int, date]:
    """Oslo receipt dates (R1) of the given requests, fetched by id in chunks."""
    found: dict[int, date] = {}
    with dbs.support.connect() as conn:
        for chunk in _chunks(sorted(set(request_ids))):
            query = (
                select(intake.c.id, intake.c.received_at)
                .where(intake.c.id.in_(chunk))
                .order_by(intake.c.id)
            )
            for rid, received_at in conn.execute(query):
                found[int(rid)] = oslo_date(received_at)
    return found
