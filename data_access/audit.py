"""The hash-chained audit log (DESIGN.md "Pseudonyms and the hash chain"; RULES.md R18).

Each entry's hash is HMAC-SHA256 under the audit key over the previous entry's hash and the
entry's canonical JSON (sorted keys, ISO dates); see `audit_chain`. The key is not in the
ledger (`DPO_AUDIT_KEY`, else derived from the pseudonym key). The chain is anchored outside
the ledger: `write_anchor` appends the entry count and head hash to the anchor file, and
`verify_chain` compares the log with its head row and every anchor (`audit_check`). Entries
name people only by `keyed_hash(email)` = HMAC-SHA256(key, lower(trim(email))), never by
e-mail or name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, false, func, insert, or_, select, update

from data_access import audit_check, stores
from data_access.audit_anchors import Anchor, append_anchor, read_anchors
from data_access.audit_chain import (  # noqa: F401 - GENESIS, HASHED_COLUMNS: re-exported
    GENESIS,
    HASHED_COLUMNS,
    KEY_OPTION,
    canonical_json,
    entry_hash,
)
from data_access.audit_check import ChainReport
from data_access.clock import day_end_utc, day_start_utc, utc_now
from data_access.emails import has_control_characters
from data_access.engines import Databases
from data_access.frames import read_frame
from data_access.identifiers import text_condition
from data_access.ledger_tables import audit_head, audit_log
from data_access.stores import writes

log = logging.getLogger(__name__)


def keyed_hash(dbs: Databases, email: str) -> str:
    """HMAC-SHA256 of the normalised e-mail under the pseudonym key, as 64 hex characters."""
    normalised = (email or "").strip().lower().encode("utf-8")
    return hmac.new(dbs.pseudonym_key, normalised, hashlib.sha256).hexdigest()


def _chain_key(conn: Connection) -> bytes:
    """The audit key the ledger engine carries (engines.Databases sets it on `dbs.ledger`).
    Raises RuntimeError for a connection of another engine: an unkeyed entry would break the
    chain."""
    key = conn.get_execution_options().get(KEY_OPTION)
    if not key:
        raise RuntimeError("audit entries are written only through Databases.ledger")
    return key


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
    key = _chain_key(conn)
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
    digest = entry_hash(key, prev_hash, row)
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
    key = _chain_key(conn)
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
        row["hash"] = prev_hash = entry_hash(key, prev_hash, row)
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


def verify_chain(dbs: Databases, *, anchors_file: Path | None = None) -> ChainReport:
    """Check the chain (RULES.md R18): every entry against its content and predecessor under
    the audit key, the head row against the log, and every anchor in `anchors_file`
    (default `dbs.anchors_file`) against the log. Streams the log in id order.

    Returns a ChainReport, which is the tuple (True, None) when nothing is wrong, else
    (False, id of the first broken entry, or of the last remaining one when entries are
    missing after it), with each finding in words in `.problems`, e.g. "Entries 951–1000
    are missing since the anchor of 2026-12-01 06:00 UTC …". A missing or garbled anchor
    file is reported, never raised."""
    with dbs.ledger.connect() as conn:
        return audit_check.check(conn, dbs.chain_key, anchors_file or dbs.anchors_file)


def current_head(dbs: Databases, *, now: datetime | None = None) -> Anchor:
    """The chain as it stands: entry count, last hash and id, read under the ledger lock so
    no append interleaves; `at` is `now` (default: the clock, UTC). Receipts and exports
    print its `head_label`."""
    with dbs.ledger.begin() as conn:
        lock_ledger(conn)
        entries = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        last = conn.execute(
            select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
        ).first()
    return Anchor(
        at=(now or utc_now()).replace(microsecond=0),
        entries=entries,
        head=last.hash if last else GENESIS,
        last_id=last.id if last else None,
    )


@writes(*stores.AUDIT)
def write_anchor(
    dbs: Databases, path: Path | None = None, *, now: datetime | None = None
) -> Anchor | None:
    """Append the current head to the anchor file `path` (default `dbs.anchors_file`) and
    return it; None when no anchor file is configured. The file is only ever appended to
    (audit_anchors.append_anchor). Raises OSError when it cannot be written."""
    path = path or dbs.anchors_file
    if path is None:
        return None
    anchor = current_head(dbs, now=now)
    append_anchor(Path(path), anchor, dbs.chain_key)
    return anchor


def latest_anchor(dbs: Databases, path: Path | None = None) -> Anchor | None:
    """The last valid anchor in `path` (default `dbs.anchors_file`), or None when there is
    no file, no anchor, or none configured. Lines that are not anchors are skipped here;
    `verify_chain` reports them."""
    path = path or dbs.anchors_file
    return read_anchors(Path(path), dbs.chain_key).latest if path else None


@writes(*stores.AUDIT)
def record_export(
    dbs: Databases, *, actor: str, what: str, filters: dict[str, Any], rows: int
) -> Anchor:
    """Audit one download of personal data: who, which table, with which filters, how many rows
    (RULES.md R40). `filters` are the page's filter values (no data values). Then anchors the
    chain (a failure to write the anchor file is logged, not raised: the export stands).
    Returns the head after the entry, for the export's footer."""
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
    return anchor_now(dbs)


