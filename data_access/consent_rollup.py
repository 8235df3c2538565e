"""Consent roll-ups in the ledger: the R20/R21 figures for any day without scanning the
consent events (DESIGN.md "Consent watermark", "Scale and speed"; RULES.md R20, R21).

What the ledger keeps (tables in `ledger_tables`, migrations 0002 and 0003):
- per subject and purpose, its applied events (time, id, event-count bucket, action) under
  a keyed hash of its R20 key ('account:42', 'email:kari@example.no', 'visitor:v-1'), so
  the ledger holds no e-mail address. A refresh writes the histories it changes to a small
  "recent" table whose rows replace those of the large one; `merge_recent` moves them over
  once there are more than MERGE_ROWS;
- per purpose and Oslo day, the change in subjects / granted / withdrawn: the figures on
  a day are the sums of the changes up to it;
- event counts per purpose, Oslo day, action, source and notice version;
- a watermark (the highest event id applied) and the ids below it not seen yet.

`refresh` applies the events with ids above the watermark, plus the awaited ids below it:
PostgreSQL and MariaDB can commit ids out of order, so an id skipped by one refresh is read
again by the next ones until it arrives or is `TAIL_IDS` ids behind. An event older than the
subject's latest (it arrived late) is merged into the subject's history and the subject's
changes are recomputed from it. `forget_subject_keys` removes erased people (RULES.md R12,
R18) from every summary, `forget_events` single deleted events (an erasure that deletes
events carrying the person's e-mail on someone else's account). Code that deletes consent
events calls one of them after its delete; otherwise the summaries keep the deleted events
until a `rebuild`, which starts again from the events (`consent_rollup_build`). When the
newest events are deleted, the watermark comes down with them: SQLite gives their ids out
again.

Only one writer changes the roll-up at a time: every change first updates the state row,
which serialises refreshes, erasures and the end of a rebuild on every backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
    tuple_,
    update,
)

from data_access import audit, stores
from data_access import consent_rollup_arrays as arrays
from data_access.clock import utc_now
from data_access.consent_rollup_arrays import ACTION_CODES, subject_digest  # noqa: F401 - public
from data_access.engines import Databases
from data_access.ledger_tables import (
    consent_rollup_days as days_table,
)
from data_access.ledger_tables import (
    consent_rollup_events as buckets_table,
)
from data_access.ledger_tables import (
    consent_rollup_gaps as gaps_table,
)
from data_access.ledger_tables import (
    consent_rollup_recent as recent_table,
)
from data_access.ledger_tables import (
    consent_rollup_state as state_table,
)
from data_access.ledger_tables import (
    consent_rollup_subjects as subjects_table,
)
from data_access.results import ActionResult
from data_access.stores import writes
from data_access.tables import consent_events as events

Progress = Callable[[float, str], None]

# Ids this far below the watermark are no longer awaited: a transaction that commits an id
# later than this many newer ids is not expected (rolled back, or deleted by an erasure).
TAIL_IDS = 100_000
# A build that started this long ago and never finished (the process died) may be replaced.
STALE_BUILD = timedelta(minutes=30)
# Recent histories (ledger_tables.consent_rollup_recent) are merged into the large history
# table, a slice at a time, while there are more than this many: a refresh's writes grow
# with the recent table (about 3 s at 100,000 rows, 4 s at 1,900,000 for a refresh of
# 100,000 events on ten million), a slice's merge with the large one.
MERGE_ROWS = 1_000_000
EMPTY, BUILDING, READY = "empty", "building", "ready"
# Not stored: what `refresh` reports for a roll-up built under another pseudonym key.
KEY_CHANGED = "key_changed"
REKEY_COMMAND = "python -m data_access.consent_rollup_rekey --actor <your e-mail>"
_IN_CHUNK = 500
_READ_CHUNK = 20_000
_HISTORY_FIELDS = ("group", "t", "id", "bucket", "state", "purpose")


class RollupBusy(RuntimeError):
    """Another build of the roll-up is running (or was interrupted less than
    STALE_BUILD ago)."""


class BuildCancelled(RollupBusy):
    """The roll-up was emptied while a build ran (an erasure cancels a build, whose result
    could still hold the erased person); the next refresh builds it again."""


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: `ready` when the roll-up now answers for every event seen."""

    ready: bool
    status: str
    watermark: int
    applied: int = 0  # events applied by this call
    recomputed: int = 0  # subject-purposes that received an event older than their latest
    rebuilt: bool = False
    merged: int = 0  # recent histories moved into the large table (see `merge_recent`)


# --- subject keys (R20) -------------------------------------------------------------------


def subject_key(account_id: Any = None, email: Any = None, visitor_id: Any = None) -> str | None:
    """The R20 subject of an event: 'account:<id>', else 'email:<lower(email)>', else
    'visitor:<visitor_id>'; None when the event names none of them."""
    if account_id is not None and account_id == account_id:  # NaN is not equal to itself
        return f"account:{int(account_id)}"
    if email is not None:
        return f"email:{str(email).lower()}"
    if visitor_id is not None:
        return f"visitor:{visitor_id}"
    return None


def subject_ref(dbs: Databases, key: str) -> str:
    """Keyed hash of an R20 key (32 hex characters): how the ledger names a subject."""
    return subject_digest(ref_key(dbs), key).hex()


def ref_key(dbs: Databases) -> bytes:
    """The BLAKE2b key of subject refs, derived from the pseudonym key (any length)."""
    return hashlib.sha256(b"consent roll-up subjects:" + dbs.pseudonym_key).digest()


