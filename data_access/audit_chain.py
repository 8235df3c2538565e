"""How an audit entry's hash is computed (DESIGN.md "Pseudonyms and the hash chain"; RULES.md
R18): the pure functions `audit` writes with and `audit_check` verifies with.

An entry's hash is HMAC-SHA256 under the audit key over the previous entry's hash and the
entry's canonical JSON (sorted keys, ISO dates). The audit key is never stored in the
ledger: it is `DPO_AUDIT_KEY` when set, else derived from the pseudonym key
(`derive_audit_key`). Ledgers written before keyed hashing hold entries hashed with plain
SHA-256 over the same text (`legacy_entry_hash`); such entries are accepted only as the
chain's first entries, never after a keyed one (see `audit_check`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, datetime
from typing import Any

GENESIS = "0" * 64
# The execution option of the ledger engine that carries the audit key to `audit.append`,
# which is handed only a connection (Databases sets it; see engines.Databases.ledger).
KEY_OPTION = "dpo_audit_key"
# Fixed label of the derivation, so the audit key differs from the pseudonym key it comes from.
_DERIVATION_LABEL = b"dpo-dashboard audit chain key v1"
HASHED_COLUMNS = (
    "occurred_at",
    "actor",
    "action",
    "rule",
    "store",
    "subject_ref",
    "target",
    "counts",
    "details",
)


def derive_audit_key(pseudonym_key: bytes) -> bytes:
    """The audit key when no `DPO_AUDIT_KEY` is set: HMAC-SHA256(pseudonym key, fixed label),
    32 bytes. Knowing it does not give the pseudonym key back."""
    return hmac.new(pseudonym_key, _DERIVATION_LABEL, hashlib.sha256).digest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces and ISO dates: the form that is hashed."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), default=_iso, ensure_ascii=False
    )


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _hashed_text(prev_hash: str, row: dict[str, Any]) -> bytes:
    body = {column: row[column] for column in HASHED_COLUMNS}
    return (prev_hash + canonical_json(body)).encode("utf-8")


def entry_hash(key: bytes, prev_hash: str, row: dict[str, Any]) -> str:
    """HMAC-SHA256(key, prev_hash + canonical JSON of the hashed columns), 64 hex characters."""
    return hmac.new(key, _hashed_text(prev_hash, row), hashlib.sha256).hexdigest()


def legacy_entry_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The unkeyed SHA-256 of entries written before keyed hashing, 64 hex characters."""
    return hashlib.sha256(_hashed_text(prev_hash, row)).hexdigest()


def same_hash(one: str | None, other: str | None) -> bool:
    """Constant-time comparison of two hex digests (None never matches)."""
    if one is None or other is None:
        return False
    return hmac.compare_digest(str(one), str(other))
