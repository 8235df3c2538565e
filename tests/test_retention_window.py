"""The R13 window read from the activity index equals the naive whole-table answer
(RULES.md R13, R17): random accounts, members, notices (valid and voided) and holds, at
instants near Oslo midnights, for many days, windows, stage filters and row caps."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from conftest import make_databases
from sqlalchemy import insert

from benchmarks import naive
from data_access import holds, retention
from data_access import tables as t
from data_access.ledger_tables import notices
from data_access.settings import Policy

DPO = "dpo@plaato.example"
START = datetime(2024, 10, 1)


def _instant(r: random.Random) -> datetime:
    """A UTC instant in 2024-10 .. 2026-03, often within an hour of an Oslo midnight."""
    day = START + timedelta(days=r.randrange(540))
    if r.random() < 0.5:
        return day + timedelta(hours=r.choice([21, 22, 23]), minutes=r.randrange(60))
    return day + timedelta(seconds=r.randrange(86_400))


def _populate(dbs, seed: int, n: int = 300) -> None:
    r = random.Random(seed)
    account_rows, member_rows, notice_rows = [], [], []
    for i in range(1, n + 1):
        created = _instant(r)
        last = None if r.random() < 0.2 else _instant(r)  # sometimes before created_at
        account_rows.append(
            {
                "id": i,
                "email": f"Owner{i}@Example.no" if i % 7 else f" owner{i}@example.no",
                "full_name": f"Eier {i}",
                "account_type": r.choice(["personal", "professional"]),
                "created_at": created,
                "last_active_at": last,
            }
        )
        for _ in range(r.choice([0, 1, 1, 2])):  # members often more active than owners
            member_rows.append(
                {
                    "account_id": i,
                    "email": f"member{len(member_rows)}@example.no",
                    "full_name": "Medlem",
                    "role": "member",
                    "created_at": created,
                    "last_active_at": None if r.random() < 0.2 else _instant(r),
                }
            )
        if r.random() < 0.3:
            sent = (START + timedelta(days=r.randrange(300, 560))).date()
            notice_rows.append(
                {
                    "account_id": i,
                    "sent_on": sent,
                    "created_at": datetime.combine(sent, datetime.min.time()),
                    "actor": DPO,
                    "last_activity_on": sent,
                    "deletable_on": sent,
                }
            )
    with dbs.users.begin() as conn:
        conn.execute(insert(t.accounts), account_rows)
        if member_rows:
            conn.execute(insert(t.account_members), member_rows)
    if notice_rows:
        with dbs.ledger.begin() as conn:
            conn.execute(insert(notices), notice_rows)
    scopes = [{"account_id": r.randint(1, n)} for _ in range(4)]
    scopes += [{"email": f"OWNER{r.randint(1, n)}@example.no "} for _ in range(4)]
    scopes += [{"email": r.choice(member_rows)["email"].upper()} for _ in range(4)]
    for scope in scopes:
        holds.place_hold(
            dbs,
            **scope,
            reason="Tvist",
            case_ref="SAK-1",
            actor=DPO,
            as_of=date(2025, 1, 1),
            review_on=date(2027, 1, 1),
        )


def _same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert ours.attrs["total"] == theirs.attrs["total"]
    assert ours.attrs["truncated"] == theirs.attrs["truncated"]
    left = ours.astype(object).where(ours.notna(), None).to_dict("records")
    right = theirs.astype(object).where(theirs.notna(), None).to_dict("records")
    assert left == right


@pytest.fixture(params=[1, 2, 3])
def random_dbs(request, backend, tmp_path):
    for dbs in make_databases(backend, tmp_path, Policy(max_rows=7)):
        _populate(dbs, request.param)
        yield dbs


def test_r13_window_equals_naive_answer(random_dbs, monkeypatch):
    # Small pages, so lists are answered from a part of the walk, as at scale.
    monkeypatch.setattr(retention.queries, "_WALK_ROWS", 2)
    r = random.Random(11)
    seen_stages = set()
    for _ in range(14):
        as_of = date(2025, 9, 1) + timedelta(days=r.randrange(240))
        within = r.choice([0, 10, 30, 45, 90])
        stages = r.choice([None, None, ["notice_due"], ["upcoming"], ["ready", "notified"]])
        limit = r.choice([None, 3, 500])
        ours = retention.accounts_nearing_deletion(
            random_dbs, as_of, within, stages=stages, limit=limit
        )
        theirs = naive.accounts_nearing_deletion(
            random_dbs, as_of, within, stages=stages, limit=limit
        )
        _same(ours, theirs)
        counts = retention.stage_counts(random_dbs, as_of, within)
        assert counts == naive.stage_counts(random_dbs, as_of, within)
        seen_stages |= {s for s, c in counts.items() if c}
    # The random data reaches every stage, so the comparison covers each rule.
    assert seen_stages == set(retention.STAGES)