def key_check(dbs: Databases) -> str:
    """Fingerprint of the pseudonym key: subject refs made with another key are unusable."""
    return hmac.digest(dbs.pseudonym_key, b"consent roll-up, keyed BLAKE2b refs", "sha256")[
        :8
    ].hex()


# --- histories as columns ------------------------------------------------------------------
# A subject-purpose's stored history is its applied events as '<UTC microseconds>:<event id>:
# <bucket id>:<g|w|x>' joined by ';' in (time, id) order. Sets of histories are handled as
# event columns (`consent_rollup_arrays`) plus "group" (the history's index among those
# handled) and "bucket", so the refresh and the erasures use the build's definitions.


def parse_histories(texts: Sequence[str | None], purposes: np.ndarray) -> dict[str, np.ndarray]:
    """The events of stored histories as columns group (index in `texts`; None: no
    history), t, id, bucket, state and purpose (`purposes[group]`), in stored order."""
    present = [(g, text) for g, text in enumerate(texts) if text]
    sizes = [text.count(";") + 1 for _g, text in present]
    if not present:
        return {name: np.zeros(0, np.int64) for name in _HISTORY_FIELDS}
    parts = ";".join(text for _g, text in present).split(";")
    t, ids, buckets, letters = zip(*(part.split(":") for part in parts), strict=True)
    group = np.repeat(np.array([g for g, _text in present], np.int64), sizes)
    return {
        "group": group,
        "t": np.array(t, dtype=np.int64),
        "id": np.array(ids, dtype=np.int64),
        "bucket": np.array(buckets, dtype=np.int64),
        "state": np.array([arrays.STATE_OF_LETTER[a] for a in letters], dtype=np.int64),
        "purpose": np.asarray(purposes, dtype=np.int64)[group],
    }


def history_texts(cols: dict[str, np.ndarray], groups: int) -> list[str | None]:
    """The stored history of each group 0..groups-1 (None for a group without events);
    `cols` sorted by group, time and id."""
    tokens = arrays.token_texts(cols["t"], cols["id"], cols["bucket"], cols["state"])
    starts = np.searchsorted(cols["group"], np.arange(groups), side="left").tolist()
    ends = np.searchsorted(cols["group"], np.arange(groups), side="right").tolist()
    texts = arrays.history_texts(tokens, starts, ends)
    return [text or None for text in texts]


def _subset(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[mask] for name, values in cols.items()}


def _deltas(
    parts: Sequence[tuple[int, dict[str, np.ndarray]]], purposes: Sequence[str]
) -> dict[tuple[str, date], list[int]]:
    """The sum over (sign, columns) parts of sign x the per-day changes their histories
    make (`consent_rollup_arrays.day_changes`), per (purpose, Oslo date):
    [subjects, granted, withdrawn]. Each part sorted by group, time and id."""
    frames = []
    for sign, cols in parts:
        frame = arrays.day_changes(
            cols["group"], arrays.oslo_days(cols["t"]), cols["state"], cols["purpose"]
        )
        frame[["subjects", "granted", "withdrawn"]] *= sign
        frames.append(frame)
    sums = pd.concat(frames).groupby(["purpose", "day"], sort=True).sum()
    return {
        (purposes[p], arrays.to_date(d)): [int(n) for n in counts]
        for (p, d), counts in zip(sums.index, sums.to_numpy().tolist(), strict=True)
        if any(counts)
    }


def _bucket_counts(buckets: np.ndarray, sign: int = 1) -> dict[int, int]:
    ids, counts = np.unique(buckets, return_counts=True)
    return {int(i): sign * int(n) for i, n in zip(ids, counts, strict=True)}


# --- state ------------------------------------------------------------------------------------


def status(dbs: Databases) -> dict[str, Any]:
    """The roll-up's state: status ('empty' | 'building' | 'ready'), watermark (highest
    consent event id applied), awaited (ids below it not seen yet), events_applied,
    built_at and refreshed_at (UTC), build_started_at (UTC, while building)."""
    with dbs.ledger.connect() as conn:
        row = _state_row(conn)
        awaited = conn.execute(select(func.count()).select_from(gaps_table)).scalar_one()
    return {
        "status": row["status"],
        "watermark": int(row["watermark"]),
        "awaited": int(awaited),
        "events_applied": int(row["events_applied"]),
        "built_at": row["built_at"],
        "refreshed_at": row["refreshed_at"],
        "build_started_at": row["build_started_at"],
        "key_changed": key_changed(dbs, row),
    }


def _state_row(conn: Connection, *, lock: bool = False) -> dict[str, Any]:
    """The state row (created when missing). With `lock`, update it first so the rest of
    the caller's transaction is the only roll-up writer."""
    if lock:
        conn.execute(
            update(state_table).where(state_table.c.id == 1).values(status=state_table.c.status)
        )
    row = conn.execute(select(state_table).where(state_table.c.id == 1)).mappings().first()
    if row is None:
        conn.execute(insert(state_table).values(id=1, status=EMPTY, watermark=0, events_applied=0))
        row = conn.execute(select(state_table).where(state_table.c.id == 1)).mappings().one()
    return dict(row)


def key_changed(dbs: Databases, row: dict[str, Any]) -> bool:
    """True when the roll-up was built under another pseudonym key than `dbs`'s: its
    subject refs no longer match, so new events cannot be applied until a rebuild
    (`consent_rollup_rekey`), which a page view never starts."""
    return row["status"] == READY and row["key_check"] not in (None, key_check(dbs))


