"""Prepared files and look-ups held in the server's memory, so an erasure can clear them in
every session (RULES.md R12, R18).

A session keeps only an opaque token (in its session state); the value (an export's bytes,
the e-mail a Subject lookup is for) is held here, process-wide, with the keyed hashes
(`audit.keyed_hash`) of the data subjects it is about. Erasing a person or deleting their
account (`forget_subject`) drops every value about them and every value about many people (a
table export of accounts, contacts, ...), whichever session prepared it: a session then
finds its token unknown and shows that the prepared file is gone. Values also expire
`MAX_AGE_SECONDS` after they were held, so a closed tab leaves nothing behind for long.

One registry per server process: the dashboard serves every session from one process.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

MAX_AGE_SECONDS = 3600
MAX_ENTRIES = 1000


@dataclass(frozen=True)
class _Held:
    value: Any
    # None: about many people (cleared by every erasure); else their keyed hashes.
    subjects: frozenset[str] | None


_lock = threading.Lock()
_held: TTLCache = TTLCache(maxsize=MAX_ENTRIES, ttl=MAX_AGE_SECONDS)


def hold(value: Any, *, subjects: Iterable[str] | None) -> str:
    """Keep `value` and return its token. `subjects`: keyed hashes of the people it is
    about; `()` for no one (not personal data); None for many or unknown people."""
    token = secrets.token_urlsafe(16)
    about = None if subjects is None else frozenset(subjects)
    with _lock:
        _held[token] = _Held(value, about)
    return token


def get(token: str | None) -> Any | None:
    """The value held under `token`, or None when it expired, was dropped or never was."""
    if not token:
        return None
    with _lock:
        held = _held.get(token)
    return None if held is None else held.value


def drop(token: str | None) -> None:
    """Forget the value under `token` (a session replacing its prepared file)."""
    with _lock:
        _held.pop(token, None)


def forget_subject(subject_ref: str) -> int:
    """Drop every value about the person with this keyed hash, and every value about many
    people (it may hold them too). Returns how many were dropped."""
    with _lock:
        gone = [
            token
            for token, held in _held.items()
            if held.subjects is None or subject_ref in held.subjects
        ]
        for token in gone:
            del _held[token]
    return len(gone)


def count() -> int:
    """How many values are held now (expired ones excluded)."""
    with _lock:
        _held.expire()
        return len(_held)
