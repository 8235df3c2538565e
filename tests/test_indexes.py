"""Source tables created by another system without the indexes the queries need: the health
check names each one, `python -m data_access.indexes --check` prints its DDL, `--create`
makes it, and the check is clean afterwards (DESIGN.md "Source schemas")."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from sqlalchemy import event, text
from sqlalchemy.schema import CreateTable

from data_access import health, indexes, retention
from data_access.tables import SOURCE_METADATA
from tests import seeded
from tests.test_pages import _navigation_as_served, open_app  # noqa: F401 - fixture


def recreate_without_indexes(dbs, stores=tuple(SOURCE_METADATA)) -> None:
    """The contract tables as a company's own system would create them: columns, keys and
    unique constraints, but none of the secondary indexes of tables.py."""
    for store in stores:
        metadata = SOURCE_METADATA[store]
        metadata.drop_all(dbs.engine(store))
        with dbs.engine(store).begin() as conn:
            for table in metadata.sorted_tables:
                conn.execute(CreateTable(table))


def test_the_declared_indexes_are_the_needed_ones_with_their_cost():
    found = indexes.needed()
    declared = {
        i.name for md in SOURCE_METADATA.values() for t in md.tables.values() for i in t.indexes
    }

    # The expression and partial indexes (SQLite, PostgreSQL) are extras, not requirements.
    optional = {"ix_accounts_own_activity", "ix_invoices_personal_issued_on"}
    assert {n.name for n in found} == declared - optional
    assert all(n.rules and n.slow_without for n in found)
    members = next(n for n in found if n.name == "ix_account_members_account_id")
    assert members.columns == ("account_id", "last_active_at")
    assert members.where == "users.account_members (account_id, last_active_at)"
    statements = indexes.ddl(members)
    assert statements["SQLite"] == (
        "CREATE INDEX ix_account_members_account_id ON account_members (account_id, last_active_at);"
    )
    assert set(statements) == {"SQLite", "PostgreSQL", "MariaDB"}


def test_a_complete_database_has_no_missing_index(empty_dbs):
    assert all(indexes.missing(empty_dbs.engine(s), s) == [] for s in SOURCE_METADATA)
    assert health.missing_indexes(health.check(empty_dbs)) == []


def test_missing_indexes_are_named_then_created_and_the_check_is_clean(empty_dbs, capsys):
    recreate_without_indexes(empty_dbs)
    everything = {n.name for n in indexes.needed()}

    problems = health.check(empty_dbs)
    lacking = health.missing_indexes(problems)

    # Named per table, with what is slow; the stores stay usable (slow, not wrong).
    assert {p.table for p in lacking} == {n.table for n in indexes.needed()}
    assert len(lacking) == len(everything)
    assert all(health.store_ok(problems, s) for s in ("users", "consent", "support"))
    members = next(p for p in lacking if "(account_id, last_active_at)" in p.message)
    assert members.store == "users" and members.table == "account_members"
    assert "R13" in members.rules and "scans every member row" in members.message
    assert [p.table for p in health.missing_indexes(problems, ("R16",))] == ["contacts"]
    frame = health.summary(empty_dbs)
    assert frame["status"].tolist() == ["missing indexes"] * 3 + ["ok"]

    assert indexes.main(["--check"], dbs=empty_dbs) == 1
    shown = capsys.readouterr().out
    assert "ix_account_members_account_id on users.account_members" in shown
    assert (
        "PostgreSQL: CREATE INDEX ix_account_members_account_id ON account_members "
        "(account_id, last_active_at);" in shown
    )
    assert "MariaDB:" in shown and "SQLite:" in shown

    assert indexes.main(["--create"], dbs=empty_dbs) == 0
    progress = capsys.readouterr().out
    assert f"[1/{len([n for n in indexes.needed(['users'])])}] creating" in progress
    assert "ix_dsr_received_at created in" in progress

    assert health.check(empty_dbs) == []
    assert indexes.main(["--check"], dbs=empty_dbs) == 0


def test_an_index_under_another_name_or_longer_counts(empty_dbs):
    recreate_without_indexes(empty_dbs, stores=("support",))
    with empty_dbs.support.begin() as conn:
        conn.execute(text("CREATE INDEX company_contacts_time ON contacts (started_at, id)"))
        conn.execute(text("CREATE INDEX company_dsr ON data_subject_requests (subject_email, id)"))
        # The right columns in another order do not serve the queries.
        conn.execute(text("CREATE INDEX company_dsr_2 ON data_subject_requests (id, received_at)"))

    names = [n.name for n in indexes.missing(empty_dbs.support, "support")]

    assert names == ["ix_contacts_account_id", "ix_contacts_email", "ix_dsr_received_at"]


def test_a_failed_index_is_reported_and_the_others_are_created(empty_dbs, capsys):
    recreate_without_indexes(empty_dbs, stores=("support",))
    with empty_dbs.support.begin() as conn:
        # A name tables.py uses, on other columns: creating it fails, the rest go ahead.
        conn.execute(text("CREATE INDEX ix_contacts_email ON contacts (channel)"))

    failed = indexes.create(empty_dbs.support, indexes.missing(empty_dbs.support, "support"))

    assert list(failed) == ["ix_contacts_email"]
    assert [n.name for n in indexes.missing(empty_dbs.support, "support")] == ["ix_contacts_email"]


@pytest.mark.parametrize("argv", [[], ["--check", "--create"]])
def test_the_command_needs_exactly_one_of_check_and_create(argv):
    with pytest.raises(SystemExit):
        indexes.main(argv)


# --- the pages ------------------------------------------------------------------------------

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy


def test_overview_names_missing_indexes_before_any_slow_query(demo_copy, monkeypatch):
    with closing(sqlite3.connect(demo_copy.folder / "users.sqlite")) as conn:
        conn.execute("DROP INDEX ix_account_members_account_id")
        conn.execute("DROP INDEX ix_accounts_last_active_at")
        conn.commit()
    ran: list[str] = []
    original = retention.stage_counts

    def stage_counts(*args, **kwargs):
        ran.append("stage_counts")
        return original(*args, **kwargs)

    monkeypatch.setattr(retention, "stage_counts", stage_counts)

    at = open_app()

    assert not at.exception and not at.error
    # As read on screen: the Markdown escapes of the data values removed.
    warnings = "\n".join(str(w.value) for w in at.warning).replace("\\", "")
    assert "2 index(es) the dashboard's queries need are missing" in warnings
    assert "has no index on (account_id, last_active_at)" in warnings
    assert "scans every member row per inactive account" in warnings
    assert "Not computed yet" in warnings
    assert ran == []  # the R13 counts waited for the user
    shown = {m.label for m in at.metric}
    assert "Ready to delete" not in shown
    assert "Support contacts past retention" in shown  # boxes with their indexes still run

    at.button(key="overview_accounts__button").click().run(timeout=60)

    assert ran == ["stage_counts"]
    assert "Ready to delete" in {m.label for m in at.metric}


def test_the_health_check_reads_no_source_table_whole(sqlite_dbs):
    """What the check runs before the pages' queries: catalog reads and single-row look-ups
    that SQLite answers from an index or the ends of a table, never a sort or a count of a
    whole table (here on tables without their indexes)."""
    recreate_without_indexes(sqlite_dbs, stores=("users",))
    reads: list[tuple[str, str, tuple]] = []

    def recorder(store):
        def record(_conn, _cursor, statement, parameters, *_args):
            if statement.lstrip().upper().startswith("SELECT") and "sqlite_" not in statement:
                reads.append((store, statement, tuple(parameters or ())))

        return record

    listeners = {store: recorder(store) for store in SOURCE_METADATA}
    for store, listener in listeners.items():
        event.listen(sqlite_dbs.engine(store), "before_cursor_execute", listener)
    try:
        assert health.missing_indexes(health.check(sqlite_dbs))
    finally:
        for store, listener in listeners.items():
            event.remove(sqlite_dbs.engine(store), "before_cursor_execute", listener)

    assert reads, "the timestamp forms are sampled"
    for store, statement, parameters in reads:
        assert "LIMIT" in statement and "count(" not in statement.lower(), statement
        with sqlite_dbs.engine(store).connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        assert not any("TEMP B-TREE" in row[-1] for row in plan), (statement, plan)


@pytest.mark.parametrize(
    ("page", "waiting", "running"),
    [
        ("retention", "Support contacts past retention", "Invoices past retention"),
        ("data_subject_requests", "Open", None),
    ],
)
def test_pages_wait_for_a_missing_index_and_run_the_rest(demo_copy, page, waiting, running):
    with closing(sqlite3.connect(demo_copy.folder / "support.sqlite")) as conn:
        conn.execute("DROP INDEX ix_contacts_started_at")
        conn.execute("DROP INDEX ix_dsr_received_at")
        conn.commit()

    at = open_app(page)

    assert not at.exception and not at.error
    assert "Not computed yet" in "\n".join(str(w.value) for w in at.warning)
    shown = {m.label for m in at.metric}
    assert waiting not in shown
    assert running is None or running in shown


def test_the_command_reports_an_unusable_store_and_checks_the_others(sqlite_dbs, capsys):
    sqlite_dbs.problems["consent"] = "the URL <malformed URL> is not usable"

    assert indexes.main(["--check"], dbs=sqlite_dbs) == 1

    shown = capsys.readouterr().out
    assert "consent: cannot be read (DatabaseUnavailable" in shown
    assert "users: every index the dashboard needs is there." in shown
    assert "support: every index the dashboard needs is there." in shown