def _usable(dbs: Databases, row: dict[str, Any]) -> bool:
    """Ready and made with the current pseudonym key."""
    return row["status"] == READY and row["key_check"] == key_check(dbs)


def _stale(row: dict[str, Any], now: datetime) -> bool:
    started = row["build_started_at"]
    return started is None or now - started > STALE_BUILD


# --- refresh ----------------------------------------------------------------------------------


@writes(*stores.CONSENT_ROLLUP)
def refresh(
    dbs: Databases, *, progress: Progress | None = None, now: datetime | None = None
) -> Refreshed:
    """Bring the roll-up up to date with the consent events; cheap when nothing is new.

    An empty roll-up (or one left half-built by a process that died more than STALE_BUILD
    ago) is built from all events first, reporting `progress(fraction 0..1, message)`.
    While another process builds it, nothing is done and `ready` is False (callers answer
    from the events directly meanwhile). A roll-up built under another pseudonym key
    (`key_changed`) is not rebuilt here, since that takes minutes on large data: `ready`
    is False with status KEY_CHANGED until the explicit `consent_rollup_rekey` (or the
    Consent page's "Rebuild") runs. Raises DatabaseUnavailable or SQLAlchemy errors.
    """
    now = now or utc_now()
    with dbs.ledger.connect() as conn:
        row = _state_row(conn)
        conn.commit()
    if not _usable(dbs, row):
        if key_changed(dbs, row):
            return Refreshed(False, KEY_CHANGED, int(row["watermark"]))
        if row["status"] == BUILDING and not _stale(row, now):
            return Refreshed(False, BUILDING, int(row["watermark"]))
        try:
            built = _build(dbs, progress=progress, now=now)
        except RollupBusy:
            return Refreshed(False, BUILDING, int(row["watermark"]))
        return Refreshed(True, READY, built["watermark"], applied=built["events"], rebuilt=True)
    watermark = int(row["watermark"])
    with dbs.ledger.connect() as conn:
        awaited = _awaited(conn)
    if not _anything_new(dbs, watermark, awaited):
        return Refreshed(True, READY, watermark)
    refreshed = _apply_new_events(dbs, now)
    return dataclasses.replace(refreshed, merged=merge_recent(dbs, progress=progress))


def _awaited(conn: Connection) -> list[int]:
    query = select(gaps_table.c.event_id).order_by(gaps_table.c.event_id)
    return [int(i) for i in conn.execute(query).scalars()]


def _newest_id(dbs: Databases) -> int:
    with dbs.consent.connect() as conn:
        return int(conn.execute(select(func.max(events.c.id))).scalar() or 0)


def _anything_new(dbs: Databases, watermark: int, awaited: list[int]) -> bool:
    """An event above the watermark, or one of the awaited ids, is in the consent database;
    or the newest events were deleted (the watermark must come down, see `_lowered`)."""
    if _newest_id(dbs) != watermark:
        return True
    with dbs.consent.connect() as conn:
        for chunk in _chunks(awaited):
            if conn.execute(select(events.c.id).where(events.c.id.in_(chunk)).limit(1)).first():
                return True
    return False


def _new_events(dbs: Databases, watermark: int, awaited: list[int]) -> list[Row]:
    """The consent events above the watermark and the awaited ones that arrived, by id."""
    columns = [events.c[name] for name in arrays.EVENT_COLUMNS]
    rows: list[Row] = []
    with dbs.consent.connect() as conn:
        for chunk in _chunks(awaited):
            query = select(*columns).where(events.c.id.in_(chunk)).order_by(events.c.id)
            rows += conn.execute(query).all()
        query = select(*columns).where(events.c.id > watermark).order_by(events.c.id)
        result = conn.execution_options(yield_per=_READ_CHUNK).execute(query)
        with result:
            rows += result.all()
    return rows


def _apply_new_events(dbs: Databases, now: datetime) -> Refreshed:
    """Apply what is new in one ledger transaction that holds the roll-up's lock."""
    with dbs.ledger.begin() as conn:
        row = _state_row(conn, lock=True)
        if not _usable(dbs, row):  # rebuilt or emptied meanwhile: the next call handles it
            return Refreshed(False, row["status"], int(row["watermark"]))
        stored = _awaited(conn)
        watermark, awaited = _lowered(dbs, int(row["watermark"]), stored)
        rows = _new_events(dbs, watermark, awaited)
        recomputed = _apply(conn, dbs, rows)
        seen = {int(r.id) for r in rows}
        top = max([watermark, *seen])
        _update_awaited(conn, stored, awaited_ids(seen, awaited, watermark, top))
        conn.execute(
            update(state_table)
            .where(state_table.c.id == 1)
            .values(
                watermark=top,
                refreshed_at=now,
                events_applied=state_table.c.events_applied + len(rows),
            )
        )
    return Refreshed(True, READY, top, applied=len(rows), recomputed=recomputed)


