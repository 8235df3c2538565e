"""What stays behind after an erasure outside the databases (RULES.md R12, R18): prepared
exports and look-ups are held process-wide by the people they are about
(data_access/prepared.py) and an erasure drops them from every session; the receipt says
until when backups still hold the erased data (policy.backup_retention_days)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cachetools import TTLCache
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from data_access import audit, cached, erasure, prepared, requests, retention
from data_access import ledger_tables as lt
from data_access.settings import Policy, load_settings
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF
from tests.test_pages import _navigation_as_served, submit, texts  # noqa: F401

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy
ACTOR = "dpo@plaato.example"


@pytest.fixture(autouse=True)
def _empty_registry(monkeypatch):
    monkeypatch.setattr(prepared, "_held", TTLCache(maxsize=100, ttl=prepared.MAX_AGE_SECONDS))


def test_forget_subject_drops_that_persons_values_and_those_about_many_people():
    kari = prepared.hold(b"kari's rows", subjects=("ref-kari",))
    ola = prepared.hold(b"ola's rows", subjects=("ref-ola",))
    everyone = prepared.hold(b"accounts nearing deletion", subjects=None)
    register = prepared.hold(b"record of processing", subjects=())

    assert prepared.forget_subject("ref-kari") == 2

    assert prepared.get(kari) is None and prepared.get(everyone) is None
    assert prepared.get(ola) == b"ola's rows"
    assert prepared.get(register) == b"record of processing"
    assert prepared.get(None) is None and prepared.get("no-such-token") is None


def test_held_values_expire(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(prepared, "_held", TTLCache(maxsize=10, ttl=60, timer=lambda: now[0]))
    token = prepared.hold("kari@example.no", subjects=("ref-kari",))
    now[0] = 61
    assert prepared.get(token) is None
    assert prepared.count() == 0


def _session_values(at: AppTest) -> list:
    state = at.session_state
    return [state[key] for key in state._state._state.filtered_state]  # every key, widgets too


def _erasure_subject(dbs) -> tuple[int, str]:
    frame = requests.open_requests(dbs, SEED_AS_OF, request_type="erasure", status="received")
    rid = int(frame["request_id"].iloc[0])
    return rid, requests.request(dbs, rid, as_of=SEED_AS_OF)["subject_email"]


def test_r12_an_erasure_clears_every_sessions_lookup_and_prepared_export(demo_copy):
    """Issue repro: after the person was erased, the Subject lookup session still held
    `lookup_email` and the prepared export with their e-mail and name."""
    dbs = demo_copy.dbs
    rid, email = _erasure_subject(dbs)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF
    at.run()
    at.switch_page("pages/subject_lookup.py").run()
    at.text_input(key="lookup_email").set_value(email)
    submit(at, "lookup_form", "Look up")
    assert not at.exception, texts(at.exception)
    first_table = next(b for b in at.button if b.key and b.key.endswith(":prepare"))
    first_table.click().run()
    downloads = [b for b in at.get("download_button")]
    assert downloads, "the export was prepared"
    assert prepared.count() == 2  # the look-up and the export
    # The typed address is not kept in the session itself.
    assert email not in repr(_session_values(at))

    requests.request_identity(dbs, rid, actor=ACTOR, as_of=SEED_AS_OF)
    requests.confirm_identity(
        dbs, rid, method="Reply from the address", actor=ACTOR, as_of=SEED_AS_OF
    )
    result = requests.complete_request(dbs, rid, actor=ACTOR, as_of=SEED_AS_OF)

    assert "recipient notification task" in result.failed[rid]  # erased; tasks next (R11)
    assert erasure.receipt_of_job(dbs, erasure_job(dbs, rid)).status == "done"
    assert prepared.count() == 0
    cached.clear()
    at.run()
    assert not at.exception, texts(at.exception)
    assert "The look-up was cleared" in texts(at.info)
    assert not at.get("download_button")
    assert email not in repr(_session_values(at))


def test_r12_an_erasure_of_someone_else_keeps_a_lookup(demo_copy):
    dbs = demo_copy.dbs
    _rid, email = _erasure_subject(dbs)
    token = prepared.hold(email, subjects=(audit.keyed_hash(dbs, email),))

    erasure.erase_subject(dbs, "someone.else@example.no", actor=ACTOR, as_of=SEED_AS_OF)

    assert prepared.get(token) == email


def test_r12_the_receipt_says_until_when_backups_hold_the_erased_data(demo_copy):
    dbs = dataclasses.replace(demo_copy.dbs, policy=Policy(backup_retention_days=14))
    rid, _email = _erasure_subject(dbs)
    requests.request_identity(dbs, rid, actor=ACTOR, as_of=SEED_AS_OF)
    requests.confirm_identity(
        dbs, rid, method="Reply from the address", actor=ACTOR, as_of=SEED_AS_OF
    )

    requests.complete_request(dbs, rid, actor=ACTOR, as_of=SEED_AS_OF)

    until = (SEED_AS_OF + timedelta(days=14)).isoformat()
    note = (
        f"Backups taken before the erasure on {SEED_AS_OF.isoformat()} still hold the erased "
        f"data; they are kept 14 days and overwritten by {until}."
    )
    events = requests.request(dbs, rid, as_of=SEED_AS_OF)["events"]
    erased = events[events["event"] == "erased"].iloc[-1]
    assert note in erased["details"]
    job_id = erasure_job(dbs, rid)
    receipt = erasure.receipt_of_job(dbs, job_id)
    assert receipt.backups_note == note
    assert receipt.backups["overwritten_by"] == until
    # The receipt keeps what it said when the setting changes later.
    later = dataclasses.replace(dbs, policy=Policy(backup_retention_days=90))
    assert erasure.receipt_of_job(later, job_id).backups_note == note


def erasure_job(dbs, rid: int) -> int:
    with dbs.ledger.connect() as conn:
        return conn.execute(
            select(lt.erasure_receipts.c.job_id).where(lt.erasure_receipts.c.request_id == rid)
        ).scalar_one()


def test_no_backups_kept_is_said_so():
    assert erasure.backups_note(
        erasure.backups_section(Policy(backup_retention_days=0), SEED_AS_OF)
    ) == ("No backups of the databases are kept, so none holds the erased data.")


def test_backup_retention_days_is_read_from_config_toml(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[policy]\nbackup_retention_days = 7\n", encoding="utf-8")
    assert load_settings(path, environ={}).policy.backup_retention_days == 7
    assert load_settings(ROOT / "config.toml", environ={}).policy.backup_retention_days == 35


def test_r14_deleting_an_inactive_account_drops_its_owners_lookups(demo_copy):
    dbs = demo_copy.dbs
    ready = retention.accounts_nearing_deletion(dbs, SEED_AS_OF, 30, stages=["ready"]).iloc[0]
    owner = prepared.hold(ready["email"], subjects=(audit.keyed_hash(dbs, ready["email"]),))
    other = prepared.hold("someone.else@example.no", subjects=("another-ref",))

    result = retention.approve_deletions(
        dbs, [int(ready["account_id"])], actor=ACTOR, as_of=SEED_AS_OF
    )

    assert result.succeeded == [int(ready["account_id"])]
    assert prepared.get(owner) is None
    assert prepared.get(other) == "someone.else@example.no"
