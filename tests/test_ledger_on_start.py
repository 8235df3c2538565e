"""A fresh ledger URL outside demo mode: the dashboard migrates it on start (under the
migration lock) instead of every page reporting its tables missing."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from data_access import migrate
from data_access.settings import DatabaseSettings
from tests import seeded
from tests.test_migrations import head_revision
from tests.test_pages import _navigation_as_served, open_app, texts  # noqa: F401 - fixture

seeded_demo = seeded.seeded_demo
app_env = seeded.app_env


def revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_a_fresh_ledger_outside_demo_mode_is_migrated_on_start(app_env, monkeypatch, tmp_path):
    ledger = f"sqlite:///{tmp_path / 'company-ledger.sqlite'}"
    monkeypatch.setenv(DatabaseSettings().ledger_url_env, ledger)

    at = open_app(email=seeded.DPO_EMAIL)  # not demo mode: sign-in (RULES.md R41)

    assert not at.exception and not at.error, texts(at.error)
    assert "ledger" not in texts(at.warning)
    assert revision(ledger) == head_revision()
    at.switch_page("pages/audit_log.py").run(timeout=60)
    assert not at.exception and not at.error, texts(at.error)


def test_a_ledger_that_cannot_be_migrated_is_named_once(app_env, monkeypatch, tmp_path):
    missing_dir = tmp_path / "no-such-folder" / "ledger.sqlite"
    monkeypatch.setenv(DatabaseSettings().ledger_url_env, f"sqlite:///{missing_dir}")

    at = open_app(email=seeded.DPO_EMAIL)

    assert not at.exception
    assert "The ledger could not be migrated to the current schema" in texts(at.error)


def test_the_migrate_command_brings_a_fresh_ledger_to_head(app_env, monkeypatch, tmp_path, capsys):
    ledger = f"sqlite:///{tmp_path / 'fresh-ledger.sqlite'}"
    monkeypatch.setenv(DatabaseSettings().ledger_url_env, ledger)
    config = seeded.write_config(tmp_path, app_env.folder)

    assert migrate.main(["--config", str(config)]) == 0

    assert revision(ledger) == head_revision()
    assert f"empty -> {head_revision()}" in capsys.readouterr().out
