"""Legal holds: placing, releasing, listing and coverage (RULES.md R17, R18)."""

from __future__ import annotations

import json
from datetime import date

import factories as f
import numpy as np
import pytest
from conftest import make_databases
from sqlalchemy import func, select

from data_access import audit, holds
from data_access.ledger_tables import audit_log, legal_holds
from data_access.settings import Policy

DPO = "dpo@plaato.example"
PLACED = date(2026, 11, 2)


def place(dbs, **kwargs) -> int:
    values = {
        "reason": "Krav om erstatning",
        "case_ref": "SAK-2026-17",
        "actor": DPO,
        "as_of": PLACED,
        "review_on": date(2027, 5, 1),
        **kwargs,
    }
    return holds.place_hold(dbs, **values)


def audit_rows(dbs) -> list[dict]:
    with dbs.ledger.connect() as conn:
        return [
            dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings()
        ]


def hold_count(dbs) -> int:
    with dbs.ledger.connect() as conn:
        return conn.execute(select(func.count()).select_from(legal_holds)).scalar_one()


def test_r17_email_hold_is_stored_normalised_and_audited_pseudonymously(empty_dbs):
    hold_id = place(empty_dbs, email="  Kari.Nordmann@Example.NO ", owner="jurist@plaato.example")

    frame = holds.active_holds(empty_dbs, as_of=PLACED)
    entries = audit_rows(empty_dbs)

    row = frame.iloc[0]
    assert (row["id"], row["scope"], row["email"]) == (hold_id, "email", "kari.nordmann@example.no")
    assert row["account_id"] is None and row["contact_id"] is None
    assert (row["reason"], row["case_ref"]) == ("Krav om erstatning", "SAK-2026-17")
    assert (row["owner"], row["placed_on"], row["review_on"]) == (
        "jurist@plaato.example",
        PLACED,
        date(2027, 5, 1),
    )
    assert not row["past_review"]
    ref = audit.keyed_hash(empty_dbs, "kari.nordmann@example.no")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["action"], entry["rule"], entry["store"]) == ("place_hold", "R17", "ledger")
    assert (entry["actor"], entry["subject_ref"], entry["target"]) == (DPO, ref, f"hold:{hold_id}")
    assert json.loads(entry["details"]) == {
        "scope": "email",
        "placed_on": "2026-11-02",
        "review_on": "2027-05-01",
    }
    assert "kari" not in json.dumps(entry, default=str).lower()
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_r17_review_date_defaults_to_policy_months_and_owner_to_actor(empty_dbs):
    account = f.add_account(empty_dbs)

    # An id picked from a DataFrame arrives as a numpy integer.
    hold_id = place(
        empty_dbs, account_id=np.int64(account), review_on=None, as_of=date(2026, 8, 31)
    )

    row = holds.active_holds(empty_dbs, as_of=date(2026, 8, 31)).iloc[0]
    assert row["id"] == hold_id
    assert (row["scope"], row["account_id"]) == ("account", account)
    assert row["review_on"] == date(2027, 8, 31)
    assert row["owner"] == DPO
    assert json.loads(audit_rows(empty_dbs)[0]["details"])["account_id"] == account


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one scope"),
        ({"email": "kari@example.no", "contact_id": 1}, "exactly one scope"),
        ({"email": "   "}, "exactly one scope"),
        ({"email": "kari.example.no"}, "not an e-mail"),
        ({"email": "kari@example.no", "reason": "  "}, "needs a reason"),
        ({"email": "kari@example.no", "case_ref": ""}, "case reference"),
        ({"email": "kari@example.no", "actor": ""}, "actor"),
        ({"email": "kari@example.no", "review_on": PLACED}, "must be after 2026-11-02"),
        ({"account_id": 999}, "no account 999"),
        ({"contact_id": 999}, "no contact 999"),
        ({"account_id": "7"}, "whole number"),
        ({"account_id": 2**63}, "no account 9223372036854775808"),
        ({"contact_id": -4}, "no contact -4"),
        ({"email": "kari@example.no", "owner": "not an email"}, "owner must be an e-mail"),
        ({"email": "kari@example.no", "owner": "dpo@ plaato.example"}, "owner must be"),
    ],
)
def test_r17_bad_input_raises_and_writes_nothing(sqlite_dbs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        place(sqlite_dbs, **kwargs)

    assert hold_count(sqlite_dbs) == 0
    assert audit_rows(sqlite_dbs) == []


def test_r17_placing_the_same_hold_twice_keeps_one(empty_dbs):
    contact = f.add_contact(empty_dbs, started_on=date(2026, 1, 5))

    first = place(empty_dbs, contact_id=contact)
    again = place(empty_dbs, contact_id=contact)
    other_case = place(empty_dbs, contact_id=contact, case_ref="SAK-2026-18")

    assert again == first
    assert other_case != first
    assert hold_count(empty_dbs) == 2
    assert len(audit_rows(empty_dbs)) == 2


def test_r17_release_hold_records_who_and_when(empty_dbs):
    hold_id = place(empty_dbs, email="kari@example.no")

    holds.release_hold(
        empty_dbs, np.int64(hold_id), actor="jurist@plaato.example", as_of=date(2026, 12, 1)
    )

    assert holds.active_holds(empty_dbs, as_of=date(2026, 12, 1)).empty
    row = holds.all_holds(empty_dbs, as_of=date(2026, 12, 1)).iloc[0]
    assert (row["released_on"], row["released_by"]) == (date(2026, 12, 1), "jurist@plaato.example")
    assert not row["active"]
    entry = audit_rows(empty_dbs)[-1]
    assert (entry["action"], entry["rule"], entry["target"]) == (
        "release_hold",
        "R17",
        f"hold:{hold_id}",
    )
    assert entry["subject_ref"] == audit.keyed_hash(empty_dbs, "kari@example.no")
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_r17_release_unknown_released_or_early_hold_fails(empty_dbs):
    hold_id = place(empty_dbs, email="kari@example.no")
    holds.release_hold(empty_dbs, hold_id, actor=DPO, as_of=date(2026, 12, 1))
    later = place(empty_dbs, email="per@example.no")

    with pytest.raises(ValueError, match="already released on 2026-12-01"):
        holds.release_hold(empty_dbs, hold_id, actor=DPO, as_of=date(2026, 12, 2))
    with pytest.raises(ValueError, match="no legal hold 999"):
        holds.release_hold(empty_dbs, 999, actor=DPO, as_of=date(2026, 12, 2))
    with pytest.raises(ValueError, match="cannot be released on 2026-11-01"):
        holds.release_hold(empty_dbs, later, actor=DPO, as_of=date(2026, 11, 1))

    assert len(audit_rows(empty_dbs)) == 3  # two placements, one release
    assert holds.active_holds(empty_dbs, as_of=date(2026, 12, 2))["id"].tolist() == [later]
    # Looking back to the day they were placed, both were in force.
    assert holds.active_holds(empty_dbs, as_of=PLACED)["id"].tolist() == [hold_id, later]


def test_r17_holds_past_their_review_date_are_flagged(empty_dbs):
    due = place(empty_dbs, email="kari@example.no", review_on=date(2026, 12, 1))
    later = place(empty_dbs, email="per@example.no", review_on=date(2027, 3, 1))
    released = place(empty_dbs, email="liv@example.no", review_on=date(2026, 11, 20))
    holds.release_hold(empty_dbs, released, actor=DPO, as_of=date(2026, 11, 10))

    on_review_day = holds.active_holds(empty_dbs, as_of=date(2026, 12, 1))
    day_after = holds.active_holds(empty_dbs, as_of=date(2026, 12, 2))

    assert holds.holds_past_review(empty_dbs, date(2026, 12, 1)) == 0
    assert holds.holds_past_review(empty_dbs, date(2026, 12, 2)) == 1
    assert on_review_day["past_review"].tolist() == [False, False]
    assert day_after[["id", "past_review"]].values.tolist() == [[due, True], [later, False]]
    assert day_after.attrs == {"truncated": False, "total": 2}
    everything = holds.all_holds(empty_dbs, as_of=date(2026, 12, 2))
    assert sorted(everything["id"]) == [due, later, released]
    assert everything.set_index("id")["past_review"].to_dict() == {
        due: True,
        later: False,
        released: False,
    }


def test_r17_covering_holds_by_account_email_and_contact(empty_dbs):
    account = f.add_account(empty_dbs)
    contact = f.add_contact(empty_dbs, started_on=date(2026, 1, 5))
    on_account = place(empty_dbs, account_id=account)
    on_email = place(empty_dbs, email="Kari@Example.no")
    second_on_email = place(empty_dbs, email="kari@example.no", case_ref="SAK-2026-99")
    on_contact = place(empty_dbs, contact_id=contact)
    released = place(empty_dbs, email="per@example.no")
    holds.release_hold(empty_dbs, released, actor=DPO, as_of=PLACED)

    cover = holds.covering_holds(
        empty_dbs,
        account_ids=[account, account + 100],
        emails=[" KARI@example.NO", "per@example.no", "liv@example.no"],
        contact_ids=[contact],
    )

    assert cover == {
        "account": {account: [on_account]},
        "email": {"kari@example.no": [on_email, second_on_email]},
        "contact": {contact: [on_contact]},
    }
    assert holds.held_keys(empty_dbs) == {
        "email": frozenset({"kari@example.no"}),
        "account": frozenset({account}),
        "contact": frozenset({contact}),
    }


def test_r17_hold_lists_are_capped(backend, tmp_path):
    for dbs in make_databases(backend, tmp_path, Policy(max_rows=2)):
        for n in range(3):
            place(dbs, email=f"person{n}@example.no", review_on=date(2027, 1, 1 + n))

        active = holds.active_holds(dbs, as_of=PLACED)
        every = holds.all_holds(dbs, as_of=PLACED)

        assert active["email"].tolist() == ["person0@example.no", "person1@example.no"]
        assert active.attrs == {"truncated": True, "total": 3}
        assert every["email"].tolist() == ["person2@example.no", "person1@example.no"]
        assert every.attrs == {"truncated": True, "total": 3}
