"""The hash-chained audit log and pseudonyms (RULES.md R18, R40; DESIGN.md "Pseudonyms and
the hash chain"), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update

from data_access import audit
from data_access.engines import Databases
from data_access.ledger_tables import audit_head, audit_log

ACTOR = "dpo@plaato.example"
START = datetime(2026, 11, 29, 9, 0)


def append_entries(dbs: Databases, n: int, *, start: datetime = START) -> list[int]:
    """`n` purge entries, one transaction each, a minute apart."""
    ids = []
    for i in range(n):
        with dbs.ledger.begin() as conn:
            ids.append(
                audit.append(
                    conn,
                    actor=ACTOR,
                    action="purge_support_contacts",
                    rule="R16",
                    store="support",
                    subject_ref=audit.keyed_hash(dbs, f"person{i}@example.no"),
                    target=f"contact:{100 + i}",
                    counts={"contacts": i + 1},
                    details={"as_of": date(2026, 11, 29)},
                    now=start + timedelta(minutes=i),
                )
            )
    return ids


def entry(dbs: Databases, entry_id: int) -> dict:
    with dbs.ledger.connect() as conn:
        return dict(
            conn.execute(select(audit_log).where(audit_log.c.id == entry_id)).mappings().one()
        )


def set_column(dbs: Databases, entry_id: int, column: str, value) -> None:
    with dbs.ledger.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == entry_id).values({column: value}))


# --- keyed hash --------------------------------------------------------------------------------


def pseudonym_dbs(key: bytes) -> Databases:
    # keyed_hash needs only the key: in-memory URLs never connect here.
    return Databases.from_urls(
        users="sqlite://",
        consent="sqlite://",
        support="sqlite://",
        ledger="sqlite://",
        pseudonym_key=key,
    )


def test_r18_keyed_hash_is_hmac_sha256_of_the_normalised_email():
    dbs = pseudonym_dbs(b"k3y")
    expected = hmac.new(b"k3y", b"kari@example.no", hashlib.sha256).hexdigest()
    assert audit.keyed_hash(dbs, "kari@example.no") == expected
    assert len(expected) == 64


@pytest.mark.parametrize(
    "variant",
    ["Kari@Example.NO", "  kari@example.no", "kari@example.no\n", "\tKARI@EXAMPLE.NO "],
)
def test_r18_keyed_hash_ignores_case_and_surrounding_whitespace(variant):
    dbs = pseudonym_dbs(b"k3y")
    assert audit.keyed_hash(dbs, variant) == audit.keyed_hash(dbs, "kari@example.no")


def test_r18_keyed_hash_differs_per_key_and_per_person():
    one, other = pseudonym_dbs(b"key-one"), pseudonym_dbs(b"key-two")
    assert audit.keyed_hash(one, "kari@example.no") != audit.keyed_hash(other, "kari@example.no")
    assert audit.keyed_hash(one, "kari@example.no") != audit.keyed_hash(one, "ola@example.no")


# --- the chain ---------------------------------------------------------------------------------


def test_r18_empty_log_is_intact(empty_dbs):
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_r18_appended_entries_form_an_intact_chain(empty_dbs):
    ids = append_entries(empty_dbs, 4)
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert audit.verify_chain(empty_dbs) == (True, None)
    first, second = entry(empty_dbs, ids[0]), entry(empty_dbs, ids[1])
    assert first["prev_hash"] == audit.GENESIS
    assert second["prev_hash"] == first["hash"]
    assert first["occurred_at"] == START
    assert first["counts"] == '{"contacts":1}'
    assert first["details"] == '{"as_of":"2026-11-29"}'
    with empty_dbs.ledger.connect() as conn:
        head = conn.execute(select(audit_head)).mappings().one()
    assert head["hash"] == entry(empty_dbs, ids[-1])["hash"]
    assert head["entries"] == 4


TAMPERED = {
    "occurred_at": lambda old: old + timedelta(seconds=1),
    "actor": lambda old: "mallory@plaato.example",
    "action": lambda old: "approve_deletions",
    "rule": lambda old: "R14",
    "store": lambda old: "users",
    "subject_ref": lambda old: "e" * 64,
    "target": lambda old: "contact:999",
    "counts": lambda old: '{"contacts":0}',
    "details": lambda old: "{}",
    "prev_hash": lambda old: "a" * 64,
    "hash": lambda old: "b" * 64,
}


def test_r18_editing_any_column_of_any_entry_is_detected_at_that_entry(empty_dbs):
    ids = append_entries(empty_dbs, 3)
    for column, tamper in TAMPERED.items():
        for entry_id in ids:
            original = entry(empty_dbs, entry_id)[column]
            set_column(empty_dbs, entry_id, column, tamper(original))
            assert audit.verify_chain(empty_dbs) == (False, entry_id), (column, entry_id)
            set_column(empty_dbs, entry_id, column, original)
            assert audit.verify_chain(empty_dbs) == (True, None), (column, entry_id)


def test_r18_deleting_a_middle_entry_is_detected_at_its_successor(empty_dbs):
    ids = append_entries(empty_dbs, 5)
    with empty_dbs.ledger.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == ids[2]))
    assert audit.verify_chain(empty_dbs) == (False, ids[3])


def test_r18_deleting_the_last_entry_is_detected(empty_dbs):
    ids = append_entries(empty_dbs, 5)
    with empty_dbs.ledger.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == ids[-1]))
    # The head still names the deleted entry's hash; the last remaining entry is reported.
    assert audit.verify_chain(empty_dbs) == (False, ids[-2])


def test_r18_emptying_the_log_is_detected(empty_dbs):
    append_entries(empty_dbs, 2)
    with empty_dbs.ledger.begin() as conn:
        conn.execute(delete(audit_log))
    assert audit.verify_chain(empty_dbs)[0] is False


def test_r18_entry_rolls_back_with_the_change_it_records(empty_dbs):
    append_entries(empty_dbs, 1)
    with pytest.raises(RuntimeError), empty_dbs.ledger.begin() as conn:
        audit.append(conn, actor=ACTOR, action="approve_deletions", rule="R14", now=START)
        raise RuntimeError("the action failed after writing its entry")
    with empty_dbs.ledger.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == 1
    assert audit.verify_chain(empty_dbs) == (True, None)
    assert append_entries(empty_dbs, 1, start=START + timedelta(hours=1))
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_r18_append_after_a_read_in_the_same_transaction_uses_the_latest_head(empty_dbs):
    """An action reads the ledger, another action commits an entry, then the first appends:
    the first must chain onto the committed entry (MariaDB's repeatable-read snapshot
    would otherwise hand it the old head and fork the chain)."""
    append_entries(empty_dbs, 1)
    with empty_dbs.ledger.connect() as first:
        with first.begin():
            first.execute(select(func.count()).select_from(audit_log)).scalar_one()
            append_entries(empty_dbs, 1, start=START + timedelta(hours=1))
            audit.append(first, actor=ACTOR, action="send_deletion_notices", rule="R13", now=START)
    assert audit.verify_chain(empty_dbs) == (True, None)
    with empty_dbs.ledger.connect() as conn:
        prev_hashes = conn.execute(select(audit_log.c.prev_hash)).scalars().all()
    assert len(prev_hashes) == len(set(prev_hashes)) == 3


def test_r18_two_threads_appending_at_once_keep_the_chain_intact(empty_dbs):
    per_thread, errors = 15, []
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                with empty_dbs.ledger.begin() as conn:
                    audit.append(conn, actor=ACTOR, action="test", target=f"{name}:{i}")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert audit.verify_chain(empty_dbs) == (True, None)
    with empty_dbs.ledger.connect() as conn:
        prev_hashes = conn.execute(select(audit_log.c.prev_hash)).scalars().all()
        entries = conn.execute(select(audit_head.c.entries)).scalar_one()
    assert len(prev_hashes) == len(set(prev_hashes)) == 2 * per_thread  # no fork
    assert entries == 2 * per_thread


# --- exports and the entry list ------------------------------------------------------------


def test_r40_record_export_writes_who_what_filters_and_row_count_only(empty_dbs):
    audit.record_export(
        empty_dbs,
        actor=ACTOR,
        what="retention.accounts_nearing_deletion",
        filters={"within_days": 30, "stage": "ready"},
        rows=12,
    )
    entries = audit.audit_entries(empty_dbs)
    assert len(entries) == 1
    row = entries.iloc[0]
    assert row["actor"] == ACTOR
    assert row["action"] == "export"
    assert row["rule"] == "R40"
    assert row["target"] == "retention.accounts_nearing_deletion"
    assert row["counts"] == '{"rows":12}'
    assert row["details"] == '{"filters":{"stage":"ready","within_days":30}}'
    assert row["subject_ref"] is None and row["store"] is None
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_audit_entries_newest_first_capped_and_filtered(empty_dbs):
    ids = append_entries(empty_dbs, 3)
    audit.record_export(empty_dbs, actor=ACTOR, what="requests.open_requests", filters={}, rows=2)
    newest = audit.audit_entries(empty_dbs, limit=2)
    assert list(newest.columns) == [
        "id",
        "occurred_at",
        "actor",
        "action",
        "rule",
        "store",
        "subject_ref",
        "target",
        "counts",
        "details",
    ]
    assert newest["id"].tolist() == [ids[-1] + 1, ids[-1]]
    purges = audit.audit_entries(empty_dbs, action="purge_support_contacts")
    assert purges["id"].tolist() == ids[::-1]
    assert purges["target"].tolist() == ["contact:102", "contact:101", "contact:100"]
