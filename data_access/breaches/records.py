"""Reading the breach register (GDPR art. 33(5); RULES.md R50-R53).

The register is small (a company logs tens of breaches a year), so lists are read whole up
to `policy.max_rows` and the clocks computed in Python on the instant the view measures at
(`clock.instant_of`: now for today's view, the end of the Oslo day for another day's).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from data_access.breaches import facts as f
from data_access.breaches.clock import hours_left, instant_of, oslo_text
from data_access.clock import day_start_utc, oslo_date
from data_access.engines import Databases
from data_access.ledger_tables import (
    breach_events,
    breach_links,
    breaches,
    processing_activities,
    recipients,
)

LIST_COLUMNS = [
    "breach_id",
    "title",
    "status",
    "risk",
    "aware_at",
    "due_at",
    "due_oslo",
    "hours_left",
    "overdue",
    "clock_running",
    "notify_decision",
    "notified_at",
    "notified_late",
    "subjects_decision",
    "subjects_count",
    "report_channel",
    "category",
    "created_at",
]
RADAR_COLUMNS = [
    "due_at",
    "due_on",
    "kind",
    "item",
    "breach_id",
    "hours_left",
    "overdue",
    "severity",
    "page",
]


def breach_list(
    dbs: Databases,
    as_of: date | None = None,
    *,
    status: str | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Every breach the company was aware of by the instant `as_of` measures at
    (`clock.instant_of`), newest awareness first (RULES.md R50, R51).

    Columns: breach_id, title, status ('open' | 'assessed' | 'notified' | 'not_notified' |
    'closed'), risk ('none' | 'risk' | 'high' | None), aware_at, due_at (UTC), due_oslo
    (text, Europe/Oslo with offset), hours_left (float, negative when overdue; None once the
    clock stopped), overdue (bool: the clock runs and due_at has passed), clock_running
    (bool: not closed, not notified and not decided against notifying), notify_decision,
    notified_at (UTC), notified_late (bool), subjects_decision, subjects_count,
    report_channel, category, created_at (UTC). `status` filters to one status. Capped at
    `limit` (default policy.max_rows): `.attrs["truncated"]`, `.attrs["total"]`.
    """
    at = instant_of(as_of, now)
    query = select(breaches).where(breaches.c.aware_at <= at)
    if status:
        query = query.where(breaches.c.status == status)
    limit = limit or dbs.policy.max_rows
    total_query = select(func.count()).select_from(query.subquery())
    query = query.order_by(breaches.c.aware_at.desc(), breaches.c.id.desc()).limit(limit)
    with dbs.ledger.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        total = conn.execute(total_query).scalar_one()
    frame = pd.DataFrame([_listed_row(r, at) for r in rows], columns=LIST_COLUMNS)
    frame.attrs.update(truncated=total > len(frame), total=total)
    return frame


def open_breaches(
    dbs: Databases, as_of: date | None = None, *, now: datetime | None = None
) -> pd.DataFrame:
    """Breaches not closed, soonest deadline first (RULES.md R50). Columns as
    `breach_list` (breach_id, title, aware_at, due_at (UTC), hours_left, overdue, status,
    notify_decision, ...)."""
    frame = breach_list(dbs, as_of, now=now)
    frame = frame[frame["status"] != "closed"].sort_values(["due_at", "breach_id"])
    return frame.reset_index(drop=True)


def radar_items(
    dbs: Databases, as_of: date | None = None, *, now: datetime | None = None
) -> pd.DataFrame:
    """Each breach whose 72-hour clock runs, for a deadline radar (RULES.md R50).

    Columns: due_at (UTC), due_on (Oslo date), kind ('breach_notification'), item (the
    title), breach_id, hours_left (float), overdue (bool), severity ('high' when overdue or
    under 24 hours left, else 'medium'), page ('breach', a pages/_ui.PAGE_FILES key)."""
    frame = open_breaches(dbs, as_of, now=now)
    frame = frame[frame["clock_running"].astype(bool)]
    rows = [
        {
            "due_at": r.due_at,
            "due_on": oslo_date(r.due_at),
            "kind": "breach_notification",
            "item": r.title,
            "breach_id": r.breach_id,
            "hours_left": r.hours_left,
            "overdue": r.overdue,
            "severity": "high" if r.overdue or r.hours_left < 24 else "medium",
            "page": "breach",
        }
        for r in frame.itertuples()
    ]
    return pd.DataFrame(rows, columns=RADAR_COLUMNS)


def breach_counts(dbs: Databases, as_of: date | None = None, *, now=None) -> dict[str, int]:
    """{'open': not closed, 'clock_running': awaiting notification, 'overdue': clock run out,
    'undecided': no notification decision yet} on `as_of`."""
    frame = open_breaches(dbs, as_of, now=now)
    return {
        "open": len(frame),
        "clock_running": int(frame["clock_running"].sum()),
        "overdue": int(frame["overdue"].sum()),
        "undecided": int(frame["notify_decision"].isna().sum()),
    }


