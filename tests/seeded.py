"""A seeded demo data set for page tests: the small demo (seed 42, as of SEED_AS_OF) in four
SQLite files, generated once per test session.

`seeded_demo` yields the databases and the environment that points the app at them;
`app_env` sets that environment for one test (cached.databases() reads it, and the autouse
fixture in conftest clears Streamlit's caches between tests) together with a config.toml
whose demo_dir is the seeded folder, so the app runs in demo mode (no sign-in, the demo user
acts as DPO) and whose [roles] name DPO_EMAIL and VIEWER_EMAIL for sign-in tests
(`sign_in`). Tests that export write audit entries into this shared ledger, so none of them
may assume an empty audit log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from data_access import clock, demo
from data_access.engines import Databases
from data_access.settings import STORES, DatabaseSettings
from tests.conftest import SEED_AS_OF

PSEUDONYM_KEY = "page-tests-pseudonym-key"
DEMO_SEED = 42
DPO_EMAIL = "dpo@plaato.example"
VIEWER_EMAIL = "viewer@plaato.example"
# An [auth] section as .streamlit/secrets.toml would hold it; AppTest never contacts it.
AUTH_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "page-tests-cookie-secret-0123456789abcdef",
    "client_id": "dpo-dashboard",
    "client_secret": "page-tests-client-secret",
    "server_metadata_url": "http://localhost:9400/.well-known/openid-configuration",
}


@dataclass(frozen=True)
class SeededDemo:
    """Where the seeded demo lives and how to reach it."""

    folder: Path
    urls: dict[str, str]
    dbs: Databases

    def environment(self) -> dict[str, str]:
        """The variables config.toml names, set to this data set's URLs and a fixed key."""
        names = DatabaseSettings()
        env = {getattr(names, f"{store}_url_env"): self.urls[store] for store in STORES}
        env[names.pseudonym_key_env] = PSEUDONYM_KEY
        return env


@pytest.fixture(scope="session")
def seeded_demo(tmp_path_factory) -> Iterator[SeededDemo]:
    """The small demo generated once into `<tmp>/seeded-demo/<store>.sqlite` (the demo file
    names, so a config.toml whose demo_dir points there sees it as demo data)."""
    folder = tmp_path_factory.mktemp("seeded-demo")
    urls = {store: f"sqlite:///{folder / f'{store}.sqlite'}" for store in STORES}
    dbs = Databases.from_urls(**urls, pseudonym_key=PSEUDONYM_KEY)
    demo.generate(dbs, scale="small", seed=DEMO_SEED, as_of=SEED_AS_OF, progress=None)
    yield SeededDemo(folder=folder, urls=urls, dbs=dbs)
    dbs.dispose()


def write_config(folder: Path, demo_dir: Path, extra: str = "") -> Path:
    """A config.toml in `folder` whose demo_dir is `demo_dir` and whose [roles] name
    DPO_EMAIL (dpo) and VIEWER_EMAIL (viewer); `extra` is appended."""
    path = folder / "config.toml"
    path.write_text(
        f"[databases]\ndemo_dir = {str(demo_dir)!r}\n\n"
        f"[roles]\ndpo = [{DPO_EMAIL!r}]\nviewer = [{VIEWER_EMAIL!r}]\n{extra}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def app_env(seeded_demo, monkeypatch, tmp_path) -> SeededDemo:
    """Point the app (cached.databases) at the seeded demo for one test, in demo mode."""
    from data_access import cached

    for name, value in seeded_demo.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cached, "CONFIG_PATH", write_config(tmp_path, seeded_demo.folder))
    pin_today(monkeypatch)
    return seeded_demo


def pin_today(monkeypatch, day=SEED_AS_OF) -> None:
    """Make `day` the dashboard's today (the day actions happen on, pages/_ui.today), so
    that a page at "as of" SEED_AS_OF is today's view, not a what-if view."""
    monkeypatch.setattr(clock, "today_oslo", lambda: day)


def copy_demo(source: Path, target: Path) -> Path:
    """A private copy of a demo's four SQLite files in `target`, for a test that changes
    data. SQLite's backup API copies a database in WAL mode consistently; copying the files
    would not."""
    target.mkdir(parents=True, exist_ok=True)
    for store in STORES:
        with closing(sqlite3.connect(source / f"{store}.sqlite")) as from_db:
            with closing(sqlite3.connect(target / f"{store}.sqlite")) as to_db:
                from_db.backup(to_db)
    demo.write_demo_marker(target)  # a copy of the generator's files counts as its own
    return target


@pytest.fixture
def demo_copy(seeded_demo, monkeypatch, tmp_path) -> Iterator[SeededDemo]:
    """A private copy of the seeded demo, the app pointed at it in demo mode (the demo user
    acts as DPO), for one test that changes data."""
    from data_access import cached

    folder = copy_demo(seeded_demo.folder, (tmp_path / "demo").resolve())
    urls = {store: f"sqlite:///{folder / f'{store}.sqlite'}" for store in STORES}
    copy = SeededDemo(
        folder=folder, urls=urls, dbs=Databases.from_urls(**urls, pseudonym_key=PSEUDONYM_KEY)
    )
    for name, value in copy.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cached, "CONFIG_PATH", write_config(tmp_path, folder))
    pin_today(monkeypatch)
    yield copy
    copy.dbs.dispose()


def sign_in(at, email: str, **claims) -> None:
    """Make the AppTest `at` run with sign-in configured and `email` signed in (claims such
    as email_verified=False are added as given)."""
    at.secrets["auth"] = dict(AUTH_SECRETS)
    at.user = {"is_logged_in": True, "email": email, **claims}
