"""The hash-chained audit log (DESIGN.md "Pseudonyms and the hash chain"; RULES.md R18).

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON
(sorted keys, ISO dates). Entries name people only by `keyed_hash(email)` =
HMAC-SHA256(key, lower(trim(email))), never by e-mail or name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, false, func, insert, select, update

from data_access.clock import utc_now
from data_access.emails import has_control_characters
from data_access.engines import Databases
from data_access.frames import read_frame
from data_access.ledger_tables import audit_head, audit_log

GENESIS = "0" * 64


def keyed_hash(dbs: Databases, email: str) -> str:
    """HMAC-SHA256 of the normalised e-mail under the pseudonym key, as 64 hex characters."""
    normalised = (email or "").strip().lower().encode("utf-8")
    return hmac.new(dbs.pseudonym_key, normalised, hashlib.sha256).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces and ISO dates: the form that is hashed."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), default=_iso, ensure_ascii=False
    )


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _entry_hash(prev_hash: str, row: dict[str, Any]) -> str:
    body = {
        "occurred_at": row["occurred_at"],
        "actor": row["actor"],
        "action": row["action"],
        "rule": row["rule"],
        "store": row["store"],
        "subject_ref": row["subject_ref"],
        "target": row["target"],
        "counts": row["counts"],
        "details": row["details"],
    }
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def lock_ledger(conn: Connection) -> None:
    """Take the ledger's write lock (the audit chain head's row) at the start of a
    transaction, so a check-then-write in it cannot interleave with another action's.

    On SQLite this turns the transaction into a writer before it reads, which also avoids
    a deadlocked lock upgrade between two readers."""
    conn.execute(
        update(audit_head).where(audit_head.c.id == 1).values(entries=audit_head.c.entries)
    )


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    rule: str | None = None,
    store: str | None = None,
    subject_ref: str | None = None,
    target: str | None = None,
    counts: dict[str, int] | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Append one entry inside the caller's ledger transaction; returns its id.

    The caller owns the transaction (`with dbs.ledger.begin() as conn:`), so the entry
    commits or rolls back with the change it records. `details` must hold no personal data.
    """
    # Lock the chain head first: the row lock orders concurrent appends on every backend.
    locked = conn.execute(
        update(audit_head).where(audit_head.c.id == 1).values(entries=audit_head.c.entries + 1)
    )
    if locked.rowcount == 0:
        conn.execute(insert(audit_head).values(id=1, hash=GENESIS, entries=1))
    prev_hash = conn.execute(select(audit_head.c.hash).where(audit_head.c.id == 1)).scalar_one()
    row = {
        "occurred_at": (now or utc_now()).replace(microsecond=0),
        "actor": actor,
        "action": action,
        "rule": rule,
        "store": store,
        "subject_ref": subject_ref,
        "target": target,
        "counts": canonical_json(counts) if counts is not None else None,
        "details": canonical_json(details) if details is not None else None,
    }
    digest = _entry_hash(prev_hash, row)
    entry_id = conn.execute(
        insert(audit_log).values(**row, prev_hash=prev_hash, hash=digest)
    ).inserted_primary_key[0]
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=digest))
    return entry_id


def append_many(
    conn: Connection, entries: Iterable[Mapping[str, Any]], *, chunk: int = 5000
) -> int:
    """Append many entries, in order, inside the caller's ledger transaction; returns how many.

    Each mapping holds `append`'s keyword arguments (actor, action, rule, store, subject_ref,
    target, counts, details, now). The chain is exactly the one `append` would build entry by
    entry, but with one head lock and inserts batched by `chunk`: for bulk histories such as
    the demo data (RULES.md R18). `details` must hold no personal data.
    """
    # Lock the head for the whole batch (the value changes, so every backend counts the row).
    locked = conn.execute(
        update(audit_head).where(audit_head.c.id == 1).values(entries=audit_head.c.entries + 1)
    )
    if locked.rowcount == 0:
        conn.execute(insert(audit_head).values(id=1, hash=GENESIS, entries=1))
    prev_hash, entries_before = conn.execute(
        select(audit_head.c.hash, audit_head.c.entries).where(audit_head.c.id == 1)
    ).one()
    written, batch = 0, []
    for entry in entries:
        counts, details = entry.get("counts"), entry.get("details")
        row = {
            "occurred_at": (entry.get("now") or utc_now()).replace(microsecond=0),
            "actor": entry["actor"],
            "action": entry["action"],
            "rule": entry.get("rule"),
            "store": entry.get("store"),
            "subject_ref": entry.get("subject_ref"),
            "target": entry.get("target"),
            "counts": canonical_json(counts) if counts is not None else None,
            "details": canonical_json(details) if details is not None else None,
        }
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = _entry_hash(prev_hash, row)
        batch.append(row)
        if len(batch) >= chunk:
            conn.execute(insert(audit_log), batch)
            written, batch = written + len(batch), []
    if batch:
        conn.execute(insert(audit_log), batch)
        written += len(batch)
    conn.execute(
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(hash=prev_hash, entries=entries_before - 1 + written)
    )
    return written


def verify_chain(dbs: Databases) -> tuple[bool, int | None]:
    """(True, None) when every entry's hash matches its content and predecessor, else
    (False, id of the first broken entry). Streams the log in id order (RULES.md R18)."""
    prev = GENESIS
    with dbs.ledger.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(
            select(audit_log).order_by(audit_log.c.id)
        )
        # Closing the streamed result (also on an early return) drains the server cursor, so
        # the connection goes back to the pool clean (MariaDB warns about unread rows).
        with result:
            for row in result.mappings():
                entry = dict(row)
                if entry["prev_hash"] != prev or _entry_hash(prev, entry) != entry["hash"]:
                    return False, entry["id"]
                prev = entry["hash"]
        head = conn.execute(select(audit_head.c.hash).where(audit_head.c.id == 1)).scalar()
    # A deleted tail shows as a head that no longer matches the last entry.
    if head is not None and head != prev:
        last = _last_id(dbs)
        return False, last
    return True, None


def _last_id(dbs: Databases) -> int | None:
    with dbs.ledger.connect() as conn:
        return conn.execute(select(func.max(audit_log.c.id))).scalar()


def record_export(
    dbs: Databases, *, actor: str, what: str, filters: dict[str, Any], rows: int
) -> None:
    """Audit one download of personal data: who, which table, with which filters, how many rows
    (RULES.md R40). `filters` are the page's filter values (no data values)."""
    with dbs.ledger.begin() as conn:
        append(
            conn,
            actor=actor,
            action="export",
            rule="R40",
            target=what,
            counts={"rows": int(rows)},
            details={"filters": filters},
        )


def audit_entries(
    dbs: Databases, *, limit: int | None = None, action: str | None = None
) -> pd.DataFrame:
    """The newest audit entries first.

    Columns: id, occurred_at (UTC), actor, action, rule, store, subject_ref, target, counts,
    details. Capped at `limit` (default policy.max_rows). An `action` filter with control
    characters matches nothing (no action has them; PostgreSQL refuses NUL in a query).
    """
    query = select(
        audit_log.c.id,
        audit_log.c.occurred_at,
        audit_log.c.actor,
        audit_log.c.action,
        audit_log.c.rule,
        audit_log.c.store,
        audit_log.c.subject_ref,
        audit_log.c.target,
        audit_log.c.counts,
        audit_log.c.details,
    ).order_by(audit_log.c.id.desc())
    if action:
        matchable = not has_control_characters(action)
        query = query.where(audit_log.c.action == action if matchable else false())
    query = query.limit(limit or dbs.policy.max_rows)
    return read_frame(dbs.ledger, query)
