"""The breach register's actions on SQLite, PostgreSQL and MariaDB (GDPR art. 33, 34; RULES.md
R50-R53, R18): logging, the clock, every decision without reasoning refused with the ledger
unchanged, the order of steps, the people affected as keyed hashes, erasure of a person,
the audit trail and the findings."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from data_access import audit, breaches, erasure, findings
from data_access.breaches import findings as breach_findings
from data_access.ledger_tables import (
    audit_log,
    breach_events,
    breach_links,
    breach_subjects,
    ledger_metadata,
    recipients,
)
from data_access.ledger_tables import breaches as breaches_table
from data_access.settings import Policy

DPO = "dpo@plaato.example"
AWARE = datetime(2026, 11, 27, 10, 0)  # 11:00 in Oslo
NOW = datetime(2026, 11, 28, 9, 0)
KARI = "Kari.Nordmann@Example.no"


def log(dbs, **facts) -> int:
    values = {"title": "Invoices e-mailed to the wrong customers", "aware_at": AWARE,
              "reported_by": "Customer service", "actor": DPO, "now": NOW, **facts}  # fmt: skip
    return breaches.log_breach(dbs, **values)


def snapshot(dbs) -> dict:
    """Every row of the register and the audit log's length: what a refusal must not change."""
    with dbs.ledger.connect() as conn:
        return {
            "breaches": [dict(r) for r in conn.execute(select(breaches_table)).mappings()],
            "events": conn.execute(select(func.count()).select_from(breach_events)).scalar_one(),
            "subjects": conn.execute(
                select(func.count()).select_from(breach_subjects)
            ).scalar_one(),
            "audit": conn.execute(select(func.count()).select_from(audit_log)).scalar_one(),
        }


def detail(dbs, breach_id):
    return breaches.breach_detail(dbs, breach_id, now=NOW)


# --- logging and the clock -------------------------------------------------------------------


def test_r50_r51_a_logged_breach_has_its_clock_and_is_open(empty_dbs):
    breach_id = log(empty_dbs, category=["confidentiality"], subjects_count=38,
                    subjects_estimated=True, subject_relations=["customers"])  # fmt: skip
    frame = breaches.open_breaches(empty_dbs, date(2026, 11, 28), now=NOW)
    row = frame.iloc[0]
    assert (int(row["breach_id"]), row["status"], row["due_at"]) == (
        breach_id,
        "open",
        datetime(2026, 11, 30, 10, 0),
    )
    assert row["due_oslo"] == "2026-11-30 11:00 +01:00 (CET)"
    assert row["hours_left"] == 49.0
    assert not row["overdue"] and row["clock_running"]
    radar = breaches.radar_items(empty_dbs, date(2026, 11, 28), now=NOW)
    assert radar[["breach_id", "kind", "due_on", "hours_left", "page"]].values.tolist() == [
        [breach_id, "breach_notification", date(2026, 11, 30), 49.0, "breach"]
    ]
    b = detail(empty_dbs, breach_id)
    assert b["category"] == ["confidentiality"] and b["subject_relations"] == ["customers"]
    assert (b["subjects_count"], b["subjects_estimated"]) == (38, True)


def test_r50_an_overdue_clock_is_a_finding_until_notified(empty_dbs):
    breach_id = log(empty_dbs)
    late_day = date(2026, 12, 1)
    assert breaches.open_breaches(empty_dbs, late_day)["overdue"].tolist() == [True]
    assert breach_findings.clocks_run_out(empty_dbs, late_day) == 1
    breaches.assess(
        empty_dbs, breach_id, risk="risk", reasoning="Names and amounts", actor=DPO, now=NOW
    )
    sent = AWARE + timedelta(hours=80)
    result = breaches.decide_notification(
        empty_dbs, breach_id, notify=True, reasoning="Risk to customers", actor=DPO,
        notified_at=sent, reference="DT-1", delay_reasons="Extent unclear until the log was read",
        now=sent,
    )  # fmt: skip
    assert result.ok, result.failed
    assert breach_findings.clocks_run_out(empty_dbs, late_day) == 0
    b = detail(empty_dbs, breach_id)
    assert (b["status"], b["notified_late"], b["clock_running"]) == ("notified", True, False)


