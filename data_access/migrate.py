"""`python -m data_access.migrate`: migrate the ledger to the newest schema revision.

The dashboard does the same on start (`cached.migrated_ledger`); this is for a deployment
step that runs before the dashboard, or for a ledger user the dashboard may not change the
schema with. Reads config.toml and the environment like the dashboard (`--config`). Runs
under the migration lock of `engines.migrate_ledger`; prints the revision before and after.
Exits 0 on success, 1 with the error when the ledger cannot be migrated.
"""

from __future__ import annotations

import argparse
import sys

from alembic.runtime.migration import MigrationContext

from data_access.engines import Databases, migrate_ledger
from data_access.settings import config_path, load_settings


def current_revision(dbs: Databases) -> str | None:
    """The ledger's Alembic revision, None for a ledger never migrated."""
    with dbs.ledger.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_access.migrate", description="Migrate the ledger to the newest schema."
    )
    parser.add_argument("--config", default=str(config_path()), help="path of config.toml")
    args = parser.parse_args(argv)
    dbs = Databases.from_settings(load_settings(args.config))
    try:
        before = current_revision(dbs)
        migrate_ledger(dbs.ledger)
        print(f"ledger {dbs.urls['ledger']}: {before or 'empty'} -> {current_revision(dbs)}")
        return 0
    except Exception as exc:  # noqa: BLE001 - the command's whole job is to report it
        print(f"The ledger could not be migrated: {exc}", file=sys.stderr)
        return 1
    finally:
        dbs.dispose()


if __name__ == "__main__":
    sys.exit(main())
