"""The demo data set: realistic, deterministic data in all four databases.

    python -m data_access.demo --scale small|medium|large --seed 42 [--as-of YYYY-MM-DD]
                               [--config config.toml] [--replace]

`generate` fills empty databases; `ensure_demo_data` runs it on the dashboard's first start
in demo mode. The data is anchored to `as_of` (default: today in Europe/Oslo) and identical
for the same seed and `as_of`, whatever the backend: Norwegian people and brewing companies,
accounts in every retention stage (RULES.md R13), invoices across seven financial years
(R15), support contacts over 18 months (R16), consent history for all four purposes with
a few findings (R20-R22), data-subject requests in every state (R1-R8), legal holds (R17),
the register seeded from the privacy policy (R24, R30-R32) and an intact audit chain (R18).

Stores are written one transaction each, the users database last, so an accounts table with
rows means a complete data set. The large scale (1,000,000 accounts, about 20 million rows)
is built for SQLite's bulk path (`demo_load`); see benchmarks/demo_generation.py.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from sqlalchemy import Table, literal, select
from sqlalchemy.exc import SQLAlchemyError

from data_access import audit
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.clock import today_oslo
from data_access.demo_consent import (
    consent_events,
    notice_version_rows,
    notice_versions,
    subscribers,
)
from data_access.demo_ledger import write_ledger
from data_access.demo_load import StoreWriter
from data_access.demo_people import build_pools
from data_access.demo_plan import SCALES, AccountPlan, SubscriberPlan, Timeline
from data_access.demo_support import contacts, plan_requests, request_intake
from data_access.demo_users import accounts, invoices, members, sessions
from data_access.engines import Databases, PseudonymKeyMissing, make_engine, sqlite_file
from data_access.settings import (
    DEFAULT_CONFIG,
    DEMO_ANCHORS_FILE,
    DEMO_MARKER,
    STORES,
    Settings,
    SettingsError,
    demo_marker_text,
    load_settings,
)

Progress = Callable[[float, str], None]
DEMO_SEED = 42
LOCK_FILE = "demo.lock"
# Ledger tables the demo writes: a ledger with rows in any of them is not overwritten.
LEDGER_TABLES = (
    lt.recipients,
    lt.cookies,
    lt.processing_activities,
    lt.legal_holds,
    lt.notices,
    lt.outbox,
    lt.request_cases,
    lt.request_events,
    lt.recipient_tasks,
    lt.audit_log,
)


CONSENT_TABLES = (t.notice_versions, t.consent_events, t.newsletter_subscribers)
SUPPORT_TABLES = (t.contacts, t.data_subject_requests)
USERS_TABLES = (t.accounts, t.account_members, t.invoices, t.usage_sessions)


class DemoDataExists(RuntimeError):
    """The target databases already hold rows; the demo never writes over data."""

    def __init__(self, tables: list[str]):
        super().__init__(
            "These tables already have rows, so no demo data was written: " + ", ".join(tables)
        )
        self.tables = tables


def generate(
    dbs: Databases,
    *,
    scale: str = "small",
    seed: int = DEMO_SEED,
    as_of: date | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, int]:
    """Create the schemas and fill all four databases with demo data; rows per "store.table".

    `scale` is 'small' (2,000 accounts), 'medium' (50,000) or 'large' (1,000,000);
    `as_of` (an Oslo date, default today) anchors every date; the same `seed` and `as_of`
    give the same rows. `progress(fraction, message)` is called after every batch, with
    fraction in 0..1. `timings`, when given, receives seconds per "store.table" (and per
    store for index building). Raises ValueError for an unknown scale and DemoDataExists
    (nothing written) when any target table has rows.
    """
    if scale not in SCALES:
        raise ValueError(f"Unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
    spec = SCALES[scale]
    as_of = as_of or today_oslo()
    folder = demo_folder(dbs)
    if folder is not None and not any(os.path.lexists(p) for p in _files_in(folder)):
        # A fresh folder: every file in it will be the generator's, so it is marked before
        # the first row is written and an interrupted first start is still demo data.
        write_demo_marker(folder)  # creates the four files
    dbs.create_all()
    _refuse_non_empty(dbs)
    if folder is not None:
        write_demo_marker(folder)  # files that were there are demo files now: all empty
    tracker = _Tracker(progress, spec, timings if timings is not None else {})
    tracker.say("Planning the demo data")
    tl = Timeline(as_of)
    plan = AccountPlan(spec, seed, tl, dbs.policy, build_pools(seed))
    subs = SubscriberPlan(spec, seed, tl, plan)
    requests = plan_requests(plan, subs, spec, seed, dbs.policy)
    tracker.stop_clock("planning")

    consent = StoreWriter(dbs.consent, CONSENT_TABLES, background=True)
    support = StoreWriter(dbs.support, SUPPORT_TABLES, background=True)
    try:
        with consent as w:
            tracker.load(
                w, "consent", t.notice_versions, [notice_version_rows(notice_versions(plan))]
            )
            tracker.load(w, "consent", t.newsletter_subscribers, subscribers(subs))
            tracker.load(
                w,
                "consent",
                t.consent_events,
                consent_events(plan, subs, spec.consent_events, seed),
            )
        with support as w:
            tracker.load(w, "support", t.contacts, contacts(plan, spec, seed))
            tracker.load(w, "support", t.data_subject_requests, [request_intake(requests)])
        tracker.say("Writing the ledger: register, holds, notices, request cases, audit log")
        tracker.counts.update(write_ledger(dbs, plan, requests, spec, seed))
        tracker.stop_clock("ledger")
        # Last, and committed only after the other stores: rows in accounts mean every
        # store is complete.
        with StoreWriter(dbs.users, USERS_TABLES, wait_for=[consent, support]) as w:
            tracker.load(w, "users", t.accounts, accounts(plan))
            tracker.load(w, "users", t.account_members, members(plan, seed))
            tracker.load(w, "users", t.invoices, invoices(plan, spec, seed))
            tracker.load(w, "users", t.usage_sessions, sessions(plan, spec, seed))
            tracker.say("Building indexes and committing")
    finally:
        for writer in (consent, support):
            with contextlib.suppress(Exception):
                writer.wait()  # never leave a load running; its error surfaced above
    tracker.stop_clock("indexes and commit (after the last table)")
    audit.write_anchor(dbs)  # the new audit chain's first anchor (R18), when a file is set
    tracker.say("Demo data ready", fraction=1.0)
    return dict(tracker.counts)


class _Tracker:
    """Counts rows, reports progress by rows written, and times each table."""

    def __init__(self, progress: Progress | None, spec, timings: dict[str, float]):
        self.progress = progress
        self.timings = timings
        self.counts: dict[str, int] = {}
        self.done = 0
        self.total = (
            spec.accounts * 1.3
            + spec.invoices
            + spec.sessions
            + spec.consent_events
            + spec.subscribers
            + spec.contacts
            + spec.requests * 6
        )
        self.clock = time.perf_counter()

    def say(self, message: str, fraction: float | None = None) -> None:
        if self.progress is not None:
            self.progress(
                min(0.99, self.done / self.total) if fraction is None else fraction, message
            )

    def load(self, writer: StoreWriter, store: str, table: Table, batches: Iterable[dict]) -> None:
        key = f"{store}.{table.name}"
        self.say(f"Writing {key}")
        rows = 0
        for batch in batches:
            n = writer.write(table, batch)
            rows += n
            self.done += n
            self.say(f"{key}: {rows:,} rows")
        self.counts[key] = rows
        self.stop_clock(key)

    def stop_clock(self, key: str) -> None:
        now = time.perf_counter()
        self.timings[key] = self.timings.get(key, 0.0) + now - self.clock
        self.clock = now


def _refuse_non_empty(dbs: Databases) -> None:
    """Raise DemoDataExists naming every target table that already has a row."""
    targets = [
        (store, table) for store, md in t.SOURCE_METADATA.items() for table in md.sorted_tables
    ]
    targets += [("ledger", table) for table in LEDGER_TABLES]
    busy = []
    for store, table in targets:
        with dbs.engine(store).connect() as conn:
            if conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None:
                busy.append(f"{store}.{table.name}")
    if busy:
        raise DemoDataExists(busy)


# --- first start ---------------------------------------------------------------------------


def ensure_demo_data(settings: Settings, progress: Progress | None = None) -> bool:
    """Generate the small demo data set (seed 42, as of today) on the first start in demo
    mode; True when it did.

    Runs only when every database is a demo SQLite file under `settings.demo_dir`
    (RULES.md R41): any other database is never touched (returns False). Generates when a
    demo file is missing or its accounts table is empty or unreadable (an interrupted
    first start), after removing the incomplete files. A lock file in demo_dir makes a
    second process that starts at the same time wait, then find the data and return False.
    """
    if not settings.demo_mode:
        return False
    settings.demo_dir.mkdir(parents=True, exist_ok=True)
    with _locked(settings.demo_dir / LOCK_FILE):
        if _demo_complete(settings):
            return False
        remove_demo_files(settings)
        dbs = Databases.from_settings(settings)
        try:
            generate(dbs, scale="small", seed=DEMO_SEED, progress=progress)
        finally:
            dbs.dispose()
    return True


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def demo_folder(dbs: Databases) -> Path | None:
    """The folder of the four databases when they are SQLite files `<store>.sqlite` of one
    folder (the demo layout), else None."""
    files = [sqlite_file(dbs.engine(store)) for store in STORES]
    if any(path is None for path in files):
        return None
    folder = files[0].resolve().parent
    return folder if [p.resolve() for p in files] == _files_in(folder) else None


def _files_in(folder: Path) -> list[Path]:
    return [folder / f"{store}.sqlite" for store in STORES]


def write_demo_marker(folder: Path) -> Path:
    """Stamp the four demo SQLite files in `folder` with a new random stamp (their
    `PRAGMA application_id`) and record it in the marker (`settings.DEMO_MARKER`), which
    demo mode checks (RULES.md R41); returns the marker's path."""
    stamp = secrets.randbelow(2**31 - 1) + 1
    for path in _files_in(folder):
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(f"PRAGMA application_id = {stamp}")
            conn.commit()
    marker = folder / DEMO_MARKER
    marker.unlink(missing_ok=True)  # never write through a link planted in its place
    marker.write_text(demo_marker_text(stamp), encoding="utf-8")
    return marker


