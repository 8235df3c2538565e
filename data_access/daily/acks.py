"""Radar items as the daily run reported them: first reported (and first red), their last
severity, a DPO's acknowledgement, and escalation to `roles.deputy`.

An item still red and unacknowledged `ESCALATE_AFTER` after the daily run first reported it
red is escalated: the digest goes to the deputy too, each day until it is acknowledged or no
longer red. Times are naive UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, insert, select, update

from data_access import audit, stores
from data_access.clock import utc_now
from data_access.engines import Databases
from data_access.frames import read_frame
from data_access.ledger_tables import radar_items
from data_access.results import ActionResult

ESCALATE_AFTER = timedelta(hours=24)
KEY_MAX = 200


def record_reported(conn: Connection, frame: pd.DataFrame, now: datetime) -> dict[str, int]:
    """Note every item of a radar `frame` as reported at `now`, inside the caller's ledger
    transaction: new keys are inserted, known ones get their last report and severity (and
    the first time they were red). Returns {'new': n, 'known': n}."""
    keys = list(frame["key"])
    known = _rows(conn, keys)
    counts = {"new": 0, "known": 0}
    for row in frame.itertuples():
        red_at = now if row.severity == "red" else None
        if row.key not in known:
            conn.execute(
                insert(radar_items).values(
                    key=row.key,
                    kind=row.kind,
                    first_reported_at=now,
                    first_red_at=red_at,
                    last_reported_at=now,
                    severity=row.severity,
                )
            )
            counts["new"] += 1
            continue
        values = {"last_reported_at": now, "severity": row.severity}
        if red_at and known[row.key]["first_red_at"] is None:
            values["first_red_at"] = red_at
        conn.execute(update(radar_items).where(radar_items.c.key == row.key).values(**values))
        counts["known"] += 1
    return counts


def due_for_escalation(dbs: Databases, frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The rows of a radar `frame` to escalate at `now`: red, unacknowledged, and first
    reported red at least ESCALATE_AFTER (24 hours) before `now`."""
    red = frame[(frame["severity"] == "red") & ~frame["acknowledged"]]
    with dbs.ledger.connect() as conn:
        known = _rows(conn, list(red["key"]))
    old = {
        key
        for key, row in known.items()
        if row["first_red_at"] is not None and row["first_red_at"] <= now - ESCALATE_AFTER
    }
    return red[red["key"].isin(old)]


def record_escalated(conn: Connection, keys: list[str], now: datetime) -> None:
    """Note the first escalation of `keys` at `now` (inside the caller's transaction)."""
    for key in keys:
        conn.execute(
            update(radar_items)
            .where(radar_items.c.key == key, radar_items.c.escalated_at.is_(None))
            .values(escalated_at=now)
        )


@stores.writes(*stores.RADAR, *stores.AUDIT)
def acknowledge(
    dbs: Databases,
    keys: list[str] | str,
    *,
    actor: str,
    kinds: dict[str, str] | None = None,
    now: datetime | None = None,
) -> ActionResult:
    """A DPO acknowledges radar items by key: each stops being escalated, and an
    automation alert (a failed daily-run step, an interrupted job) leaves the banner.

    One audit entry per item (action 'acknowledge_radar_item'). An item the daily run has
    not reported yet is recorded now (`kinds` gives its kind; default the key's prefix).
    Per key: failed when it is empty or too long, or already acknowledged (by whom, when).
    """
    now = (now or utc_now()).replace(microsecond=0)
    result = ActionResult()
    for key in [keys] if isinstance(keys, str) else list(keys):
        key = str(key or "").strip()
        if not key or len(key) > KEY_MAX:
            result.failed[key] = f"not a radar item key (1 to {KEY_MAX} characters)"
            continue
        with dbs.ledger.begin() as conn:
            audit.lock_ledger(conn)
            row = _rows(conn, [key]).get(key)
            if row is not None and row["acknowledged_at"] is not None:
                result.failed[key] = (
                    f"already acknowledged by {row['acknowledged_by']} on "
                    f"{row['acknowledged_at']:%Y-%m-%d %H:%M} UTC"
                )
                continue
            kind = (kinds or {}).get(key) or key.split(":")[0]
            if row is None:
                conn.execute(
                    insert(radar_items).values(
                        key=key,
                        kind=kind[:40],
                        first_reported_at=now,
                        last_reported_at=now,
                        severity="amber",
                    )
                )
            conn.execute(
                update(radar_items)
                .where(radar_items.c.key == key)
                .values(acknowledged_at=now, acknowledged_by=actor)
            )
            audit.append(
                conn,
                actor=actor,
                action="acknowledge_radar_item",
                store="ledger",
                target=f"radar:{key}"[:200],
                details={"kind": kind},
                now=now,
            )
        result.succeeded.append(key)
    return result


def radar_item_log(dbs: Databases, *, limit: int | None = None) -> pd.DataFrame:
    """Reported radar items, the latest report first. Columns: key, kind, severity,
    first_reported_at, first_red_at, last_reported_at, acknowledged_at, acknowledged_by,
    escalated_at (UTC times). Capped at `limit` (default policy.max_rows)."""
    query = (
        select(radar_items)
        .order_by(radar_items.c.last_reported_at.desc(), radar_items.c.key)
        .limit(limit or dbs.policy.max_rows)
    )
    return read_frame(dbs.ledger, query)


def _rows(conn: Connection, keys: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        query = select(radar_items).where(radar_items.c.key.in_(chunk))
        found.update({r["key"]: dict(r) for r in conn.execute(query).mappings()})
    return found
