"""The consent roll-up's definitions over numpy columns of events (RULES.md R20, R21),
shared by the full build (`consent_rollup_build`) and the incremental refresh
(`consent_rollup`), so both compute day-end states and per-day changes the same way.

Event columns are dicts of equal-length numpy arrays:
- id (int64); t: UTC instant in microseconds since 1970 (int64); day: its Europe/Oslo date
  as days since 1970 (int32);
- ref_hi, ref_lo: the keyed hash of the event's R20 subject as two uint64 halves
  (big-endian, so they sort like the hex refs), both 0 for an event about no subject;
- purpose, action, source, version: int32 codes of a `Labels` (None has a code too);
- state: 0 granted, 1 withdrawn, 2 any other action (a subject, but no state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from data_access.clock import OSLO

# Event columns as read from the consent database, in this order.
EVENT_COLUMNS = (
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
ACTION_CODES = {"granted": "g", "withdrawn": "w"}  # any other action: 'x' (a subject, no state)
STATE_LETTERS = np.array(["g", "w", "x"])  # state code -> its letter in a stored history
STATE_OF_LETTER = {"g": 0, "w": 1, "x": 2}
CHANGE_COLUMNS = ["purpose", "day", "subjects", "granted", "withdrawn"]
_EPOCH_DAY = date(1970, 1, 1)


class Labels:
    """Small integer codes for repeated strings (purposes, actions, sources, versions);
    None has a code like any other value. `values[code]` is the value."""

    def __init__(self):
        self.codes: dict[object, int] = {}
        self.values: list[object] = []

    def encode(self, values: Sequence) -> np.ndarray:
        """Codes of `values` (a sequence straight from the database), as int32."""
        for value in set(values) - self.codes.keys():
            self.code(value)
        codes = self.codes
        # A dict look-up per value: a few labels, so cheaper than pandas' factorize.
        return np.array([codes[v] for v in values], dtype=np.int32)

    def code(self, value: object) -> int:
        """The code of one value, added when new."""
        if value not in self.codes:
            self.codes[value] = len(self.values)
            self.values.append(value)
        return self.codes[value]


def new_labels() -> dict[str, Labels]:
    """One `Labels` per coded column: purpose, action, source, version."""
    return {name: Labels() for name in ("purpose", "action", "source", "version")}


def subject_digest(key: bytes, subject: str) -> bytes:
    """Keyed BLAKE2b (a MAC, RFC 7693) of an R20 key, 16 bytes: one pass over a short
    string, so ten million events hash in seconds."""
    return hashlib.blake2b(subject.encode("utf-8"), key=key, digest_size=16).digest()


def hex_refs(ref_hi: np.ndarray, ref_lo: np.ndarray) -> list[str]:
    """The 32-hex-digit subject refs of hash halves (what `subject_digest(...).hex()` gives)."""
    return [f"{hi:016x}{lo:016x}" for hi, lo in zip(ref_hi.tolist(), ref_lo.tolist(), strict=True)]


def event_columns(secret: bytes, rows: Sequence[Sequence], labels: dict[str, Labels]) -> dict:
    """Events as numpy columns. `rows` are tuples in EVENT_COLUMNS order, as the database
    returned them; `secret` keys the subject hashes. Plain object arrays, not a DataFrame:
    pandas would turn every text column into Arrow strings first, which costs more than the
    rest together."""
    raw = dict(zip(EVENT_COLUMNS, zip(*rows, strict=True), strict=True))
    hi, lo = _refs(secret, _keys(raw))
    t = pd.DatetimeIndex(pd.to_datetime(np.array(raw["occurred_at"], dtype=object))).as_unit("us")
    micros = t.asi8 if hasattr(t, "asi8") else t.to_numpy().astype(np.int64)
    action_codes = labels["action"].encode(raw["action"])
    state_of = np.array(
        [STATE_OF_LETTER[ACTION_CODES.get(a, "x")] for a in labels["action"].values] or [0],
        np.int32,
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
        "t": micros,
        "day": oslo_days(micros),
    }


def empty_event_columns() -> dict:
    """Event columns with no rows."""
    wide = {"id": np.int64, "ref_hi": np.uint64, "ref_lo": np.uint64, "t": np.int64}
    out = {name: np.zeros(0, dtype) for name, dtype in wide.items()}
    for name in ("purpose", "action", "source", "version", "state", "day"):
        out[name] = np.zeros(0, np.int32)
    return out


def oslo_days(micros: np.ndarray) -> np.ndarray:
    """The Europe/Oslo date of UTC instants (microseconds since 1970), as days since 1970
    (int32): R20 counts days in Oslo."""
    utc = pd.DatetimeIndex(np.asarray(micros, dtype="datetime64[us]")).tz_localize("UTC")
    local = utc.tz_convert(OSLO).tz_localize(None)
    return local.to_numpy().astype("datetime64[D]").astype(np.int64).astype(np.int32)


def to_date(day: int) -> date:
    """A day number of `oslo_days` as a date."""
    return _EPOCH_DAY + timedelta(days=int(day))


def _keys(raw: dict[str, tuple]) -> list[str | None]:
    """The R20 key of each event (None when it names no subject), as
    `consent_rollup.subject_key` makes it, from the values as the database returned them."""
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


def _refs(secret: bytes, keys: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """The keyed hash of each key as two uint64 halves; (0, 0) for no key."""
    codes, uniques = pd.factorize(np.array(keys, dtype=object))
    digests = b"".join(subject_digest(secret, key) for key in uniques)
    halves = np.frombuffer(digests, dtype=">u8").astype(np.uint64).reshape(-1, 2)
    halves = np.vstack([halves, np.zeros((1, 2), np.uint64)])  # code -1 (no key) -> 0
    picked = halves[codes]
    return picked[:, 0].copy(), picked[:, 1].copy()


def subject_order(cols: dict) -> np.ndarray:
    """The permutation that sorts event columns by subject, purpose, time and id."""
    return np.lexsort((cols["id"], cols["t"], cols["purpose"], cols["ref_lo"], cols["ref_hi"]))


def group_starts(cols: dict) -> np.ndarray:
    """True where a new (subject, purpose) begins in columns sorted by `subject_order`."""
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


def day_changes(
    group: np.ndarray, day: np.ndarray, state: np.ndarray, purpose: np.ndarray
) -> pd.DataFrame:
    """Per purpose code and Oslo day number, the change in (subjects, granted, withdrawn)
    made by some subject-purposes' events (R20, R21): the last event of a subject's day is
    its state at the day's end; its first day adds a subject, each later change of state
    moves it between granted and withdrawn.

    The arrays are per event, sorted by `group` (a number per subject-purpose), time and id.
    Columns: CHANGE_COLUMNS, int64, sorted by purpose and day; days with no change left out.
    """
    n = len(group)
    if n == 0:
        return pd.DataFrame({name: np.zeros(0, np.int64) for name in CHANGE_COLUMNS})
    start = np.ones(n, dtype=bool)
    start[1:] = group[1:] != group[:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = start[1:] | (day[1:] != day[:-1])
    groups = group[last]
    first = np.ones(len(groups), dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    ends, days, purposes = state[last], day[last], purpose[last]
    previous = np.empty_like(ends)
    previous[0] = -1
    previous[1:] = ends[:-1]
    previous[first] = -1
    changed = first | (ends != previous)
    frame = pd.DataFrame(
        {
            "purpose": purposes[changed].astype(np.int64),
            "day": days[changed].astype(np.int64),
            "subjects": first[changed].astype(np.int64),
            "granted": (ends[changed] == 0).astype(np.int64)
            - (previous[changed] == 0).astype(np.int64),
            "withdrawn": (ends[changed] == 1).astype(np.int64)
            - (previous[changed] == 1).astype(np.int64),
        }
    )
    sums = frame.groupby(["purpose", "day"], sort=True).sum().reset_index()
    return sums[(sums[["subjects", "granted", "withdrawn"]] != 0).any(axis=1)]


def token_texts(
    t: np.ndarray, ids: np.ndarray, buckets: np.ndarray, states: np.ndarray
) -> list[str]:
    """Each event as a history token '<us>:<id>:<bucket>:<g|w|x>'."""
    letters = STATE_LETTERS[states].tolist()
    return [
        f"{a}:{b}:{c}:{d}"
        for a, b, c, d in zip(t.tolist(), ids.tolist(), buckets.tolist(), letters, strict=True)
    ]


def history_texts(tokens: list[str], starts: Sequence[int], ends: Sequence[int]) -> list[str]:
    """The stored history of each group: its tokens tokens[start:end] joined by ';'."""
    return [";".join(tokens[s:e]) for s, e in zip(starts, ends, strict=True)]