def breach_detail(dbs: Databases, breach_id: int, as_of: date | None = None, *, now=None) -> dict:
    """One breach: every column of ledger.breaches, plus `due_oslo`, `hours_left`, `overdue`,
    `clock_running`, `notified_late`, list facts as lists (category, data_categories,
    subject_relations), `activities` and `recipients` (names of the linked register rows)
    and `processor` (its name). Raises KeyError for an unknown id."""
    at = instant_of(as_of, now)
    with dbs.ledger.connect() as conn:
        row = conn.execute(select(breaches).where(breaches.c.id == breach_id)).mappings().first()
        if row is None:
            raise KeyError(breach_id)
        links = conn.execute(
            select(breach_links.c.kind, breach_links.c.ref_id)
            .where(breach_links.c.breach_id == breach_id)
            .order_by(breach_links.c.id)
        ).all()
        names = _register_names(conn)
    detail = {**dict(row), **_clock(dict(row), at)}
    for name in ("category", "data_categories", "subject_relations"):
        detail[name] = f.listed(name, row[name])
    detail["activity_ids"] = [i for k, i in links if k == "activity"]
    detail["recipient_ids"] = [i for k, i in links if k == "recipient"]
    detail["activities"] = [names["activity"].get(i, f"#{i}") for i in detail["activity_ids"]]
    detail["recipients"] = [names["recipient"].get(i, f"#{i}") for i in detail["recipient_ids"]]
    detail["processor"] = (
        names["recipient"].get(row["processor_id"]) if row["processor_id"] else None
    )
    return detail


def breach_events_frame(dbs: Databases, breach_id: int) -> pd.DataFrame:
    """The breach's timeline and edit history, oldest first.

    Columns: id, occurred_at (UTC), occurred_oslo (text), actor, event ('logged' |
    'edited' | 'subjects_listed' | 'assessed' | 'notification_decided' | 'subjects_decided'
    | 'closed'), details (JSON: fields changed, decisions; never their free text)."""
    query = (
        select(
            breach_events.c.id,
            breach_events.c.occurred_at,
            breach_events.c.actor,
            breach_events.c.event,
            breach_events.c.details,
        )
        .where(breach_events.c.breach_id == breach_id)
        .order_by(breach_events.c.id)
    )
    with dbs.ledger.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    frame = pd.DataFrame(rows, columns=["id", "occurred_at", "actor", "event", "details"])
    frame.insert(2, "occurred_oslo", [oslo_text(t) for t in frame["occurred_at"]])
    return frame


def register_choices(dbs: Databases) -> dict[str, Any]:
    """What a breach may link to: {'activities': {id: name}, 'recipients': {id: name},
    'processors': {id: name} (role 'processor'), 'data_categories': sorted category names
    from the record of processing (its data_categories, split at commas)}."""
    with dbs.ledger.connect() as conn:
        names = _register_names(conn)
        processors = dict(
            conn.execute(
                select(recipients.c.id, recipients.c.name)
                .where(recipients.c.role == "processor")
                .order_by(recipients.c.name, recipients.c.id)
            ).all()
        )
        categories = [
            c for (c,) in conn.execute(select(processing_activities.c.data_categories)) if c
        ]
    split = {part.strip() for text in categories for part in text.split(",") if part.strip()}
    return {
        "activities": names["activity"],
        "recipients": names["recipient"],
        "processors": processors,
        "data_categories": sorted(split, key=str.lower),
    }


def last_logged_at(dbs: Databases, before: datetime | None = None) -> datetime | None:
    """When the latest breach was logged (UTC, `created_at`), at or before `before`."""
    query = select(func.max(breaches.c.created_at))
    if before is not None:
        query = query.where(breaches.c.created_at <= before)
    with dbs.ledger.connect() as conn:
        return conn.execute(query).scalar_one()


def logged_since(dbs: Databases, since_day: date) -> int:
    """Breaches logged (`created_at`) from the start of the Oslo day `since_day` on."""
    query = select(func.count()).where(breaches.c.created_at >= day_start_utc(since_day))
    with dbs.ledger.connect() as conn:
        return conn.execute(query.select_from(breaches)).scalar_one()


def _register_names(conn) -> dict[str, dict[int, str]]:
    return {
        "activity": dict(
            conn.execute(
                select(processing_activities.c.id, processing_activities.c.name).order_by(
                    processing_activities.c.name, processing_activities.c.id
                )
            ).all()
        ),
        "recipient": dict(
            conn.execute(
                select(recipients.c.id, recipients.c.name).order_by(
                    recipients.c.name, recipients.c.id
                )
            ).all()
        ),
    }


def _clock(row: dict[str, Any], at: datetime) -> dict[str, Any]:
    running = (
        row["status"] != "closed"
        and row["notified_at"] is None
        and (row["notify_decision"] is not False)
    )
    left = hours_left(row["due_at"], at)
    late = row["notified_at"] is not None and row["notified_at"] > row["due_at"]
    return {
        "due_oslo": oslo_text(row["due_at"]),
        "hours_left": left if running else None,
        "overdue": bool(running and left < 0),
        "clock_running": bool(running),
        "notified_late": bool(late),
    }


def _listed_row(row: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "breach_id": row["id"],
        "title": row["title"],
        "status": row["status"],
        "risk": row["risk"],
        "aware_at": row["aware_at"],
        "due_at": row["due_at"],
        **_clock(row, at),
        "notify_decision": row["notify_decision"],
        "notified_at": row["notified_at"],
        "subjects_decision": row["subjects_decision"],
        "subjects_count": row["subjects_count"],
        "report_channel": row["report_channel"],
        "category": row["category"],
        "created_at": row["created_at"],
    }
