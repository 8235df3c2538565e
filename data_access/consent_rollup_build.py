"""The full build of the consent roll-up: every consent event read once, by id, and the
summaries computed with numpy (DESIGN.md "Scale and speed"; RULES.md R20, R21).

The definitions are those of `consent_rollup_arrays`, which the incremental refresh uses
too: events are sorted by subject, purpose, time and id; the last event of each Oslo day
gives the day-end state (R20); a subject's first day adds a subject, each later change of
state moves it between granted and withdrawn.

Memory is bounded whatever the number of events: events are streamed in batches of
READ_ROWS (a server-side cursor on PostgreSQL and MariaDB, `fetchmany` on SQLite), turned
into compact numpy columns and spilled to temporary files, one per partition of subjects
(a subject's events all land in one partition, by its keyed hash). Each partition, at most
about PARTITION_EVENTS events, is then sorted and summarised on its own; the per-day
changes of the partitions add up, and the breakdown buckets are counted while reading.
Subject histories are written per partition in chunks of their own transactions (the
roll-up's status is 'building' meanwhile, so no refresh reads them half-written); the
per-day summaries, the watermark and the awaited ids are swapped in by one last
transaction, so readers see the old figures until the new ones are whole.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, insert, select

from data_access import consent_rollup as rollup
from data_access import consent_rollup_arrays as arrays
from data_access.engines import Databases
from data_access.ledger_tables import consent_rollup_recent as recent_table
from data_access.ledger_tables import consent_rollup_state as state_table
from data_access.ledger_tables import consent_rollup_subjects as subjects_table
from data_access.tables import consent_events as events

READ_ROWS = 50_000  # events per read batch
WRITE_ROWS = 50_000  # subject histories per write transaction
PARTITION_EVENTS = 400_000  # events per partition, about: bounds the memory of one sort
BUCKET_KEYS = ("purpose", "day", "action", "source", "version")
SPILL_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("ref_hi", np.uint64),
        ("ref_lo", np.uint64),
        ("t", np.int64),
        ("day", np.int32),
        ("purpose", np.int32),
        ("action", np.int32),
        ("source", np.int32),
        ("version", np.int32),
        ("state", np.int32),
    ]
)


def build(dbs: Databases, *, token: str, progress, started: datetime) -> dict[str, int]:
    """Build the roll-up from all consent events and publish it. Returns events, subjects
    (subject-purposes), watermark and seconds. Raises BuildCancelled when an erasure
    emptied the roll-up meanwhile (the next refresh builds again)."""
    clock = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    report(0.0, "Reading consent events")
    with dbs.consent.connect() as conn:
        total = conn.execute(select(func.count()).select_from(events)).scalar_one()
    labels = arrays.new_labels()
    with tempfile.TemporaryDirectory(prefix="consent-rollup-") as folder:
        spill = _Spill(Path(folder), max(1, -(-total // PARTITION_EVENTS)))
        scan = _read(dbs, labels, total, report, spill)
        report(0.5, "Computing the summaries")
        buckets = _Buckets(scan.buckets, labels)
        subjects, changes = _write_subjects(dbs, token, spill, buckets, labels, report)
    with dbs.ledger.begin() as conn:
        published = rollup.publish_build(
            conn,
            dbs,
            token=token,
            watermark=scan.watermark,
            awaited=_awaited(scan.tail, scan.watermark),
            day_rows=_day_rows(changes, labels),
            bucket_rows=buckets.rows,
            events_applied=scan.events,
            now=started,
        )
    if not published:
        raise rollup.BuildCancelled(
            "The consent roll-up was emptied during the build; it is built again."
        )
    report(1.0, f"Consent roll-up built from {scan.events:,} events")
    return {
        "events": scan.events,
        "subjects": subjects,
        "watermark": scan.watermark,
        "seconds": round(time.perf_counter() - clock, 1),
    }


class _Spill:
    """Event columns of each partition of subjects, appended to a temporary file."""

    def __init__(self, folder: Path, partitions: int):
        self.paths = [folder / f"part-{i}.bin" for i in range(partitions)]
        for path in self.paths:
            path.touch()

    def add(self, cols: dict[str, np.ndarray]) -> None:
        """Append the events that name a subject, each to its subject's partition."""
        keyed = cols["ref_hi"] != 0  # events about no subject count as events only
        records = np.empty(int(keyed.sum()), dtype=SPILL_DTYPE)
        for name in SPILL_DTYPE.names:
            records[name] = cols[name][keyed]
        part = records["ref_lo"] % np.uint64(len(self.paths))
        for i, path in enumerate(self.paths):
            with path.open("ab") as out:
                records[part == i].tofile(out)

    def read(self, i: int) -> dict[str, np.ndarray]:
        """Partition i's event columns, sorted by `arrays.subject_order`."""
        records = np.fromfile(self.paths[i], dtype=SPILL_DTYPE)
        self.paths[i].unlink()  # its disk space back as soon as it is read
        cols = {name: records[name] for name in SPILL_DTYPE.names}
        order = arrays.subject_order(cols)
        return {name: values[order] for name, values in cols.items()}


