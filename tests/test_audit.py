"""The hash-chained audit log and pseudonyms (RULES.md R18, R40; DESIGN.md "Pseudonyms and
the hash chain"), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import pickle
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select, update

from data_access import audit, audit_anchors, audit_chain
from data_access.engines import Databases
from data_access.ledger_tables import audit_head, audit_log
from data_access.settings import SettingsError, parse_settings

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


# --- keyed chain and anchors outside the ledger (issue: truncation and rewrites) -------------

ANCHORED_AT = datetime(2026, 12, 1, 6, 0)
WHEN = "2026-12-01 06:00 UTC"


def bulk_entries(dbs: Databases, n: int, *, actor: str = ACTOR) -> None:
    """`n` entries in one transaction (append_many builds the chain append would)."""
    with dbs.ledger.begin() as conn:
        audit.append_many(
            conn,
            (
                {
                    "actor": actor,
                    "action": "test",
                    "target": f"item:{i}",
                    "now": START + timedelta(minutes=i),
                }
                for i in range(n)
            ),
        )


def anchored(dbs: Databases, n: int = 60) -> None:
    """`n` entries and an anchor of them, taken at ANCHORED_AT."""
    bulk_entries(dbs, n)
    audit.write_anchor(dbs, now=ANCHORED_AT)


def empty_the_log(dbs: Databases) -> None:
    """Every entry deleted and the head reset to an empty chain's."""
    with dbs.ledger.begin() as conn:
        conn.execute(delete(audit_log))
        conn.execute(update(audit_head).values(hash=audit.GENESIS, entries=0))


def ids_in_order(dbs: Databases) -> list[int]:
    with dbs.ledger.connect() as conn:
        return conn.execute(select(audit_log.c.id).order_by(audit_log.c.id)).scalars().all()


def rehash_from(dbs: Databases, first: int, *, key: bytes | None) -> None:
    """What someone who can write the ledger does to hide an edit: recompute prev_hash and
    hash of every entry from position `first` (1-based) on, and the head. `key=None`: plain
    SHA-256, as without the audit key."""
    with dbs.ledger.begin() as conn:
        rows = [
            dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings()
        ]
        prev = rows[first - 2]["hash"] if first > 1 else audit.GENESIS
        for row in rows[first - 1 :]:
            digest = (
                audit_chain.entry_hash(key, prev, row)
                if key
                else audit_chain.legacy_entry_hash(prev, row)
            )
            conn.execute(
                update(audit_log)
                .where(audit_log.c.id == row["id"])
                .values(prev_hash=prev, hash=digest)
            )
            prev = digest
        conn.execute(update(audit_head).values(hash=prev, entries=len(rows)))


def delete_from(dbs: Databases, first: int) -> None:
    """Delete the entries from position `first` (1-based) on."""
    doomed = ids_in_order(dbs)[first - 1 :]
    with dbs.ledger.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id.in_(doomed)))


def problems(dbs: Databases, **kwargs) -> str:
    report = audit.verify_chain(dbs, **kwargs)
    assert report.ok is False and report[0] is False
    return "\n".join(report.problems)


def test_r18_clean_anchored_chain_is_intact_and_says_so(empty_dbs):
    bulk_entries(empty_dbs, 60)
    anchor = audit.write_anchor(empty_dbs, now=ANCHORED_AT)
    assert (anchor.entries, anchor.last_id) == (60, ids_in_order(empty_dbs)[-1])
    report = audit.verify_chain(empty_dbs)
    assert report == (True, None)
    assert report.problems == () and report.warnings == ()
    assert report.entries == 60 and report.head == anchor.head
    assert report.anchor == dataclasses.replace(anchor, line=1)
    assert audit.latest_anchor(empty_dbs) == report.anchor


def test_r18_case_a_last_entry_deleted_and_head_set_to_the_new_last_hash(empty_dbs):
    anchored(empty_dbs)
    delete_from(empty_dbs, 60)
    rehash_from(empty_dbs, 60, key=None)  # only sets the head: 59 entries, entry 59's hash
    with empty_dbs.ledger.connect() as conn:
        assert conn.execute(select(audit_head.c.entries)).scalar_one() == 59
    report = audit.verify_chain(empty_dbs)
    assert report == (False, ids_in_order(empty_dbs)[-1])
    assert report.problems == (
        f"Entry 60 is missing since the anchor of {WHEN} (line 1), which counted 60 entries; "
        "the log holds 59.",
    )


