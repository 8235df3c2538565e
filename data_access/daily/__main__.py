"""`python -m data_access.daily [--as-of YYYY-MM-DD] [--dry-run]`: the nightly run, for cron
or a systemd timer. Reads config.toml (or the file DPO_CONFIG names) like the dashboard.

Exit status: 0 when every step succeeded (or was skipped), 1 when a step failed (in a dry
run too), 2 when another run holds the lock (argparse also exits 2 for bad arguments), 3
for bad settings or a ledger that cannot be used. A run first migrates the ledger to the
current schema, as the dashboard's start does.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from data_access.daily.nightly import ACTOR, run
from data_access.engines import Databases, DatabaseUnavailable, migrate_ledger, sqlite_file
from data_access.settings import SettingsError, config_path, load_settings

EXIT = {"ok": 0, "dry_run": 0, "failed": 1, "locked": 2}


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m data_access.daily",
        description="The DPO dashboard's nightly run: consent roll-up, outbox, interrupted "
        "jobs, audit anchor, deadline radar and the digest e-mail.",
    )
    p.add_argument("--as-of", type=_day, help="the Europe/Oslo date to run for (default today)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show what the run would do and print the digest; change no table, send nothing",
    )
    p.add_argument("--actor", default=ACTOR, help=f"the audit log's actor (default {ACTOR})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(config_path())
        dbs = Databases.from_settings(settings)
    except (SettingsError, FileNotFoundError, RuntimeError) as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 3
    try:
        problem = _ledger_problem(dbs, dry_run=args.dry_run)
        if problem:
            print(f"Cannot start: {problem}", file=sys.stderr)
            return 3
        result = run(dbs, as_of=args.as_of, dry_run=args.dry_run, actor=args.actor)
    finally:
        dbs.dispose()
    print(result.summary())
    if args.dry_run and result.digest:
        print("\n--- digest (not sent) ---\n" + result.digest)
    return 1 if result.failed_steps else EXIT[result.outcome]


def _ledger_problem(dbs: Databases, *, dry_run: bool) -> str | None:
    """Why the run cannot start on this ledger, or None. A run migrates the ledger to the
    current schema first (as the dashboard's start does); a dry run changes nothing, so it
    refuses a SQLite ledger that does not exist yet instead of creating it."""
    try:
        ledger = dbs.ledger
    except DatabaseUnavailable as exc:
        return str(exc)
    if dry_run:
        path = sqlite_file(ledger)
        if path is not None and not path.exists():
            return f"the ledger {path} does not exist yet: run once without --dry-run"
        return None
    migrate_ledger(ledger)
    return None


if __name__ == "__main__":
    sys.exit(main())
