"""Caches are cleared by store (data_access/stores.py, cached.reads, pages/_actions.run):

- every cached read function declares the stores it reads, and reads no other (checked
  against the SQL it sends on the seeded demo);
- every action the pages run declares the stores it writes, writes no other, and is run
  through `_actions.run`; a page calling a function that writes without declaring it fails;
- after each action, every cached read of a store it wrote returns fresh data — among them
  the Overview's "Policy versus reality" after a purge and Subject lookup after a notice or
  a hold, which stayed stale for up to a minute when each page listed its own caches.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from data_access import (
    audit,
    breaches,
    cached,
    consent_rollup,
    holds,
    mailer,
    register_edit,
    requests,
    retention,
    stores,
    subjects,
)
from data_access import tables as t
from data_access.clock import utc_now
from data_access.settings import Smtp
from pages import _actions
from tests import interrupted_run, seeded, store_capture
from tests.conftest import SEED_AS_OF
from tests.test_register_edit import PROCESSOR

ROOT = Path(__file__).resolve().parent.parent
seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy
ACTOR = "dpo@plaato.example"
D = SEED_AS_OF
YEAR_START = date(D.year, 1, 1)
# Functions the pages call with the Databases that write nothing (each checked below).
READ_ONLY = {
    "audit.keyed_hash",
    "inspection.context",
    "register.policy_text",
    "register_edit.entry",
    "ropa.record_of_processing_html",
    "requests.recipient_tasks",
    "retention.accounts_nearing_deletion",
}


# --- declarations ------------------------------------------------------------------------


def _cache_data_functions() -> list[str]:
    tree = ast.parse((ROOT / "data_access" / "cached.py").read_text(encoding="utf-8"))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("cache_data" in ast.unparse(d) for d in node.decorator_list)
    ]


def test_every_cached_reader_declares_the_stores_it_reads():
    defined = _cache_data_functions()
    assert len(defined) > 30
    assert sorted(cached.READERS) == sorted(defined), "a st.cache_data wrapper without @reads"
    assert all(cached.READERS.values())


def test_a_reader_or_action_without_stores_or_with_an_unknown_one_is_refused():
    with pytest.raises(ValueError, match="at least one store"):
        cached.reads()
    with pytest.raises(ValueError, match="is not a store"):
        stores.writes("ledger.")
    with pytest.raises(ValueError, match="is not a store"):
        stores.writes("crm.contacts")
    with pytest.raises(TypeError, match="declares no stores"):
        _actions.run(lambda: None)


def test_a_database_overlaps_its_tables_and_tables_only_themselves():
    assert stores.overlaps("users", "users.invoices")
    assert stores.overlaps("ledger.audit_log", "ledger")
    assert not stores.overlaps("ledger.audit_log", "ledger.audit_head")
    assert not stores.overlaps("users", "users_archive")
    written = stores.written_by(retention.purge_support_contacts)
    assert "count_support_contacts_past_retention" in cached.clear_stores(written)
    assert "count_invoices_past_retention" not in cached.clear_stores(written)


def _page_sources() -> list[Path]:
    return [ROOT / "dashboard.py", *sorted((ROOT / "pages").glob("*.py"))]


def _data_access_names(tree: ast.Module) -> dict[str, object]:
    """Names a page binds to data_access modules (`from data_access import x as y`)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("data_access"):
            for alias in node.names:
                module = importlib.import_module(node.module)
                target = getattr(module, alias.name, None)
                if target is None:
                    target = importlib.import_module(f"{node.module}.{alias.name}")
                names[alias.asname or alias.name] = target
    return names


