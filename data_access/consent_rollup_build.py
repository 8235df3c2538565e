"""The full build of the consent roll-up: every consent event read once, by id, and the
summaries computed with numpy (DESIGN.md "Scale and speed"; RULES.md R20, R21).

The definitions are those of `consent_rollup_arrays`, which the incremental refresh uses
too: events are sorted by subject, purpose, time and id; the last event of each Oslo day
gives the day-end state (R20); a subject's first day adds a subject, each later change of
state moves it between granted and withdrawn. Subject histories are written in chunks of
their own transactions (the roll-up's status is 'building' meanwhile, so no refresh reads
them half-written); the per-day summaries, the watermark and the awaited ids are swapped
in by one last transaction, so readers see the old figures until the new ones are whole.
"""

from __future__ import annotations

import time
from datetime import datetime

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

READ_ROWS = 200_000  # events per read batch
WRITE_ROWS = 50_000  # subject histories per write transaction


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
    columns = _read(dbs, labels, total, report)
    n = len(columns["id"])
    watermark = int(columns["id"].max()) if n else 0
    awaited = _awaited(columns["id"], watermark)
    report(0.5, "Computing the summaries")
    order = arrays.subject_order(columns)
    cols = {k: v[order] for k, v in columns.items()}
    keyed = cols["ref_hi"] != 0  # events about no subject count as events only
    bucket_of, bucket_rows = _buckets(cols, labels)
    day_rows = _day_rows(cols, keyed, labels)
    report(0.6, "Writing subject histories")
    subjects = _write_subjects(dbs, token, cols, keyed, bucket_of, labels, report)
    with dbs.ledger.begin() as conn:
        published = rollup.publish_build(
            conn,
            dbs,
            token=token,
            watermark=watermark,
            awaited=awaited,
            day_rows=day_rows,
            bucket_rows=bucket_rows,
            events_applied=n,
            now=started,
        )
    if not published:
        raise rollup.BuildCancelled(
            "The consent roll-up was emptied during the build; it is built again."
        )
    report(1.0, f"Consent roll-up built from {n:,} events")
    return {
        "events": n,
        "subjects": subjects,
        "watermark": watermark,
        "seconds": round(time.perf_counter() - clock, 1),
    }


def _read(dbs: Databases, labels: dict, total: int, report) -> dict[str, np.ndarray]:
    """Every event as `consent_rollup_arrays` event columns."""
    parts: dict[str, list[np.ndarray]] = {}
    query = select(*(events.c[name] for name in arrays.EVENT_COLUMNS)).order_by(events.c.id)
    secret = rollup.ref_key(dbs)
    done = 0
    with dbs.consent.connect() as conn:
        result = conn.execution_options(yield_per=READ_ROWS).execute(query)
        with result:
            for batch in result.partitions():
                for name, values in arrays.event_columns(secret, batch, labels).items():
                    parts.setdefault(name, []).append(values)
                done += len(batch)
                report(0.5 * done / max(total, 1), f"Read {done:,} of {total:,} consent events")
    if not parts:
        return arrays.empty_event_columns()
    return {name: np.concatenate(values) for name, values in parts.items()}


def _awaited(ids: np.ndarray, watermark: int) -> list[int]:
    """Ids within TAIL_IDS below the watermark that were not there (maybe not committed)."""
    floor = max(0, watermark - rollup.TAIL_IDS)
    window = np.arange(floor + 1, watermark + 1, dtype=np.int64)
    return [int(i) for i in np.setdiff1d(window, ids[ids > floor])]


def _day_rows(cols: dict[str, np.ndarray], keyed: np.ndarray, labels) -> list[dict]:
    """Per purpose and Oslo day, the change in (subjects, granted, withdrawn) (R21)."""
    c = {k: v[keyed] for k, v in cols.items()}
    group = np.cumsum(arrays.group_starts(c))
    sums = arrays.day_changes(group, c["day"], c["state"], c["purpose"])
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


def _buckets(cols: dict[str, np.ndarray], labels) -> tuple[np.ndarray, list[dict]]:
    """Bucket id of every event and the bucket rows: events per purpose, Oslo day, action,
    source and notice version (R21 breakdowns)."""
    keys = pd.DataFrame(
        {k: cols[k] for k in ("purpose", "day", "action", "source", "version")}, copy=False
    )
    grouped = keys.groupby(list(keys.columns), sort=True)
    bucket_of = grouped.ngroup().to_numpy(np.int64) + 1
    sizes = grouped.size().reset_index(name="events")
    v = {name: labels[name].values for name in ("purpose", "action", "source", "version")}
    rows = [
        {
            "id": i,
            "purpose": v["purpose"][p],
            "day": arrays.to_date(d),
            "action": v["action"][a],
            "source": v["source"][s],
            "notice_version": v["version"][nv],
            "events": int(count),
        }
        for i, (p, d, a, s, nv, count) in enumerate(sizes.itertuples(index=False), start=1)
    ]
    return bucket_of, rows


def _write_subjects(dbs, token, cols, keyed, bucket_of, labels, report) -> int:
    """Replace every subject history, WRITE_ROWS per transaction; returns how many."""
    c = {k: v[keyed] for k, v in cols.items()}
    buckets = bucket_of[keyed]
    n = len(c["id"])
    with dbs.ledger.begin() as conn:
        _check_owner(conn, token)
        conn.execute(delete(subjects_table))
        conn.execute(delete(recent_table))
    if n == 0:
        return 0
    starts = np.flatnonzero(arrays.group_starts(c))
    ends = np.append(starts[1:], n)
    tokens = arrays.token_texts(c["t"], c["id"], buckets, c["state"])
    purposes = labels["purpose"].values
    refs = arrays.hex_refs(c["ref_hi"][starts], c["ref_lo"][starts])
    group_purpose = c["purpose"][starts].tolist()
    total = len(starts)
    starts_list, ends_list = starts.tolist(), ends.tolist()
    for low in range(0, total, WRITE_ROWS):
        high = min(total, low + WRITE_ROWS)
        texts = arrays.history_texts(tokens, starts_list[low:high], ends_list[low:high])
        rows = [
            (refs[g], purposes[group_purpose[g]], text)
            for g, text in zip(range(low, high), texts, strict=True)
        ]
        with dbs.ledger.begin() as conn:
            _check_owner(conn, token)
            _insert_histories(conn, rows)
        report(0.6 + 0.38 * high / total, f"Wrote {high:,} of {total:,} subject histories")
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
