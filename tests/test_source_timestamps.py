"""Timestamps as other systems write them into the source databases (DESIGN.md "Source
schemas"): on SQLite, ISO 8601 text with a `T` and/or an offset is compared as the UTC time
it names in the date rules' SQL filters, so the Oslo dates at the boundary second are right
(R1, R13, R16); a column in a form the dashboard does not read is named by the health check
(R15 dates, numbers, other text, text columns on the servers) and the pages do not crash."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date

import pytest
from sqlalchemy import text

from data_access import health, requests, retention
from tests import seeded
from tests.test_pages import _navigation_as_served, open_app, texts  # noqa: F401 - fixture

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy

# The same two instants in each form: the last second of the Oslo day 2025-11-30
# (22:59:59 UTC, winter time) and the first second of the next one.
FORMS = {
    "canonical": ("2025-11-30 22:59:59", "2025-11-30 23:00:00"),
    "T, no offset": ("2025-11-30T22:59:59", "2025-11-30T23:00:00"),
    "T, +00:00": ("2025-11-30T22:59:59+00:00", "2025-11-30T23:00:00+00:00"),
    "T, Z": ("2025-11-30T22:59:59Z", "2025-11-30T23:00:00Z"),
    "T, Oslo offset": ("2025-11-30T23:59:59+01:00", "2025-12-01T00:00:00+01:00"),
    "T, west of UTC": ("2025-11-30T17:59:59-05:00", "2025-11-30T18:00:00-05:00"),
    "space, offset, fraction": (
        "2025-11-30 22:59:59.500000+00:00",
        "2025-11-30 23:00:00.000+00:00",
    ),
}
LAST_DAY = date(2025, 11, 30)


def insert(dbs, store: str, sql: str, **values) -> None:
    with dbs.engine(store).begin() as conn:
        conn.execute(text(sql), values)


@pytest.mark.parametrize("form", list(FORMS))
def test_r16_support_contacts_at_the_boundary_second(sqlite_dbs, form):
    inside, outside = FORMS[form]
    for contact_id, started_at in ((1, inside), (2, outside)):
        insert(
            sqlite_dbs,
            "support",
            "INSERT INTO contacts (id, channel, started_at) VALUES (:id, 'chat', :at)",
            id=contact_id,
            at=started_at,
        )
    as_of = date(2026, 6, 1)  # 2025-11-30 + 6 months = 2026-05-30: past retention
    assert retention.support_started_cutoff(sqlite_dbs, as_of).isoformat() == "2025-11-30T23:00:00"

    listed = retention.support_contacts_past_retention(sqlite_dbs, as_of)

    assert listed["contact_id"].tolist() == [1]
    assert listed["started_on"].tolist() == [LAST_DAY]
    assert retention.count_support_contacts_past_retention(sqlite_dbs, as_of) == 1


@pytest.mark.parametrize("form", list(FORMS))
def test_r13_accounts_and_members_at_the_boundary_second(sqlite_dbs, form):
    inside, outside = FORMS[form]
    account = (
        "INSERT INTO accounts (id, email, full_name, account_type, created_at, last_active_at) "
        "VALUES (:id, :email, 'Kari Nordmann', 'personal', '2020-01-01 10:00:00', :at)"
    )
    insert(sqlite_dbs, "users", account, id=1, email="a1@example.no", at=inside)
    insert(sqlite_dbs, "users", account, id=2, email="a2@example.no", at=outside)
    insert(sqlite_dbs, "users", account, id=3, email="a3@example.no", at="2024-01-01 10:00:00")
    insert(
        sqlite_dbs,
        "users",
        "INSERT INTO account_members (id, account_id, last_active_at) VALUES (1, 3, :at)",
        at=inside,
    )
    as_of = date(2026, 11, 30)  # 2025-11-30 + 12 months: eligible today

    listed = retention.accounts_nearing_deletion(sqlite_dbs, as_of, within_days=0)

    assert listed["account_id"].tolist() == [1, 3]
    assert listed["last_activity_on"].tolist() == [LAST_DAY, LAST_DAY]
    assert listed["last_activity_by"].tolist() == ["account", "member"]
    assert listed["eligible_on"].tolist() == [as_of, as_of]
    assert sum(retention.stage_counts(sqlite_dbs, as_of, 0).values()) == 2


R1_FORMS = [
    "2024-03-31 21:30:00",
    "2024-03-31T21:30:00+00:00",
    "2024-03-31T23:30:00+02:00",
    "2024-03-31T21:30:00Z",
]


@pytest.mark.parametrize("received_at", R1_FORMS)
def test_r1_a_request_received_late_on_the_day_is_dated_in_oslo(sqlite_dbs, received_at):
    insert(
        sqlite_dbs,
        "support",
        "INSERT INTO data_subject_requests (id, received_at, request_type, subject_email) "
        "VALUES (1, :at, 'access', 'kari@example.no')",
        at=received_at,
    )

    rows = requests.open_requests(sqlite_dbs, date(2024, 3, 31))

    assert rows["request_id"].tolist() == [1]
    assert rows["received_on"].tolist() == [date(2024, 3, 31)]  # 23:30 in Oslo (summer time)
    assert rows["due_on"].tolist() == [date(2024, 4, 30)]


# --- forms the dashboard does not read ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1764543599, "the integer value '1764543599'"),
        ("30.11.2025 23:59", "'30.11.2025 23:59'"),
        ("2025-11-30 23:59 CET", "'2025-11-30 23:59 CET'"),
    ],
)
def test_health_names_a_sqlite_timestamp_column_in_another_form(sqlite_dbs, value, shown):
    insert(
        sqlite_dbs,
        "support",
        "INSERT INTO contacts (id, channel, started_at) VALUES (1, 'chat', '2025-01-01 10:00:00')",
    )
    insert(
        sqlite_dbs,
        "support",
        "INSERT INTO contacts (id, channel, started_at) VALUES (2, 'chat', :at)",
        at=value,
    )

    problems = [p for p in health.check(sqlite_dbs) if p.column]

    assert [(p.store, p.table, p.column) for p in problems] == [
        ("support", "contacts", "started_at")
    ]
    assert f"holds {shown}, not an ISO 8601 timestamp" in problems[0].message
    assert not health.store_ok(problems, "support")


def test_health_accepts_iso_text_with_t_and_offsets(sqlite_dbs):
    for contact_id, started_at in enumerate(v for pair in FORMS.values() for v in pair):
        insert(
            sqlite_dbs,
            "support",
            "INSERT INTO contacts (id, channel, started_at) VALUES (:id, 'chat', :at)",
            id=contact_id + 1,
            at=started_at,
        )

    assert health.check(sqlite_dbs) == []


def test_r15_an_invoice_date_with_a_time_is_named_and_the_retention_page_works(demo_copy):
    with closing(sqlite3.connect(demo_copy.folder / "users.sqlite")) as conn:
        first = conn.execute("SELECT min(id) FROM invoices").fetchone()[0]
        conn.execute(
            "UPDATE invoices SET issued_on = issued_on || 'T00:00:00' WHERE id = ?", (first,)
        )
        conn.commit()

    problems = [p for p in health.check(demo_copy.dbs) if p.column]
    assert [(p.store, p.table, p.column) for p in problems] == [("users", "invoices", "issued_on")]
    assert "not a date 'YYYY-MM-DD'" in problems[0].message

    at = open_app("retention")

    assert not at.exception
    assert "The users table 'invoices' column 'issued_on' holds" in texts(at.error)
    assert "Support contacts past retention" in {m.label for m in at.metric}


# SQLite has no column types: there the values are checked instead (tests above).
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"], indirect=True)
def test_server_text_columns_for_timestamps_are_named(empty_dbs):
    change = (
        "ALTER TABLE data_subject_requests ALTER COLUMN received_at TYPE VARCHAR(40)"
        if empty_dbs.support.dialect.name == "postgresql"
        else "ALTER TABLE data_subject_requests MODIFY received_at VARCHAR(40) NOT NULL"
    )
    insert(empty_dbs, "support", change)

    problems = [p for p in health.check(empty_dbs) if p.column]

    assert [(p.table, p.column) for p in problems] == [("data_subject_requests", "received_at")]
    assert "is VARCHAR(40), not DATETIME or TIMESTAMP" in problems[0].message


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_timestamptz_is_accepted(empty_dbs):
    insert(
        empty_dbs,
        "support",
        "ALTER TABLE data_subject_requests ALTER COLUMN received_at TYPE timestamptz",
    )

    assert health.check(empty_dbs) == []


# --- the pages on data in these forms ---------------------------------------------------------


def test_pages_on_iso_text_with_offsets_show_the_same_figures(demo_copy):
    dbs, as_of = demo_copy.dbs, seeded.SEED_AS_OF
    before = (
        retention.stage_counts(dbs, as_of, 30),
        retention.count_support_contacts_past_retention(dbs, as_of),
        requests.open_requests(dbs, as_of)["received_on"].tolist(),
    )
    rewrite = "{c} = replace(substr({c}, 1, 19), ' ', 'T') || '+00:00'"
    for store, table, columns in (
        ("users", "accounts", ("created_at", "last_active_at")),
        ("users", "account_members", ("last_active_at",)),
        ("support", "contacts", ("started_at",)),
        ("support", "data_subject_requests", ("received_at",)),
    ):
        sets = ", ".join(rewrite.format(c=c) for c in columns)
        with closing(sqlite3.connect(demo_copy.folder / f"{store}.sqlite")) as conn:
            conn.execute(f"UPDATE {table} SET {sets} WHERE id % 2 = 0")
            conn.commit()

    after = (
        retention.stage_counts(dbs, as_of, 30),
        retention.count_support_contacts_past_retention(dbs, as_of),
        requests.open_requests(dbs, as_of)["received_on"].tolist(),
    )
    assert after == before
    assert health.check(dbs) == []
    for page in ("overview", "accounts_nearing_deletion", "retention", "data_subject_requests"):
        at = open_app(page)
        assert not at.exception, (page, texts(at.exception))
        assert not at.error, (page, texts(at.error))