def test_r53_a_processor_s_notice_starts_the_clock_when_it_reached_the_company(empty_dbs):
    with empty_dbs.ledger.begin() as conn:
        processor = conn.execute(
            recipients.insert().values(
                name="US payment processor",
                role="processor",
                named_in_policy=True,
                receives_personal_data=True,
            )  # fmt: skip
        ).inserted_primary_key[0]
    breach_id = log(empty_dbs, report_channel="processor", processor_id=processor,
                    recipient_ids=[processor])  # fmt: skip
    b = detail(empty_dbs, breach_id)
    assert (b["processor_notice_at"], b["processor"], b["recipients"]) == (
        AWARE,
        "US payment processor",
        ["US payment processor"],
    )
    with pytest.raises(ValueError, match="No recipient with id 999"):
        log(empty_dbs, recipient_ids=[999])


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"title": " "}, "title is required"),
        ({"reported_by": ""}, "reported by is required"),
        ({"aware_at": NOW + timedelta(days=1)}, "aware at lies in the future"),
        ({"category": ["secrecy"]}, "category must be among"),
        ({"subjects_count": -3}, "cannot be negative"),
        ({"description": "x\x00y"}, "NUL"),
        ({"colour": "red"}, "no fact 'colour'"),
    ],
)
def test_r51_a_breach_with_a_bad_fact_is_not_logged(empty_dbs, facts, message):
    before = snapshot(empty_dbs)
    with pytest.raises(ValueError, match=message):
        log(empty_dbs, **facts)
    assert snapshot(empty_dbs) == before


# --- decisions without reasoning, and steps out of order ------------------------------------


REFUSALS = [
    pytest.param(
        "assess", {"risk": "none", "reasoning": ""}, "needs its reasoning", id="assess-empty"
    ),
    pytest.param(
        "assess", {"risk": "none", "reasoning": "  \n "}, "needs its reasoning", id="assess-blank"
    ),
    pytest.param(
        "notify", {"notify": False, "reasoning": ""}, "needs its reasoning", id="not-notify-empty"
    ),
    pytest.param(
        "notify", {"notify": True, "reasoning": None}, "needs its reasoning", id="notify-none"
    ),
    pytest.param(
        "subjects", {"notify": False, "reasoning": ""}, "needs its reasoning", id="subjects-empty"
    ),
    pytest.param(
        "subjects", {"notify": True, "reasoning": " "}, "needs its reasoning", id="subjects-blank"
    ),
    pytest.param("assess", {"risk": "none", "reasoning": "a\x00b"}, "NUL", id="assess-nul"),
]


@pytest.mark.parametrize(("step", "arguments", "message"), REFUSALS)
def test_r51_every_decision_without_reasoning_is_refused_with_the_ledger_unchanged(
    empty_dbs, step, arguments, message
):
    breach_id = log(empty_dbs)
    if step != "assess":
        breaches.assess(
            empty_dbs, breach_id, risk="none", reasoning="Returned unread", actor=DPO, now=NOW
        )
    before = snapshot(empty_dbs)
    action = {"assess": breaches.assess, "notify": breaches.decide_notification,
              "subjects": breaches.decide_subject_notice}[step]  # fmt: skip
    result = action(empty_dbs, breach_id, actor=DPO, now=NOW, **arguments)
    assert result.succeeded == [] and message in result.failed[breach_id]
    assert snapshot(empty_dbs) == before


def test_r51_not_notifying_a_breach_with_a_risk_is_refused(empty_dbs):
    breach_id = log(empty_dbs)
    assert (
        "Assess the risk first"
        in breaches.decide_notification(
            empty_dbs, breach_id, notify=False, reasoning="No risk", actor=DPO, now=NOW
        ).failed[breach_id]
    )
    breaches.assess(
        empty_dbs, breach_id, risk="risk", reasoning="Names and amounts", actor=DPO, now=NOW
    )
    before = snapshot(empty_dbs)
    result = breaches.decide_notification(
        empty_dbs, breach_id, notify=False, reasoning="Small", actor=DPO, now=NOW
    )
    assert "requires notifying Datatilsynet" in result.failed[breach_id]
    assert snapshot(empty_dbs) == before