def merge_recent(
    dbs: Databases,
    *,
    progress: Progress | None = None,
    at_least: int | None = None,
    whole: bool = False,
) -> int:
    """Move recent subject histories into the large history table once there are more than
    `at_least` of them (default MERGE_ROWS; 0: any), in one ledger transaction that holds
    the roll-up's lock; the figures do not change. Moves one slice of subject refs (those
    starting with the hex digit that has the most recent rows), or all with `whole`.
    Returns the rows moved (0 when below the threshold, or while the roll-up is not ready:
    a build replaces both tables).

    A slice at a time, because the large table is written where the slice's refs lie: a
    sixteenth of its pages, where merging everything rewrites nearly all of them (about
    11 s for ten million events on SQLite, too long for one refresh)."""
    threshold = MERGE_ROWS if at_least is None else at_least
    r = recent_table
    with dbs.ledger.begin() as conn:
        if _state_row(conn, lock=True)["status"] != READY:
            return 0
        rows = conn.execute(select(func.count()).select_from(r)).scalar_one()
        if rows == 0 or rows <= threshold:
            return 0
        low, high = ("0", "g") if whole else _fullest_slice(conn)
        if progress:
            progress(0.0, "Merging recent consent histories")
        moved = _move_recent(conn, low, high)
    if progress:
        progress(1.0, f"Merged {moved:,} recent consent histories")
    return moved


_HEX = "0123456789abcdef"


def _fullest_slice(conn: Connection) -> tuple[str, str]:
    """The range [low, high) of subject refs starting with the hex digit that has the most
    recent rows."""
    first = func.substr(recent_table.c.subject_ref, 1, 1)
    query = select(first, func.count()).group_by(first).order_by(func.count().desc(), first)
    digit = conn.execute(query.limit(1)).first()[0]
    following = _HEX.index(digit) + 1
    return digit, _HEX[following] if following < len(_HEX) else "g"


def _move_recent(conn: Connection, low: str, high: str) -> int:
    """Replace the large table's rows by the recent ones with refs in [low, high), and
    delete those from the recent table. Returns how many moved."""
    s, r = subjects_table, recent_table
    in_slice = r.c.subject_ref >= low, r.c.subject_ref < high
    moving = select(r.c.subject_ref, r.c.purpose).where(*in_slice)
    replaced = tuple_(s.c.subject_ref, s.c.purpose).in_(moving)
    conn.execute(delete(s).where(s.c.subject_ref >= low, s.c.subject_ref < high, replaced))
    columns = ["subject_ref", "purpose", "history"]
    conn.execute(insert(s).from_select(columns, select(r).where(*in_slice)))
    return conn.execute(delete(r).where(*in_slice)).rowcount


def _lowered(dbs: Databases, watermark: int, awaited: list[int]) -> tuple[int, list[int]]:
    """The watermark and awaited ids, brought down to the newest event id when the newest
    events were deleted (an erasure): SQLite hands out max(id) + 1 again, so ids above the
    newest one are new events whatever the watermark said."""
    newest = _newest_id(dbs)
    if newest >= watermark:
        return watermark, awaited
    return newest, [i for i in awaited if i <= newest]


def awaited_ids(
    seen: Iterable[int], old_awaited: Iterable[int], watermark: int, top: int
) -> set[int]:
    """Ids at or below `top` still to be read: the old awaited ones and the ids between the
    old watermark and `top` that were not seen, within TAIL_IDS of `top`."""
    seen = set(seen)
    floor = top - TAIL_IDS
    fresh = set(range(max(watermark, floor) + 1, top + 1)) - seen
    return {i for i in set(old_awaited) - seen if i > floor} | fresh


def _update_awaited(conn: Connection, stored: list[int], new: set[int]) -> None:
    """Make the awaited-ids table hold `new` (it held `stored`)."""
    for chunk in _chunks(sorted(set(stored) - new)):
        conn.execute(delete(gaps_table).where(gaps_table.c.event_id.in_(chunk)))
    added = sorted(new - set(stored))
    if added:
        conn.execute(insert(gaps_table), [{"event_id": i} for i in added])


def _apply(conn: Connection, dbs: Databases, rows: list[Row]) -> int:
    """Merge new events into their subjects' histories and the summaries; returns how many
    subject-purposes got an event older than their latest (recomputed from the history)."""
    if not rows:
        return 0
    labels = arrays.new_labels()
    cols = arrays.event_columns(ref_key(dbs), rows, labels)
    cols["bucket"] = _event_buckets(conn, cols, labels)
    _add_bucket_counts(conn, _bucket_counts(cols["bucket"]))
    new = _subset(cols, cols["ref_hi"] != 0)  # events about no subject count as events only
    new = _subset(new, arrays.subject_order(new))
    starts = arrays.group_starts(new)
    new["group"] = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    purpose_names = labels["purpose"].values
    keys = list(
        zip(
            arrays.hex_refs(new["ref_hi"][first], new["ref_lo"][first]),
            [purpose_names[p] for p in new["purpose"][first].tolist()],
            strict=True,
        )
    )
    stored, in_recent = _histories(conn, {ref for ref, _purpose in keys})
    old = parse_histories([stored.get(key) for key in keys], new["purpose"][first])
    merged, fresh = _merged(old, new)
    texts = history_texts(merged, len(keys))
    written = [
        {"b_ref": ref, "b_purpose": purpose, "b_history": text}
        for (ref, purpose), text in zip(keys, texts, strict=True)
    ]
    _write_histories(conn, written, in_recent)
    _add_day_deltas(conn, _deltas([(1, merged), (-1, old)], purpose_names))
    return _late_subjects(merged["group"], fresh)


