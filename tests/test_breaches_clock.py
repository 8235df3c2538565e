"""The 72-hour clock as a table of cases (GDPR art. 33(1); RULES.md R50): calendar hours
across DST changes, Oslo display with the offset, notifications just inside and just after."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from data_access.breaches import clock

CASES = [
    # aware_at (UTC), due_at (UTC), due shown in Oslo
    pytest.param(
        datetime(2026, 3, 27, 10, 0),
        datetime(2026, 3, 30, 10, 0),
        "2026-03-30 12:00 +02:00 (CEST)",
        id="spring-dst-inside-the-72-hours",
    ),
    pytest.param(
        datetime(2026, 10, 23, 23, 30),
        datetime(2026, 10, 26, 23, 30),
        "2026-10-27 00:30 +01:00 (CET)",
        id="autumn-dst-inside-the-72-hours",
    ),
    pytest.param(
        datetime(2026, 11, 29, 22, 55),  # 23:55 in Oslo, minutes before midnight
        datetime(2026, 12, 2, 22, 55),
        "2026-12-02 23:55 +01:00 (CET)",
        id="minutes-before-midnight-oslo-winter",
    ),
    pytest.param(
        datetime(2026, 6, 30, 21, 58),  # 23:58 in Oslo (CEST)
        datetime(2026, 7, 3, 21, 58),
        "2026-07-03 23:58 +02:00 (CEST)",
        id="minutes-before-midnight-oslo-summer",
    ),
]


@pytest.mark.parametrize(("aware_at", "due_at", "shown"), CASES)
def test_r50_due_is_aware_plus_72_calendar_hours_shown_in_oslo(aware_at, due_at, shown):
    assert clock.notification_due_at(aware_at) == due_at
    assert clock.oslo_text(clock.notification_due_at(aware_at)) == shown
    # The same instant given with an offset, or as ISO text, gives the same deadline.
    oslo = aware_at.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert clock.notification_due_at(oslo) == due_at
    assert clock.notification_due_at(aware_at.isoformat()) == due_at


def test_r50_the_spring_case_is_71_wall_clock_hours_in_oslo():
    """Across the spring change the Oslo wall clock moves 73 hours for 72 real ones."""
    aware = datetime(2026, 3, 27, 10, 0)
    assert clock.oslo_text(aware) == "2026-03-27 11:00 +01:00 (CET)"
    assert clock.oslo_text(clock.notification_due_at(aware)) == "2026-03-30 12:00 +02:00 (CEST)"


@pytest.mark.parametrize(
    ("after", "late", "hours_left"),
    [
        pytest.param(timedelta(hours=71, minutes=59), False, 0.02, id="notified-at-71:59"),
        pytest.param(timedelta(hours=72), False, 0.0, id="notified-at-72:00"),
        pytest.param(timedelta(hours=72, minutes=1), True, -0.02, id="notified-at-72:01"),
    ],
)
def test_r50_notification_at_71_59_is_in_time_and_at_72_01_late(after, late, hours_left):
    aware = datetime(2026, 3, 27, 10, 0)
    due = clock.notification_due_at(aware)
    assert clock.is_late(aware + after, due) is late
    assert clock.hours_left(due, aware + after) == hours_left


def test_r50_an_oslo_time_typed_into_a_form_becomes_utc():
    assert clock.oslo_to_utc(date(2026, 11, 29), 9, 15) == datetime(2026, 11, 29, 8, 15)
    assert clock.oslo_to_utc(date(2026, 7, 1), 0, 5) == datetime(2026, 6, 30, 22, 5)
    # The repeated autumn hour: the first (summer-time) instant.
    assert clock.oslo_to_utc(date(2026, 10, 25), 2, 30) == datetime(2026, 10, 25, 0, 30)


def test_r50_a_view_of_another_day_measures_at_that_day_s_end():
    now = datetime(2026, 11, 29, 12, 0)
    assert clock.instant_of(date(2026, 11, 29), now) == now
    assert clock.instant_of(None, now) == now
    assert clock.instant_of(date(2026, 11, 20), now) == datetime(2026, 11, 20, 22, 59, 59)


def test_r50_missing_awareness_is_refused():
    with pytest.raises(ValueError, match="aware"):
        clock.notification_due_at(None)
