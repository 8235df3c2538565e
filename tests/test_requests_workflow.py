"""The request workflow (RULES.md R1-R8, R11, R12, R23) through its actions and read back
through `requests.open_requests`, on SQLite, PostgreSQL and MariaDB.

Every refusal is checked to leave the ledger (and the consent database) exactly as it was.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from data_access import audit, requests, subjects
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.clock import oslo_date, utc_now
from data_access.requests import duplicates
from data_access.requests.workflow import intake_row
from tests.factories import add_account, add_consent_event, add_request, add_subscriber
from tests.test_rules import R2_CALENDAR, R2_WORKED_EXAMPLES

ACTOR = "dpo@plaato.example"
LEDGER_TABLES = (
    lt.request_cases,
    lt.request_events,
    lt.recipient_tasks,
    lt.audit_log,
    lt.audit_head,
    lt.erasure_receipts,
    lt.jobs,
)


def snapshot(dbs) -> dict[str, list[tuple]]:
    """Every row the workflow can write, for "nothing changed" checks."""
    rows = {}
    with dbs.ledger.connect() as conn:
        for table in LEDGER_TABLES:
            key = list(table.primary_key.columns)
            rows[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*key))]
    with dbs.consent.connect() as conn:
        events = t.consent_events
        rows["consent_events"] = [
            tuple(r) for r in conn.execute(select(events).order_by(events.c.id))
        ]
    return rows


def row_of(dbs, request_id: int, as_of: date) -> dict:
    frame = requests.open_requests(dbs, as_of)
    rows = frame[frame["request_id"] == request_id].to_dict("records")
    assert len(rows) == 1, f"request {request_id} appears {len(rows)} times"
    return rows[0]


def case_of(dbs, request_id: int) -> dict:
    with dbs.ledger.connect() as conn:
        query = select(lt.request_cases).where(lt.request_cases.c.request_id == request_id)
        return dict(conn.execute(query).mappings().one())


def events_of(dbs, request_id: int) -> list[tuple[str, date, dict]]:
    frame = requests.request_events(dbs, request_id)
    return [
        (e, d, json.loads(x or "{}"))
        for e, d, x in zip(frame["event"], frame["effective_on"], frame["details"], strict=True)
    ]


def audit_rows(dbs) -> list[dict]:
    with dbs.ledger.connect() as conn:
        query = select(lt.audit_log).order_by(lt.audit_log.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def add_recipients(dbs) -> None:
    """Two recipients that receive personal data and a social media page that does not."""
    rows = [
        ("US payment processor", "US", "scc", True),
        ("Website provider", "NO", "eea", True),
        ("LinkedIn", "IE", "eea", False),
    ]
    with dbs.ledger.begin() as conn:
        conn.execute(
            insert(lt.recipients),
            [
                {
                    "name": name,
                    "role": "processor",
                    "country": country,
                    "transfer_mechanism": mechanism,
                    "named_in_policy": receives,
                    "receives_personal_data": receives,
                }
                for name, country, mechanism, receives in rows
            ],
        )


def refused(result, key, *fragments: str) -> str:
    assert result.succeeded == []
    assert list(result.failed) == [key]
    message = result.failed[key]
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- R1-R3 through open_requests ---------------------------------------------------------------


def test_r2_calendar_table_holds_through_open_requests(empty_dbs):
    """The table of RULES.md examples, holidays and month-end clamps of 2026-2028 (R2)."""
    expected = {}
    for param in R2_WORKED_EXAMPLES + R2_CALENDAR:
        received_on, due_on = param.values
        expected[add_request(empty_dbs, received_on=received_on)] = due_on

    frame = requests.open_requests(empty_dbs, date(2028, 12, 31))  # after every receipt

    assert len(expected) >= 25
    assert dict(zip(frame["request_id"], frame["due_on"], strict=True)) == expected


@pytest.mark.parametrize(
    ("received_on", "due_on"),
    [
        (date(2026, 1, 31), date(2026, 4, 30)),  # RULES.md R3's example
        (date(2026, 3, 5), date(2026, 6, 5)),  # from receipt, not from the rolled 04-07
        (date(2026, 11, 30), date(2027, 3, 1)),  # 28 Feb 2027 is a Sunday
        (date(2027, 11, 30), date(2028, 2, 29)),  # leap day
        (date(2026, 12, 25), date(2027, 3, 30)),  # 25 Mar 2027 Maundy Thursday .. Easter Monday
    ],
)
def test_r3_extension_through_the_workflow_counts_from_receipt(empty_dbs, received_on, due_on):
    rid = add_request(empty_dbs, received_on=received_on)

    result = requests.extend_request(
        empty_dbs,
        rid,
        reason="Complex request across four systems",
        notified_on=received_on,
        actor=ACTOR,
        as_of=received_on,
    )

    assert result.succeeded == [rid] and result.failed == {}
    row = row_of(empty_dbs, rid, received_on)
    assert (row["status"], row["due_on"], bool(row["extended"])) == ("extended", due_on, True)
    event, effective_on, details = events_of(empty_dbs, rid)[0]
    assert (event, effective_on) == ("extended", received_on)
    assert details["notified_on"] == received_on.isoformat()
    assert details["due_on"] == due_on.isoformat()
    entry = audit_rows(empty_dbs)[-1]
    assert (entry["action"], entry["rule"], entry["target"]) == (
        "extend_request",
        "R3",
        f"request:{rid}",
    )
    assert entry["subject_ref"] == audit.keyed_hash(empty_dbs, "kari@example.no")
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_r1_receipt_near_oslo_midnight_in_summer_and_winter(empty_dbs):
    # Summer (UTC+2): 22:30 UTC on 30 June is 00:30 on 1 July in Oslo.
    summer_late = add_request(empty_dbs, received_at=datetime(2026, 6, 30, 22, 30))
    summer_early = add_request(empty_dbs, received_at=datetime(2026, 6, 30, 21, 59))
    # Winter (UTC+1): 23:00 UTC on 28 February is midnight, 1 March, in Oslo.
    winter_late = add_request(empty_dbs, received_at=datetime(2026, 2, 28, 23, 0))
    winter_early = add_request(empty_dbs, received_at=datetime(2026, 2, 28, 22, 59, 59))

    frame = requests.open_requests(empty_dbs, date(2026, 7, 1))
    got = {
        rid: (received_on, due_on)
        for rid, received_on, due_on in zip(
            frame["request_id"], frame["received_on"], frame["due_on"], strict=True
        )
    }
    assert got == {
        summer_late: (date(2026, 7, 1), date(2026, 8, 3)),  # 1 Aug is a Saturday
        summer_early: (date(2026, 6, 30), date(2026, 7, 30)),
        winter_late: (date(2026, 3, 1), date(2026, 4, 1)),
        winter_early: (date(2026, 2, 28), date(2026, 3, 30)),  # 28 Mar is a Saturday
    }

    # The R5 window counts from the Oslo date: asked on 4 July is 3 days after 1 July (in
    # time to pause), although 4 days after the UTC date of receipt.
    asked = requests.request_identity(empty_dbs, summer_late, actor=ACTOR, as_of=date(2026, 7, 4))
    assert asked.succeeded == [summer_late]
    requests.confirm_identity(
        empty_dbs,
        summer_late,
        method="Reply from the account e-mail",
        actor=ACTOR,
        as_of=date(2026, 7, 8),
    )
    row = row_of(empty_dbs, summer_late, date(2026, 7, 9))
    assert (row["paused_days"], row["due_on"], row["unpaused_due_on"]) == (
        4,
        date(2026, 8, 5),
        date(2026, 8, 3),
    )


# --- R4 and R5 through the workflow -------------------------------------------------------------


def test_r4_late_or_blank_extension_is_refused_and_the_deadline_stays(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 1, 31))  # base deadline 2026-03-02
    before = snapshot(empty_dbs)

    late = requests.extend_request(
        empty_dbs,
        rid,
        reason="Complex",
        notified_on=date(2026, 3, 3),
        actor=ACTOR,
        as_of=date(2026, 3, 3),
    )
    refused(late, rid, "Too late to extend", "told by 2026-03-02", "deadline stays 2026-03-02")
    blank = requests.extend_request(
        empty_dbs,
        rid,
        reason="   ",
        notified_on=date(2026, 2, 10),
        actor=ACTOR,
        as_of=date(2026, 2, 10),
    )
    refused(blank, rid, "needs a reason", "deadline stays 2026-03-02")
    undated = requests.extend_request(
        empty_dbs, rid, reason="Complex", notified_on=None, actor=ACTOR, as_of=date(2026, 2, 10)
    )
    refused(undated, rid, "date the data subject was told")
    future = requests.extend_request(
        empty_dbs,
        rid,
        reason="Complex",
        notified_on=date(2026, 2, 20),
        actor=ACTOR,
        as_of=date(2026, 2, 10),
    )
    refused(future, rid, "must lie between")

    assert snapshot(empty_dbs) == before
    row = row_of(empty_dbs, rid, date(2026, 3, 3))
    assert (row["due_on"], bool(row["extended"]), bool(row["overdue"])) == (
        date(2026, 3, 2),
        False,
        True,
    )

    # Told on the base deadline itself is in time (R4: notified_on <= base due_on).
    on_the_day = requests.extend_request(
        empty_dbs,
        rid,
        reason="Complex",
        notified_on=date(2026, 3, 2),
        actor=ACTOR,
        as_of=date(2026, 3, 3),
    )
    assert on_the_day.succeeded == [rid]
    row = row_of(empty_dbs, rid, date(2026, 3, 3))
    assert (row["due_on"], bool(row["extended"]), bool(row["overdue"])) == (
        date(2026, 4, 30),
        True,
        False,
    )


def test_r4_extension_within_a_paused_base_deadline_counts(empty_dbs):
    # 2026-10-01 + 10 paused days = 10-11 (Sunday) -> 10-12: a notice on 10-05 is in time.
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1))
    requests.request_identity(empty_dbs, rid, actor=ACTOR, as_of=date(2026, 9, 4))
    requests.confirm_identity(
        empty_dbs,
        rid,
        method="Call-back to the phone number on the account",
        actor=ACTOR,
        as_of=date(2026, 9, 14),
    )

    result = requests.extend_request(
        empty_dbs,
        rid,
        reason="Payment records from the US processor",
        actor=ACTOR,
        notified_on=date(2026, 10, 5),
        as_of=date(2026, 10, 5),
    )

    assert result.succeeded == [rid]
    row = row_of(empty_dbs, rid, date(2026, 10, 6))
    assert (row["status"], row["due_on"], row["unpaused_due_on"], row["paused_days"]) == (
        "extended",
        date(2026, 12, 11),
        date(2026, 12, 1),
        10,
    )


def test_r5_identity_pause_through_the_workflow(empty_dbs):
    inside = add_request(empty_dbs, received_on=date(2026, 9, 1))
    outside = add_request(empty_dbs, received_on=date(2026, 9, 1))

    assert requests.request_identity(
        empty_dbs, inside, actor=ACTOR, as_of=date(2026, 9, 3)
    ).succeeded == [inside]
    requests.request_identity(empty_dbs, outside, actor=ACTOR, as_of=date(2026, 9, 5))

    # While outstanding the pause counts up to as_of and the request is never overdue.
    row = row_of(empty_dbs, inside, date(2026, 9, 10))
    assert (row["status"], row["paused_days"], row["due_on"], row["unpaused_due_on"]) == (
        "awaiting_identity",
        7,
        date(2026, 10, 8),
        date(2026, 10, 1),
    )
    row = row_of(empty_dbs, outside, date(2026, 10, 20))
    assert (row["status"], row["paused_days"], row["due_on"], bool(row["overdue"])) == (
        "awaiting_identity",
        0,
        date(2026, 10, 1),
        False,
    )
    assert [e[2] for e in events_of(empty_dbs, inside)] == [{"pauses_clock": True}]
    assert [e[2] for e in events_of(empty_dbs, outside)] == [{"pauses_clock": False}]

    confirmed = requests.confirm_identity(
        empty_dbs,
        inside,
        method="Signed in to the app and confirmed in the chat",
        actor=ACTOR,
        as_of=date(2026, 9, 8),
    )
    assert confirmed.succeeded == [inside]
    row = row_of(empty_dbs, inside, date(2026, 10, 20))
    # 2026-10-01 + 5 days = Tuesday 10-06; the pause is fixed once the identity arrived.
    assert (row["status"], row["paused_days"], row["due_on"], bool(row["overdue"])) == (
        "in_progress",
        5,
        date(2026, 10, 6),
        True,
    )
    case = case_of(empty_dbs, inside)
    assert (case["identity_requested_on"], case["identity_confirmed_on"]) == (
        date(2026, 9, 3),
        date(2026, 9, 8),
    )
    assert case["identity_method"] == "Signed in to the app and confirmed in the chat"
    assert case["version"] == 2
    assert [a["action"] for a in audit_rows(empty_dbs)] == [
        "request_identity",
        "request_identity",
        "confirm_identity",
    ]


# --- the state machine's refusals -----------------------------------------------------------------


def test_state_machine_refuses_illegal_moves_and_changes_nothing(empty_dbs):
    add_recipients(empty_dbs)
    received = date(2026, 9, 1)
    waiting = add_request(empty_dbs, received_on=received, request_type="withdraw_consent")
    requests.request_identity(empty_dbs, waiting, actor=ACTOR, as_of=date(2026, 9, 2))
    extended = add_request(empty_dbs, received_on=received)
    requests.extend_request(
        empty_dbs,
        extended,
        reason="Complex",
        notified_on=date(2026, 9, 5),
        actor=ACTOR,
        as_of=date(2026, 9, 5),
    )
    closed = add_request(empty_dbs, received_on=received)
    requests.withdraw_request(empty_dbs, closed, actor=ACTOR, as_of=date(2026, 9, 6))
    tasks = add_request(empty_dbs, received_on=received, request_type="restriction")
    ticks = list(requests.CHECKLISTS["restriction"])
    first = requests.complete_request(
        empty_dbs, tasks, checklist=ticks, actor=ACTOR, as_of=date(2026, 9, 7)
    )
    refused(first, tasks, "2 recipient notification task(s) were created")
    confirmed = add_request(empty_dbs, received_on=received)
    requests.confirm_identity(
        empty_dbs,
        confirmed,
        method="Reply from the account e-mail",
        actor=ACTOR,
        as_of=date(2026, 9, 2),
    )
    day = date(2026, 9, 10)
    before = snapshot(empty_dbs)

    moves = [
        (
            requests.complete_request(
                empty_dbs, waiting, purposes=["newsletter"], actor=ACTOR, as_of=day
            ),
            waiting,
            "asked for on 2026-09-02 has not been confirmed",
        ),
        (
            requests.extend_request(
                empty_dbs, extended, reason="Again", notified_on=day, actor=ACTOR, as_of=day
            ),
            extended,
            "extended only once",
        ),
        (
            requests.complete_request(empty_dbs, tasks, checklist=ticks, actor=ACTOR, as_of=day),
            tasks,
            "2 recipient notification task(s) are still open (US payment processor, Website "
            "provider)",
        ),
        (
            requests.complete_request(
                empty_dbs, tasks, checklist=ticks, actor=ACTOR, as_of=day, expected_version=0
            ),
            tasks,
            "changed since it was shown",
        ),
        (
            requests.request_identity(empty_dbs, waiting, actor=ACTOR, as_of=day),
            waiting,
            "already asked for on 2026-09-02",
        ),
        (
            requests.request_identity(empty_dbs, confirmed, actor=ACTOR, as_of=day),
            confirmed,
            "already confirmed on 2026-09-02",
        ),
        (
            requests.confirm_identity(
                empty_dbs, confirmed, method="BankID", actor=ACTOR, as_of=day
            ),
            confirmed,
            "already confirmed on 2026-09-02",
        ),
        (
            requests.confirm_identity(empty_dbs, waiting, method="  ", actor=ACTOR, as_of=day),
            waiting,
            "Say how the identity was checked",
        ),
        (
            requests.confirm_identity(
                empty_dbs, waiting, method="BankID", actor=ACTOR, as_of=date(2026, 9, 1)
            ),
            waiting,
            "before the request's last step (2026-09-02)",
        ),
        (
            requests.refuse_request(empty_dbs, confirmed, reason=" ", actor=ACTOR, as_of=day),
            confirmed,
            "needs a written reason",
        ),
        (
            requests.complete_request(empty_dbs, confirmed, actor=ACTOR, as_of=date(2026, 8, 31)),
            confirmed,
            "before the request was received (2026-09-01)",
        ),
        (
            requests.complete_request(empty_dbs, confirmed, actor=ACTOR, as_of=day),
            confirmed,
            "Prepare and send the access report (R9)",
        ),
        (
            requests.complete_request(
                empty_dbs, tasks, checklist=ticks[:1], actor=ACTOR, as_of=day
            ),
            tasks,
            "Tick every step of the checklist",
        ),
        (
            requests.request_identity(empty_dbs, 9999, actor=ACTOR, as_of=day),
            9999,
            "There is no data-subject request 9999",
        ),
    ]
    on_closed = [
        requests.request_identity(empty_dbs, closed, actor=ACTOR, as_of=day),
        requests.confirm_identity(empty_dbs, closed, method="BankID", actor=ACTOR, as_of=day),
        requests.extend_request(
            empty_dbs, closed, reason="Complex", notified_on=day, actor=ACTOR, as_of=day
        ),
        requests.complete_request(empty_dbs, closed, actor=ACTOR, as_of=day),
        requests.refuse_request(empty_dbs, closed, reason="Unfounded", actor=ACTOR, as_of=day),
        requests.withdraw_request(empty_dbs, closed, actor=ACTOR, as_of=day),
    ]
    moves += [(result, closed, "was withdrawn on 2026-09-06") for result in on_closed]

    for result, key, fragment in moves:
        refused(result, key, fragment)
    assert snapshot(empty_dbs) == before
    assert row_of(empty_dbs, extended, day)["due_on"] == date(2026, 12, 1)
    assert row_of(empty_dbs, waiting, day)["status"] == "awaiting_identity"


def test_a_double_click_or_stale_page_acts_once(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1))
    shown = requests.request(empty_dbs, rid, as_of=date(2026, 9, 2))
    version = shown["case"]["version"] if shown["case"] else 0

    clicks = [
        requests.withdraw_request(
            empty_dbs, rid, actor=ACTOR, as_of=date(2026, 9, 2), expected_version=version
        )
        for _ in range(2)
    ]

    assert clicks[0].succeeded == [rid]
    refused(clicks[1], rid, "changed since it was shown", "now withdrawn")
    assert [e[0] for e in events_of(empty_dbs, rid)] == ["withdrawn"]
    assert [a["action"] for a in audit_rows(empty_dbs)] == ["withdraw_request"]
    assert case_of(empty_dbs, rid)["version"] == 1


# --- closing: refusal (R6, R7) and withdrawal ----------------------------------------------------


def test_r6_refusal_names_datatilsynet_and_judicial_remedy_and_is_due_by_the_base_deadline(
    empty_dbs,
):
    rid = add_request(empty_dbs, received_on=date(2026, 1, 31))  # base 03-02, extended 04-30
    requests.extend_request(
        empty_dbs,
        rid,
        reason="Complex",
        notified_on=date(2026, 2, 20),
        actor=ACTOR,
        as_of=date(2026, 2, 20),
    )

    result = requests.refuse_request(
        empty_dbs,
        rid,
        reason="Invoices are kept under bokføringsloven § 13",
        in_part=True,
        actor=ACTOR,
        as_of=date(2026, 3, 10),
    )

    assert result.succeeded == [rid]
    case = case_of(empty_dbs, rid)
    assert (case["status"], case["closed_on"], case["outcome_note"]) == (
        "refused",
        date(2026, 3, 10),
        "Invoices are kept under bokføringsloven § 13",
    )
    event, effective_on, details = events_of(empty_dbs, rid)[-1]
    assert (event, effective_on) == ("refused", date(2026, 3, 10))
    # Due by the base deadline even though the request was extended (R6).
    assert (details["base_due_on"], details["late"], details["in_part"]) == (
        "2026-03-02",
        True,
        True,
    )
    letter = details["letter"]
    for text in (
        "Vi har avslått delvis",
        "klage til Datatilsynet",
        "bringe saken inn for domstolene",
        "We have refused in part",
        "lodge a complaint with Datatilsynet",
        "judicial remedy",
        "Invoices are kept under bokføringsloven § 13",
        "2026-01-31",
    ):
        assert text in letter
    entry = audit_rows(empty_dbs)[-1]
    assert (entry["action"], entry["rule"]) == ("refuse_request", "R6")
    assert json.loads(entry["details"]) == {
        "event": "refused",
        "effective_on": "2026-03-10",
        "in_part": True,
        "late": True,
    }
    assert rid not in set(requests.open_requests(empty_dbs, date(2026, 3, 10))["request_id"])


def test_r7_manifestly_unfounded_refusal_is_audited_under_r7(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1))

    result = requests.refuse_request(
        empty_dbs,
        rid,
        reason="The same request was answered three weeks earlier (art. 12(5))",
        manifestly_unfounded=True,
        actor=ACTOR,
        as_of=date(2026, 9, 3),
    )

    assert result.succeeded == [rid]
    entry = audit_rows(empty_dbs)[-1]
    assert (entry["action"], entry["rule"]) == ("refuse_request", "R7")
    details = events_of(empty_dbs, rid)[-1][2]
    assert (details["manifestly_unfounded"], details["late"], details["in_part"]) == (
        True,
        False,
        False,
    )
    assert "Vi har avslått helt" in details["letter"]
    # The letter says on which ground: art. 12(5), in both languages.
    assert (
        "åpenbart grunnløs eller overdreven (personvernforordningen art. 12 nr. 5)"
        in (details["letter"])
    )
    assert "manifestly unfounded or excessive (GDPR art. 12(5))" in details["letter"]


def test_r7_previous_request_of_the_same_type_from_the_same_person(empty_dbs):
    oldest = add_request(empty_dbs, received_on=date(2025, 9, 1), subject_email="Kari@Example.no")
    add_request(empty_dbs, received_on=date(2026, 8, 1), request_type="erasure")
    add_request(empty_dbs, received_on=date(2026, 8, 15), subject_email="ola@example.no")
    recent = add_request(empty_dbs, received_on=date(2026, 6, 1))
    now = add_request(empty_dbs, received_on=date(2026, 9, 1), subject_email=" kari@EXAMPLE.no")

    assert requests.previous_request_on(empty_dbs, now) == date(2026, 6, 1)
    # Other types and other people do not count; the earliest request has no predecessor.
    assert requests.previous_request_on(empty_dbs, recent) == date(2025, 9, 1)
    assert requests.previous_request_on(empty_dbs, oldest) is None
    with pytest.raises(KeyError):
        requests.previous_request_on(empty_dbs, now + 100)


def test_withdrawn_request_is_closed_with_its_note(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1))

    result = requests.withdraw_request(empty_dbs, rid, actor=ACTOR, as_of=date(2026, 9, 4))

    assert result.succeeded == [rid]
    found = requests.request(empty_dbs, rid, as_of=date(2026, 9, 4))
    assert (found["status"], found["closed_on"], found["is_open"]) == (
        "withdrawn",
        date(2026, 9, 4),
        False,
    )
    assert found["case"]["outcome_note"] == "The data subject withdrew the request."
    assert requests.request_counts(empty_dbs, date(2026, 9, 4))["open"] == 0


# --- completion: R11 tasks, checklists, R9 report, R23 consent, R12 erasure --------------------


def test_r11_recipient_tasks_gate_completion(empty_dbs):
    add_recipients(empty_dbs)
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1), request_type="rectification")
    ticks = list(requests.CHECKLISTS["rectification"])
    day = date(2026, 9, 10)

    first = requests.complete_request(empty_dbs, rid, checklist=ticks, actor=ACTOR, as_of=day)

    refused(first, rid, "2 recipient notification task(s) were created (R11)")
    tasks = requests.recipient_tasks(empty_dbs, rid)
    assert list(tasks.columns) == requests.TASK_COLUMNS
    # One per recipient that receives personal data; the social media page has none.
    assert list(tasks["recipient"]) == ["US payment processor", "Website provider"]
    assert list(tasks["status"]) == ["open", "open"]
    sent_id, other_id = (int(i) for i in tasks["task_id"])

    assert requests.close_recipient_task(
        empty_dbs, sent_id, outcome="sent", actor=ACTOR, as_of=day
    ).succeeded == [sent_id]
    refused(
        requests.close_recipient_task(empty_dbs, sent_id, outcome="sent", actor=ACTOR, as_of=day),
        sent_id,
        "already closed as sent on 2026-09-10",
    )
    refused(
        requests.close_recipient_task(
            empty_dbs, other_id, outcome="not_possible", actor=ACTOR, as_of=day
        ),
        other_id,
        "impossible or disproportionate",
    )
    refused(
        requests.close_recipient_task(empty_dbs, other_id, outcome="lost", actor=ACTOR, as_of=day),
        other_id,
        "must be one of sent, not_possible",
    )
    refused(
        requests.complete_request(empty_dbs, rid, checklist=ticks, actor=ACTOR, as_of=day),
        rid,
        "1 recipient notification task(s) are still open (Website provider)",
    )
    reason = "The provider keeps no copy of account data outside the form it forwards."
    requests.close_recipient_task(
        empty_dbs, other_id, outcome="not_possible", reason=reason, actor=ACTOR, as_of=day
    )

    done = requests.complete_request(empty_dbs, rid, checklist=ticks, actor=ACTOR, as_of=day)

    assert done.succeeded == [rid]
    tasks = requests.recipient_tasks(empty_dbs, rid)
    assert list(tasks["status"]) == ["sent", "not_possible"]
    assert tasks["reason"].isna().tolist() == [True, False]
    assert tasks["reason"].iloc[1] == reason
    assert list(tasks["closed_on"]) == [day, day]
    assert [e[0] for e in events_of(empty_dbs, rid)] == [
        "recipient_tasks_created",
        "recipient_notified",
        "recipient_notified",
        "completed",
    ]
    completed = events_of(empty_dbs, rid)[-1][2]
    assert completed["checklist"] == sorted(ticks)
    assert [(a["action"], a["rule"]) for a in audit_rows(empty_dbs)] == [
        ("create_recipient_tasks", "R11"),
        ("close_recipient_task", "R11"),
        ("close_recipient_task", "R11"),
        ("complete_request", "R11"),
    ]
    # A task of a closed request cannot change any more.
    refused(
        requests.close_recipient_task(empty_dbs, other_id, outcome="sent", actor=ACTOR, as_of=day),
        other_id,
        "was completed on 2026-09-10",
    )


def test_r11_a_task_closed_as_sent_keeps_no_reason_typed_for_another(empty_dbs):
    add_recipients(empty_dbs)
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1), request_type="rectification")
    day = date(2026, 9, 10)
    requests.complete_request(
        empty_dbs, rid, checklist=list(requests.CHECKLISTS["rectification"]), actor=ACTOR, as_of=day
    )
    first, second = (int(i) for i in requests.recipient_tasks(empty_dbs, rid)["task_id"])
    stale = "The provider keeps no copy of account data outside the form it forwards."

    requests.close_recipient_task(
        empty_dbs, first, outcome="not_possible", reason=stale, actor=ACTOR, as_of=day
    )
    requests.close_recipient_task(
        empty_dbs, second, outcome="sent", reason=stale, actor=ACTOR, as_of=day
    )

    tasks = requests.recipient_tasks(empty_dbs, rid)
    assert tasks["reason"].iloc[0] == stale
    assert tasks["reason"].isna().iloc[1]
    assert events_of(empty_dbs, rid)[-1][2]["reason"] is None


def test_objection_completes_only_with_every_checklist_step(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1), request_type="objection")
    steps = list(requests.CHECKLISTS["objection"])

    partial = requests.complete_request(
        empty_dbs, rid, checklist=steps[:2], actor=ACTOR, as_of=date(2026, 9, 5)
    )
    refused(partial, rid, "missing: Told the data subject the outcome")
    done = requests.complete_request(
        empty_dbs,
        rid,
        checklist=steps,
        note="Marketing stopped.",
        actor=ACTOR,
        as_of=date(2026, 9, 5),
    )

    assert done.succeeded == [rid]
    case = case_of(empty_dbs, rid)
    assert (case["status"], case["outcome_note"]) == ("completed", "Marketing stopped.")
    assert requests.recipient_tasks(empty_dbs, rid).empty  # objection notifies no recipient


def test_r9_access_request_completes_after_its_audited_report(empty_dbs):
    add_account(empty_dbs, email="kari@example.no", full_name="Kari Nordmann")
    rid = add_request(empty_dbs, received_on=date(2026, 9, 1), subject_email="Kari@Example.no")
    requests.confirm_identity(
        empty_dbs,
        rid,
        method="Reply from the account e-mail",
        actor=ACTOR,
        as_of=date(2026, 9, 2),
    )
    refused(
        requests.complete_request(empty_dbs, rid, actor=ACTOR, as_of=date(2026, 9, 3)),
        rid,
        "Prepare and send the access report (R9)",
    )

    report = requests.prepare_report(empty_dbs, rid, actor=ACTOR, as_of=date(2026, 9, 3))

    assert report.file_name == "access-report-2026-09-03.zip"
    assert report.rows["users.accounts"] == 1
    assert report.data.startswith(b"PK")
    done = requests.complete_request(empty_dbs, rid, actor=ACTOR, as_of=date(2026, 9, 3))
    assert done.succeeded == [rid]
    kinds = [(e, d.get("kind")) for e, _on, d in events_of(empty_dbs, rid)]
    assert kinds == [
        ("identity_confirmed", None),
        ("report_prepared", "access"),
        ("completed", None),
    ]
    entries = audit_rows(empty_dbs)
    assert [(a["action"], a["rule"]) for a in entries] == [
        ("confirm_identity", "R5"),
        ("access_report", "R9"),
        ("complete_request", "R9"),
    ]
    download = entries[1]
    assert download["subject_ref"] == audit.keyed_hash(empty_dbs, "kari@example.no")
    assert json.loads(download["counts"])["users.accounts"] == 1
    # No audit column holds the e-mail or the name (R18).
    text = json.dumps([list(map(str, a.values())) for a in entries]).lower()
    assert "kari@example.no" not in text and "nordmann" not in text


def test_r23_withdraw_consent_appends_withdrawn_events_under_the_subjects_keys(empty_dbs):
    account = add_account(empty_dbs, email="kari@example.no", full_name="Kari Nordmann")
    granted = [
        add_consent_event(
            empty_dbs,
            purpose="usage_statistics",
            action="granted",
            on=date(2025, 1, 1),
            account_id=account,
            notice_version="us-v2",
        ),
        add_consent_event(
            empty_dbs,
            purpose="newsletter",
            action="granted",
            on=date(2025, 2, 1),
            email="Kari@Example.no",
            notice_version="nl-v1",
        ),
    ]
    add_subscriber(empty_dbs, email="kari@example.no")
    with empty_dbs.consent.connect() as conn:
        history = [tuple(r) for r in conn.execute(select(t.consent_events))]
    rid = add_request(
        empty_dbs,
        received_on=date(2026, 9, 1),
        request_type="withdraw_consent",
        subject_email="kari@example.no ",
    )
    purposes = ["usage_statistics", "newsletter", "marketing"]

    refused(
        requests.complete_request(
            empty_dbs, rid, purposes=["cookies"], actor=ACTOR, as_of=date(2026, 9, 4)
        ),
        rid,
        "unknown: cookies",
    )
    done = requests.complete_request(
        empty_dbs, rid, purposes=purposes, actor=ACTOR, as_of=date(2026, 9, 4)
    )

    assert done.succeeded == [rid]
    with empty_dbs.consent.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                select(t.consent_events).order_by(t.consent_events.c.id)
            ).mappings()
        ]
    # History is untouched; one withdrawal per purpose, after it.
    assert [tuple(r.values()) for r in rows[:2]] == history
    added = rows[2:]
    assert all(r["id"] > max(granted) for r in added)
    assert [
        (r["purpose"], r["account_id"], r["email"], r["action"], r["source"], r["notice_version"])
        for r in added
    ] == [
        ("marketing", account, None, "withdrawn", "dpo_dashboard", None),
        ("newsletter", None, "kari@example.no", "withdrawn", "dpo_dashboard", "nl-v1"),
        ("usage_statistics", account, None, "withdrawn", "dpo_dashboard", "us-v2"),
    ]
    assert {oslo_date(r["occurred_at"]) for r in added} == {date(2026, 9, 4)}
    details = events_of(empty_dbs, rid)[-1][2]
    assert details["withdrawn"] == {"marketing": 1, "newsletter": 1, "usage_statistics": 1}
    entries = audit_rows(empty_dbs)
    assert [(a["action"], a["rule"], a["store"]) for a in entries] == [
        ("withdraw_consent", "R23", "consent"),
        ("complete_request", "R23", "ledger"),
    ]
    assert json.loads(entries[0]["counts"]) == {"consent_events": 3}

    # A second request for the same purposes finds them withdrawn: nothing is appended twice.
    again = add_request(
        empty_dbs,
        received_on=date(2026, 9, 10),
        request_type="withdraw_consent",
        subject_email="kari@example.no",
    )
    assert requests.complete_request(
        empty_dbs, again, purposes=purposes, actor=ACTOR, as_of=date(2026, 9, 10)
    ).succeeded == [again]
    with empty_dbs.consent.connect() as conn:
        assert len(conn.execute(select(t.consent_events.c.id)).all()) == 5
    assert events_of(empty_dbs, again)[-1][2]["withdrawn"] == {
        "marketing": 0,
        "newsletter": 0,
        "usage_statistics": 0,
    }


def test_r12_erasure_request_erases_then_waits_for_its_recipient_tasks(empty_dbs):
    add_recipients(empty_dbs)
    account = add_account(empty_dbs, email="ola@example.no", full_name="Ola Nordmann")
    add_consent_event(
        empty_dbs,
        purpose="usage_statistics",
        action="granted",
        on=date(2025, 1, 1),
        account_id=account,
    )
    rid = add_request(
        empty_dbs,
        received_on=date(2026, 9, 1),
        request_type="erasure",
        subject_email="Ola@Example.no",
        subject_name="Ola Nordmann",
    )
    requests.confirm_identity(
        empty_dbs,
        rid,
        method="Reply from the account e-mail",
        actor=ACTOR,
        as_of=date(2026, 9, 2),
    )
    day = date(2026, 9, 8)

    first = requests.complete_request(
        empty_dbs, rid, actor=ACTOR, as_of=day, idempotency_key="erase-click-1"
    )

    refused(first, rid, "2 recipient notification task(s) were created")
    assert subjects.find_subject(empty_dbs, "ola@example.no")["users.accounts"].empty
    with empty_dbs.ledger.connect() as conn:
        receipts = conn.execute(
            select(lt.erasure_receipts.c.id, lt.erasure_receipts.c.request_id)
        ).all()
    assert [r.request_id for r in receipts] == [rid]
    erased = [d for e, _on, d in events_of(empty_dbs, rid) if e == "erased"]
    assert erased[0]["receipt_id"] == receipts[0].id
    assert erased[0]["erased"]["users.accounts"] == 1
    assert (erased[0]["residue_rows"], erased[0]["residue"]) == (0, [])  # R18 scan in short

    for task_id in requests.recipient_tasks(empty_dbs, rid)["task_id"]:
        requests.close_recipient_task(
            empty_dbs, int(task_id), outcome="sent", actor=ACTOR, as_of=day
        )
    done = requests.complete_request(
        empty_dbs, rid, actor=ACTOR, as_of=day, idempotency_key="erase-click-2"
    )

    assert done.succeeded == [rid]
    with empty_dbs.ledger.connect() as conn:
        assert len(conn.execute(select(lt.erasure_receipts.c.id)).all()) == 1  # erased once
    events = events_of(empty_dbs, rid)
    assert [e for e, _on, _d in events] == [
        "identity_confirmed",
        "erased",
        "recipient_tasks_created",
        "recipient_notified",
        "recipient_notified",
        "completed",
    ]
    assert events[-1][2]["receipt_id"] == receipts[0].id
    assert case_of(empty_dbs, rid)["status"] == "completed"
    # The intake row stays as proof that the request was handled (R18).
    assert subjects.find_subject(empty_dbs, "ola@example.no")["support.data_subject_requests"][
        "id"
    ].tolist() == [rid]
    assert audit.verify_chain(empty_dbs) == (True, None)


RESUMING = "other.dpo@plaato.example"


def account_events(dbs, account_id: int) -> int:
    with dbs.consent.connect() as conn:
        query = select(t.consent_events.c.id).where(t.consent_events.c.account_id == account_id)
        return len(conn.execute(query).all())


def test_r12_an_erasure_stopped_mid_job_is_refused_while_it_runs_and_resumed_after(empty_dbs):
    """The page's script stopped mid-erasure (an exception from the progress callback): the
    job is left partial, not running. While another run holds it under a live lease,
    completing is refused and changes nothing; once that lease has expired, completing
    again as another DPO finishes the erasure, and the steps it ran carry that DPO."""
    dbs = empty_dbs
    account = add_account(dbs, email="ola@example.no", full_name="Ola Nordmann")
    add_consent_event(
        dbs, purpose="usage_statistics", action="granted", on=date(2025, 1, 1), account_id=account
    )
    rid = add_request(
        dbs, received_on=date(2026, 9, 1), request_type="erasure", subject_email="ola@example.no"
    )
    requests.confirm_identity(dbs, rid, method="Reply", actor=ACTOR, as_of=date(2026, 9, 2))
    day = date(2026, 9, 8)

    def stopped(_fraction, _message):
        raise RuntimeError("the page's script was stopped")

    with pytest.raises(RuntimeError):
        requests.complete_request(dbs, rid, actor=ACTOR, as_of=day, progress=stopped)

    job = requests.unfinished_erasure(dbs, rid)
    assert (job["status"], job["lease_expires_at"]) == ("partial", None)
    assert "stopped mid-job" in job["error"]
    assert subjects.find_subject(dbs, "ola@example.no")["users.accounts"].empty
    assert account_events(dbs, account) == 1  # the consent step never ran
    # Another run claims it (a second tab), and is still alive:
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(lt.jobs)
            .where(lt.jobs.c.id == job["job_id"])
            .values(
                status="running",
                claimed_by=RESUMING,
                claim_token="a" * 32,
                lease_expires_at=utc_now() + timedelta(minutes=5),
            )
        )
    before = snapshot(dbs)

    busy = requests.complete_request(dbs, rid, actor=ACTOR, as_of=day)

    refused(busy, rid, f"The erasure (job {job['job_id']}) is not finished", "running now")
    assert snapshot(dbs) == before
    with dbs.ledger.begin() as conn:  # that run is gone too
        conn.execute(
            update(lt.jobs)
            .where(lt.jobs.c.id == job["job_id"])
            .values(lease_expires_at=utc_now() - timedelta(seconds=1))
        )

    done = requests.complete_request(dbs, rid, actor=RESUMING, as_of=day)

    assert done.succeeded == [rid]
    assert account_events(dbs, account) == 0
    steps = {r["action"]: r["actor"] for r in audit_rows(dbs) if r["action"].startswith("erase_")}
    assert steps == {
        "erase_users": ACTOR,
        "erase_consent": RESUMING,
        "erase_support": RESUMING,
        "erase_ledger_copies": RESUMING,
    }
    assert [e for e, _on, _d in events_of(dbs, rid)].count("erased") == 1
    assert case_of(dbs, rid)["status"] == "completed"
    assert audit.verify_chain(dbs) == (True, None)


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_on_time_rate_median_days_and_open_by_type(empty_dbs):
    def closed(received_on, closed_on, how, request_type="access", **extend):
        rid = add_request(empty_dbs, received_on=received_on, request_type=request_type)
        if extend:
            requests.extend_request(empty_dbs, rid, actor=ACTOR, **extend)
        if how == "completed":
            requests.complete_request(
                empty_dbs,
                rid,
                actor=ACTOR,
                as_of=closed_on,
                checklist=["stopped", "grounds", "told"],
            )
        elif how == "refused":
            requests.refuse_request(
                empty_dbs, rid, reason="Unfounded", actor=ACTOR, as_of=closed_on
            )
        else:
            requests.withdraw_request(empty_dbs, rid, actor=ACTOR, as_of=closed_on)
        return rid

    # September: due 10-01, completed on 09-11 (10 days, on time).
    closed(date(2026, 9, 1), date(2026, 9, 11), "completed", "objection")
    # October: one late completion (due 10-01, closed 10-02: 31 days), one extended and on
    # time (due 12-01, closed 10-20: 49 days), a refusal after its base deadline although
    # extended (R6; 41 days), and a withdrawal, which is not an answer.
    closed(date(2026, 9, 1), date(2026, 10, 2), "completed", "objection")
    closed(
        date(2026, 9, 1),
        date(2026, 10, 20),
        "completed",
        "objection",
        reason="Complex",
        notified_on=date(2026, 9, 20),
        as_of=date(2026, 9, 20),
    )
    closed(
        date(2026, 9, 1),
        date(2026, 10, 12),
        "refused",
        reason="Complex",
        notified_on=date(2026, 9, 20),
        as_of=date(2026, 9, 20),
    )
    closed(date(2026, 9, 1), date(2026, 10, 5), "withdrawn")
    open_access = add_request(empty_dbs, received_on=date(2026, 9, 25))
    add_request(empty_dbs, received_on=date(2026, 8, 1), request_type="erasure")  # overdue
    waiting = add_request(empty_dbs, received_on=date(2026, 9, 28), request_type="erasure")
    requests.request_identity(empty_dbs, waiting, actor=ACTOR, as_of=date(2026, 9, 29))

    metrics = requests.closure_metrics(empty_dbs, date(2026, 8, 15), date(2026, 10, 31))

    assert list(metrics.columns) == requests.CLOSURE_COLUMNS
    assert metrics.to_dict("records")[0]["answered"] == 0
    assert metrics["month"].tolist() == [date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)]
    assert metrics["answered"].tolist() == [0, 1, 3]
    assert metrics["on_time"].tolist() == [0, 1, 1]
    assert metrics["late"].tolist() == [0, 0, 2]
    assert metrics["on_time_rate"].tolist()[1:] == [1.0, pytest.approx(1 / 3)]
    assert metrics["on_time_rate"].isna().tolist() == [True, False, False]
    assert metrics["median_days_to_close"].tolist()[1:] == [10.0, 41.0]
    assert metrics.attrs == {
        "answered": 4,
        "on_time_rate": 0.5,
        "median_days_to_close": pytest.approx(36.0),
    }

    # After the last closure (10-20): looking further back, those were still open.
    by_type = requests.open_by_type(empty_dbs, date(2026, 10, 21))
    assert list(by_type.columns) == requests.OPEN_BY_TYPE_COLUMNS
    assert by_type.to_dict("records") == [
        {"request_type": "access", "status": "received", "requests": 1, "overdue": 0},
        {"request_type": "erasure", "status": "received", "requests": 1, "overdue": 1},
        {"request_type": "erasure", "status": "awaiting_identity", "requests": 1, "overdue": 0},
    ]
    assert open_access in set(requests.open_requests(empty_dbs, date(2026, 10, 21))["request_id"])


# --- duplicates: answered through their original, never on a bare e-mail -----------------


def test_r5_an_unverified_duplicate_erasure_request_cannot_erase(empty_dbs):
    add_account(empty_dbs, email="kari@example.no", full_name="Kari Nordmann")
    original = add_request(
        empty_dbs, received_on=date(2026, 9, 1), request_type="erasure",
        subject_email="kari@example.no", subject_name="Kari Nordmann",
    )  # fmt: skip
    duplicate = add_request(
        empty_dbs, received_on=date(2026, 9, 3), request_type="erasure",
        subject_email=" KARI@example.no", subject_name="Kari Nordmann",
    )  # fmt: skip
    requests.confirm_identity(
        empty_dbs, original, method="Reply from the account e-mail", actor=ACTOR,
        as_of=date(2026, 9, 2),
    )  # fmt: skip
    day = date(2026, 9, 8)
    before = snapshot(empty_dbs)

    refused(
        requests.complete_request(empty_dbs, duplicate, actor=ACTOR, as_of=day),
        duplicate,
        f"duplicates request {original} of the same data subject, which is still open",
    )
    assert snapshot(empty_dbs) == before  # nothing written, nothing erased
    assert not subjects.find_subject(empty_dbs, "kari@example.no")["users.accounts"].empty

    assert requests.complete_request(empty_dbs, original, actor=ACTOR, as_of=day).succeeded
    assert subjects.find_subject(empty_dbs, "kari@example.no")["users.accounts"].empty
    # The original is answered; the duplicate still needs its own identity check.
    refused(
        requests.complete_request(empty_dbs, duplicate, actor=ACTOR, as_of=day),
        duplicate,
        "identity has not been confirmed on it",
    )
    requests.confirm_identity(
        empty_dbs, duplicate, method="Reply from the same address", actor=ACTOR, as_of=day
    )
    assert requests.complete_request(empty_dbs, duplicate, actor=ACTOR, as_of=day).succeeded
    assert duplicate not in set(requests.open_requests(empty_dbs, day)["request_id"])


def test_r5_a_duplicate_access_request_gets_no_report_before_its_identity_is_confirmed(
    empty_dbs,
):
    add_account(empty_dbs, email="ola@example.no", full_name="Ola Nordmann")
    first = add_request(
        empty_dbs, received_on=date(2026, 9, 1), request_type="access",
        subject_email="ola@example.no",
    )  # fmt: skip
    second = add_request(
        empty_dbs, received_on=date(2026, 9, 1), request_type="access",
        subject_email="ola@example.no",
    )  # fmt: skip
    requests.withdraw_request(empty_dbs, first, actor=ACTOR, as_of=date(2026, 9, 2))

    with pytest.raises(requests.RequestRefused, match="identity has not been confirmed on it"):
        requests.prepare_report(empty_dbs, second, actor=ACTOR, as_of=date(2026, 9, 2))
    # The first of the two is nobody's duplicate: it is answered as before.
    assert duplicates.originals_of(empty_dbs, intake_row(empty_dbs, first)) == []


def test_requests_of_other_types_or_far_apart_are_not_duplicates(empty_dbs):
    a = add_request(
        empty_dbs, received_on=date(2026, 1, 1), request_type="erasure", subject_email="a@b.no"
    )
    b = add_request(
        empty_dbs, received_on=date(2026, 9, 1), request_type="erasure", subject_email="a@b.no"
    )
    c = add_request(
        empty_dbs, received_on=date(2026, 9, 1), request_type="access", subject_email="a@b.no"
    )
    for rid in (a, b, c):
        row = intake_row(empty_dbs, rid)
        assert duplicates.originals_of(empty_dbs, row) == []