def _event_buckets(conn: Connection, cols: dict[str, np.ndarray], labels) -> np.ndarray:
    """The bucket id of each event (purpose, Oslo day, action, source, notice version),
    creating missing buckets."""
    frame = pd.DataFrame({k: cols[k] for k in ("purpose", "day", "action", "source", "version")})
    combination = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    v = {name: labels[name].values for name in ("purpose", "action", "source", "version")}
    keys = [
        (v["purpose"][p], arrays.to_date(d), v["action"][a], v["source"][s], v["version"][nv])
        for p, d, a, s, nv in frame.drop_duplicates().itertuples(index=False)
    ]
    ids = _bucket_ids(conn, set(keys))
    return np.array([ids[key] for key in keys], dtype=np.int64)[combination]


def _merged(
    old: dict[str, np.ndarray], new: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Old and new events of the same groups together, sorted by group, time and id, and
    which are new; a new event already in its group's history is not added again."""
    both = {f: np.concatenate([old[f], new[f].astype(np.int64)]) for f in _HISTORY_FIELDS}
    fresh = np.repeat([False, True], [len(old["id"]), len(new["id"])])
    by_id = np.lexsort((fresh, both["id"], both["group"]))
    repeated = np.zeros(len(fresh), dtype=bool)
    repeated[by_id[1:]] = (both["group"][by_id[1:]] == both["group"][by_id[:-1]]) & (
        both["id"][by_id[1:]] == both["id"][by_id[:-1]]
    )
    both, fresh = _subset(both, ~repeated), fresh[~repeated]
    order = np.lexsort((both["id"], both["t"], both["group"]))
    return _subset(both, order), fresh[order]


def _late_subjects(group: np.ndarray, fresh: np.ndarray) -> int:
    """How many groups have a new event before one of their old ones (sorted columns)."""
    position = np.arange(len(group))
    first_new = pd.Series(position[fresh]).groupby(group[fresh]).min()
    last_old = pd.Series(position[~fresh]).groupby(group[~fresh]).max()
    both = last_old.index.intersection(first_new.index)
    return int((last_old[both] > first_new[both]).sum())


def _bucket_ids(conn: Connection, wanted: set[tuple]) -> dict[tuple, int]:
    """Bucket id per (purpose, day, action, source, notice_version) wanted, inserting
    missing buckets (with 0 events) under the next free ids."""
    found: dict[tuple, int] = {}
    b = buckets_table
    for chunk in _chunks(sorted({key[1] for key in wanted})):
        query = select(b.c.id, b.c.purpose, b.c.day, b.c.action, b.c.source, b.c.notice_version)
        for r in conn.execute(query.where(b.c.day.in_(chunk)).order_by(b.c.id)):
            found[(r.purpose, r.day, r.action, r.source, r.notice_version)] = int(r.id)
    missing = sorted(wanted - set(found), key=_sortable)
    if missing:
        next_id = int(conn.execute(select(func.coalesce(func.max(b.c.id), 0))).scalar_one()) + 1
        new_rows = []
        for offset, key in enumerate(missing):
            found[key] = next_id + offset
            purpose, day, action, source, version = key
            new_rows.append(
                {
                    "id": next_id + offset,
                    "purpose": purpose,
                    "day": day,
                    "action": action,
                    "source": source,
                    "notice_version": version,
                    "events": 0,
                }
            )
        conn.execute(insert(b), new_rows)
    return found


def _sortable(key: tuple) -> tuple:
    return tuple(
        (value is not None, value or "") if not isinstance(value, date) else (True, value)
        for value in key
    )


def _histories(
    conn: Connection, refs: set[str]
) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
    """The stored history of every purpose of `refs`, per (ref, purpose): the recent one
    where there is one (it replaces the large table's), and the keys found in the recent
    table."""
    out: dict[tuple[str, str], str] = {}
    in_recent: set[tuple[str, str]] = set()
    for table in (subjects_table, recent_table):  # recent last: it wins
        for chunk in _chunks(sorted(refs)):
            query = select(table.c.subject_ref, table.c.purpose, table.c.history)
            for ref, purpose, history in conn.execute(query.where(table.c.subject_ref.in_(chunk))):
                out[(ref, purpose)] = history
                if table is recent_table:
                    in_recent.add((ref, purpose))
    return out, in_recent


def _write_histories(conn: Connection, rows: list[dict], in_recent: set[tuple[str, str]]) -> None:
    """Store histories (dicts of b_ref, b_purpose, b_history) in the recent table: an update
    where the subject-purpose is there already, else an insert, which replaces its row in
    the large table for every reader."""
    r = recent_table
    updates = [row for row in rows if (row["b_ref"], row["b_purpose"]) in in_recent]
    inserts = [row for row in rows if (row["b_ref"], row["b_purpose"]) not in in_recent]
    if updates:
        statement = (
            update(r)
            .where(r.c.subject_ref == bindparam("b_ref"), r.c.purpose == bindparam("b_purpose"))
            .values(history=bindparam("b_history"))
        )
        _executemany(conn, statement, updates)
    if inserts:
        statement = insert(r).values(
            subject_ref=bindparam("b_ref"),
            purpose=bindparam("b_purpose"),
            history=bindparam("b_history"),
        )
        _executemany(conn, statement, inserts)


def _delete_histories(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Delete the histories of (ref, purpose) keys from both tables."""
    rows = [{"b_ref": ref, "b_purpose": purpose} for ref, purpose in sorted(keys)]
    for table in (subjects_table, recent_table):
        if rows:
            statement = delete(table).where(
                table.c.subject_ref == bindparam("b_ref"), table.c.purpose == bindparam("b_purpose")
            )
            _executemany(conn, statement, rows)


def _executemany(conn: Connection, statement, rows: list[dict]) -> None:
    """Run a Core statement with bound parameters for many rows. On SQLite through the
    driver's executemany of tuples in the compiled statement's parameter order: Core's
    per-row parameter processing costs more than the writes themselves for 100,000
    histories (text parameters need no conversion)."""
    if conn.dialect.name == "sqlite":
        compiled = statement.compile(dialect=conn.dialect)
        order = compiled.positiontup
        conn.exec_driver_sql(str(compiled), [tuple(r[k] for k in order) for r in rows])
    else:
        conn.execute(statement, rows)


def _add_day_deltas(conn: Connection, deltas: dict[tuple[str, date], list[int]]) -> None:
    """Add (subjects, granted, withdrawn) changes to the per-day rows, creating missing ones."""
    deltas = {k: v for k, v in deltas.items() if any(v)}
    if not deltas:
        return
    d = days_table
    existing: set[tuple[str, date]] = set()
    for chunk in _chunks(sorted({day for _purpose, day in deltas})):
        query = (
            select(d.c.purpose, d.c.day).where(d.c.day.in_(chunk)).order_by(d.c.purpose, d.c.day)
        )
        existing |= {(p, day) for p, day in conn.execute(query)}
    changed = [
        {"b_purpose": p, "b_day": day, "b_s": v[0], "b_g": v[1], "b_w": v[2]}
        for (p, day), v in sorted(deltas.items())
        if (p, day) in existing
    ]
    if changed:
        conn.execute(
            update(d)
            .where(d.c.purpose == bindparam("b_purpose"), d.c.day == bindparam("b_day"))
            .values(
                subjects=d.c.subjects + bindparam("b_s"),
                granted=d.c.granted + bindparam("b_g"),
                withdrawn=d.c.withdrawn + bindparam("b_w"),
            ),
            changed,
        )
    added = [
        {"purpose": p, "day": day, "subjects": v[0], "granted": v[1], "withdrawn": v[2]}
        for (p, day), v in sorted(deltas.items())
        if (p, day) not in existing
    ]
    if added:
        conn.execute(insert(d), added)


def _add_bucket_counts(conn: Connection, increments: dict[int, int]) -> None:
    b = buckets_table
    rows = [{"b_id": i, "b_n": n} for i, n in sorted(increments.items()) if n]
    if rows:
        conn.execute(
            update(b)
            .where(b.c.id == bindparam("b_id"))
            .values(events=b.c.events + bindparam("b_n")),
            rows,
        )


# --- erasure ----------------------------------------------------------------------------------


def forget_subject_keys(dbs: Databases, keys: Iterable[str]) -> int:
    """Remove erased people from the roll-up (RULES.md R12, R18): each key's state changes,
    event counts and history, for every purpose. Returns the subject-purposes removed.

    `keys` are R20 keys: 'account:42', 'email:kari@example.no' (the e-mail part is
    lower-cased here), 'visitor:<id>' (`subject_key` builds one). Call it after the
    person's consent events are deleted from the consent database (events not yet applied
    are then never applied). Runs in its own ledger transaction; see `forget_in` to run it
    inside the caller's.
    """
    with dbs.ledger.begin() as conn:
        return forget_in(conn, dbs, keys)


def forget_in(conn: Connection, dbs: Databases, keys: Iterable[str]) -> int:
    """`forget_subject_keys` inside the caller's ledger transaction (e.g. an erasure job's
    ledger step). A build running meanwhile is cancelled (its result could still hold the
    person); the roll-up is then rebuilt from the remaining events on the next refresh.
    Under a changed pseudonym key (`key_changed`) the person's refs cannot be found; the
    rekey's rebuild, from the remaining events, leaves them out."""
    refs = sorted({subject_ref(dbs, _normal_key(k)) for k in keys})
    if _cancelled_build(conn):
        return 0
    stored, _in_recent = _histories(conn, set(refs))
    keys = sorted(stored)
    old, purposes = _stored_columns(keys, stored)
    _add_day_deltas(conn, _deltas([(-1, old)], purposes))
    _add_bucket_counts(conn, _bucket_counts(old["bucket"], -1))
    _delete_histories(conn, keys)
    return len(keys)


