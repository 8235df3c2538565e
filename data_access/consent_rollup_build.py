"""The full build of the consent roll-up: every consent event read once, by id, and the
summaries computed with numpy (DESIGN.md "Scale and speed"; RULES.md R20, R21).

The same definitions as `consent_rollup`'s incremental path, vectorised for ten million
events: events are sorted by subject, purpose, time and id; the last event of each Oslo day
gives the day-end state (R20); a subject's first day adds a subject, each later change of
state moves it between granted and withdrawn. Subject histories are written in chunks of
their own transactions (the roll-up's status is 'building' meanwhile, so no refresh reads
them half-written); the per-day summaries, the watermark and the awaited ids are swapped
in by one last transaction, so readers see the old figures until the new ones are whole.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, insert, select

from data_access import consent_rollup as rollup
from data_access.clock import OSLO
from data_access.engines import Databases
from data_access.ledger_tables import consent_rollup_state as state_table
from data_access.ledger_tables import consent_rollup_subjects as subjects_table
from data_access.tables import consent_events as events

READ_ROWS = 200_000  # events per read batch
WRITE_ROWS = 50_000  # subject histories per write transaction
_COLUMNS = (
    "id",
    "account_id",
    "email",
    "visitor_id",
    "purpose",
    "action",
    "occurred_at",
    "source",
    "notice_version",
)
_CODES = {"g": 0, "w": 1, "x": 2}
_EPOCH_DAY = date(1970, 1, 1)


class _Labels:
    """Small integer codes for repeated strings (purposes, actions, sources, versions);
    None has a code like any other value."""

    def __init__(self):
        self.codes: dict[object, int] = {}
        self.values: list[object] = []

    def encode(self, values) -> np.ndarray:
        """Codes of `values` (a sequence straight from the database), as int32."""
        for value in set(values) - self.codes.keys():
            self._code(value)
        codes = self.codes
        # A dict look-up per value: a few labels, so cheaper than pandas' factorize.
        return np.array([codes[v] for v in values], dtype=np.int32)

    def _code(self, value: object) -> int:
        if value not in self.codes:
            self.codes[value] = len(self.values)
            self.values.append(value)
        return self.codes[value]


def build(dbs: Databases, *, token: str, progress, started: datetime) -> dict[str, int]:
    """Build the roll-up from all consent events and publish it. Returns events, subjects
    (subject-purposes), watermark and seconds. Raises BuildCancelled when an erasure
    emptied the roll-up meanwhile (the next refresh builds again)."""
    clock = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    report(0.0, "Reading consent events")
    with dbs.consent.connect() as conn:
        total = conn.execute(select(func.count()).select_from(events)).scalar_one()
    labels = {name: _Labels() for name in ("purpose", "action", "source", "version")}
    columns = _read(dbs, labels, total, report)
    n = len(columns["id"])
    watermark = int(columns["id"].max()) if n else 0
    awaited = _awaited(columns["id"], watermark)
    report(0.5, "Computing the summaries")
    order = np.lexsort(
        (columns["id"], columns["t"], columns["purpose"], columns["ref_lo"], columns["ref_hi"])
    )
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


def _read(dbs: Databases, labels: dict[str, _Labels], total: int, report) -> dict[str, np.ndarray]:
    """Every event as numpy columns: id, subject ref (two uint64 halves, 0 for none),
    purpose/action/source/version codes, state code, UTC microseconds, Oslo day number."""
    parts: dict[str, list[np.ndarray]] = {}
    query = select(*(events.c[name] for name in _COLUMNS)).order_by(events.c.id)
    done = 0
    with dbs.consent.connect() as conn:
        result = conn.execution_options(yield_per=READ_ROWS).execute(query)
        with result:
            for batch in result.partitions():
                raw = dict(zip(_COLUMNS, zip(*batch, strict=True), strict=True))
                for name, values in _columns(dbs, raw, labels).items():
                    parts.setdefault(name, []).append(values)
                done += len(batch)
                report(0.5 * done / max(total, 1), f"Read {done:,} of {total:,} consent events")
    if not parts:
        empty = {"id": np.int64, "ref_hi": np.uint64, "ref_lo": np.uint64, "t": np.int64}
        out = {name: np.zeros(0, dtype) for name, dtype in empty.items()}
        for name in ("purpose", "action", "source", "version", "state", "day"):
            out[name] = np.zeros(0, np.int32)
        return out
    return {name: np.concatenate(values) for name, values in parts.items()}


def _columns(
    dbs: Databases, raw: dict[str, tuple], labels: dict[str, _Labels]
) -> dict[str, np.ndarray]:
    """One batch as numpy columns. Plain object arrays, not a DataFrame: pandas would turn
    every text column into Arrow strings first, which costs more than the rest together."""
    hi, lo = _refs(dbs, _keys(raw))
    t = pd.DatetimeIndex(pd.to_datetime(np.array(raw["occurred_at"], dtype=object))).as_unit("us")
    local = t.tz_localize("UTC").tz_convert(OSLO).tz_localize(None)
    day = local.to_numpy().astype("datetime64[D]").astype(np.int64).astype(np.int32)
    action_codes = labels["action"].encode(raw["action"])
    state_of = np.array(
        [_CODES[rollup.ACTION_CODES.get(a, "x")] for a in labels["action"].values] or [0], np.int32
    )
    return {
        "id": np.array(raw["id"], dtype=np.int64),
        "ref_hi": hi,
        "ref_lo": lo,
        "purpose": labels["purpose"].encode(raw["purpose"]),
        "action": action_codes,
        "source": labels["source"].encode(raw["source"]),
        "version": labels["version"].encode(raw["notice_version"]),
        "state": state_of[action_codes],
        "t": t.asi8 if hasattr(t, "asi8") else t.to_numpy().astype(np.int64),
        "day": day,
    }


def _keys(raw: dict[str, tuple]) -> list[str | None]:
    """The R20 key of each event (None when it names no subject), as `subject_key` makes
    it, from the values as the database returned them."""
    return [
        f"account:{int(a)}"
        if a is not None
        else f"email:{e.lower()}"
        if e is not None
        else f"visitor:{v}"
        if v is not None
        else None
        for a, e, v in zip(raw["account_id"], raw["email"], raw["visitor_id"], strict=True)
    ]


def _refs(dbs: Databases, keys: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """The keyed hash of each key as two uint64 halves (big-endian, so their order is the
    order of the hex refs); (0, 0) for no key."""
    codes, uniques = pd.factorize(np.array(keys, dtype=object))
    secret = rollup.ref_key(dbs)
    digests = b"".join(rollup.subject_digest(secret, key) for key in uniques)
    halves = np.frombuffer(digests, dtype=">u8").astype(np.uint64).reshape(-1, 2)
    halves = np.vstack([halves, np.zeros((1, 2), np.uint64)])  # code -1 (no key) -> 0
    picked = halves[codes]
    return picked[:, 0].copy(), picked[:, 1].copy()


def _awaited(ids: np.ndarray, watermark: int) -> list[int]:
    """Ids within TAIL_IDS below the watermark that were not there (maybe not committed)."""
    floor = max(0, watermark - rollup.TAIL_IDS)
    window = np.arange(floor + 1, watermark + 1, dtype=np.int64)
    return [int(i) for i in np.setdiff1d(window, ids[ids > floor])]


def _group_starts(cols: dict[str, np.ndarray]) -> np.ndarray:
    """True where a new (subject, purpose) begins in the sorted columns."""
    n = len(cols["id"])
    start = np.ones(n, dtype=bool)
    if n > 1:
        same = (
            (cols["ref_hi"][1:] == cols["ref_hi"][:-1])
            & (cols["ref_lo"][1:] == cols["ref_lo"][:-1])
            & (cols["purpose"][1:] == cols["purpose"][:-1])
        )
        start[1:] = ~same
    return start


def _to_date(day: int) -> date:
    return _EPOCH_DAY + timedelta(days=int(day))


def _day_rows(cols: dict[str, np.ndarray], keyed: np.ndarray, labels) -> list[dict]:
    """Per purpose and Oslo day, the change in (subjects, granted, withdrawn) (R21)."""
    c = {k: v[keyed] for k, v in cols.items()}
    n = len(c["id"])
    if n == 0:
        return []
    start = _group_starts(c)
    # The last event of a subject's day is its state at the day's end (R20).
    last = np.ones(n, dtype=bool)
    last[:-1] = start[1:] | (c["day"][1:] != c["day"][:-1])
    group = np.cumsum(start)[last]
    first = np.ones(len(group), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    state, day, purpose = c["state"][last], c["day"][last], c["purpose"][last]
    previous = np.empty_like(state)
    previous[0] = -1
    previous[1:] = state[:-1]
    previous[first] = -1
    changed = first | (state != previous)
    frame = pd.DataFrame(
        {
            "purpose": purpose[changed],
            "day": day[changed],
            "subjects": first[changed].astype(np.int64),
            "granted": (state[changed] == 0).astype(np.int64)
            - (previous[changed] == 0).astype(np.int64),
            "withdrawn": (state[changed] == 1).astype(np.int64)
            - (previous[changed] == 1).astype(np.int64),
        }
    )
    sums = frame.groupby(["purpose", "day"], sort=True).sum().reset_index()
    sums = sums[(sums[["subjects", "granted", "withdrawn"]] != 0).any(axis=1)]
    purposes = labels["purpose"].values
    return [
        {
            "purpose": purposes[p],
            "day": _to_date(d),
            "subjects": int(s),
            "granted": int(g),
            "withdrawn": int(w),
        }
        for p, d, s, g, w in sums[
            ["purpose", "day", "subjects", "granted", "withdrawn"]
        ].itertuples(index=False)
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
            "day": _to_date(d),
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
    if n == 0:
        return 0
    starts = np.flatnonzero(_group_starts(c))
    ends = np.append(starts[1:], n)
    letters = np.array(["g", "w", "x"])[c["state"]]
    tokens = [
        f"{t}:{i}:{b}:{a}"
        for t, i, b, a in zip(
            c["t"].tolist(), c["id"].tolist(), buckets.tolist(), letters.tolist(), strict=True
        )
    ]
    purposes = labels["purpose"].values
    refs = [
        f"{hi:016x}{lo:016x}"
        for hi, lo in zip(c["ref_hi"][starts].tolist(), c["ref_lo"][starts].tolist(), strict=True)
    ]
    group_purpose = c["purpose"][starts].tolist()
    total = len(starts)
    starts_list, ends_list = starts.tolist(), ends.tolist()
    for low in range(0, total, WRITE_ROWS):
        high = min(total, low + WRITE_ROWS)
        rows = [
            (refs[g], purposes[group_purpose[g]], ";".join(tokens[starts_list[g] : ends_list[g]]))
            for g in range(low, high)
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
