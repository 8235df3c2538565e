"""Open data-subject requests and their deadlines, through `requests.open_requests`
(RULES.md R1-R8), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest
from sqlalchemy import insert

from data_access import requests
from data_access.ledger_tables import request_cases, request_events
from data_access.tables import data_subject_requests
from tests.factories import add_request

UPDATED = datetime(2026, 1, 1, 12, 0)


def add_case(dbs, request_id: int, *, status: str, extended: bool = False, **fields) -> None:
    """A ledger case for an intake row, as the request workflow would leave it."""
    with dbs.ledger.begin() as conn:
        conn.execute(
            insert(request_cases).values(
                request_id=request_id,
                status=status,
                extended=extended,
                updated_at=UPDATED,
                version=1,
                **fields,
            )
        )


def by_id(frame, request_id: int):
    """The row of one request, as a dict."""
    rows = frame[frame["request_id"] == request_id].to_dict("records")
    assert len(rows) == 1, f"request {request_id} appears {len(rows)} times"
    return rows[0]


def test_r1_received_on_is_the_oslo_date_of_receipt(empty_dbs):
    late = add_request(empty_dbs, received_at=datetime(2026, 3, 31, 23, 30))
    before_midnight = add_request(empty_dbs, received_at=datetime(2026, 3, 31, 21, 59))

    frame = requests.open_requests(empty_dbs, date(2026, 4, 2))

    assert by_id(frame, late)["received_on"] == date(2026, 4, 1)
    # 2026-04-01 + 1 month = 05-01 (Labour Day), then a weekend: Monday 05-04.
    assert by_id(frame, late)["due_on"] == date(2026, 5, 4)
    assert by_id(frame, before_midnight)["received_on"] == date(2026, 3, 31)
    assert by_id(frame, late)["received_at"] == datetime(2026, 3, 31, 23, 30)


def test_r2_base_deadline_rolls_past_weekends_and_easter(empty_dbs):
    month_end = add_request(empty_dbs, received_on=date(2026, 1, 31))
    march_end = add_request(empty_dbs, received_on=date(2026, 3, 31))
    easter = add_request(empty_dbs, received_on=date(2026, 3, 5))

    frame = requests.open_requests(empty_dbs, date(2026, 3, 31))

    assert by_id(frame, month_end)["due_on"] == date(2026, 3, 2)
    assert by_id(frame, march_end)["due_on"] == date(2026, 4, 30)
    assert by_id(frame, easter)["due_on"] == date(2026, 4, 7)
    assert set(frame["status"]) == {"received"}
    assert not frame["extended"].any()
    assert list(frame["request_id"]) == [month_end, easter, march_end]


def test_r1_a_request_received_after_as_of_is_not_yet_there(empty_dbs):
    before = add_request(empty_dbs, received_at=datetime(2026, 3, 31, 21, 59))  # 23:59 Oslo
    after = add_request(empty_dbs, received_at=datetime(2026, 3, 31, 22, 0))  # 04-01 Oslo
    closed_later = add_request(empty_dbs, received_on=date(2026, 3, 2))
    add_case(empty_dbs, closed_later, status="completed", closed_on=date(2026, 4, 10))

    frame = requests.open_requests(empty_dbs, date(2026, 3, 31))

    assert set(frame["request_id"]) == {before, closed_later}
    assert by_id(frame, closed_later)["status"] == "in_progress"  # still open on 03-31
    assert after in set(requests.open_requests(empty_dbs, date(2026, 4, 1))["request_id"])
    assert closed_later not in set(
        requests.open_requests(empty_dbs, date(2026, 4, 10))["request_id"]
    )


def test_r3_extension_counts_from_received_on(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 1, 31))
    add_case(
        empty_dbs,
        rid,
        status="extended",
        extended=True,
        extension_reason="Many requests from the same person",
        extension_notified_on=date(2026, 2, 20),
    )

    row = by_id(requests.open_requests(empty_dbs, date(2026, 3, 10)), rid)

    assert row["due_on"] == date(2026, 4, 30)
    assert row["extended"]
    assert row["status"] == "extended"
    assert not row["overdue"]
    assert row["days_left"] == 51


def test_r4_late_or_reasonless_extension_leaves_the_base_deadline(empty_dbs):
    received = date(2026, 1, 31)  # base deadline 2026-03-02
    late = add_request(empty_dbs, received_on=received)
    add_case(
        empty_dbs,
        late,
        status="extended",
        extended=True,
        extension_reason="Complex",
        extension_notified_on=date(2026, 3, 3),
    )
    no_reason = add_request(empty_dbs, received_on=received)
    add_case(
        empty_dbs,
        no_reason,
        status="extended",
        extended=True,
        extension_reason="   ",
        extension_notified_on=date(2026, 2, 10),
    )
    not_notified = add_request(empty_dbs, received_on=received)
    add_case(empty_dbs, not_notified, status="extended", extended=True, extension_reason="Complex")
    on_the_day = add_request(empty_dbs, received_on=received)
    add_case(
        empty_dbs,
        on_the_day,
        status="extended",
        extended=True,
        extension_reason="Complex",
        extension_notified_on=date(2026, 3, 2),
    )

    frame = requests.open_requests(empty_dbs, date(2026, 3, 1))

    for rid in (late, no_reason, not_notified):
        assert by_id(frame, rid)["due_on"] == date(2026, 3, 2)
        assert not by_id(frame, rid)["extended"]
    assert by_id(frame, on_the_day)["due_on"] == date(2026, 4, 30)
    assert by_id(frame, on_the_day)["extended"]


def test_r4_extension_notified_inside_a_paused_base_deadline_counts(empty_dbs):
    # Base 2026-10-01 + 10 paused days = 2026-10-12: a notice on 10-05 is in time.
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1))
    add_case(
        empty_dbs,
        rid,
        status="extended",
        extended=True,
        identity_requested_on=date(2026, 9, 4),
        identity_confirmed_on=date(2026, 9, 14),
        extension_reason="Complex",
        extension_notified_on=date(2026, 10, 5),
    )

    row = by_id(requests.open_requests(empty_dbs, date(2026, 10, 6)), rid)

    assert row["extended"]
    # add_months(09-01, 3) = 12-01 + 10 days = 12-11 (Friday).
    assert row["due_on"] == date(2026, 12, 11)
    assert row["unpaused_due_on"] == date(2026, 12, 1)


def test_r5_identity_pause_inside_the_window_moves_the_deadline(empty_dbs):
    inside = add_request(empty_dbs, received_on=date(2026, 9, 1))
    add_case(
        empty_dbs,
        inside,
        status="in_progress",
        identity_requested_on=date(2026, 9, 4),  # 3 calendar days: still inside
        identity_confirmed_on=date(2026, 9, 14),
    )
    outside = add_request(empty_dbs, received_on=date(2026, 9, 1))
    add_case(
        empty_dbs,
        outside,
        status="in_progress",
        identity_requested_on=date(2026, 9, 5),  # 4 days: too late to pause
        identity_confirmed_on=date(2026, 9, 14),
    )

    frame = requests.open_requests(empty_dbs, date(2026, 9, 20))

    row = by_id(frame, inside)
    assert row["paused_days"] == 10
    # 2026-10-01 + 10 days = Sunday 10-11, rolled to Monday 10-12.
    assert row["due_on"] == date(2026, 10, 12)
    assert row["unpaused_due_on"] == date(2026, 10, 1)
    row = by_id(frame, outside)
    assert row["paused_days"] == 0
    assert row["due_on"] == date(2026, 10, 1)
    assert row["unpaused_due_on"] == date(2026, 10, 1)


def test_r5_outstanding_identity_pauses_up_to_as_of_and_is_never_overdue(empty_dbs):
    waiting = add_request(empty_dbs, received_on=date(2026, 9, 1))
    add_case(empty_dbs, waiting, status="awaiting_identity", identity_requested_on=date(2026, 9, 2))
    asked_late = add_request(empty_dbs, received_on=date(2026, 6, 1))
    add_case(
        empty_dbs, asked_late, status="awaiting_identity", identity_requested_on=date(2026, 6, 10)
    )

    frame = requests.open_requests(empty_dbs, date(2026, 9, 20))

    row = by_id(frame, waiting)
    assert row["status"] == "awaiting_identity"
    assert row["paused_days"] == 18
    assert row["due_on"] == date(2026, 10, 19)
    assert row["days_left"] == 29
    # Asked outside the window: the clock ran out on 2026-07-01, but identity is still owed.
    row = by_id(frame, asked_late)
    assert row["due_on"] == date(2026, 7, 1)
    assert row["days_left"] == -81
    assert not row["overdue"]
    assert row["badge"] == "red"
    later = by_id(requests.open_requests(empty_dbs, date(2026, 9, 25)), waiting)
    assert later["paused_days"] == 23
    assert later["due_on"] == date(2026, 10, 26)
    counts = requests.request_counts(empty_dbs, date(2026, 9, 20))
    assert counts == {"open": 2, "awaiting_identity": 2, "due_this_week": 0, "overdue": 0}


@pytest.mark.parametrize(
    ("as_of", "days_left", "overdue", "badge"),
    [
        (date(2026, 9, 21), 10, False, "green"),
        (date(2026, 9, 22), 9, False, "amber"),
        (date(2026, 9, 26), 5, False, "amber"),
        (date(2026, 9, 27), 4, False, "red"),
        (date(2026, 10, 1), 0, False, "red"),
        (date(2026, 10, 2), -1, True, "red"),
    ],
)
def test_r8_days_left_overdue_and_badge_at_their_boundaries(
    empty_dbs, as_of, days_left, overdue, badge
):
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1))  # due 2026-10-01

    row = by_id(requests.open_requests(empty_dbs, as_of), rid)

    assert (row["days_left"], bool(row["overdue"]), row["badge"]) == (days_left, overdue, badge)


def test_r8_closed_requests_are_absent_and_overdue_come_first(empty_dbs):
    received = date(2026, 9, 1)  # due 2026-10-01
    closed = {}
    for status in requests.CLOSED_STATUSES:
        closed[status] = add_request(empty_dbs, received_on=received)
        add_case(empty_dbs, closed[status], status=status, closed_on=date(2026, 9, 10))
    new = add_request(empty_dbs, received_on=date(2026, 9, 20))  # due 2026-10-20
    working = add_request(empty_dbs, received_on=date(2026, 9, 10))  # due 2026-10-12
    add_case(empty_dbs, working, status="in_progress")
    old = add_request(empty_dbs, received_on=date(2026, 8, 20))  # due 2026-09-21: overdue
    same_day = add_request(empty_dbs, received_on=date(2026, 9, 20))

    frame = requests.open_requests(empty_dbs, date(2026, 10, 6))

    assert list(frame["request_id"]) == [old, working, new, same_day]
    assert list(frame["status"]) == ["received", "in_progress", "received", "received"]
    assert list(frame["overdue"]) == [True, False, False, False]
    assert set(closed.values()).isdisjoint(frame["request_id"])
    assert list(frame.columns) == requests.OPEN_REQUEST_COLUMNS
    assert requests.request_counts(empty_dbs, date(2026, 10, 6)) == {
        "open": 4,
        "awaiting_identity": 0,
        "due_this_week": 1,
        "overdue": 1,
    }


def test_duplicates_flag_the_same_person_and_type_within_30_days(empty_dbs):
    first = add_request(empty_dbs, received_on=date(2026, 9, 1), subject_email="Kari@Example.no")
    again = add_request(empty_dbs, received_on=date(2026, 10, 1), subject_email="kari@example.no ")
    too_late = add_request(
        empty_dbs, received_on=date(2026, 11, 1), subject_email="kari@example.no"
    )
    other_type = add_request(
        empty_dbs,
        received_on=date(2026, 9, 2),
        subject_email="kari@example.no",
        request_type="erasure",
    )
    other_person = add_request(
        empty_dbs, received_on=date(2026, 9, 2), subject_email="ola@example.no"
    )
    handled = add_request(empty_dbs, received_on=date(2026, 8, 25), subject_email="ola@example.no")
    add_case(empty_dbs, handled, status="completed", closed_on=date(2026, 8, 30))

    frame = requests.open_requests(empty_dbs, date(2026, 11, 2))

    flags = dict(zip(frame["request_id"], frame["duplicate"], strict=True))
    assert flags == {
        first: True,  # 30 days before `again`
        again: True,
        too_late: False,  # 31 days after `again`
        other_type: False,
        other_person: True,  # a completed request of 8 days earlier still counts
    }


def test_filters_and_caps_report_the_total(empty_dbs):
    ids = [add_request(empty_dbs, received_on=date(2026, 9, d)) for d in (1, 2, 3, 4, 5)]
    erasure = add_request(empty_dbs, received_on=date(2026, 9, 6), request_type="erasure")
    add_case(empty_dbs, ids[4], status="in_progress")
    as_of = date(2026, 9, 20)  # ids[0] is due 2026-10-01: 11 days left

    capped = requests.open_requests(empty_dbs, as_of, limit=2)
    assert list(capped["request_id"]) == ids[:2]
    assert capped.attrs == {"total": 6, "truncated": True}

    empty_dbs.policy = replace(empty_dbs.policy, max_rows=3)
    default_cap = requests.open_requests(empty_dbs, as_of)
    assert list(default_cap["request_id"]) == ids[:3]
    assert default_cap.attrs == {"total": 6, "truncated": True}

    by_type = requests.open_requests(empty_dbs, as_of, request_type="erasure")
    assert list(by_type["request_id"]) == [erasure]
    assert by_type.attrs == {"total": 1, "truncated": False}
    by_status = requests.open_requests(empty_dbs, as_of, status="in_progress")
    assert list(by_status["request_id"]) == [ids[4]]
    # Due 10-01 (11 days), 10-02 (12 days), 10-05 (Monday, 15 days), ...
    soon = requests.open_requests(empty_dbs, as_of, due_within_days=12)
    assert list(soon["request_id"]) == ids[:2]
    with pytest.raises(ValueError, match="status"):
        requests.open_requests(empty_dbs, as_of, status="completed")


def test_open_requests_fetch_rows_shown_across_id_chunks(empty_dbs):
    received = datetime(2026, 9, 1, 10, 0)
    rows = [
        {
            "received_at": received,
            "channel": "email",
            "request_type": "access",
            "subject_email": f"person{n}@example.no",
            "subject_name": f"Person {n}",
        }
        for n in range(1_200)
    ]
    with empty_dbs.support.begin() as conn:
        conn.execute(insert(data_subject_requests), rows)

    frame = requests.open_requests(empty_dbs, date(2026, 9, 2), limit=1_100)

    assert len(frame) == 1_100
    assert frame.attrs == {"total": 1_200, "truncated": True}
    assert frame["request_id"].is_monotonic_increasing
    # Every row carries its own intake details, not a neighbour's.
    numbers = frame["subject_email"].str.extract(r"person(\d+)@")[0]
    assert (numbers == frame["subject_name"].str.removeprefix("Person ")).all()
    assert not frame["duplicate"].any()


def test_no_requests_gives_an_empty_frame_with_the_columns(empty_dbs):
    frame = requests.open_requests(empty_dbs, date(2026, 9, 1))

    assert frame.empty
    assert list(frame.columns) == requests.OPEN_REQUEST_COLUMNS
    assert frame.attrs == {"total": 0, "truncated": False}
    assert requests.request_counts(empty_dbs, date(2026, 9, 1)) == {
        "open": 0,
        "awaiting_identity": 0,
        "due_this_week": 0,
        "overdue": 0,
    }


def test_request_returns_the_intake_row_case_deadline_and_events(empty_dbs):
    rid = add_request(
        empty_dbs,
        received_at=datetime(2026, 3, 31, 23, 30),
        request_type="erasure",
        subject_email="kari@example.no",
    )
    add_case(
        empty_dbs,
        rid,
        status="in_progress",
        identity_requested_on=date(2026, 4, 2),
        identity_confirmed_on=date(2026, 4, 6),
        identity_method="BankID",
    )
    with empty_dbs.ledger.begin() as conn:
        for n, event in enumerate(("identity_requested", "identity_confirmed")):
            conn.execute(
                insert(request_events).values(
                    request_id=rid,
                    occurred_at=datetime(2026, 4, 2 + 4 * n, 9, 0),
                    effective_on=date(2026, 4, 2 + 4 * n),
                    actor="dpo@plaato.example",
                    event=event,
                )
            )

    found = requests.request(empty_dbs, rid, as_of=date(2026, 4, 10))

    assert found["request_id"] == rid
    assert found["subject_email"] == "kari@example.no"
    assert found["received_on"] == date(2026, 4, 1)
    assert found["status"] == "in_progress"
    assert found["is_open"]
    assert found["paused_days"] == 4
    # 2026-05-01 + 4 days = Tuesday 05-05.
    assert found["due_on"] == date(2026, 5, 5)
    assert found["unpaused_due_on"] == date(2026, 5, 4)
    assert found["case"]["identity_method"] == "BankID"
    assert list(found["events"]["event"]) == ["identity_requested", "identity_confirmed"]
    assert list(found["events"]["effective_on"]) == [date(2026, 4, 2), date(2026, 4, 6)]
    assert list(requests.request_events(empty_dbs, rid).columns) == requests.EVENT_COLUMNS


def test_request_of_a_closed_or_unknown_id(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 1, 5))
    add_case(empty_dbs, rid, status="completed", closed_on=date(2026, 1, 20))

    found = requests.request(empty_dbs, rid, as_of=date(2026, 6, 1))

    assert found["status"] == "completed"
    assert not found["is_open"]
    assert not found["overdue"]
    assert found["closed_on"] == date(2026, 1, 20)
    assert found["case"]["status"] == "completed"
    assert found["events"].empty
    with pytest.raises(KeyError):
        requests.request(empty_dbs, rid + 1)
