"""Control characters in typed input (a NUL above all, which PostgreSQL refuses in text)
get a clear ValueError or an empty result on every backend, never a database error."""

from __future__ import annotations

from datetime import date

import pytest

from data_access import audit, holds, subjects
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