class _Scan:
    """What the read pass learns besides the spilled events."""

    def __init__(self):
        self.events = 0
        self.watermark = 0
        self.tail = np.zeros(0, np.int64)  # ids within TAIL_IDS of the highest so far
        self.buckets: dict[tuple[int, ...], int] = {}

    def add(self, cols: dict[str, np.ndarray]) -> None:
        ids = cols["id"]
        self.events += len(ids)
        if len(ids):
            self.watermark = max(self.watermark, int(ids.max()))
        floor = self.watermark - rollup.TAIL_IDS
        self.tail = np.concatenate([self.tail[self.tail > floor], ids[ids > floor]])
        keys = pd.DataFrame({k: cols[k] for k in BUCKET_KEYS}, copy=False)
        for key, n in keys.groupby(list(BUCKET_KEYS), sort=False).size().items():
            key = tuple(int(k) for k in key)  # Python ints: the mixed-radix codes overflow int32
            self.buckets[key] = self.buckets.get(key, 0) + int(n)


def _read(dbs: Databases, labels: dict, total: int, report, spill: _Spill) -> _Scan:
    """Stream every event by id into `spill`; the scan's counts, watermark and buckets."""
    query = select(*(events.c[name] for name in arrays.EVENT_COLUMNS)).order_by(events.c.id)
    secret = rollup.ref_key(dbs)
    scan = _Scan()
    with dbs.consent.connect() as conn:
        streamed = conn.execution_options(stream_results=True, yield_per=READ_ROWS)
        with streamed.execute(query) as result:
            for batch in result.partitions():
                cols = arrays.event_columns(secret, batch, labels)
                del batch  # the rows as Python objects are the largest part of a batch
                scan.add(cols)
                spill.add(cols)
                done = scan.events
                report(0.5 * done / max(total, 1), f"Read {done:,} of {total:,} consent events")
    return scan


def _awaited(tail: np.ndarray, watermark: int) -> list[int]:
    """Ids within TAIL_IDS below the watermark that were not there (maybe not committed)."""
    floor = max(0, watermark - rollup.TAIL_IDS)
    window = np.arange(floor + 1, watermark + 1, dtype=np.int64)
    return [int(i) for i in np.setdiff1d(window, tail[tail > floor])]