def _calls_with_databases(tree: ast.Module, names: dict) -> list[tuple[str, object, bool]]:
    """(name, function, run through _actions.run) for every data_access function a page
    calls or passes to `run`."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        through_run = isinstance(node.func, ast.Attribute) and node.func.attr == "run"
        target = node.args[0] if through_run and node.args else node.func
        if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
            continue
        module = names.get(target.value.id)
        function = getattr(module, target.attr, None)
        if callable(function) and module is not cached:
            found.append((f"{target.value.id}.{target.attr}", function, through_run))
    return found


def test_pages_run_every_action_through_actions_run():
    """A page that calls an action directly would clear nothing afterwards."""
    direct = []
    for path in _page_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, function, through_run in _calls_with_databases(tree, _data_access_names(tree)):
            if getattr(function, "writes_stores", None) and not through_run:
                direct.append(f"{path.name}: {name}")
    assert direct == []


def test_every_function_a_page_calls_with_the_databases_declares_its_writes_or_is_read_only():
    """A new action without @writes fails here; a read-only one is named in READ_ONLY."""
    undeclared = set()
    for path in _page_sources():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        names = _data_access_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            arguments = [ast.unparse(a) for a in node.args]
            if "cached.databases()" not in arguments[:2]:
                continue
            target = node.args[0] if arguments[0] != "cached.databases()" else node.func
            name = ast.unparse(target)
            module_name = name.split(".")[0]
            if module_name not in names:
                continue
            function = getattr(names[module_name], name.split(".", 1)[1], None)
            if not getattr(function, "writes_stores", None) and name not in READ_ONLY:
                undeclared.add(f"{path.name}: {name}")
    assert undeclared == set()


# --- what the readers read ---------------------------------------------------------------


def _reader_calls(dbs) -> dict[str, tuple]:
    """Arguments for every cached reader on the seeded demo: a real person, a real erasure
    request, a job (a purge run first), so their longest paths run."""
    erasure_id = _first_open(dbs, "erasure")
    email = requests.request(dbs, erasure_id, as_of=D)["subject_email"]
    ready = retention.accounts_nearing_deletion(dbs, D, 30, stages=["ready"])
    account_ids = tuple(int(i) for i in ready["account_id"][:3])
    return {
        "health_problems": (),
        "health_summary": (),
        "accounts_nearing_deletion": (D, 30),
        "stage_counts": (D, 30),
        "support_contacts_past_retention": (D,),
        "count_support_contacts_past_retention": (D,),
        "invoices_past_retention": (D,),
        "count_invoices_past_retention": (D,),
        "active_holds": (D,),
        "holds_past_review": (D,),
        "all_holds": (D,),
        "blocked_attempts": (),
        "deletion_plan": (account_ids, D),
        "unfinished_jobs": ("support_purge",),
        "failed_steps": (1,),
        "outbox_messages": (),
        "outbox_counts": (),
        "open_requests": (D,),
        "request_counts": (D,),
        "duplicate_blocker": (erasure_id,),
        "request_detail": (erasure_id, D),
        "unfinished_erasure": (erasure_id,),
        "recipient_tasks": (erasure_id,),
        "previous_request_on": (erasure_id,),
        "closure_metrics": (YEAR_START, D),
        "open_by_type": (D,),
        "consent_rates": (D,),
        "consent_trend": (YEAR_START, D),
        "withdrawals": (YEAR_START, D),
        "consent_breakdown": (D, "source"),
        "processing_without_consent": (D,),
        "processing_activities": (),
        "recipients": (),
        "cookies": (),
        "findings": (D,),
        "findings_count": (D,),
        "policy_findings": (D,),
        "find_subject": (email,),
        "audit_entries": (),
        "chain_status": (),
        "erasure_preview": (email, D),
        "erasure_receipt": (erasure_id,),
        "undelivered_notices": (account_ids,),
        "breach_counts": (D,),
        "breach_list": (D,),
        "open_breaches": (D,),
        "breach_detail": (1, D),
        "breach_events": (1,),
        "breach_register_choices": (),
        "radar": (D,),
        "radar_item_log": (),
        "daily_runs": (),
        "daily_run_steps": (1,),
        "retention_schedule": (D,),
        "inspection_parts": (YEAR_START, D, D),
    }


def _first_open(dbs, request_type: str, status: str | None = None) -> int:
    frame = requests.open_requests(dbs, D, request_type=request_type, status=status)
    return int(frame["request_id"].iloc[0])


def _covered(actual: set[str], declared: frozenset[str]) -> set[str]:
    """The stores in `actual` that no declared store covers."""
    return {a for a in actual if not any(stores.overlaps(a, d) for d in declared)}


def test_every_cached_reader_reads_only_the_stores_it_declares(demo_copy):
    dbs = cached.databases()
    cached.refresh_consent_rollup()
    calls = _reader_calls(dbs)
    assert sorted(calls) == sorted(cached.READERS)
    undeclared = {}
    for name, args in calls.items():
        with store_capture.capture(dbs) as captured:
            getattr(cached, name)(*args)
        missing = _covered(captured.read, cached.READERS[name])
        if missing:
            undeclared[name] = sorted(missing)
    assert undeclared == {}


# --- the actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One action as a page runs it: `prepare(dbs)` returns its arguments after the
    Databases (positional, keyword)."""

    function: Callable
    prepare: Callable[..., tuple[tuple, dict]]


