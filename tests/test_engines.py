"""`Databases`: engines per store, unusable URLs, the pseudonym key (DESIGN.md "Public API",
"Pseudonyms and the hash chain"; RULES.md R18, R41)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from data_access.engines import Databases, DatabaseUnavailable, PseudonymKeyMissing
from data_access.settings import load_settings
from tests.conftest import TEST_PSEUDONYM_KEY as KEY

PASSWORD = "s3cret-pw"


def sqlite_urls(tmp_path: Path) -> dict[str, str]:
    return {
        s: f"sqlite:///{tmp_path / f'{s}.sqlite'}"
        for s in ("users", "consent", "support", "ledger")
    }


def settings_for(tmp_path: Path, environ: dict[str, str]):
    config = tmp_path / "config.toml"
    config.write_text('[databases]\ndemo_dir = "data"\n', encoding="utf-8")
    return load_settings(config, environ=environ)


@pytest.mark.parametrize(
    "url, shown",
    [
        pytest.param(
            f"postgresql+psycopg://dpo:{PASSWORD}@db.example:notaport/users",
            "<malformed URL>",
            id="bad-port",
        ),
        pytest.param("users database on db.example", "<malformed URL>", id="not-a-url"),
        pytest.param(
            f"mysql+nosuchdriver://dpo:{PASSWORD}@db.example/users",
            "mysql+nosuchdriver://dpo:***@db.example/users",
            id="unknown-driver",
        ),
    ],
)
def test_malformed_url_makes_only_that_store_unavailable_without_its_password(tmp_path, url, shown):
    urls = {**sqlite_urls(tmp_path), "users": url}
    dbs = Databases.from_urls(**urls, pseudonym_key=KEY)
    assert set(dbs.problems) == {"users"}
    with pytest.raises(DatabaseUnavailable) as raised:
        dbs.users  # noqa: B018 - the property is what pages touch
    message = str(raised.value)
    assert raised.value.store == "users"
    assert message.startswith("The users database is unavailable: ")
    assert shown in message
    assert PASSWORD not in message
    assert PASSWORD not in dbs.problems["users"]
    # The other stores still work: pages that do not need `users` keep running.
    assert isinstance(dbs.consent, Engine)
    with dbs.ledger.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_create_all_with_an_unusable_store_raises_database_unavailable(tmp_path):
    dbs = Databases.from_urls(
        **{**sqlite_urls(tmp_path), "support": "::nonsense::"}, pseudonym_key=KEY
    )
    with pytest.raises(DatabaseUnavailable, match="support"):
        dbs.create_all()


def test_shown_urls_hide_the_password(tmp_path):
    urls = {
        **sqlite_urls(tmp_path),
        "users": f"postgresql+psycopg://dpo:{PASSWORD}@db.example:5432/users",
    }
    dbs = Databases.from_urls(**urls, pseudonym_key=KEY)
    assert dbs.urls["users"] == "postgresql+psycopg://dpo:***@db.example:5432/users"
    assert dbs.problems == {}


@pytest.mark.parametrize(
    "url, shown",
    [
        (
            f"postgresql+psycopg://db.example/users?user=dpo&password={PASSWORD}",
            "postgresql+psycopg://db.example/users?user=dpo&password=***",
        ),
        (
            f"mysql+pymysql://dpo:{PASSWORD}@db.example/users?ssl_key=/k.pem&pwd={PASSWORD}",
            "mysql+pymysql://dpo:***@db.example/users?ssl_key=***&pwd=***",
        ),
        (
            f"mysql+nosuchdriver://db.example/users?passwd={PASSWORD}",
            "mysql+nosuchdriver://db.example/users?passwd=***",
        ),
    ],
)
def test_shown_urls_and_problems_hide_query_secrets(tmp_path, url, shown):
    dbs = Databases.from_urls(**{**sqlite_urls(tmp_path), "users": url}, pseudonym_key=KEY)
    assert dbs.urls["users"] == shown
    assert PASSWORD not in repr(dbs.problems)


def test_a_missing_sqlite_source_file_is_not_created_but_create_all_creates_it(tmp_path):
    dbs = Databases.from_urls(**sqlite_urls(tmp_path), pseudonym_key=KEY)
    with pytest.raises(OperationalError, match="does not exist"):
        dbs.users.connect()
    assert not (tmp_path / "users.sqlite").exists()
    with dbs.ledger.connect():  # the ledger is the dashboard's own
        pass
    dbs.create_all()
    with dbs.users.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM accounts")).scalar_one() == 0
    dbs.dispose()


@pytest.mark.parametrize("key", [None, b"", ""])
def test_r18_from_urls_without_a_pseudonym_key_refuses(tmp_path, key):
    with pytest.raises(PseudonymKeyMissing, match="no built-in key"):
        Databases.from_urls(**sqlite_urls(tmp_path), pseudonym_key=key)
    with pytest.raises(PseudonymKeyMissing):
        Databases.from_urls(**sqlite_urls(tmp_path))
    with pytest.raises(PseudonymKeyMissing):
        Databases(engines={})


def test_r18_from_urls_uses_the_key_it_is_given(tmp_path):
    assert Databases.from_urls(**sqlite_urls(tmp_path), pseudonym_key="k1").pseudonym_key == b"k1"


def test_sqlite_files_run_in_wal_mode_with_a_busy_timeout(tmp_path):
    (tmp_path / "users.sqlite").touch()
    dbs = Databases.from_urls(**sqlite_urls(tmp_path), pseudonym_key=KEY)
    with dbs.users.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 30000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    dbs.dispose()


def test_a_companys_on_delete_cascade_is_enforced_on_sqlite(tmp_path):
    (tmp_path / "support.sqlite").touch()
    dbs = Databases.from_urls(**sqlite_urls(tmp_path), pseudonym_key=KEY)
    with dbs.support.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, "
                "parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE)"
            )
        )
        conn.execute(text("INSERT INTO parent VALUES (1)"))
        conn.execute(text("INSERT INTO child VALUES (10, 1)"))
        conn.execute(text("DELETE FROM parent WHERE id = 1"))
        assert conn.execute(text("SELECT count(*) FROM child")).scalar_one() == 0
    dbs.dispose()


def test_r18_outside_demo_mode_a_missing_pseudonym_key_refuses_to_start(tmp_path):
    settings = settings_for(
        tmp_path, {"DPO_USERS_URL": "postgresql+psycopg://dpo@db.example/users"}
    )
    assert settings.demo_mode is False
    with pytest.raises(PseudonymKeyMissing) as raised:
        Databases.from_settings(settings)
    assert "DPO_PSEUDONYM_KEY" in str(raised.value)
    assert not (tmp_path / "data" / "pseudonym.key").exists()


def test_r18_outside_demo_mode_the_key_comes_from_the_environment(tmp_path):
    settings = settings_for(
        tmp_path,
        {
            "DPO_USERS_URL": "postgresql+psycopg://dpo@db.example/users",
            "DPO_PSEUDONYM_KEY": "production-key",
        },
    )
    dbs = Databases.from_settings(settings)
    assert dbs.pseudonym_key == b"production-key"
    assert dbs.demo_mode is False
    assert dbs.policy == settings.policy


def test_r18_demo_mode_generates_a_private_key_file_and_reuses_it(tmp_path):
    settings = settings_for(tmp_path, {})
    assert settings.demo_mode is True
    first = Databases.from_settings(settings)
    key_file = tmp_path / "data" / "pseudonym.key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.pseudonym_key) == 64  # 32 random bytes as hex
    int(first.pseudonym_key, 16)
    second = Databases.from_settings(settings_for(tmp_path, {}))
    assert second.pseudonym_key == first.pseudonym_key
    assert first.demo_mode is True
    assert first.urls["ledger"] == f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}"


def test_r18_demo_mode_uses_an_environment_key_when_given(tmp_path):
    dbs = Databases.from_settings(settings_for(tmp_path, {"DPO_PSEUDONYM_KEY": "chosen"}))
    assert dbs.pseudonym_key == b"chosen"
    assert not (tmp_path / "data" / "pseudonym.key").exists()