@pytest.mark.parametrize(
    ("after", "delay", "ok"),
    [
        pytest.param(timedelta(hours=71, minutes=59), None, True, id="71:59-no-reasons-needed"),
        pytest.param(timedelta(hours=72, minutes=1), None, False, id="72:01-without-reasons"),
        pytest.param(
            timedelta(hours=72, minutes=1),
            "Weekend on call missed it",
            True,
            id="72:01-with-reasons",
        ),
    ],
)
def test_r50_a_late_notification_needs_the_reasons_for_the_delay(empty_dbs, after, delay, ok):
    breach_id = log(empty_dbs)
    breaches.assess(
        empty_dbs, breach_id, risk="risk", reasoning="Names and amounts", actor=DPO, now=NOW
    )
    before = snapshot(empty_dbs)
    sent = AWARE + after
    result = breaches.decide_notification(
        empty_dbs, breach_id, notify=True, reasoning="Risk", actor=DPO, notified_at=sent,
        reference="DT-7", delay_reasons=delay, now=sent,
    )  # fmt: skip
    assert result.ok is ok, result.failed
    if ok:
        b = detail(empty_dbs, breach_id)
        assert (b["status"], b["notified_at"], b["notified_late"]) == (
            "notified",
            sent,
            after > timedelta(hours=72),
        )
    else:
        assert "reasons for the delay" in result.failed[breach_id]
        assert snapshot(empty_dbs) == before


def test_r52_high_risk_without_telling_the_subjects_needs_an_art_34_3_exemption(empty_dbs):
    breach_id = log(empty_dbs)
    breaches.assess(empty_dbs, breach_id, risk="high", reasoning="Card data", actor=DPO, now=NOW)
    refused = breaches.decide_subject_notice(
        empty_dbs, breach_id, notify=False, reasoning="Too many", actor=DPO, now=NOW
    )
    assert "art. 34(3)" in refused.failed[breach_id]
    done = breaches.decide_subject_notice(
        empty_dbs,
        breach_id,
        notify=False,
        reasoning="Tokens were encrypted",
        exemption="a",
        actor=DPO,
        now=NOW,
    )
    assert done.ok, done.failed
    assert detail(empty_dbs, breach_id)["subjects_exemption"] == "a"


def test_r51_close_needs_the_decisions_and_a_closed_breach_stays_as_it_is(empty_dbs):
    breach_id = log(empty_dbs)
    assert (
        "Decide on notifying"
        in breaches.close(empty_dbs, breach_id, actor=DPO, now=NOW).failed[breach_id]
    )
    breaches.assess(
        empty_dbs, breach_id, risk="none", reasoning="Returned unread", actor=DPO, now=NOW
    )
    breaches.decide_notification(
        empty_dbs, breach_id, notify=False, reasoning="No risk", actor=DPO, now=NOW
    )
    assert breaches.close(empty_dbs, breach_id, actor=DPO, note="Done", now=NOW).ok
    before = snapshot(empty_dbs)
    assert (
        "closed"
        in breaches.update_breach(empty_dbs, breach_id, actor=DPO, title="New").failed[breach_id]
    )
    assert "already closed" in breaches.close(empty_dbs, breach_id, actor=DPO).failed[breach_id]
    assert snapshot(empty_dbs) == before
    events = breaches.breach_events_frame(empty_dbs, breach_id)
    assert events["event"].tolist() == ["logged", "assessed", "notification_decided", "closed"]
    assert breaches.open_breaches(empty_dbs, date(2026, 11, 28), now=NOW).empty


def test_r50_changing_when_the_company_became_aware_moves_the_deadline(empty_dbs):
    breach_id = log(empty_dbs)
    earlier = AWARE - timedelta(hours=5)
    assert breaches.update_breach(empty_dbs, breach_id, actor=DPO, aware_at=earlier, now=NOW).ok
    b = detail(empty_dbs, breach_id)
    assert b["due_at"] == earlier + timedelta(hours=72)
    assert breaches.breach_events_frame(empty_dbs, breach_id)["details"].iloc[-1] == (
        '{"fields":["aware_at","due_at"],"links":{}}'
    )


# --- people affected, audit, erasure (R18) ---------------------------------------------------


def _ledger_text(dbs) -> str:
    """Every value in every ledger table, as one text (to look for an e-mail)."""
    parts = []
    with dbs.ledger.connect() as conn:
        for table in ledger_metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts += [str(v) for v in row]
    return "\n".join(parts).lower()