def forget_events(dbs: Databases, deleted: Iterable[Mapping[str, Any]]) -> int:
    """Remove deleted consent events from the roll-up, for an erasure that deletes single
    events rather than whole subjects (e.g. events that carry the erased person's e-mail
    but belong to another account's subject, R20). Each mapping needs the event's id,
    account_id, email and visitor_id, as read before the delete. A subject left without
    events disappears. Returns the subject-purposes changed. Own ledger transaction."""
    with dbs.ledger.begin() as conn:
        return forget_events_in(conn, dbs, deleted)


def forget_events_in(conn: Connection, dbs: Databases, deleted: Iterable[Mapping[str, Any]]) -> int:
    """`forget_events` inside the caller's ledger transaction."""
    ids_by_ref: dict[str, set[int]] = {}
    for r in deleted:
        key = subject_key(r.get("account_id"), r.get("email"), r.get("visitor_id"))
        if key is not None:
            ids_by_ref.setdefault(subject_ref(dbs, key), set()).add(int(r["id"]))
    if _cancelled_build(conn):
        return 0
    stored, in_recent = _histories(conn, set(ids_by_ref))
    keys = sorted(stored)
    old, purposes = _stored_columns(keys, stored)
    pairs = zip(old["group"].tolist(), old["id"].tolist(), strict=True)
    removed = np.array([i in ids_by_ref[keys[g][0]] for g, i in pairs], dtype=bool)
    kept = _subset(old, ~removed)
    changed = set(old["group"][removed].tolist())
    texts = history_texts(kept, len(keys))
    updates = [
        {"b_ref": keys[g][0], "b_purpose": keys[g][1], "b_history": texts[g]}
        for g in sorted(changed)
        if texts[g] is not None
    ]
    _write_histories(conn, updates, in_recent)
    _delete_histories(conn, [keys[g] for g in sorted(changed) if texts[g] is None])
    _add_day_deltas(conn, _deltas([(1, kept), (-1, old)], purposes))
    _add_bucket_counts(conn, _bucket_counts(old["bucket"][removed], -1))
    return len(changed)