def test_r18_case_b_last_50_entries_and_the_head_row_deleted(empty_dbs):
    anchored(empty_dbs)
    delete_from(empty_dbs, 11)
    with empty_dbs.ledger.begin() as conn:
        conn.execute(delete(audit_head))
    found = problems(empty_dbs)
    assert f"Entries 11–60 are missing since the anchor of {WHEN}" in found
    assert "The chain head row (audit_head) is missing" in found
    assert audit.verify_chain(empty_dbs)[1] == ids_in_order(empty_dbs)[-1]


def test_r18_case_c_everything_deleted(empty_dbs):
    anchored(empty_dbs)
    with empty_dbs.ledger.begin() as conn:
        conn.execute(delete(audit_log))
        conn.execute(delete(audit_head))
    report = audit.verify_chain(empty_dbs)
    assert report == (False, None)
    assert report.entries == 0
    assert f"Entries 1–60 are missing since the anchor of {WHEN}" in "\n".join(report.problems)


def test_r18_case_c_everything_deleted_and_the_head_reset(empty_dbs):
    anchored(empty_dbs)
    empty_the_log(empty_dbs)
    assert problems(empty_dbs) == (
        f"Entries 1–60 are missing since the anchor of {WHEN} (line 1), which counted 60 "
        "entries; the log holds 0."
    )


def test_r18_case_d_actor_edited_and_later_hashes_recomputed_with_the_key(empty_dbs):
    bulk_entries(empty_dbs, 20)
    audit.write_anchor(empty_dbs, now=ANCHORED_AT - timedelta(days=1))
    bulk_entries(empty_dbs, 40)
    audit.write_anchor(empty_dbs, now=ANCHORED_AT)
    ids = ids_in_order(empty_dbs)
    set_column(empty_dbs, ids[29], "actor", "mallory@plaato.example")
    rehash_from(empty_dbs, 30, key=empty_dbs.chain_key)  # the worst case: the key leaked
    report = audit.verify_chain(empty_dbs)
    assert report == (False, ids[59])
    assert report.problems == (
        f"Entries 21–60 were rewritten since the anchor of {WHEN} (line 2): entry 60 (id "
        f"{ids[59]}) no longer has the hash {report.anchor.head[:12]} recorded then. "
        "Entries 1–20 still match the anchor of 2026-11-30 06:00 UTC.",
    )


def test_r18_case_d_actor_edited_and_rehashed_without_the_key(empty_dbs):
    anchored(empty_dbs)
    ids = ids_in_order(empty_dbs)
    set_column(empty_dbs, ids[29], "actor", "mallory@plaato.example")
    rehash_from(empty_dbs, 30, key=None)
    report = audit.verify_chain(empty_dbs)
    assert report[1] == ids[29]
    assert report.problems[0] == (
        f"Entry 30 (id {ids[29]}) does not match its content under the audit key: it was "
        "changed after it was written, or the audit key is not the one the chain was "
        "written with."
    )


def test_r18_case_e_whole_chain_rewritten(empty_dbs):
    anchored(empty_dbs)
    empty_the_log(empty_dbs)
    bulk_entries(empty_dbs, 60, actor="mallory@plaato.example")  # with the product's own key
    found = problems(empty_dbs)
    assert found.startswith(f"Entries 1–60 were rewritten since the anchor of {WHEN} (line 1)")


def test_r18_case_e_whole_chain_rewritten_without_the_key(empty_dbs):
    anchored(empty_dbs)
    set_column(empty_dbs, ids_in_order(empty_dbs)[0], "actor", "mallory@plaato.example")
    rehash_from(empty_dbs, 1, key=None)  # looks like a ledger from before keyed hashing
    found = problems(empty_dbs)
    assert f"Entries 1–60 were rewritten since the anchor of {WHEN}" in found


def test_r18_a_wrong_audit_key_fails(empty_dbs):
    bulk_entries(empty_dbs, 5)
    audit.write_anchor(empty_dbs, now=ANCHORED_AT)
    other = dataclasses.replace(empty_dbs, audit_key=b"not the key the chain was written with")
    report = audit.verify_chain(other)
    assert report == (False, ids_in_order(empty_dbs)[0])
    assert "does not match its content under the audit key" in report.problems[0]
    assert any("does not carry the audit key's signature" in p for p in report.problems)
    assert audit.verify_chain(empty_dbs) == (True, None)  # the original key still verifies


