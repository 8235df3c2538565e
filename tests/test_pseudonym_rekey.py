"""A changed pseudonym key (DPO_PSEUDONYM_KEY) is reported, never rebuilt on a page view;
the explicit `python -m data_access.consent_rollup_rekey` rebuilds the consent roll-up under
the new key with progress, audited (RULES.md R18, R21)."""

from __future__ import annotations

import dataclasses

from data_access import audit, consent, consent_rollup, consent_rollup_rekey
from data_access.settings import DatabaseSettings
from tests import seeded
from tests.test_consent_rollup import BASE, STATS, add_event, event
from tests.test_pages import _navigation_as_served, open_app, texts  # noqa: F401 - fixture

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy
NEW_KEY = b"the-company-s-new-pseudonym-key"


def rates(dbs) -> tuple[int, int]:
    row = consent.consent_rates(dbs, BASE.date()).set_index("purpose").loc[STATS]
    return int(row["subjects"]), int(row["granted"])


def test_r21_a_changed_key_is_reported_and_rekey_rebuilds_it(empty_dbs):
    add_event(empty_dbs, 1, event((1, None, None)))
    add_event(empty_dbs, 2, event((2, None, None), action="withdrawn"))
    assert consent_rollup.refresh(empty_dbs).rebuilt
    built_at = consent_rollup.status(empty_dbs)["built_at"]
    rotated = dataclasses.replace(empty_dbs, pseudonym_key=NEW_KEY)
    add_event(rotated, 3, event((3, None, None)))

    refreshed = consent_rollup.refresh(rotated)

    assert (refreshed.ready, refreshed.status, refreshed.rebuilt) == (
        False,
        consent_rollup.KEY_CHANGED,
        False,
    )
    state = consent_rollup.status(rotated)
    assert state["key_changed"] and state["built_at"] == built_at and state["watermark"] == 2
    assert not consent_rollup.status(empty_dbs)["key_changed"]
    assert rates(rotated) == (3, 2)  # from the events directly, event 3 included

    lines: list[str] = []
    assert consent_rollup_rekey.rekey(rotated, actor="dpo@plaato.example", report=lines.append) == 0

    assert lines[0] == "The roll-up was built under another pseudonym key: rebuilding it."
    assert any("100%" in line for line in lines) and lines[-1].startswith("Rebuilt: 3 events")
    state = consent_rollup.status(rotated)
    assert not state["key_changed"] and state["watermark"] == 3
    assert consent_rollup.refresh(rotated).ready
    assert rates(rotated) == (3, 2)
    entry = audit.audit_entries(rotated, action="consent_rollup_rebuild").iloc[0]
    assert entry["actor"] == "dpo@plaato.example"
    # The old key is now the changed one.
    assert consent_rollup.refresh(empty_dbs).status == consent_rollup.KEY_CHANGED


def test_the_rekey_command_refuses_an_actor_that_is_not_an_address(capsys):
    assert consent_rollup_rekey.main(["--actor", "somebody"]) == 1
    assert "--actor must be your e-mail address" in capsys.readouterr().err


def test_r21_overview_after_a_key_change_warns_and_does_not_rebuild(demo_copy, monkeypatch):
    consent_rollup.refresh(demo_copy.dbs)  # built under the demo's key
    before = consent_rollup.status(demo_copy.dbs)
    assert before["status"] == "ready"
    monkeypatch.setenv(DatabaseSettings().pseudonym_key_env, NEW_KEY.decode())
    rebuilds: list[str] = []
    monkeypatch.setattr(consent_rollup, "_build", lambda *a, **k: rebuilds.append("build"))

    at = open_app()

    assert not at.exception
    assert rebuilds == []
    warning = texts(at.warning).replace("\\", "")
    assert "The pseudonym key (`DPO_PSEUDONYM_KEY`) changed" in warning
    assert "python -m data_access.consent_rollup_rekey" in warning
    assert consent_rollup.status(demo_copy.dbs)["built_at"] == before["built_at"]
    assert "usage statistics" in {m.label for m in at.metric}  # figures from the events
