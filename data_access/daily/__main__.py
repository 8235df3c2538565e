"""`python -m data_access.daily [--as-of YYYY-MM-DD] [--dry-run]`: the nightly run, for cron
or a systemd timer. Reads config.toml (or the file DPO_CONFIG names) like the dashboard.

Exit status: 0 when every step succeeded (or was skipped), 1 when a step failed, 2 when
another run holds the lock, 3 for bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from data_access.daily.nightly import ACTOR, run
from data_access.engines import Databases
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
        if not args.dry_run:
            dbs.ledger  # noqa: B018 - raises DatabaseUnavailable for an unusable URL
        result = run(dbs, as_of=args.as_of, dry_run=args.dry_run, actor=args.actor)
    finally:
        dbs.dispose()
    print(result.summary())
    if args.dry_run and result.digest:
        print("\n--- digest (not sent) ---\n" + result.digest)
    return EXIT[result.outcome]


if __name__ == "__main__":
    sys.exit(main())
