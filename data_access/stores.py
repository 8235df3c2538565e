"""Stores: where data lives, named so that what an action wrote can be matched with what a
cached read function read (DESIGN.md "Actions"; pages clear caches by store).

A store is a database ("users", "consent", "support", "ledger") or one of its tables, written
"database.table" ("ledger.audit_log"). A database overlaps every one of its tables, so an
action that writes "users" (it deletes accounts with everything under them) clears a reader
of "users.invoices".

Every action the pages call declares what it may write with `@writes(...)`; `written_by`
reads that declaration back. Declare the union over every path through the action (a
resumed job may be of any kind it resumes), never less: a store left out leaves a page
showing what the action changed for up to the cache's TTL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

DATABASES = ("users", "consent", "support", "ledger")

# Groups of tables that are written together.
AUDIT = ("ledger.audit_log", "ledger.audit_head")
OUTBOX = ("ledger.notices", "ledger.outbox")
JOBS = ("ledger.jobs", "ledger.job_steps")
HOLDS = ("ledger.legal_holds", "ledger.hold_blocks")
REQUEST_LEDGER = (
    "ledger.request_cases",
    "ledger.request_events",
    "ledger.recipient_tasks",
    "ledger.erasure_receipts",
)
REQUESTS = ("support.data_subject_requests", *REQUEST_LEDGER)
REGISTER = ("ledger.processing_activities", "ledger.recipients", "ledger.cookies")
CONSENT_ROLLUP = (
    "ledger.consent_rollup_state",
    "ledger.consent_rollup_gaps",
    "ledger.consent_rollup_subjects",
    "ledger.consent_rollup_recent",
    "ledger.consent_rollup_days",
    "ledger.consent_rollup_events",
)

BREACHES = (
    "ledger.breaches",
    "ledger.breach_events",
    "ledger.breach_links",
    "ledger.breach_subjects",
)
DAILY = ("ledger.daily_runs", "ledger.daily_run_steps", "ledger.daily_run_lock")
RADAR = ("ledger.radar_items",)
KEPT_INVOICES = ("ledger.kept_invoices",)

F = TypeVar("F", bound=Callable)


def checked(names: Iterable[str]) -> frozenset[str]:
    """`names` as a frozenset; ValueError when one is not "database" or "database.table"
    of a known database, or when there are none."""
    stores = frozenset(names)
    if not stores:
        raise ValueError("declare at least one store")
    for name in stores:
        database, _, table = name.partition(".")
        if database not in DATABASES or (name != database and not table):
            raise ValueError(f"{name!r} is not a store: use 'database' or 'database.table'")
    return stores


def overlaps(a: str, b: str) -> bool:
    """True when the stores `a` and `b` share data: equal, or one is the other's database."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def any_overlap(read: Iterable[str], written: Iterable[str]) -> bool:
    """True when any store in `read` overlaps any store in `written`."""
    written = tuple(written)
    return any(overlaps(r, w) for r in read for w in written)


def writes(*names: str) -> Callable[[F], F]:
    """Decorator: the action may write these stores (kept as `function.writes_stores`)."""
    stores = checked(names)

    def mark(function: F) -> F:
        function.writes_stores = stores
        return function

    return mark


def written_by(function: Callable) -> frozenset[str]:
    """The stores `function` declared with `@writes`. TypeError when it declared none: an
    action the pages run must say what it changes."""
    stores = getattr(function, "writes_stores", None)
    if not stores:
        name = getattr(function, "__qualname__", repr(function))
        raise TypeError(f"{name} declares no stores it writes (data_access.stores.writes)")
    return stores
