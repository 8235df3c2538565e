"""Database health: unusable URLs, unreachable servers, missing contract tables and columns
(DESIGN.md "Source schemas")."""

from __future__ import annotations

from sqlalchemy import text

from data_access import health
from data_access.engines import Databases, migrate_ledger
from data_access.settings import STORES
from data_access.tables import SOURCE_METADATA
from tests.conftest import TEST_PSEUDONYM_KEY as KEY


def sqlite_urls(tmp_path) -> dict[str, str]:
    return {s: f"sqlite:///{tmp_path / f'{s}.sqlite'}" for s in STORES}


def test_healthy_databases_have_no_problems(empty_dbs):
    problems = health.check(empty_dbs)
    frame = health.summary(empty_dbs)

    assert problems == []
    assert all(health.store_ok(problems, s) for s in STORES)
    assert frame["store"].tolist() == list(STORES)
    assert frame["status"].tolist() == ["ok"] * 4
    assert frame["problem"].tolist() == [None] * 4


def test_missing_table_and_column_are_named(empty_dbs):
    with empty_dbs.support.begin() as conn:
        conn.execute(text("DROP TABLE contacts"))
    with empty_dbs.users.begin() as conn:
        conn.execute(text("ALTER TABLE invoices DROP COLUMN paid_on"))

    problems = health.check(empty_dbs)

    assert problems == [
        health.Problem(
            "users", "invoices", "paid_on", "The users table 'invoices' has no column 'paid_on'."
        ),
        health.Problem(
            "support", "contacts", None, "The support database has no table 'contacts'."
        ),
    ]
    assert not health.store_ok(problems, "users")
    assert health.store_ok(problems, "consent")
    assert health.summary(empty_dbs)["status"].tolist() == ["problem", "ok", "problem", "ok"]


def test_a_view_with_the_contract_name_and_extra_columns_is_fine(empty_dbs):
    with empty_dbs.support.begin() as conn:
        conn.execute(text("ALTER TABLE data_subject_requests RENAME TO dsr_intake"))
        conn.execute(text("ALTER TABLE dsr_intake ADD COLUMN ticket_no VARCHAR(20)"))
        conn.execute(text("CREATE VIEW data_subject_requests AS SELECT * FROM dsr_intake"))

    assert health.check(empty_dbs) == []


def test_malformed_url_is_reported_without_raising(tmp_path):
    urls = {**sqlite_urls(tmp_path), "users": "not a database url"}
    dbs = Databases.from_urls(**urls, pseudonym_key=KEY)
    for store in ("consent", "support"):
        (tmp_path / f"{store}.sqlite").touch()  # an empty file is an empty SQLite database
        SOURCE_METADATA[store].create_all(dbs.engine(store))
    migrate_ledger(dbs.ledger)

    problems = health.check(dbs)

    assert [(p.store, p.table, p.column) for p in problems] == [("users", None, None)]
    assert problems[0].message.startswith("the URL <malformed URL> is not usable (ArgumentError")
    assert not health.store_ok(problems, "users")
    frame = health.summary(dbs).set_index("store")
    assert frame.loc["users", "status"] == "problem"
    assert frame.loc["users", "url"] == "<malformed URL>"


def test_unreachable_servers_are_named_and_passwords_hidden(tmp_path):
    urls = {
        **sqlite_urls(tmp_path),
        "users": "postgresql+psycopg://dpo:s3cret-pw@127.0.0.1:1/users",
        "ledger": "mysql+pymysql://dpo:s3cret-pw@127.0.0.1:1/ledger",
        "support": f"sqlite:///{tmp_path / 'missing-dir' / 'support.sqlite'}",
    }
    (tmp_path / "consent.sqlite").touch()
    dbs = Databases.from_urls(**urls, pseudonym_key=KEY)

    found = health.check(dbs)
    problems = {p.store: p for p in found if p.table is None}
    frame = health.summary(dbs)

    assert set(problems) == {"users", "support", "ledger"}
    assert problems["users"].message.startswith(
        "The users database at postgresql+psycopg://dpo:***@127.0.0.1:1/users cannot be reached: "
    )
    assert problems["ledger"].message.startswith(
        "The ledger database at mysql+pymysql://dpo:***@127.0.0.1:1/ledger cannot be reached: "
    )
    assert problems["support"].message.startswith(
        f"The support database at sqlite:///{tmp_path / 'missing-dir' / 'support.sqlite'} "
        "cannot be reached: the SQLite file "
    )
    assert "does not exist" in problems["support"].message
    # consent is a fresh, empty SQLite file: every contract table is reported missing.
    assert [p.table for p in found if p.store == "consent"] == [
        "consent_events",
        "newsletter_subscribers",
        "notice_versions",
    ]
    assert "s3cret-pw" not in repr(found) + frame.to_csv()
    assert frame["url"].tolist()[0] == "postgresql+psycopg://dpo:***@127.0.0.1:1/users"


def test_unreachable_server_with_the_password_in_the_query_hides_it(tmp_path):
    url = "postgresql+psycopg://127.0.0.1:1/users?user=dpo&password=s3cret-pw&sslpassword=pw2x"
    dbs = Databases.from_urls(**{**sqlite_urls(tmp_path), "users": url}, pseudonym_key=KEY)

    found = [p for p in health.check(dbs) if p.store == "users"]
    frame = health.summary(dbs)

    assert found[0].message.startswith(
        "The users database at postgresql+psycopg://127.0.0.1:1/users?user=dpo&password=***"
        "&sslpassword=*** cannot be reached: "
    )
    shown = repr(found) + frame.to_csv()
    assert "s3cret-pw" not in shown and "pw2x" not in shown


def test_a_missing_sqlite_source_file_is_reported_missing_and_not_created(tmp_path):
    dbs = Databases.from_urls(**sqlite_urls(tmp_path), pseudonym_key=KEY)
    dbs.create_all()
    dbs.dispose()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"users.sqlite{suffix}").unlink(missing_ok=True)
    (tmp_path / "ledger.sqlite").unlink()
    dbs = Databases.from_urls(**sqlite_urls(tmp_path), pseudonym_key=KEY)

    found = health.check(dbs)

    assert [(p.store, p.table) for p in found if p.store != "ledger"] == [("users", None)]
    assert all(p.table for p in found if p.store == "ledger")  # a new, empty ledger
    assert f"the SQLite file {tmp_path / 'users.sqlite'} does not exist" in found[0].message
    assert not (tmp_path / "users.sqlite").exists()
    # The ledger is the dashboard's own: opening it may create it (migrating fills it).
    migrate_ledger(dbs.ledger)
    assert [p.store for p in health.check(dbs)] == ["users"]
    assert not (tmp_path / "users.sqlite").exists()