def _accounts(dbs, stage: str) -> list[int]:
    frame = retention.accounts_nearing_deletion(dbs, D, 30, stages=[stage])
    return [int(i) for i in frame["account_id"][:3]]


def _identity_confirmed(dbs, request_type: str) -> int:
    rid = _first_open(dbs, request_type, "received")
    requests.request_identity(dbs, rid, actor=ACTOR, as_of=D)
    requests.confirm_identity(
        dbs, rid, method="Reply from the address on file", actor=ACTOR, as_of=D
    )
    return rid


def _open_task(dbs) -> int:
    rid = _identity_confirmed(dbs, "erasure")
    requests.complete_request(dbs, rid, actor=ACTOR, as_of=D)
    return int(requests.recipient_tasks(dbs, rid)["task_id"].iloc[0])


def _interrupted(dbs) -> tuple[tuple, dict]:
    """An account deletion SIGKILLed after its first batch, its lease expired."""
    folder = Path(tempfile.mkdtemp(prefix="interrupted-"))
    job_id = interrupted_run.killed_mid_job(
        dbs, folder, "approve_deletions", account_ids=_accounts(dbs, "ready"), actor=ACTOR,
        as_of=D, batch_targets=1,
    )  # fmt: skip
    interrupted_run.set_lease(dbs, job_id, utc_now() - timedelta(seconds=1))
    return (job_id,), {"actor": ACTOR}


def _queued_mail(dbs) -> tuple[tuple, dict]:
    """Notices queued in the outbox and an SMTP server that does not answer: the delivery
    records the failed attempts."""
    retention.send_deletion_notices(dbs, _accounts(dbs, "notice_due"), actor=ACTOR, as_of=D)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Smtp(host="127.0.0.1", port=port, sender="privacy@plaato.example")
    return (smtp,), {"timeout": 2}


def _a_hold(dbs) -> int:
    return holds.place_hold(
        dbs, email=_subject_email(dbs), reason="Claim", case_ref="C-1", actor=ACTOR, as_of=D
    )


def _subject_email(dbs) -> str:
    rid = _first_open(dbs, "erasure")
    return requests.request(dbs, rid, as_of=D)["subject_email"]


ACTIVITY = {"name": "Warranty claims", "purpose": "Handle claims", "legal_basis": "art. 6(1)(b)"}
COOKIE = {
    "name": "_test_ad",
    "provider": "Meta",
    "party": "first",
    "category": "marketing",
    "lifetime_days": 90,
    "lifetime": "3 months",
    "consent_required": False,
}