def test_r18_audit_key_setting_is_used_instead_of_the_derived_key(sqlite_dbs):
    own = dataclasses.replace(sqlite_dbs, audit_key=b"DPO_AUDIT_KEY value")
    assert own.chain_key == b"DPO_AUDIT_KEY value" != sqlite_dbs.chain_key
    assert sqlite_dbs.chain_key == audit_chain.derive_audit_key(sqlite_dbs.pseudonym_key)
    assert sqlite_dbs.chain_key != sqlite_dbs.pseudonym_key
    bulk_entries(own, 3)
    assert audit.verify_chain(own) == (True, None)
    assert audit.verify_chain(sqlite_dbs)[0] is False


def test_r18_head_counter_is_checked(sqlite_dbs):
    bulk_entries(sqlite_dbs, 60)
    with sqlite_dbs.ledger.begin() as conn:
        conn.execute(update(audit_head).values(entries=65))
    assert problems(sqlite_dbs) == (
        "The chain head counts 65 entries but the log holds 60: entries 61–65 missing."
    )


def legacy_entries(dbs: Databases, n: int) -> None:
    """A ledger written before keyed hashing: the same chain with plain SHA-256."""
    bulk_entries(dbs, n)
    rehash_from(dbs, 1, key=None)


def test_r18_ledger_from_before_keyed_hashing_still_verifies_and_continues_keyed(sqlite_dbs):
    legacy_entries(sqlite_dbs, 4)
    report = audit.verify_chain(sqlite_dbs)
    assert report == (True, None) and report.legacy_entries == 4
    assert "Written before keyed hashing (plain SHA-256): entries 1–4." in report.warnings[-1]
    audit.write_anchor(sqlite_dbs, now=ANCHORED_AT)
    bulk_entries(sqlite_dbs, 3)  # keyed from here on
    assert audit.verify_chain(sqlite_dbs) == (True, None)
    # An unkeyed entry after a keyed one is refused.
    ids = ids_in_order(sqlite_dbs)
    rehash_from(sqlite_dbs, 6, key=None)
    assert audit.verify_chain(sqlite_dbs)[1] == ids[5]


def test_r18_unkeyed_entries_after_an_anchor_are_reported(sqlite_dbs):
    legacy_entries(sqlite_dbs, 4)
    audit.write_anchor(sqlite_dbs, now=ANCHORED_AT)
    bulk_entries(sqlite_dbs, 3)
    rehash_from(sqlite_dbs, 1, key=None)  # everything unkeyed, the anchored part unchanged
    assert problems(sqlite_dbs) == (
        "The unkeyed hash of before keyed hashing is found in entries 5–7, after the anchor "
        f"of {WHEN}: they were rewritten without the audit key."
    )


def test_r18_anchor_file_is_only_appended_to(sqlite_dbs, monkeypatch):
    path = sqlite_dbs.anchors_file
    bulk_entries(sqlite_dbs, 2)
    audit.write_anchor(sqlite_dbs, now=ANCHORED_AT)
    before = path.read_bytes()
    opened = []
    real_open = os.open

    def spy(file, flags, *args, **kwargs):
        opened.append((Path(file), flags))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    bulk_entries(sqlite_dbs, 1)
    audit.write_anchor(sqlite_dbs, now=ANCHORED_AT + timedelta(hours=1))
    assert [p for p, _ in opened] == [path]
    flags = opened[0][1]
    assert flags & os.O_APPEND and not flags & os.O_TRUNC
    assert flags & os.O_ACCMODE == os.O_WRONLY
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2
    assert [a.entries for a in audit_anchors.read_anchors(path, sqlite_dbs.chain_key).anchors] == [
        2,
        3,
    ]


def test_r18_missing_anchor_file_is_a_warning_not_a_crash(sqlite_dbs):
    bulk_entries(sqlite_dbs, 3)
    report = audit.verify_chain(sqlite_dbs)
    assert report == (True, None)
    assert report.warnings == (
        f"There is no anchor file at {sqlite_dbs.anchors_file} yet: removing the newest "
        "entries or rewriting the whole chain cannot be detected until one is written (every "
        "export and prepared report writes one).",
    )
    assert audit.latest_anchor(sqlite_dbs) is None
    unanchored = dataclasses.replace(sqlite_dbs, anchors_file=None)
    assert "No anchor file is configured" in audit.verify_chain(unanchored).warnings[0]


