"""One conversion point for timestamps as other systems write them (RULES.md R1).

Naive values are UTC; aware ones (PostgreSQL timestamptz, any offset) are converted, never
relabelled; SQLite ISO 8601 text with a `T` and an offset is parsed. The Oslo date is then
right at the boundary second, on both sides of midnight and of a daylight-saving change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pytest

from data_access import clock
from data_access.clock import oslo_date, oslo_dates, utc_naive, utc_naive_series

PLUS_TWO = timezone(timedelta(hours=2))
CASES = [
    # 2024-03-31 21:30 UTC is 23:30 in Oslo (summer time began that morning): still the 31st.
    (datetime(2024, 3, 31, 21, 30), date(2024, 3, 31)),
    (datetime(2024, 3, 31, 21, 30, tzinfo=UTC), date(2024, 3, 31)),
    (datetime(2024, 3, 31, 23, 30, tzinfo=PLUS_TWO), date(2024, 3, 31)),
    ("2024-03-31T21:30:00+00:00", date(2024, 3, 31)),
    ("2024-03-31T22:00:00Z", date(2024, 4, 1)),  # midnight in Oslo
    ("2025-11-29T22:59:59+00:00", date(2025, 11, 29)),  # the last second of the Oslo day
    ("2025-11-29T23:00:00+00:00", date(2025, 11, 30)),
    ("2025-11-29 22:59:59", date(2025, 11, 29)),
    (pd.Timestamp("2025-11-29 23:00:00", tz="UTC"), date(2025, 11, 30)),
]


@pytest.mark.parametrize(("value", "oslo"), CASES)
def test_r1_every_form_of_timestamp_gets_its_oslo_date(value, oslo):
    assert oslo_date(value) == oslo


def test_r1_the_vectorised_form_agrees_on_a_mixed_column():
    values = pd.Series([v for v, _ in CASES] + [None], dtype=object)
    assert oslo_dates(values).tolist() == [d for _, d in CASES] + [None]


def test_an_aware_column_is_converted_not_relabelled():
    oslo = pd.Series(pd.to_datetime(["2024-03-31 23:30"]).tz_localize("Europe/Oslo"))
    assert utc_naive_series(oslo).tolist() == [pd.Timestamp("2024-03-31 21:30")]
    assert utc_naive(oslo.iloc[0]) == datetime(2024, 3, 31, 21, 30)


def test_text_that_is_not_a_timestamp_is_refused_with_a_value_error():
    with pytest.raises(ValueError):
        oslo_date("29.11.2025 23:00")
    assert oslo_date(None) is None and oslo_date(pd.NaT) is None


def test_r1_a_postgresql_timestamptz_column_in_an_oslo_database_gives_the_right_dates(tmp_path):
    # The intake written by another system as timestamptz, the database's time zone Oslo:
    # 2024-03-31 21:30 UTC is received on the 31st (Oslo), due one month later (R1, R2).
    from sqlalchemy import text

    from data_access import requests
    from tests.conftest import make_databases
    from tests.factories import add_request

    gen = make_databases("postgresql", tmp_path)
    dbs = next(gen)
    try:
        with dbs.support.begin() as conn:
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            conn.execute(text(f"ALTER DATABASE \"{database}\" SET timezone TO 'Europe/Oslo'"))
            conn.execute(
                text(
                    "ALTER TABLE data_subject_requests ALTER COLUMN received_at "
                    "TYPE timestamptz USING received_at AT TIME ZONE 'UTC'"
                )
            )
        dbs.support.dispose()  # new connections take the database's time zone
        rid = add_request(dbs, received_at=datetime(2024, 3, 31, 21, 30), request_type="access")

        row = requests.open_requests(dbs, date(2024, 4, 2)).set_index("request_id").loc[rid]

        assert row["received_on"] == date(2024, 3, 31)
        assert row["due_on"] == date(2024, 4, 30)
        assert requests.request(dbs, rid, as_of=date(2024, 4, 2))["received_on"] == date(
            2024, 3, 31
        )
    finally:
        next(gen, None)


def test_times_are_shown_in_oslo_with_the_offset_of_their_season():
    from pages import _ui as ui

    stored = pd.DataFrame(
        {"occurred_at": [datetime(2026, 3, 29, 0, 59, 59), datetime(2026, 3, 29, 1, 0, 0)]}
    )
    shown = ui.display_frame(stored)
    assert list(shown.columns) == ["occurred_at (Oslo)"]
    assert [t.isoformat() for t in shown["occurred_at (Oslo)"]] == [
        "2026-03-29T01:59:59+01:00",
        "2026-03-29T03:00:00+02:00",
    ]
    assert clock.oslo_text(datetime(2026, 12, 3, 23, 30)) == "2026-12-04 00:30 +01:00"
    assert (
        clock.oslo_text("2026-07-01T10:00:05+00:00", seconds=True) == "2026-07-01 12:00:05 +02:00"
    )
    assert clock.oslo_text(None) == ""
