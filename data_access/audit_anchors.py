"""Anchors of the audit chain outside the ledger (RULES.md R18; DESIGN.md "Pseudonyms and the
hash chain").

An anchor records how many entries the chain held, the hash of the last one and when (UTC).
Anchors are lines appended to a file (`[audit] anchors_file`; `data/audit-anchors.log` in
demo mode) that the ledger's users cannot rewrite: the product opens it only with O_APPEND,
never truncates or rewrites it, and the deployment keeps it out of their reach (another
volume, `chattr +a`, a log shipper). Whoever can rewrite the ledger then still cannot make
an earlier anchor agree with a truncated or rewritten chain.

One line per anchor, JSON: {"at": "2026-12-01T06:00:00Z", "entries": 1000, "last_id": 1000,
"head": "<64 hex>", "mac": "<64 hex>"}; `mac` is HMAC-SHA256 under the audit key over the
canonical JSON of the other four fields, so a line appended by someone without the key is
recognised as forged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from data_access.audit_chain import canonical_json, same_hash

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Anchor:
    """One anchor: `entries` in the chain at `at` (naive UTC, whole seconds), `head` the hash
    of the last of them (GENESIS when none), `last_id` its id (None when none), `line` its line
    number in the file (0 before it is written)."""

    at: datetime
    entries: int
    head: str
    last_id: int | None
    line: int = 0

    @property
    def head_label(self) -> str:
        """E.g. "1,000 entries, head 3fa9c2e1b0d4": what exports and receipts print."""
        return f"{self.entries:,} entries, head {self.head[:12]}"

    @property
    def label(self) -> str:
        """E.g. "1,000 entries, head 3fa9c2e1b0d4, anchored 2026-12-01 06:00 UTC"."""
        return f"{self.head_label}, anchored {self.when}"

    @property
    def when(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} UTC"


@dataclass
class AnchorFile:
    """What an anchor file holds: the anchors that parse and carry the audit key's mac, in
    file order, and one sentence per line that does not (`problems`). `missing`: no file."""

    path: Path
    anchors: list[Anchor] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing: bool = False

    @property
    def latest(self) -> Anchor | None:
        return self.anchors[-1] if self.anchors else None


def anchor_line(anchor: Anchor, key: bytes) -> str:
    """The anchor as one JSON line (with its trailing newline), signed under `key`."""
    body = _body(anchor)
    return canonical_json({**body, "mac": _mac(key, body)}) + "\n"


def append_anchor(path: Path, anchor: Anchor, key: bytes) -> None:
    """Append one anchor line to `path` (created with mode 0640 when missing).

    Opened with O_APPEND and written with a single write, then fsync'd: earlier lines are
    never touched, and two writers never interleave inside a line. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = anchor_line(anchor, key).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_anchors(path: Path, key: bytes) -> AnchorFile:
    """Every anchor in `path`. Never raises for the file's content: an unreadable file, a
    line that is not an anchor, or one whose mac does not match `key` is a sentence in
    `problems`; a missing file sets `missing`."""
    found = AnchorFile(path=path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        found.missing = True
        return found
    except OSError as exc:
        found.problems.append(f"The anchor file {path} cannot be read ({exc.strerror or exc}).")
        return found
    for number, text in enumerate(raw.split(b"\n"), start=1):
        if not text.strip():
            continue
        anchor, problem = _parse(text, number, key)
        if problem:
            found.problems.append(f"Line {number} of the anchor file {path} {problem}.")
        else:
            found.anchors.append(anchor)
    return found


def _parse(text: bytes, number: int, key: bytes) -> tuple[Anchor | None, str | None]:
    try:
        value = json.loads(text.decode("utf-8"))
        at = datetime.strptime(value["at"], "%Y-%m-%dT%H:%M:%SZ")
        entries, last_id, head, mac = (value[k] for k in ("entries", "last_id", "head", "mac"))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None, "is not an anchor (garbled or edited)"
    if not (
        type(entries) is int
        and entries >= 0
        and (last_id is None or type(last_id) is int)
        and isinstance(head, str)
        and _HEX64.fullmatch(head)
        and isinstance(mac, str)
    ):
        return None, "is not an anchor (garbled or edited)"
    anchor = Anchor(at=at, entries=entries, head=head, last_id=last_id, line=number)
    if not same_hash(_mac(key, _body(anchor)), mac):
        return None, "does not carry the audit key's signature (forged, or another key)"
    return anchor, None


def _body(anchor: Anchor) -> dict:
    at = anchor.at.astimezone(UTC) if anchor.at.tzinfo else anchor.at
    return {
        "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entries": anchor.entries,
        "last_id": anchor.last_id,
        "head": anchor.head,
    }


def _mac(key: bytes, body: dict) -> str:
    return hmac.new(key, canonical_json(body).encode("utf-8"), hashlib.sha256).hexdigest()