@pytest.mark.parametrize(
    "garbage",
    [b"not json at all", b"\xff\xfe\x00binary", b'{"at": "yesterday"}', b"{}", b"[1, 2]"],
)
def test_r18_garbled_anchor_file_is_reported_clearly(sqlite_dbs, garbage):
    bulk_entries(sqlite_dbs, 3)
    audit.write_anchor(sqlite_dbs, now=ANCHORED_AT)
    with open(sqlite_dbs.anchors_file, "ab") as fh:
        fh.write(garbage + b"\n")
    report = audit.verify_chain(sqlite_dbs)
    assert report[0] is False
    assert report.problems == (
        f"Line 2 of the anchor file {sqlite_dbs.anchors_file} is not an anchor (garbled or "
        "edited).",
    )
    assert report.anchor.line == 1  # the valid anchor before it still counts


def test_r18_forged_anchor_line_is_reported_and_not_trusted(sqlite_dbs):
    bulk_entries(sqlite_dbs, 3)
    audit.write_anchor(sqlite_dbs, now=ANCHORED_AT)
    forged = audit_anchors.Anchor(at=ANCHORED_AT, entries=1, head="c" * 64, last_id=1)
    with open(sqlite_dbs.anchors_file, "a") as fh:
        fh.write(audit_anchors.anchor_line(forged, b"a guessed key"))
    found = problems(sqlite_dbs)
    assert "Line 2 of the anchor file" in found
    assert "does not carry the audit key's signature (forged, or another key)" in found
    assert "rewritten" not in found


def test_r18_unreadable_anchor_file_is_reported(sqlite_dbs, tmp_path):
    bulk_entries(sqlite_dbs, 1)
    found = problems(sqlite_dbs, anchors_file=tmp_path)  # a folder, not a file
    assert f"The anchor file {tmp_path} cannot be read" in found


def test_r40_record_export_anchors_the_chain_and_returns_the_head(sqlite_dbs):
    bulk_entries(sqlite_dbs, 2)
    head = audit.record_export(
        sqlite_dbs, actor=ACTOR, what="audit-log/entries", filters={}, rows=3
    )
    assert head.entries == 3 and head.last_id == ids_in_order(sqlite_dbs)[-1]
    assert head.head_label == f"3 entries, head {head.head[:12]}"
    latest = audit.latest_anchor(sqlite_dbs)
    assert (latest.entries, latest.head) == (3, head.head)
    assert audit.verify_chain(sqlite_dbs) == (True, None)


def test_r40_record_export_stands_when_the_anchor_file_cannot_be_written(sqlite_dbs, tmp_path):
    blocked = dataclasses.replace(sqlite_dbs, anchors_file=tmp_path)  # a folder
    head = audit.record_export(blocked, actor=ACTOR, what="x/y", filters={}, rows=1)
    assert head.entries == 1
    assert audit.audit_entries(sqlite_dbs)["action"].tolist() == ["export"]


def test_r18_chain_report_survives_the_streamlit_cache(sqlite_dbs):
    bulk_entries(sqlite_dbs, 2)
    audit.write_anchor(sqlite_dbs, now=ANCHORED_AT)
    set_column(sqlite_dbs, ids_in_order(sqlite_dbs)[0], "actor", "mallory@plaato.example")
    report = audit.verify_chain(sqlite_dbs)
    copy = pickle.loads(pickle.dumps(report))
    assert copy == report == (False, ids_in_order(sqlite_dbs)[0])
    assert (copy.problems, copy.warnings, copy.anchor) == (
        report.problems,
        report.warnings,
        report.anchor,
    )


def test_r18_audit_settings_name_the_anchor_file_and_the_key(tmp_path):
    environ = {"DPO_AUDIT_KEY": " audit-secret "}
    configured = parse_settings(
        {"audit": {"anchors_file": "evidence/anchors.log"}}, base_dir=tmp_path, environ=environ
    )
    assert configured.anchors_path == tmp_path / "evidence" / "anchors.log"
    dbs = Databases.from_settings(configured)  # demo mode: the pseudonym key is generated
    assert (dbs.anchors_file, dbs.chain_key) == (configured.anchors_path, b"audit-secret")
    dbs.dispose()
    default = parse_settings({}, base_dir=tmp_path, environ={})
    assert default.anchors_path == tmp_path / "data" / "audit-anchors.log"
    assert default.audit_key is None
    with pytest.raises(SettingsError, match="unknown key 'audit.anchors'"):
        parse_settings({"audit": {"anchors": "x"}}, base_dir=tmp_path, environ={})


