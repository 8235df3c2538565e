"""Control characters in typed input (a NUL above all, which PostgreSQL refuses in text)
get a clear ValueError or an empty result on every backend, never a database error; free
text longer than its limit (free_text.MAX_TEXT) is refused the same way."""

from __future__ import annotations

from datetime import date

import pytest

from data_access import audit, holds, register_edit, requests, subjects
from data_access.free_text import MAX_TEXT
from tests import factories as f

AS_OF = date(2026, 11, 29)


@pytest.mark.parametrize(
    "typed", ["kari\x00@example.no", "kari@exa\nmple.no", "ka\x7fri@example.no"]
)
def test_lookup_refuses_an_address_with_control_characters(empty_dbs, typed):
    f.add_account(empty_dbs, email="kari@example.no")
    with pytest.raises(ValueError, match="is not an e-mail address"):
        subjects.find_subject(empty_dbs, typed)


def test_a_hold_with_a_nul_in_its_reason_is_refused_and_nothing_is_written(empty_dbs):
    account_id = f.add_account(empty_dbs)
    with pytest.raises(ValueError, match="NUL character"):
        holds.place_hold(
            empty_dbs,
            account_id=account_id,
            reason="tvist\x00",
            case_ref="SAK-1",
            review_on=date(2027, 6, 1),
            actor="dpo@plaato.example",
            as_of=AS_OF,
        )
    assert holds.active_holds(empty_dbs, AS_OF).empty


def test_an_audit_filter_with_a_nul_matches_nothing(empty_dbs):
    with empty_dbs.ledger.begin() as conn:
        audit.append(conn, actor="dpo@plaato.example", action="export")
    assert audit.audit_entries(empty_dbs, action="export")["action"].tolist() == ["export"]
    assert audit.audit_entries(empty_dbs, action="exp\x00ort").empty


ACTOR = "dpo@plaato.example"
MEGABYTE = "Tvist om faktura. " * 60_000  # a 1 MB paste


def place(dbs, **given) -> int:
    values = {"reason": "Tvist", "case_ref": "SAK-1", "review_on": date(2027, 6, 1)}
    return holds.place_hold(dbs, **{**values, **given}, actor=ACTOR, as_of=AS_OF)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"email": "kari\x00@example.no"}, "is not an e-mail address"),
        ({"account_id": 0, "reason": MEGABYTE}, f"at most {MAX_TEXT:,} are allowed"),
        ({"account_id": 0, "case_ref": "SAK-" + "1" * 200}, "at most 100 are allowed"),
        ({"account_id": 0, "case_ref": "SAK\x00"}, "case reference cannot hold a NUL"),
    ],
)
def test_a_hold_with_a_nul_or_too_much_text_is_refused_and_nothing_is_written(
    empty_dbs, given, message
):
    if given.get("account_id") == 0:
        given["account_id"] = f.add_account(empty_dbs)
    with pytest.raises(ValueError, match=message):
        place(empty_dbs, **given)
    assert holds.all_holds(empty_dbs, AS_OF).empty


RECIPIENT = {"name": "Website provider", "role": "processor", "country": "NO",
             "transfer_mechanism": "eea"}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Fjord\x00web", "name: The text cannot hold a NUL character."),
        ("notes", "DPA signed\x00", "notes: The text cannot hold a NUL character."),
        ("notes", MEGABYTE, f"notes: At most {MAX_TEXT:,} characters."),
    ],
)
def test_a_register_entry_with_a_nul_or_too_much_text_is_refused(empty_dbs, field, value, message):
    result = register_edit.save_recipient(
        empty_dbs, {**RECIPIENT, field: value}, actor=ACTOR, as_of=AS_OF
    )
    assert result.succeeded == [] and result.failed == {"new": message}
    assert audit.audit_entries(empty_dbs).empty


def _refuse(dbs, rid, text):
    return requests.refuse_request(dbs, rid, reason=text, actor=ACTOR, as_of=AS_OF)


def _extend(dbs, rid, text):
    return requests.extend_request(
        dbs, rid, reason=text, notified_on=AS_OF, actor=ACTOR, as_of=AS_OF
    )


def _withdraw(dbs, rid, text):
    return requests.withdraw_request(dbs, rid, note=text, actor=ACTOR, as_of=AS_OF)


def _confirm(dbs, rid, text):
    return requests.confirm_identity(dbs, rid, method=text, actor=ACTOR, as_of=AS_OF)


def _complete(dbs, rid, text):
    return requests.complete_request(dbs, rid, note=text, actor=ACTOR, as_of=AS_OF)


@pytest.mark.parametrize(
    ("text", "message"),
    [("Grunnløs\x00", "cannot hold a NUL character"), (MEGABYTE, "characters; at most")],
)
def test_a_request_step_with_a_nul_or_too_much_text_is_refused(empty_dbs, text, message):
    for action in (_refuse, _extend, _withdraw, _confirm, _complete):
        rid = f.add_request(empty_dbs, received_on=date(2026, 11, 20))
        result = action(empty_dbs, rid, text)
        assert result.succeeded == [], action.__name__
        assert message in result.failed[rid], action.__name__
        assert requests.request_events(empty_dbs, rid).empty
    assert audit.audit_entries(empty_dbs).empty