ACTIONS = {
    "send_deletion_notices": Action(
        retention.send_deletion_notices,
        lambda dbs: ((_accounts(dbs, "notice_due"),), {"actor": ACTOR, "as_of": D}),
    ),
    "approve_deletions": Action(
        retention.approve_deletions,
        lambda dbs: ((_accounts(dbs, "ready"),), {"actor": ACTOR, "as_of": D}),
    ),
    "purge_support_contacts": Action(
        retention.purge_support_contacts,
        lambda dbs: (
            (list(retention.support_contacts_past_retention(dbs, D)["contact_id"][:5]),),
            {"actor": ACTOR, "as_of": D},
        ),
    ),
    "anonymise_invoices": Action(
        retention.anonymise_invoices,
        lambda dbs: (
            (list(retention.invoices_past_retention(dbs, D)["invoice_id"][:5]),),
            {"actor": ACTOR, "as_of": D},
        ),
    ),
    "place_hold": Action(
        holds.place_hold,
        lambda dbs: (
            (),
            {"email": _subject_email(dbs), "reason": "Claim", "case_ref": "C-1"}
            | {"actor": ACTOR, "as_of": D},
        ),
    ),
    "release_holds": Action(
        holds.release_holds, lambda dbs: (([_a_hold(dbs)],), {"actor": ACTOR, "as_of": D})
    ),
    "request_identity": Action(
        requests.request_identity,
        lambda dbs: ((_first_open(dbs, "erasure", "received"),), {"actor": ACTOR, "as_of": D}),
    ),
    "confirm_identity": Action(
        requests.confirm_identity,
        lambda dbs: (
            (_first_open(dbs, "erasure", "received"),),
            {"method": "Reply from the address on file", "actor": ACTOR, "as_of": D},
        ),
    ),
    "extend_request": Action(
        requests.extend_request,
        lambda dbs: (
            (_first_open(dbs, "access"),),
            {"reason": "Many systems", "notified_on": D, "actor": ACTOR, "as_of": D},
        ),
    ),
    "refuse_request": Action(
        requests.refuse_request,
        lambda dbs: (
            (_first_open(dbs, "access"),),
            {"reason": "Manifestly excessive", "actor": ACTOR, "as_of": D},
        ),
    ),
    "withdraw_request": Action(
        requests.withdraw_request,
        lambda dbs: ((_first_open(dbs, "access"),), {"actor": ACTOR, "as_of": D}),
    ),
    "prepare_report": Action(
        requests.prepare_report,
        lambda dbs: ((_identity_confirmed(dbs, "access"),), {"actor": ACTOR, "as_of": D}),
    ),
    "complete_request (erasure)": Action(
        requests.complete_request,
        lambda dbs: ((_identity_confirmed(dbs, "erasure"),), {"actor": ACTOR, "as_of": D}),
    ),
    "close_recipient_task": Action(
        requests.close_recipient_task,
        lambda dbs: ((_open_task(dbs),), {"outcome": "sent", "actor": ACTOR, "as_of": D}),
    ),
    "save_recipient": Action(
        register_edit.save_recipient, lambda dbs: ((PROCESSOR,), {"actor": ACTOR, "as_of": D})
    ),
    "save_activity": Action(
        register_edit.save_activity, lambda dbs: ((ACTIVITY,), {"actor": ACTOR, "as_of": D})
    ),
    "save_cookie": Action(
        register_edit.save_cookie, lambda dbs: ((COOKIE,), {"actor": ACTOR, "as_of": D})
    ),
    "delete_entry": Action(
        register_edit.delete_entry,
        lambda dbs: (
            ("cookie", register_edit.save_cookie(dbs, COOKIE, actor=ACTOR).succeeded[0]),
            {"actor": ACTOR},
        ),
    ),
    "record_export": Action(
        audit.record_export,
        lambda dbs: ((), {"actor": ACTOR, "what": "test/export", "filters": {}, "rows": 1}),
    ),
    "write_anchor": Action(audit.write_anchor, lambda dbs: ((), {})),
    "resume_job (interrupted deletion)": Action(
        retention.resume_job, lambda dbs: _interrupted(dbs)
    ),
    "deliver_outbox (server down)": Action(mailer.deliver_outbox, lambda dbs: _queued_mail(dbs)),
    "rebuild consent roll-up": Action(consent_rollup.rebuild, lambda dbs: ((), {"actor": ACTOR})),
    "log_breach": Action(
        breaches.log_breach,
        lambda dbs: (
            (),
            {
                "title": "Lost laptop",
                "aware_at": utc_now() - timedelta(hours=2),
                "reported_by": "IT",
                "actor": ACTOR,
            },
        ),  # fmt: skip
    ),
}


