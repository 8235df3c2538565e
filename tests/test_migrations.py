"""The ledger's Alembic migrations build exactly `ledger_tables.ledger_metadata`, on SQLite,
PostgreSQL and MariaDB, and are safe to re-run (DESIGN.md "Ledger, first migration").

`compare_metadata` runs with type and server-default comparison on. It reports nothing to
ignore on any of the three backends: the migration spells every type the way the Table
objects do (CHAR(64), String lengths, Boolean), so no dialect-specific filter is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, text

from data_access import audit, jobs
from data_access.engines import Databases, alembic_config, make_engine, migrate_ledger
from data_access.ledger_tables import LEDGER_TABLES, audit_head, audit_log, ledger_metadata
from tests.conftest import ROOT


def schema_differences(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, ledger_metadata)


def ledger_revision(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def drop_ledger(engine: Engine) -> None:
    """Back to an empty ledger database: every table and the version table dropped."""
    ledger_metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    assert inspect(engine).get_table_names() == []


def head_rows(dbs: Databases) -> list[dict]:
    with dbs.ledger.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_head)).mappings()]


def test_migrated_ledger_matches_ledger_tables(empty_dbs):
    assert schema_differences(empty_dbs.ledger) == []
    assert sorted(inspect(empty_dbs.ledger).get_table_names()) == sorted(
        [*LEDGER_TABLES, "alembic_version"]
    )
    assert ledger_revision(empty_dbs.ledger) == [head_revision()] == ["0007_kept_invoices"]


def test_migration_seeds_the_audit_chain_head(empty_dbs):
    assert head_rows(empty_dbs) == [{"id": 1, "hash": audit.GENESIS, "entries": 0}]


def test_create_all_twice_is_harmless_and_keeps_data(empty_dbs):
    with empty_dbs.ledger.begin() as conn:
        audit.append(conn, actor="dpo@plaato.example", action="export", rule="R40")
    empty_dbs.create_all()
    assert schema_differences(empty_dbs.ledger) == []
    assert ledger_revision(empty_dbs.ledger) == ["0007_kept_invoices"]
    assert head_rows(empty_dbs)[0]["entries"] == 1
    with empty_dbs.ledger.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == 1
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_migration_interrupted_after_some_tables_reruns_to_completion(empty_dbs):
    """MariaDB commits each CREATE TABLE on its own: a first start killed half-way leaves
    tables but no alembic_version row. The next start must finish the job."""
    engine = empty_dbs.ledger
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    for name in ("job_steps", "recipient_tasks", "notices"):
        ledger_metadata.tables[name].drop(engine)
    migrate_ledger(engine)
    assert schema_differences(engine) == []
    assert ledger_revision(engine) == ["0007_kept_invoices"]
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("notices")}
    assert "ix_notices_account_id" in indexes


def test_migration_onto_tables_created_beforehand_completes(empty_dbs):
    engine = empty_dbs.ledger
    drop_ledger(engine)
    # Left behind by an interrupted first start: two tables, one with its index.
    for name in ("audit_log", "legal_holds"):
        ledger_metadata.tables[name].create(engine)
    migrate_ledger(engine)
    assert schema_differences(engine) == []
    assert ledger_revision(engine) == ["0007_kept_invoices"]
    assert head_rows(empty_dbs) == [{"id": 1, "hash": audit.GENESIS, "entries": 0}]


def test_two_first_starts_at_once_migrate_once(empty_dbs):
    engine = empty_dbs.ledger
    drop_ledger(engine)
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        try:
            barrier.wait(timeout=30)
            migrate_ledger(engine)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert schema_differences(engine) == []
    assert ledger_revision(engine) == ["0007_kept_invoices"]
    assert len(head_rows(empty_dbs)) == 1


@pytest.mark.parametrize("store", ["users", "consent", "support"])
def test_create_all_leaves_existing_source_tables_alone(sqlite_dbs, store):
    engine = sqlite_dbs.engine(store)
    before = sorted(inspect(engine).get_table_names())
    sqlite_dbs.create_all()
    assert sorted(inspect(engine).get_table_names()) == before
    assert "alembic_version" not in before


def test_the_lease_migration_reruns_after_a_partial_run_and_frees_jobs_left_running(empty_dbs):
    """A ledger at 0003 with a job left 'running' by a killed process, and the lease
    migration interrupted after its first column (MariaDB commits each ALTER on its own):
    the next start finishes it, and the job counts as interrupted (it has no lease)."""
    engine = empty_dbs.ledger
    drop_ledger(engine)
    migrate_ledger(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (kind, created_at, actor, as_of, status) "
                "VALUES ('account_deletion', :at, 'dpo@plaato.example', :on, 'running')"
            ),
            {"at": datetime(2026, 11, 28, 9, 0), "on": date(2026, 11, 28)},
        )
        conn.execute(text("ALTER TABLE jobs ADD COLUMN claimed_by VARCHAR(320)"))

    migrate_ledger(engine)

    assert schema_differences(engine) == []
    assert ledger_revision(engine) == [head_revision()]
    interrupted = jobs.interrupted_jobs(empty_dbs)
    assert interrupted[["kind", "status"]].values.tolist() == [["account_deletion", "interrupted"]]


def _alembic(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`alembic ...` run from the repository as a DPO would, with only `env` added."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DPO_")}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alembic_on_the_command_line_migrates_the_ledger_the_settings_name(tmp_path):
    """alembic.ini says `DPO_LEDGER_URL=… alembic current` uses that variable; `upgrade
    head` used to go to sqlite:///data/ledger.sqlite whatever it was set to."""
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[databases]\ndemo_dir = {str(demo_dir)!r}\nledger_url_env = "OTHER_LEDGER_URL"\n',
        encoding="utf-8",
    )
    named = tmp_path / "named.sqlite"

    upgraded = _alembic(
        "upgrade", "head", env={"DPO_CONFIG": str(config), "OTHER_LEDGER_URL": f"sqlite:///{named}"}
    )
    current = _alembic(
        "current", env={"DPO_CONFIG": str(config), "OTHER_LEDGER_URL": f"sqlite:///{named}"}
    )

    assert upgraded.returncode == 0, upgraded.stderr
    assert head_revision() in current.stdout
    engine = make_engine(f"sqlite:///{named}", create_file=False)
    assert ledger_revision(engine) == [head_revision()]
    engine.dispose()
    assert not (demo_dir / "ledger.sqlite").exists()
    # Unset, the demo ledger under demo_dir, as the dashboard itself would use.
    assert _alembic("upgrade", "head", env={"DPO_CONFIG": str(config)}).returncode == 0
    assert (demo_dir / "ledger.sqlite").exists()