def test_r18_people_affected_are_kept_as_keyed_hashes_and_every_step_is_audited(empty_dbs):
    breach_id = log(empty_dbs, affected_emails=[KARI, " kari.nordmann@example.no "])
    result = breaches.add_affected_emails(empty_dbs, breach_id, ["ola@example.no", KARI], actor=DPO)
    assert result.ok
    assert detail(empty_dbs, breach_id)["subjects_listed"] == 2
    assert "kari.nordmann@example.no" not in _ledger_text(empty_dbs)
    assert "ola@example.no" not in _ledger_text(empty_dbs)
    with empty_dbs.ledger.connect() as conn:
        refs = set(conn.execute(select(breach_subjects.c.subject_ref)).scalars())
    assert audit.keyed_hash(empty_dbs, KARI.lower()) in refs
    entries = audit.audit_entries(empty_dbs)
    assert entries["action"].tolist() == ["list_breach_subjects", "log_breach"]
    assert set(entries["target"]) == {f"breach:{breach_id}"}
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_r18_erasure_keeps_the_breach_and_removes_the_person_from_it(empty_dbs):
    breach_id = log(
        empty_dbs,
        affected_emails=[KARI, "ola@example.no"],
        description=f"A list with {KARI} and others went to the wrong customer.",
        subjects_count=2,
    )
    receipt = erasure.erase_subject(empty_dbs, KARI, actor=DPO, as_of=date(2026, 11, 28))
    assert receipt.status == "done", receipt.failed
    assert receipt.erased["ledger.breach_subjects"] == 1
    assert receipt.erased["ledger.breaches_text_redacted"] == 1
    b = detail(empty_dbs, breach_id)
    assert b["description"] == "A list with [erased] and others went to the wrong customer."
    assert (b["subjects_count"], b["subjects_listed"]) == (2, 2)  # the counts stay
    with empty_dbs.ledger.connect() as conn:
        refs = set(conn.execute(select(breach_subjects.c.subject_ref)).scalars())
    assert refs == {audit.keyed_hash(empty_dbs, "ola@example.no")}
    assert "kari.nordmann@example.no" not in _ledger_text(empty_dbs)
    assert receipt.residue["residue_rows"] == 0


# --- findings (R51, R53) ---------------------------------------------------------------------


def test_r53_no_breach_logged_for_12_months_is_a_finding(empty_dbs):
    day = date(2026, 11, 28)

    def breach_row():
        frame = findings.policy_findings(empty_dbs, day)
        return frame[frame["rule"] == "R53"].iloc[0]

    assert (breach_row()["severity"], breach_row()["count"]) == ("medium", 1)
    log(empty_dbs, now=datetime(2025, 11, 20, 9, 0), aware_at=datetime(2025, 11, 20, 8, 0))
    assert breach_row()["count"] == 1  # 12 months and 8 days ago
    log(empty_dbs, now=datetime(2025, 11, 28, 9, 0), aware_at=datetime(2025, 11, 28, 8, 0))
    assert (breach_row()["severity"], breach_row()["count"]) == ("ok", 0)


def test_r51_a_decision_without_reasoning_from_elsewhere_is_a_finding(empty_dbs):
    breach_id = log(empty_dbs)
    assert breach_findings.decisions_without_reasoning(empty_dbs, date(2026, 11, 28)) == 0
    with empty_dbs.ledger.begin() as conn:  # an import or a direct edit, not the dashboard
        conn.execute(
            text(
                "UPDATE breaches SET notify_decision = :no, notify_reasoning = '  ' WHERE id = :id"
            ),
            {"no": False, "id": breach_id},
        )
    frame = findings.policy_findings(empty_dbs, date(2026, 11, 28))
    row = frame[frame["rule"] == "R51"].iloc[0]
    assert (row["severity"], row["count"], row["page"]) == ("high", 1, "breaches")


def test_links_are_replaced_not_added(empty_dbs):
    with empty_dbs.ledger.begin() as conn:
        ids = [
            conn.execute(
                recipients.insert().values(
                    name=n, role="processor", named_in_policy=False, receives_personal_data=True
                )
            ).inserted_primary_key[0]  # fmt: skip
            for n in ("A", "B")
        ]
    breach_id = log(empty_dbs, recipient_ids=[ids[0]])
    assert breaches.update_breach(
        empty_dbs, breach_id, actor=DPO, recipient_ids=[ids[1]], now=NOW
    ).ok
    with empty_dbs.ledger.connect() as conn:
        linked = conn.execute(
            select(breach_links.c.ref_id).where(breach_links.c.breach_id == breach_id)
        ).scalars()
        assert list(linked) == [ids[1]]


