"""Shared fixtures: fresh databases on SQLite, PostgreSQL and MariaDB.

`backend` is parametrised over the three; a server backend runs when its URL is set
(DPO_TEST_POSTGRES_URL / DPO_TEST_MARIADB_URL) and is skipped otherwise, except under
CI=true, where a missing server URL fails the test instead of skipping it. Each server
test creates four databases with a unique prefix and drops them afterwards.

Hypothesis runs the "ci" profile under CI=true (its default 100 examples per property) and
the "dev" profile otherwise (EXAMPLES_LOCALLY, for a quick run while working). A slow
property names its count under CI with `examples(n)`: n under CI, at most EXAMPLES_LOCALLY
otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from data_access.engines import Databases
from data_access.settings import STORES, Policy

ROOT = Path(__file__).resolve().parent.parent
SERVER_ENV = {"postgresql": "DPO_TEST_POSTGRES_URL", "mariadb": "DPO_TEST_MARIADB_URL"}
BACKENDS = ["sqlite", "postgresql", "mariadb"]
IN_CI = os.environ.get("CI", "").lower() == "true"
EXAMPLES_LOCALLY = 10
settings.register_profile("ci", print_blob=True)
settings.register_profile("dev", max_examples=EXAMPLES_LOCALLY)
settings.load_profile("ci" if IN_CI else "dev")


def examples(in_ci: int) -> int:
    """A slow property's example count: `in_ci` under CI=true, else at most EXAMPLES_LOCALLY."""
    return in_ci if IN_CI else min(in_ci, EXAMPLES_LOCALLY)


# A fixed "today" for seeded data so expected values do not move with the calendar.
SEED_AS_OF = date(2026, 11, 29)
# The tests' own pseudonym key: Databases has no built-in one (RULES.md R18).
TEST_PSEUDONYM_KEY = b"tests-own-pseudonym-key"


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """AppTest and cached.py share Streamlit's process-wide caches; start each test empty."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield


def server_url(backend: str) -> str | None:
    """The admin URL for a server backend, or skip/fail when it is not configured."""
    url = os.environ.get(SERVER_ENV[backend])
    if not url:
        message = f"{SERVER_ENV[backend]} is not set"
        if IN_CI:
            pytest.fail(f"{message}: CI must run the {backend} tests")
        pytest.skip(message)
    return url


class ServerDatabases:
    """Creates and drops uniquely named databases on one PostgreSQL or MariaDB server."""

    def __init__(self, admin_url: str):
        self.admin_url = make_url(admin_url)
        self.backend = self.admin_url.get_backend_name()
        self.admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self, name: str) -> str:
        with self.admin.connect() as conn:
            if self.backend == "postgresql":
                conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
            else:
                conn.execute(
                    text(
                        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
        self.created.append(name)
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                if self.backend == "postgresql":
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.admin.dispose()


def make_databases(
    backend: str, tmp_path: Path, policy: Policy | None = None
) -> Iterator[Databases]:
    """Four empty, migrated databases on `backend`; dropped (server) or left in tmp_path.
    The audit chain is anchored to `audit-anchors.log` in tmp_path, as in production."""
    anchors = tmp_path / "audit-anchors.log"
    if backend == "sqlite":
        urls = {s: f"sqlite:///{tmp_path / f'{s}.sqlite'}" for s in STORES}
        dbs = Databases.from_urls(
            **urls, policy=policy, pseudonym_key=TEST_PSEUDONYM_KEY, anchors_file=anchors
        )
        dbs.create_all()
        yield dbs
        dbs.dispose()
        return
    servers = ServerDatabases(server_url(backend))
    prefix = f"dpo_t{uuid.uuid4().hex[:10]}"
    try:
        urls = {s: servers.create(f"{prefix}_{s}") for s in STORES}
        dbs = Databases.from_urls(
            **urls, policy=policy, pseudonym_key=TEST_PSEUDONYM_KEY, anchors_file=anchors
        )
        dbs.create_all()
        yield dbs
        dbs.dispose()
    finally:
        servers.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def empty_dbs(backend, tmp_path) -> Iterator[Databases]:
    """Fresh, empty databases (schemas and ledger migrations only) on each backend."""
    yield from make_databases(backend, tmp_path)


@pytest.fixture
def sqlite_dbs(tmp_path) -> Iterator[Databases]:
    """Fresh, empty SQLite databases, for tests that need no server variant."""
    yield from make_databases("sqlite", tmp_path)