class _Buckets:
    """The breakdown buckets (R21): events per purpose, Oslo day, action, source and notice
    version, numbered in that sort order; `of(cols)` gives each event's bucket id."""

    def __init__(self, counts: dict[tuple[int, ...], int], labels: dict):
        keys = sorted(counts)
        self.sizes = [len(labels[k].values) if k != "day" else 0 for k in BUCKET_KEYS]
        days = [k[1] for k in keys] or [0]
        self.first_day, self.sizes[1] = min(days), max(days) - min(days) + 1
        self.codes = np.array([self._code(*key) for key in keys], dtype=np.int64)
        v = {name: labels[name].values for name in ("purpose", "action", "source", "version")}
        self.rows = [
            {
                "id": i,
                "purpose": v["purpose"][p],
                "day": arrays.to_date(d),
                "action": v["action"][a],
                "source": v["source"][s],
                "notice_version": v["version"][nv],
                "events": counts[(p, d, a, s, nv)],
            }
            for i, (p, d, a, s, nv) in enumerate(keys, start=1)
        ]

    def _code(self, *key):
        """One int64 per key that sorts as the key tuple does (mixed radix)."""
        code = 0
        for value, size, name in zip(key, self.sizes, BUCKET_KEYS, strict=True):
            code = code * size + (value - self.first_day if name == "day" else value)
        return code

    def of(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        values = [cols[k].astype(np.int64) for k in BUCKET_KEYS]
        return np.searchsorted(self.codes, self._code(*values)).astype(np.int64) + 1


def _day_rows(changes: list[pd.DataFrame], labels) -> list[dict]:
    """Per purpose and Oslo day, the change in (subjects, granted, withdrawn) (R21), summed
    over the partitions."""
    if not changes:
        return []
    sums = pd.concat(changes).groupby(["purpose", "day"], sort=True).sum().reset_index()
    sums = sums[(sums[["subjects", "granted", "withdrawn"]] != 0).any(axis=1)]
    purposes = labels["purpose"].values
    return [
        {
            "purpose": purposes[p],
            "day": arrays.to_date(d),
            "subjects": int(s),
            "granted": int(g),
            "withdrawn": int(w),
        }
        for p, d, s, g, w in sums[arrays.CHANGE_COLUMNS].itertuples(index=False)
    ]


def _write_subjects(dbs, token, spill: _Spill, buckets: _Buckets, labels, report):
    """Replace every subject history, partition by partition, WRITE_ROWS per transaction.
    Returns (how many, the per-day changes of each partition)."""
    with dbs.ledger.begin() as conn:
        _check_owner(conn, token)
        conn.execute(delete(subjects_table))
        conn.execute(delete(recent_table))
    written, changes = 0, []
    parts = len(spill.paths)
    for i in range(parts):
        c = spill.read(i)
        if len(c["id"]):
            group = np.cumsum(arrays.group_starts(c))
            changes.append(arrays.day_changes(group, c["day"], c["state"], c["purpose"]))
            written += _write_partition(dbs, token, c, buckets.of(c), labels)
        report(0.6 + 0.38 * (i + 1) / parts, f"Wrote {written:,} subject histories")
    return written, changes


def _write_partition(dbs, token, c: dict[str, np.ndarray], bucket_ids, labels) -> int:
    """Write the subject histories of one sorted partition, WRITE_ROWS per transaction;
    returns how many. Tokens are made per transaction's histories only (they are the
    largest Python objects of a build)."""
    n = len(c["id"])
    starts = np.flatnonzero(arrays.group_starts(c))
    ends = np.append(starts[1:], n)
    purposes = labels["purpose"].values
    total = len(starts)
    for low in range(0, total, WRITE_ROWS):
        high = min(total, low + WRITE_ROWS)
        first, last = int(starts[low]), int(ends[high - 1])
        tokens = arrays.token_texts(
            c["t"][first:last], c["id"][first:last], bucket_ids[first:last], c["state"][first:last]
        )
        texts = arrays.history_texts(
            tokens, (starts[low:high] - first).tolist(), (ends[low:high] - first).tolist()
        )
        refs = arrays.hex_refs(c["ref_hi"][starts[low:high]], c["ref_lo"][starts[low:high]])
        group_purpose = c["purpose"][starts[low:high]].tolist()
        rows = [
            (ref, purposes[p], text)
            for ref, p, text in zip(refs, group_purpose, texts, strict=True)
        ]
        del tokens, texts
        with dbs.ledger.begin() as conn:
            _check_owner(conn, token)
            _insert_histories(conn, rows)
    return total


def _insert_histories(conn, rows: list[tuple[str, str, str]]) -> None:
    """Insert (subject_ref, purpose, history) rows. On SQLite through the driver's
    executemany of tuples, with Core's own INSERT compiled for it: a third of the cost of
    Core's per-row parameter dicts, which matters for millions of rows (as in demo_load)."""
    columns = ("subject_ref", "purpose", "history")
    if conn.dialect.name == "sqlite":
        statement = insert(subjects_table).values({c: bindparam(c) for c in columns})
        conn.exec_driver_sql(str(statement.compile(dialect=conn.dialect)), rows)
    else:
        conn.execute(insert(subjects_table), [dict(zip(columns, r, strict=True)) for r in rows])


def _check_owner(conn, token: str) -> None:
    owner = conn.execute(select(state_table.c.build_token).where(state_table.c.id == 1)).scalar()
    if owner != token:
        raise rollup.BuildCancelled(
            "The consent roll-up was emptied during the build; it is built again."
        )
