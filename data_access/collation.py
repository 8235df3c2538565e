"""Names in Norwegian alphabetical order (… Z, Æ, Ø, Å), the same on every backend.

SQLite and PostgreSQL with the C collation put Å before Æ and Ø; MariaDB's default
collation puts Å with A. So the database only chooses *which* rows (by id, under the row
cap) and the rows are sorted here with ICU's bokmål collation (`icu.Collator`, locale
nb_NO): "Zahl", "Ærø-Hansen", "Ødegård", "Åsheim"; "aa" sorts as "å", case and accents
second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import icu

LOCALE = "nb_NO"
T = TypeVar("T")

# One collator per thread: ICU collators are not documented as safe to share between
# threads, and Streamlit runs each session's script on its own thread.
_local = threading.local()


def _collator() -> icu.Collator:
    collator = getattr(_local, "collator", None)
    if collator is None:
        collator = _local.collator = icu.Collator.createInstance(icu.Locale(LOCALE))
    return collator


def name_key(name: Any) -> bytes:
    """The sort key of `name` in Norwegian order; None and "" sort first."""
    return _collator().getSortKey(str(name or ""))


def sorted_by_name(
    items: Iterable[T], name: Callable[[T], Any], *then: Callable[[T], Any]
) -> list[T]:
    """`items` in Norwegian order of `name(item)`, ties broken by each of `then` (e.g. the id,
    so the order is total)."""
    return sorted(items, key=lambda item: (name_key(name(item)), *(f(item) for f in then)))