def _stored_columns(
    keys: list[tuple[str, str]], stored: dict[tuple[str, str], str]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The stored histories of `keys` as columns (`parse_histories`), and the purpose names
    their purpose codes stand for."""
    purposes = arrays.Labels()
    codes = purposes.encode([purpose for _ref, purpose in keys])
    return parse_histories([stored[key] for key in keys], codes), purposes.values


def _cancelled_build(conn: Connection) -> bool:
    """Take the roll-up's lock for an erasure. When a build is running, empty the roll-up's
    status so that build cannot publish (it may hold data erased meanwhile) and return
    True: the next refresh builds it again from the remaining events."""
    if _state_row(conn, lock=True)["status"] != BUILDING:
        return False
    conn.execute(
        update(state_table)
        .where(state_table.c.id == 1)
        .values(status=EMPTY, build_token=None, build_started_at=None)
    )
    return True


def _normal_key(key: str) -> str:
    kind, _, value = key.partition(":")
    return f"email:{value.strip().lower()}" if kind == "email" else key


# --- rebuild ----------------------------------------------------------------------------------


@writes(*stores.CONSENT_ROLLUP, *stores.AUDIT)
def rebuild(
    dbs: Databases, *, actor: str, progress: Progress | None = None, now: datetime | None = None
) -> ActionResult:
    """Rebuild the roll-up from all consent events (the Consent page's "Rebuild" action),
    reporting `progress(fraction 0..1, message)`; audited with the counts (RULES.md R21).

    Returns ActionResult(succeeded=['consent roll-up']) or, when another build is running,
    failed={'consent roll-up': reason}. The figures stay those of the previous build until
    the new one is complete.
    """
    now = now or utc_now()
    try:
        built = _build(dbs, progress=progress, now=now)
    except RollupBusy as exc:
        return ActionResult(failed={"consent roll-up": str(exc)})
    with dbs.ledger.begin() as conn:
        audit.append(
            conn,
            actor=actor,
            action="consent_rollup_rebuild",
            rule="R21",
            store="ledger",
            target="consent_rollup",
            counts={"events": built["events"], "subjects": built["subjects"]},
            details={"watermark": built["watermark"], "seconds": built["seconds"]},
            now=now,
        )
    return ActionResult(succeeded=["consent roll-up"])


def _build(dbs: Databases, *, progress: Progress | None, now: datetime) -> dict[str, int]:
    """Claim the build, run it, and publish it; raises RollupBusy when another one runs."""
    from data_access import consent_rollup_build  # the vectorised full build (numpy)

    token = uuid.uuid4().hex
    with dbs.ledger.begin() as conn:
        row = _state_row(conn, lock=True)
        if row["status"] == BUILDING and not _stale(row, now):
            started = row["build_started_at"]
            raise RollupBusy(
                f"A rebuild of the consent roll-up is already running (started {started:%Y-%m-%d %H:%M} UTC)."
            )
        conn.execute(
            update(state_table)
            .where(state_table.c.id == 1)
            .values(status=BUILDING, build_token=token, build_started_at=now)
        )
    return consent_rollup_build.build(dbs, token=token, progress=progress, started=now)


def publish_build(
    conn: Connection,
    dbs: Databases,
    *,
    token: str,
    watermark: int,
    awaited: list[int],
    day_rows: list[dict],
    bucket_rows: list[dict],
    events_applied: int,
    now: datetime,
) -> bool:
    """Swap in a finished build's summaries inside one ledger transaction, if the build
    still owns the roll-up (an erasure meanwhile cancels it). Returns False when it does not."""
    owned = conn.execute(
        update(state_table)
        .where(state_table.c.id == 1, state_table.c.build_token == token)
        .where(state_table.c.status == BUILDING)
        .values(
            status=READY,
            watermark=watermark,
            key_check=key_check(dbs),
            build_token=None,
            build_started_at=None,
            built_at=now,
            refreshed_at=now,
            events_applied=events_applied,
        )
    )
    if owned.rowcount != 1:
        return False
    for table in (days_table, buckets_table, gaps_table):
        conn.execute(delete(table))
    for table, rows in ((days_table, day_rows), (buckets_table, bucket_rows)):
        for start in range(0, len(rows), 20_000):
            conn.execute(insert(table), rows[start : start + 20_000])
    if awaited:
        conn.execute(insert(gaps_table), [{"event_id": i} for i in awaited])
    return True


# --- reads --------------------------------------------------------------------------------------


def state_totals(dbs: Databases, days: Sequence[date]) -> list[dict[str, tuple[int, int, int]]]:
    """Per ascending Oslo date in `days`: purpose -> (subjects, granted, withdrawn) at the
    end of that day (RULES.md R21), summed from the per-day changes in one query."""
    if not days:
        return []
    d = days_table
    whens = [(d.c.day <= day, i) for i, day in enumerate(days[:-1])]
    bucket = case(*whens, else_=len(days) - 1) if whens else literal_column("0")
    tagged = (
        select(d.c.purpose, bucket.label("bucket"), d.c.subjects, d.c.granted, d.c.withdrawn)
        .where(d.c.day <= days[-1])
        .subquery()
    )
    query = (
        select(
            tagged.c.purpose,
            tagged.c.bucket,
            func.sum(tagged.c.subjects),
            func.sum(tagged.c.granted),
            func.sum(tagged.c.withdrawn),
        )
        .group_by(tagged.c.purpose, tagged.c.bucket)
        .order_by(tagged.c.purpose, tagged.c.bucket)
    )
    per_bucket: dict[str, list[list[int]]] = {}
    with dbs.ledger.connect() as conn:
        for purpose, i, subjects, granted, withdrawn in conn.execute(query):
            slots = per_bucket.setdefault(purpose, [[0, 0, 0] for _ in days])
            slots[int(i)] = [int(subjects or 0), int(granted or 0), int(withdrawn or 0)]
    totals: list[dict[str, tuple[int, int, int]]] = [{} for _ in days]
    for purpose, slots in per_bucket.items():
        running = [0, 0, 0]
        for i, slot in enumerate(slots):
            running = [a + b for a, b in zip(running, slot, strict=True)]
            totals[i][purpose] = tuple(running)
    return totals


def monthly_event_counts(
    dbs: Databases, start: date, end: date, months: Sequence[tuple[date, date]]
) -> dict[tuple[date, str], tuple[int, int]]:
    """(first day of month, purpose) -> (granted events, withdrawn events) on Oslo dates in
    [start, end]; `months` are (first day, last day counted) as in `consent._months`."""
    b = buckets_table
    whens = [(b.c.day <= last, i) for i, (_first, last) in enumerate(months[:-1])]
    bucket = case(*whens, else_=len(months) - 1) if whens else literal_column("0")
    tagged = (
        select(bucket.label("bucket"), b.c.purpose, b.c.action, b.c.events)
        .where(b.c.day >= start, b.c.day <= end)
        .subquery()
    )
    query = (
        select(tagged.c.bucket, tagged.c.purpose, tagged.c.action, func.sum(tagged.c.events))
        .group_by(tagged.c.bucket, tagged.c.purpose, tagged.c.action)
        .order_by(tagged.c.bucket, tagged.c.purpose, tagged.c.action)
    )
    counts: dict[tuple[date, str], tuple[int, int]] = {}
    with dbs.ledger.connect() as conn:
        for i, purpose, action, n in conn.execute(query):
            month = months[int(i)][0]
            granted, withdrawn = counts.get((month, purpose), (0, 0))
            if action == "granted":
                granted += int(n or 0)
            elif action == "withdrawn":
                withdrawn += int(n or 0)
            counts[(month, purpose)] = (granted, withdrawn)
    return counts


def _nulls_first(column):
    """Sort key that puts NULL first on every backend (PostgreSQL sorts NULL last)."""
    return case((column.is_(None), 0), else_=1)


def event_breakdown(dbs: Databases, as_of: date, by: str, cap: int) -> pd.DataFrame:
    """Events on Oslo dates up to `as_of` per purpose and `by` ('source' | 'notice_version').
    Columns: purpose, <by>, granted_events, withdrawn_events; by purpose, then <by> with
    missing values first; at most `cap` rows."""
    b = buckets_table
    column = b.c[by]
    query = (
        select(
            b.c.purpose,
            column,
            func.sum(case((b.c.action == "granted", b.c.events), else_=0)),
            func.sum(case((b.c.action == "withdrawn", b.c.events), else_=0)),
        )
        .where(b.c.day <= as_of)
        .group_by(b.c.purpose, column)
        .having(func.sum(b.c.events) > 0)
        .order_by(b.c.purpose, _nulls_first(column), column)
        .limit(cap)
    )
    with dbs.ledger.connect() as conn:
        rows = [(p, v, int(g or 0), int(w or 0)) for p, v, g, w in conn.execute(query)]
    frame = pd.DataFrame(rows, columns=["purpose", by, "granted_events", "withdrawn_events"])
    return frame.astype({"granted_events": "int64", "withdrawn_events": "int64"})


def withdrawal_counts(dbs: Databases, start: date, end: date, cap: int) -> pd.DataFrame:
    """Withdrawal events on Oslo dates in [start, end] per purpose, source and notice
    version. Columns: purpose, source, notice_version, withdrawals; missing values first;
    at most `cap` rows."""
    b = buckets_table
    query = (
        select(b.c.purpose, b.c.source, b.c.notice_version, func.sum(b.c.events))
        .where(b.c.action == "withdrawn", b.c.day >= start, b.c.day <= end)
        .group_by(b.c.purpose, b.c.source, b.c.notice_version)
        .having(func.sum(b.c.events) > 0)
        .order_by(
            b.c.purpose,
            _nulls_first(b.c.source),
            b.c.source,
            _nulls_first(b.c.notice_version),
            b.c.notice_version,
        )
        .limit(cap)
    )
    with dbs.ledger.connect() as conn:
        rows = [(p, s, v, int(n or 0)) for p, s, v, n in conn.execute(query)]
    frame = pd.DataFrame(rows, columns=["purpose", "source", "notice_version", "withdrawals"])
    return frame.astype({"withdrawals": "int64"})


def _chunks(values: Sequence, size: int = _IN_CHUNK):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]
