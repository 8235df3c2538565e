"""Verification of the audit chain against its head row and its anchors (RULES.md R18;
DESIGN.md "Pseudonyms and the hash chain"). `audit.verify_chain` is the entry point.

Three things are compared, each reported in words:
- every entry with its content and predecessor, under the audit key (an edit, a removed
  entry, or the wrong key shows at the first entry that no longer matches);
- the chain head row (audit_head: count and last hash) with the log (a removed tail whose
  head was left alone, a removed head row);
- every anchor in the anchor file with the log: an anchor that counted more entries than
  the log holds shows the missing ones; one whose hash no longer matches the entry at its
  position shows a rewrite. These catch what the chain alone cannot: the newest entries
  removed together with a corrected head, everything deleted, and a chain rewritten and
  rehashed by someone who holds the key.
Entries are numbered by their position in the chain (1 = oldest), as anchors count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, select

from data_access.audit_anchors import Anchor, AnchorFile, read_anchors
from data_access.audit_chain import GENESIS, entry_hash, legacy_entry_hash, same_hash
from data_access.ledger_tables import audit_head, audit_log


class ChainReport(tuple):
    """The outcome of `audit.verify_chain`: the tuple (ok, first_broken) existing callers
    unpack or compare with `(True, None)`, plus the findings.

    `ok`: no problem found. `first_broken`: the id of the first entry that no longer
    matches, or of the last remaining entry when entries are missing after it (None when
    the log is empty or nothing is wrong). `problems`: one sentence per finding, e.g.
    "Entries 951–1000 are missing since the anchor of 2026-12-01 06:00 UTC …".
    `warnings`: what limits the check without being a finding (no anchor file yet,
    entries from before keyed hashing). `entries`, `head`, `last_id`: the log as read;
    `legacy_entries`: how many of the oldest entries carry the unkeyed hash; `anchor`: the
    latest valid anchor, or None."""

    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    entries: int
    head: str
    last_id: int | None
    legacy_entries: int
    anchor: Anchor | None

    def __new__(cls, first_broken: int | None = None, **findings):
        problems = tuple(findings.pop("problems", ()))
        self = super().__new__(cls, (not problems, first_broken if problems else None))
        self.problems = problems
        self.warnings = tuple(findings.pop("warnings", ()))
        self.entries = findings.pop("entries", 0)
        self.head = findings.pop("head", GENESIS)
        self.last_id = findings.pop("last_id", None)
        self.legacy_entries = findings.pop("legacy_entries", 0)
        self.anchor = findings.pop("anchor", None)
        if findings:
            raise TypeError(f"unknown findings: {', '.join(findings)}")
        return self

    def __getnewargs_ex__(self):  # pickling (st.cache_data) restores the findings separately
        return (self[1],), {"problems": self.problems}

    @property
    def ok(self) -> bool:
        return self[0]

    @property
    def first_broken(self) -> int | None:
        return self[1]


@dataclass
class _Walk:
    """What streaming the log found: counts, the last entry, the first break, and the hash
    and id at each position an anchor names."""

    wanted: set[int]
    entries: int = 0
    head: str = GENESIS
    last_id: int | None = None
    legacy: int = 0
    broken_at: int | None = None  # position of the first entry that does not match
    broken_id: int | None = None
    broken_why: str = ""
    at_position: dict[int, tuple[str, int]] = field(default_factory=dict)


def check(conn: Connection, key: bytes, anchors_file: Path | None) -> ChainReport:
    """Compare the log with its head row and the anchors in `anchors_file` (None: not
    configured). Reads the anchors first, then the head, then the log, so entries appended
    meanwhile only extend what the earlier reads named."""
    found = read_anchors(anchors_file, key) if anchors_file else None
    anchors = found.anchors if found else []
    head_row = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().first()
    wanted = {a.entries for a in anchors} | ({head_row["entries"]} if head_row else set())
    walk = _walk(conn, key, wanted - {0})
    problems: list[tuple[int | None, str]] = []
    if walk.broken_at is not None:
        problems.append((walk.broken_id, walk.broken_why))
    problems += _head_problems(walk, head_row)
    problems += _anchor_problems(walk, anchors)
    problems += [(walk.last_id, sentence) for sentence in (found.problems if found else [])]
    problems += _unkeyed_after_anchor(walk, anchors)
    return ChainReport(
        min((i for i, _ in problems if i is not None), default=None),
        problems=[sentence for _, sentence in problems],
        warnings=_warnings(walk, found, anchors_file),
        entries=walk.entries,
        head=walk.head,
        last_id=walk.last_id,
        legacy_entries=walk.legacy,
        anchor=found.latest if found else None,
    )


def _walk(conn: Connection, key: bytes, wanted: set[int]) -> _Walk:
    """Stream the log in id order once. After the first break the rest is only counted."""
    walk = _Walk(wanted=wanted)
    result = conn.execution_options(yield_per=5000).execute(
        select(audit_log).order_by(audit_log.c.id)
    )
    # Closing the streamed result drains the server cursor, so the connection goes back to
    # the pool clean (MariaDB warns about unread rows).
    with result:
        for row in result.mappings():
            walk.entries += 1
            if walk.broken_at is None:
                _step(walk, key, dict(row))
            walk.head, walk.last_id = row["hash"], row["id"]
            if walk.entries in wanted:
                walk.at_position[walk.entries] = (row["hash"], row["id"])
    return walk


def _step(walk: _Walk, key: bytes, entry: dict) -> None:
    """Check one entry against its predecessor (walk.head) and its content."""
    n, prev = walk.entries, walk.head
    if not same_hash(entry["prev_hash"], prev):
        walk.broken_why = (
            f"The first entry (id {entry['id']}) does not start the chain: entries before it "
            "were removed."
            if n == 1
            else f"Entry {n:,} (id {entry['id']}) does not follow entry {n - 1:,}: an entry "
            "between them was removed, or one of the two was changed."
        )
    elif same_hash(entry_hash(key, prev, entry), entry["hash"]):
        return
    elif walk.legacy == n - 1 and same_hash(legacy_entry_hash(prev, entry), entry["hash"]):
        walk.legacy += 1  # written before keyed hashing: only a prefix may be unkeyed
        return
    else:
        walk.broken_why = (
            f"Entry {n:,} (id {entry['id']}) does not match its content under the audit key: "
            "it was changed after it was written, or the audit key is not the one the "
            "chain was written with."
        )
    walk.broken_at, walk.broken_id = n, entry["id"]


def _trusted(walk: _Walk, position: int) -> bool:
    return walk.broken_at is None or position < walk.broken_at


def _head_problems(walk: _Walk, head_row) -> list[tuple[int | None, str]]:
    if head_row is None:
        return [
            (
                walk.last_id,
                "The chain head row (audit_head) is missing: it is created with the ledger "
                "and never deleted, so it was removed.",
            )
        ]
    counted, named = head_row["entries"], head_row["hash"]
    if counted > walk.entries:
        return [
            (
                walk.last_id,
                f"The chain head counts {counted:,} entries but the log holds "
                f"{walk.entries:,}: {_span(walk.entries + 1, counted)} missing.",
            )
        ]
    held = walk.at_position.get(counted, (GENESIS, None))[0]
    if _trusted(walk, max(counted, 1)) and not same_hash(held, named):
        return [
            (
                walk.last_id,
                f"The chain head names hash {named[:12]} for entry {counted:,}, but that "
                f"entry has {held[:12]}: the newest entries were removed, or the head was "
                "changed.",
            )
        ]
    return []


def _anchor_problems(walk: _Walk, anchors: list[Anchor]) -> list[tuple[int | None, str]]:
    """Missing entries (an anchor counted more than the log holds) and rewrites (an anchor's
    hash no longer matches the entry at its position), one sentence each."""
    problems = []
    beyond = [a for a in anchors if a.entries > walk.entries]
    if beyond:
        most = max(beyond, key=lambda a: (a.entries, a.line))
        problems.append(
            (
                walk.last_id,
                f"{_span(walk.entries + 1, most.entries).capitalize()} "
                f"{'is' if most.entries == walk.entries + 1 else 'are'} missing since the "
                f"anchor of {most.when} (line {most.line}), which counted {most.entries:,} "
                f"entries; the log holds {walk.entries:,}.",
            )
        )
    within = sorted(
        (a for a in anchors if 0 < a.entries <= walk.entries and _trusted(walk, a.entries)),
        key=lambda a: (a.entries, a.line),
    )
    intact_up_to, since = 0, None
    for anchor in within:
        held, held_id = walk.at_position[anchor.entries]
        if not same_hash(held, anchor.head):
            problems.append((held_id, _rewrite(anchor, held_id, intact_up_to, since)))
            break
        intact_up_to, since = anchor.entries, anchor
    return problems


def _rewrite(anchor: Anchor, held_id: int, intact_up_to: int, since: Anchor | None) -> str:
    still = (
        f" Entries 1–{intact_up_to:,} still match the anchor of {since.when}."
        if since is not None
        else ""
    )
    return (
        f"{_span(intact_up_to + 1, anchor.entries).capitalize()} "
        f"{'was' if intact_up_to + 1 == anchor.entries else 'were'} rewritten since the "
        f"anchor of {anchor.when} (line {anchor.line}): entry {anchor.entries:,} (id "
        f"{held_id}) no longer has the hash {anchor.head[:12]} recorded then.{still}"
    )


def _unkeyed_after_anchor(walk: _Walk, anchors: list[Anchor]) -> list[tuple[int | None, str]]:
    """Unkeyed entries are older than keyed hashing, hence older than every anchor."""
    anchored = max((a.entries for a in anchors), default=None)
    if anchored is None or walk.legacy <= anchored:
        return []
    latest = max(anchors, key=lambda a: (a.entries, a.line))
    return [
        (
            walk.last_id,
            f"The unkeyed hash of before keyed hashing is found in "
            f"{_span(anchored + 1, walk.legacy)}, after the anchor of {latest.when}: "
            "they were rewritten without the audit key.",
        )
    ]


def _warnings(walk: _Walk, found: AnchorFile | None, path: Path | None) -> list[str]:
    warnings = []
    if found is None:
        warnings.append(
            "No anchor file is configured ([audit] anchors_file): removing the newest "
            "entries or rewriting the whole chain cannot be detected."
        )
    elif found.missing:
        warnings.append(
            f"There is no anchor file at {path} yet: removing the newest entries or "
            "rewriting the whole chain cannot be detected until one is written (every "
            "export and prepared report writes one)."
        )
    elif found.latest and walk.entries > found.latest.entries:
        warnings.append(
            f"Not anchored yet: {_span(found.latest.entries + 1, walk.entries)}, written "
            f"after the latest anchor ({found.latest.when}); the next anchor covers them."
        )
    if walk.legacy:
        warnings.append(
            f"Written before keyed hashing (plain SHA-256): {_span(1, walk.legacy)}. Only "
            "the anchors protect them against a rewrite."
        )
    return warnings


def _span(first: int, last: int) -> str:
    """ "entry 7" or "entries 951–1000" (positions in the chain)."""
    return f"entry {first:,}" if first == last else f"entries {first:,}–{last:,}"