def test_r18_an_entry_through_an_engine_without_the_audit_key_is_refused(sqlite_dbs):
    raw = create_engine(sqlite_dbs.ledger.url)
    with pytest.raises(RuntimeError, match="only through Databases.ledger"), raw.begin() as conn:
        audit.append(conn, actor=ACTOR, action="test")
    raw.dispose()
    with sqlite_dbs.ledger.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == 0


def test_r18_anchors_written_while_entries_are_appended_never_raise_a_false_alarm(empty_dbs):
    """An anchor names a state the log really had: appends meanwhile only extend it, and a
    verification running at the same time reports nothing wrong."""
    errors, reports = [], []
    barrier = threading.Barrier(3)

    def appender() -> None:
        barrier.wait(timeout=30)
        for i in range(20):
            with empty_dbs.ledger.begin() as conn:
                audit.append(conn, actor=ACTOR, action="test", target=f"item:{i}")

    def anchorer() -> None:
        barrier.wait(timeout=30)
        for _ in range(10):
            audit.write_anchor(empty_dbs)

    def verifier() -> None:
        barrier.wait(timeout=30)
        for _ in range(5):
            reports.append(audit.verify_chain(empty_dbs))

    def run(work) -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in (appender, anchorer, verifier)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert [r.problems for r in reports] == [()] * 5
    anchors = audit_anchors.read_anchors(empty_dbs.anchors_file, empty_dbs.chain_key)
    assert anchors.problems == [] and len(anchors.anchors) == 10
    counts = [a.entries for a in anchors.anchors]
    assert counts == sorted(counts)
    audit.write_anchor(empty_dbs)
    final = audit.verify_chain(empty_dbs)
    assert final == (True, None) and final.anchor.entries == 20 and final.warnings == ()


# --- filters in SQL before the row cap (issue: the filter matched exact codes only) --------


def test_audit_entries_filter_by_text_dates_actor_and_subject_in_sql(empty_dbs):
    purges = append_entries(empty_dbs, 3, start=datetime(2026, 11, 30, 23, 30))  # Oslo 1 Dec
    with empty_dbs.ledger.begin() as conn:
        hold = audit.append(
            conn,
            actor="Jurist@Plaato.example",
            action="legal_hold.placed",
            rule="R17",
            subject_ref=audit.keyed_hash(empty_dbs, "kari@example.no"),
            target="hold:7",
            details={"reason": "Tvist om faktura"},
            now=datetime(2026, 12, 2, 9, 0),
        )

    def ids(**filters) -> list[int]:
        return audit.audit_entries(empty_dbs, **filters)["id"].tolist()

    assert ids(text="hold") == [hold]
    assert ids(text="LEGAL HOLD") == [hold]  # words, any case; the space matches "_"
    assert ids(text="faktura") == [hold]  # in the details
    assert ids(text="contact:101") == [purges[1]]  # in the target
    assert ids(text="jurist") == [hold]  # in the actor
    assert ids(text="100%") == []  # a wildcard is a character
    # Oslo dates: 2026-11-30 23:30 UTC is already 1 December in Oslo.
    assert ids(since=date(2026, 12, 1), until=date(2026, 12, 1)) == purges[::-1]
    assert ids(until=date(2026, 11, 30)) == []
    assert ids(since=date(2026, 12, 2)) == [hold]
    assert ids(actor="JURIST@plaato") == [hold]
    assert ids(actor="dpo@plaato") == purges[::-1]
    assert ids(subject_email="  KARI@example.no ") == [hold]
    assert ids(subject_email="person1@example.no") == [purges[1]]
    assert ids(subject_email="nobody@example.no") == []
    assert ids(text="purge", subject_email="kari@example.no") == []
    assert ids(text="ho\x00ld") == []
    # Filtered before the cap: the one hold is found although three newer-capped rows exist.
    assert ids(text="purge", limit=1) == [purges[-1]]
    assert ids(text="hold", limit=1) == [hold]