def demo_files(settings: Settings) -> list[Path]:
    """The four demo SQLite files under demo_dir."""
    return [settings.demo_dir / f"{store}.sqlite" for store in STORES]


def _demo_complete(settings: Settings) -> bool:
    if not all(path.exists() for path in demo_files(settings)):
        return False
    engine = make_engine(settings.demo_url("users"))
    try:
        with engine.connect() as conn:
            return conn.execute(select(t.accounts.c.id).limit(1)).first() is not None
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def remove_demo_files(settings: Settings) -> None:
    """Delete the demo SQLite files (with their WAL, shared-memory and lock files), and the
    demo's own audit anchor file: its anchors describe the ledger being deleted.

    Raises ValueError outside demo mode: only the embedded demo files may be recreated. A
    configured anchor file (`[audit] anchors_file`) is never removed."""
    if not settings.demo_mode:
        raise ValueError("Only the demo SQLite files under demo_dir can be recreated.")
    for path in demo_files(settings):
        for suffix in ("", "-wal", "-shm", "-journal", ".migrate.lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    if not settings.audit.anchors_file:
        (settings.demo_dir / DEMO_ANCHORS_FILE).unlink(missing_ok=True)


# --- command line --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0 done, 1 refused, 2 usage error)."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (SettingsError, FileNotFoundError) as exc:
        print(f"Cannot read the settings: {exc}", file=sys.stderr)
        return 2
    if args.replace:
        if not settings.demo_mode:
            print(
                "--replace only recreates the demo SQLite files under "
                f"{settings.demo_dir}; these databases are not all demo files: "
                + ", ".join(f"{s} from {settings.url_sources[s]}" for s in STORES),
                file=sys.stderr,
            )
            return 2
        remove_demo_files(settings)
    try:
        dbs = Databases.from_settings(settings)
    except PseudonymKeyMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        counts = generate(
            dbs, scale=args.scale, seed=args.seed, as_of=args.as_of, progress=_printer()
        )
    except DemoDataExists as exc:
        hint = " Use --replace to recreate the demo files." if settings.demo_mode else ""
        print(f"{exc}.{hint}", file=sys.stderr)
        return 1
    finally:
        dbs.dispose()
    elapsed = time.perf_counter() - started
    print(f"Generated the {args.scale} demo data (seed {args.seed}) in {elapsed:.1f} s:")
    width = max(len(k) for k in counts)
    for key, rows in counts.items():
        print(f"  {key:<{width}}  {rows:>12,}")
    print(f"  {'total':<{width}}  {sum(counts.values()):>12,}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_access.demo",
        description="Fill the dashboard's four databases with realistic, deterministic demo data.",
    )
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="the day the data is anchored to, YYYY-MM-DD (default: today in Europe/Oslo)",
    )
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="path of config.toml")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="delete and recreate the demo SQLite files first (demo files only)",
    )
    return parser


def _printer() -> Progress:
    """Progress on stderr, one line per tenth."""
    shown = {"tenth": -1}

    def report(fraction: float, message: str) -> None:
        tenth = int(fraction * 10)
        if tenth != shown["tenth"]:
            shown["tenth"] = tenth
            print(f"{fraction:6.0%}  {message}", file=sys.stderr, flush=True)

    return report


if __name__ == "__main__":
    sys.exit(main())