def _same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.reset_index(drop=True).equals(
            b.reset_index(drop=True)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if dataclasses.is_dataclass(a):
        # A document's creation time is when it was built, not data read from a store.
        return type(a) is type(b) and all(
            _same(getattr(a, f.name), getattr(b, f.name))
            for f in dataclasses.fields(a)
            if f.name != "created_at"
        )
    return a == b


@pytest.mark.parametrize("label", list(ACTIONS))
def test_after_each_action_every_cached_read_of_a_written_store_is_fresh(demo_copy, label):
    """The action is run as the page runs it (`_actions.run`) with every cached reader
    read before; afterwards each reader that read a table the action wrote returns what
    the database holds now, and the action wrote only stores it declares."""
    action = ACTIONS[label]
    dbs = cached.databases()
    cached.refresh_consent_rollup()
    args, kwargs = action.prepare(dbs)
    calls = _reader_calls(dbs)
    read_by = {}
    for name, reader_args in calls.items():
        with store_capture.capture(dbs) as captured:
            getattr(cached, name)(*reader_args)
        read_by[name] = captured.read

    with store_capture.capture(dbs) as captured:
        _actions.run(action.function, dbs, *args, **kwargs)

    assert captured.written, f"{label} wrote nothing: the scenario does not exercise it"
    assert _covered(captured.written, stores.written_by(action.function)) == set()
    stale = []
    for name, reader_args in calls.items():
        if not stores.any_overlap(read_by[name], captured.written):
            continue
        shown = getattr(cached, name)(*reader_args)
        fresh = getattr(cached, name).__wrapped__(*reader_args)
        if not _same(shown, fresh):
            stale.append(name)
    assert stale == []


def test_overview_policy_findings_are_fresh_after_purge_all_shown(demo_copy):
    """Issue repro: "Support contacts past retention" in "Policy versus reality" kept its
    count after "Purge all shown"."""
    dbs = cached.databases()

    def past_retention() -> str:
        findings = cached.policy_findings(D)
        return findings.to_csv()

    before = past_retention()
    contacts = cached.support_contacts_past_retention(D)
    assert not contacts.empty
    result = _actions.run(
        retention.purge_support_contacts,
        dbs,
        [int(i) for i in contacts["contact_id"]],
        actor=ACTOR,
        as_of=D,
    )
    assert result.succeeded

    assert past_retention() != before
    assert cached.count_support_contacts_past_retention(D) < len(contacts)
    assert past_retention() == policy_findings_now(dbs).to_csv()


def policy_findings_now(dbs) -> pd.DataFrame:
    return cached.policy_findings.__wrapped__(D)


def test_subject_lookup_is_fresh_after_send_notice_and_after_a_hold(demo_copy):
    """Issue repro: Subject lookup missed the new notice, outbox row and hold."""
    dbs = cached.databases()
    (account_id,) = _accounts(dbs, "notice_due")[:1]
    email = subjects_email(dbs, account_id)
    before = cached.find_subject(email)

    _actions.run(retention.send_deletion_notices, dbs, [account_id], actor=ACTOR, as_of=D)
    after_notice = cached.find_subject(email)
    _actions.run(
        holds.place_hold, dbs, email=email, reason="Claim", case_ref="C-2", actor=ACTOR, as_of=D
    )
    after_hold = cached.find_subject(email)

    assert len(after_notice["ledger.outbox"]) == len(before["ledger.outbox"]) + 1
    assert len(after_hold["ledger.legal_holds"]) == len(after_notice["ledger.legal_holds"]) + 1
    assert _same(after_hold, subjects.find_subject(dbs, email))


def subjects_email(dbs, account_id: int) -> str:
    with dbs.users.connect() as conn:
        return conn.execute(
            select(t.accounts.c.email).where(t.accounts.c.id == account_id)
        ).scalar_one()


def test_an_action_that_raised_still_clears_what_it_declares(demo_copy, monkeypatch):
    cached.count_support_contacts_past_retention(D)
    cleared = []
    monkeypatch.setattr(cached, "clear_stores", lambda written: cleared.append(set(written)))

    @stores.writes("support.contacts")
    def fails(_dbs):
        raise RuntimeError("half done")

    with pytest.raises(RuntimeError):
        _actions.run(fails, cached.databases())
    assert cleared == [{"support.contacts"}]