def anchor_now(dbs: Databases) -> Anchor:
    """Write an anchor if a file is configured and return the current head. An anchor file
    that cannot be written is logged (the caller's action already committed)."""
    try:
        anchor = write_anchor(dbs)
    except OSError as exc:
        log.error("audit anchor not written to %s: %s", dbs.anchors_file, exc)
        anchor = None
    return anchor or current_head(dbs)


def audit_entries(
    dbs: Databases,
    *,
    limit: int | None = None,
    action: str | None = None,
    text: str | None = None,
    since: date | None = None,
    until: date | None = None,
    actor: str | None = None,
    subject_email: str | None = None,
) -> pd.DataFrame:
    """The newest audit entries first, filtered in SQL before the row cap.

    Columns: id, occurred_at (UTC), actor, action, rule, store, subject_ref, target, counts,
    details. Capped at `limit` (default policy.max_rows). Filters, all optional and combined:
    `action` the exact action code; `text` words anywhere in action, target, details or actor,
    ignoring case ("hold" finds legal_hold.placed; a space matches "_" or "."); `since` /
    `until` Europe/Oslo dates, both inclusive; `actor` part of the actor's e-mail, ignoring
    case; `subject_email` the data subject's e-mail, matched through its keyed hash (the
    e-mail itself is never stored, RULES.md R18). A filter with control characters matches
    nothing (no entry has them; PostgreSQL refuses NUL in a query).
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
    for condition in _entry_conditions(
        dbs,
        action=action,
        text=text,
        since=since,
        until=until,
        actor=actor,
        subject_email=subject_email,
    ):
        query = query.where(condition)
    query = query.limit(limit or dbs.policy.max_rows)
    return read_frame(dbs.ledger, query)


def _entry_conditions(
    dbs: Databases,
    *,
    action: str | None,
    text: str | None,
    since: date | None,
    until: date | None,
    actor: str | None,
    subject_email: str | None,
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `audit_entries`' filters (see there)."""
    words = [value for value in (action, text, actor, subject_email) if value]
    if any(has_control_characters(value) for value in words):
        return [false()]
    dialect = dbs.ledger.dialect.name
    conditions: list[ColumnElement[bool]] = []
    if action:
        conditions.append(audit_log.c.action == action)
    if text and text.strip():
        needle = text.strip().lower()
        searched = (audit_log.c.action, audit_log.c.target, audit_log.c.details, audit_log.c.actor)
        conditions.append(or_(*(text_condition(c, needle, dialect) for c in searched)))
    if since:
        conditions.append(audit_log.c.occurred_at >= day_start_utc(since))
    if until:
        conditions.append(audit_log.c.occurred_at < day_end_utc(until))
    if actor and actor.strip():
        conditions.append(text_condition(audit_log.c.actor, actor.strip().lower(), dialect))
    if subject_email and subject_email.strip():
        conditions.append(audit_log.c.subject_ref == keyed_hash(dbs, subject_email))
    return conditions