def test_r51_two_dpos_deciding_at_once_record_one_decision(empty_dbs):
    """Two DPOs submit opposite decisions at the same moment: the ledger lock orders them,
    the second finds the breach decided and is refused; the chain stays intact."""
    breach_id = log(empty_dbs)
    breaches.assess(
        empty_dbs, breach_id, risk="none", reasoning="Returned unread", actor=DPO, now=NOW
    )
    barrier = threading.Barrier(2)
    results = {}

    def decide(notify: bool, actor: str) -> None:
        barrier.wait(timeout=30)
        sent = NOW if notify else None
        results[actor] = breaches.decide_notification(
            empty_dbs, breach_id, notify=notify, reasoning="Either way", actor=actor,
            notified_at=sent, now=NOW,
        )  # fmt: skip

    threads = [
        threading.Thread(target=decide, args=(True, "first@plaato.example")),
        threading.Thread(target=decide, args=(False, "second@plaato.example")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(r.ok for r in results.values()) == [False, True]
    refused = next(r for r in results.values() if not r.ok)
    assert "already decided" in refused.failed[breach_id]
    events = breaches.breach_events_frame(empty_dbs, breach_id)["event"].tolist()
    assert events.count("notification_decided") == 1
    assert audit.verify_chain(empty_dbs) == (True, None)


def test_r50_a_phased_notification_cannot_close_while_information_is_missing(empty_dbs):
    breach_id = log(
        empty_dbs, phase_missing="The number of records", phase_follows_on=date(2026, 12, 4)
    )
    breaches.assess(empty_dbs, breach_id, risk="risk", reasoning="Names", actor=DPO, now=NOW)
    breaches.decide_notification(empty_dbs, breach_id, notify=True, reasoning="Risk", actor=DPO,
                                 notified_at=NOW, now=NOW)  # fmt: skip
    en = breaches.datatilsynet_draft(empty_dbs, breach_id, language="en")
    assert "Still missing, to follow 2026-12-04: The number of records" in en
    assert (
        "art. 33(4)" in breaches.close(empty_dbs, breach_id, actor=DPO, now=NOW).failed[breach_id]
    )
    assert breaches.update_breach(
        empty_dbs, breach_id, actor=DPO, phase_missing="", records_count=40, now=NOW
    ).ok
    assert breaches.close(empty_dbs, breach_id, actor=DPO, now=NOW).ok


def test_r53_the_quiet_period_follows_the_policy_setting(tmp_path):
    from tests.conftest import make_databases

    databases = make_databases("sqlite", tmp_path, Policy(breach_log_months=6))
    dbs = next(databases)
    try:
        log(dbs, now=datetime(2026, 3, 28, 9, 0), aware_at=datetime(2026, 3, 28, 8, 0))
        assert breach_findings.quiet_log(dbs, date(2026, 9, 27)) == 0  # 6 months to the day
        assert breach_findings.quiet_log(dbs, date(2026, 9, 29)) == 1
        frame = findings.policy_findings(dbs, date(2026, 9, 29))
        assert "6 months" in frame[frame["rule"] == "R53"].iloc[0]["promise"]
    finally:
        databases.close()


def test_r50_an_earlier_awareness_cannot_make_a_notification_late_without_reasons(empty_dbs):
    breach_id = log(empty_dbs)
    breaches.assess(empty_dbs, breach_id, risk="risk", reasoning="Names", actor=DPO, now=NOW)
    sent = AWARE + timedelta(hours=70)
    breaches.decide_notification(empty_dbs, breach_id, notify=True, reasoning="Risk", actor=DPO,
                                 notified_at=sent, now=sent)  # fmt: skip
    before = snapshot(empty_dbs)
    earlier = breaches.update_breach(
        empty_dbs, breach_id, actor=DPO, aware_at=AWARE - timedelta(hours=3), now=sent
    )
    assert "reasons for the delay" in earlier.failed[breach_id]
    after = breaches.update_breach(
        empty_dbs,
        breach_id,
        actor=DPO,
        aware_at=sent + timedelta(hours=1),
        now=sent + timedelta(hours=2),
    )
    assert "after it notified" in after.failed[breach_id]
    assert snapshot(empty_dbs) == before
    assert breaches.update_breach(
        empty_dbs, breach_id, actor=DPO, aware_at=AWARE - timedelta(hours=1), now=sent
    ).ok
