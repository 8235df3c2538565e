"""AppTests of the request pages on a copy of the seeded small demo (as of SEED_AS_OF): a DPO
opens an overdue request from the queue, takes an erasure request from intake to completion
with its recipient tasks, answers an access request with its report, extends one and
refuses another (RULES.md R1-R12).

Each test acts on its own copy of the demo databases, so the shared seeded demo stays as
generated for the other page tests.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from data_access import audit, cached, erasure, requests, rules, subjects
from data_access import ledger_tables as lt
from data_access.clock import utc_now
from pages import _ui as ui
from tests import interrupted_run, seeded
from tests.conftest import ROOT, SEED_AS_OF

seeded_demo = seeded.seeded_demo
FIRST_DPO = "first.dpo@plaato.example"


@pytest.fixture(autouse=True)
def _navigation_as_served(monkeypatch):
    """Keep every AppTest run going through dashboard.py (see tests/test_pages.py)."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


demo_copy = seeded.demo_copy


def open_request(request_id: int | None = None, *, at: AppTest | None = None) -> AppTest:
    """The dashboard on the request page (as of SEED_AS_OF), showing `request_id`."""
    if at is None:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
        at.session_state["as_of"] = SEED_AS_OF
        at.run(timeout=90)
    if request_id is not None:
        at.session_state["request_id"] = request_id
    return at.switch_page("pages/request.py").run(timeout=90)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def submit(at: AppTest, form: str, label: str) -> AppTest:
    return at.button(key=f"FormSubmitter:{form}-{label}").click().run(timeout=90)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, texts(at.exception)
    assert not at.error, texts(at.error)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table_with(at: AppTest, column: str, *, without: str | None = None):
    """The one table on the page that has `column` (timeline: event; tasks: recipient) and
    not the column `without`."""
    frames = [
        d.value
        for d in at.dataframe
        if column in d.value.columns and (without is None or without not in d.value.columns)
    ]
    assert len(frames) == 1, f"{len(frames)} tables with a {column} column"
    return frames[0]


def timeline(at: AppTest) -> list[str]:
    return list(table_with(at, "event")["event"])


def first_open(dbs, *, request_type: str | None = None, status: str | None = None) -> int:
    frame = requests.open_requests(dbs, SEED_AS_OF, request_type=request_type, status=status)
    return int(frame["request_id"].iloc[0])


# --- queue -> request ----------------------------------------------------------------------------


def test_r8_an_overdue_request_opens_from_the_queue(demo_copy):
    queue = requests.open_requests(demo_copy.dbs, SEED_AS_OF)
    overdue = int(queue.loc[queue["overdue"], "request_id"].iloc[0])
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF
    at.run(timeout=90)
    at.switch_page("pages/data_subject_requests.py").run(timeout=90)
    assert_clean(at)

    at.selectbox(key="requests_open_id").select(overdue)
    submit(at, "open_request", "Open the request")

    assert_clean(at)
    assert [t.value for t in at.title] == ["Data-subject request"]
    assert at.number_input(key="request_id").value == overdue
    row = queue[queue["request_id"] == overdue].iloc[0]
    assert metrics(at)["Due on"] == row["due_on"].isoformat()
    assert metrics(at)["Days left"] == str(row["days_left"])
    assert f"Overdue since {row['due_on'].isoformat()} (R8)." in texts(at.warning)


def test_requests_page_shows_how_requests_are_answered(demo_copy):
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF
    at.run(timeout=90)
    at.switch_page("pages/data_subject_requests.py").run(timeout=90)

    assert_clean(at)
    start = date(2025, 12, 1)  # twelve months up to 2026-11-29
    answered = requests.closure_metrics(demo_copy.dbs, start, SEED_AS_OF)
    assert answered.attrs["answered"] > 0
    shown = metrics(at)
    assert shown["Answered (12 months)"] == str(answered.attrs["answered"])
    assert shown["On-time rate (12 months)"] == f"{answered.attrs['on_time_rate'] * 100:.1f} %"
    assert shown["Median days to close"] == f"{answered.attrs['median_days_to_close']:.0f}"
    assert len(at.get("plotly_chart")) == 3


# --- from intake to completion -----------------------------------------------------------------


def test_r12_erasure_request_from_intake_to_completion_with_recipient_tasks(demo_copy):
    dbs = demo_copy.dbs
    rid = first_open(dbs, request_type="erasure", status="received")
    email = requests.request(dbs, rid, as_of=SEED_AS_OF)["subject_email"]
    at = open_request(rid)
    assert_clean(at)
    assert metrics(at)["Status"] == "Received"
    assert "No step taken yet" in texts(at.info)

    at.button(key="request_ask_identity").click().run(timeout=90)
    assert_clean(at)
    assert metrics(at)["Status"] == "Awaiting identity"
    assert timeline(at) == ["identity_requested"]

    at.text_input(key="request_identity_method").input("Reply from the e-mail address on file")
    submit(at, "request_confirm_identity", "Confirm identity")
    assert_clean(at)
    assert metrics(at)["Status"] == "In progress"

    at.button(key="request_complete").click().run(timeout=90)
    assert_clean(at)
    at.button(key="request_erase_confirm").click().run(timeout=90)
    assert not at.exception, texts(at.exception)
    # The message is shown as text: its Markdown characters are escaped.
    assert "recipient notification task(s) were created" in texts(at.info).replace("\\", "")
    tasks = table_with(at, "recipient")
    receiving = [
        name
        for name, receives in ((r["name"], r["receives_personal_data"]) for r in _recipients(dbs))
        if receives
    ]
    assert sorted(tasks["recipient"]) == sorted(receiving)
    assert set(tasks["status"]) == {"open"}
    assert subjects.find_subject(dbs, email)["users.accounts"].empty

    for n, recipient in enumerate(list(tasks["recipient"])):
        task_ids = {
            name: tid for tid, name in zip(tasks["task_id"], tasks["recipient"], strict=True)
        }
        at.selectbox(key="request_task_id").select(int(task_ids[recipient]))
        if n == 0:
            at.radio(key="request_task_outcome").set_value("not_possible")
            at.text_input(key="request_task_reason").input("Holds only pseudonymous cookie ids")
        else:
            at.radio(key="request_task_outcome").set_value("sent")
        submit(at, "request_close_task", "Close the task")
        assert_clean(at)
    closed = table_with(at, "recipient")
    assert set(closed["status"]) == {"sent", "not_possible"}

    at.button(key="request_complete").click().run(timeout=90)

    assert_clean(at)
    assert "Completion: 1 succeeded, 0 failed." in texts(at.success)
    assert metrics(at)["Status"] == "Completed"
    assert timeline(at)[-1] == "completed"
    assert "erased" in timeline(at)
    found = requests.request(dbs, rid, as_of=SEED_AS_OF)
    assert (found["status"], found["closed_on"]) == ("completed", SEED_AS_OF)
    with dbs.ledger.connect() as conn:
        receipts = conn.execute(
            select(lt.erasure_receipts.c.id).where(lt.erasure_receipts.c.request_id == rid)
        ).all()
    assert len(receipts) == 1
    assert rid not in set(requests.open_requests(dbs, SEED_AS_OF)["request_id"])
    assert audit.verify_chain(dbs) == (True, None)


def test_r12_an_interrupted_erasure_is_resumed_from_the_request_page(demo_copy, tmp_path):
    """The completion is SIGKILLed after the erasure's users step: while the run's lease
    is live the page says it is running now and offers nothing; once it has expired the page
    says it did not finish and "Resume the erasure" finishes it as the DPO on the page."""
    dbs = demo_copy.dbs
    rid = first_open(dbs, request_type="erasure", status="received")
    email = requests.request(dbs, rid, as_of=SEED_AS_OF)["subject_email"]
    identity = requests.confirm_identity(
        dbs, rid, method="Reply from the e-mail address", actor=FIRST_DPO, as_of=SEED_AS_OF
    )
    assert identity.succeeded == [rid]
    job_id = interrupted_run.killed_mid_job(
        dbs, tmp_path, "complete_request", request_id=rid, actor=FIRST_DPO, as_of=SEED_AS_OF
    )
    assert subjects.find_subject(dbs, email)["users.accounts"].empty  # the users step ran

    interrupted_run.set_lease(dbs, job_id, utc_now() + timedelta(minutes=5))
    at = open_request(rid)
    assert_clean(at)
    assert f"The erasure (job {job_id}): This job is running now" in plain(at.info)
    buttons = {b.key for b in at.button}
    assert not {"request_resume_erasure", "request_complete"} & buttons

    interrupted_run.set_lease(dbs, job_id, utc_now() - timedelta(seconds=1))
    cached.clear()
    at = open_request(rid)
    assert not at.exception, texts(at.exception)
    # The automation banner a DPO sees on every page until the job is resumed.
    assert [f"Job {job_id} (erasure) is interrupted: resume it"] == [
        line.removeprefix("- ") for line in plain(at.error).splitlines() if line.startswith("- ")
    ]
    assert f"The erasure (job {job_id}) did not finish (interrupted)" in plain(at.warning)
    assert "request_complete" not in {b.key for b in at.button}

    at.button(key="request_resume_erasure").click().run(timeout=90)

    assert_clean(at)
    assert "recipient notification task(s) were created" in plain(at.info)
    assert "erased" in timeline(at)
    receipt = erasure.receipt_of_job(dbs, job_id)
    assert receipt.status == "done" and receipt.erased["users.accounts"] == 1
    assert requests.unfinished_erasure(dbs, rid) is None
    steps = audit.audit_entries(dbs)
    steps = steps[steps["target"] == f"receipt:{receipt.receipt_id}"]
    assert dict(zip(steps["action"], steps["actor"], strict=True)) == {
        "erase_users": FIRST_DPO,
        "erase_consent": ui.DEMO_ACTOR,  # the DPO who resumed it
        "erase_support": ui.DEMO_ACTOR,
        "erase_ledger_copies": ui.DEMO_ACTOR,
        "scan_residue": ui.DEMO_ACTOR,
    }
    assert audit.verify_chain(dbs) == (True, None)


def plain(elements) -> str:
    """The texts of `elements` with Markdown escapes removed."""
    return texts(elements).replace("\\", "")


def _recipients(dbs) -> list[dict]:
    with dbs.ledger.connect() as conn:
        return [dict(r) for r in conn.execute(select(lt.recipients)).mappings()]


def test_r9_access_request_report_is_downloaded_then_completed(demo_copy):
    dbs = demo_copy.dbs
    frame = requests.open_requests(dbs, SEED_AS_OF, request_type="access")
    ready = frame[frame["status"].isin(["in_progress", "extended"])]
    rid = int(ready["request_id"].iloc[0])
    at = open_request(rid)
    assert_clean(at)

    at.button(key="request_complete").click().run(timeout=90)
    assert "Prepare and send the access report (R9)" in texts(at.error)

    at.button(key="request_prepare_report").click().run(timeout=90)
    assert_clean(at)
    assert "Prepared access-report-2026-11-29.zip" in texts(at.success)
    assert at.get("download_button")[0].proto.label == "Download access-report-2026-11-29.zip"
    entries = audit.audit_entries(dbs, limit=5, action="access_report")
    assert list(entries["target"])[:1] == [f"request:{rid}"]

    at.button(key="request_complete").click().run(timeout=90)

    assert_clean(at)
    assert metrics(at)["Status"] == "Completed"
    assert timeline(at)[-2:] == ["report_prepared", "completed"]


def test_r3_extend_a_fresh_request_and_r6_refuse_another(demo_copy):
    dbs = demo_copy.dbs
    fresh = requests.open_requests(dbs, SEED_AS_OF, status="received")
    fresh = fresh[fresh["days_left"] > 0]
    extend_id, refuse_id = (int(i) for i in fresh["request_id"].iloc[:2])
    received_on = fresh.iloc[0]["received_on"]
    at = open_request(extend_id)

    at.text_area(key="request_extension_reason").input("Data in four systems must be collected")
    submit(at, "request_extend", "Extend the deadline")

    assert_clean(at)
    assert metrics(at)["Status"] == "Extended"
    expected = rules.dsr_due_date(received_on, extended=True)
    assert metrics(at)["Due on"] == expected.isoformat()
    assert timeline(at) == ["extended"]

    at = open_request(refuse_id, at=at)
    at.text_area(key="request_refusal_reason").input("Manifestly unfounded: answered last week")
    at.checkbox(key="request_refusal_unfounded").check()
    submit(at, "request_refuse", "Refuse the request")

    assert_clean(at)
    assert metrics(at)["Status"] == "Refused"
    letter = json.loads(requests.request_events(dbs, refuse_id)["details"].iloc[-1])["letter"]
    assert "Datatilsynet" in letter and "judicial remedy" in letter
    assert "klage til Datatilsynet" in "\n".join(str(t.value) for t in at.get("text"))


def test_r41_a_viewer_sees_the_request_but_no_steps(demo_copy):
    rid = first_open(demo_copy.dbs, status="received")
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    seeded.sign_in(at, seeded.VIEWER_EMAIL)
    at.session_state["as_of"] = SEED_AS_OF
    at.run(timeout=90)

    at = open_request(rid, at=at)

    assert_clean(at)
    assert metrics(at)["Status"] == "Received"
    assert "Actions are for the DPO role" in texts(at.caption)
    assert not [b for b in at.button if b.key == "request_ask_identity"]


# --- links to one request ----------------------------------------------------------------------


def follow_link(request_id: str) -> AppTest:
    """A new session opening the dashboard at /request?id=<request_id> (as of SEED_AS_OF)."""
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF
    at.query_params["id"] = request_id
    return at.switch_page("pages/request.py").run(timeout=90)


def intake(at: AppTest) -> dict[str, str]:
    frame = table_with(at, "Field")
    return dict(zip(frame["Field"], frame["Value"], strict=True))


def test_a_link_with_a_request_id_opens_that_request_and_follows_the_choice(demo_copy):
    email = requests.request(demo_copy.dbs, 80, as_of=SEED_AS_OF)["subject_email"]
    at = follow_link("80")

    assert_clean(at)
    assert at.number_input(key="request_id").value == 80
    assert intake(at)["Data subject's e-mail"] == email
    assert at.query_params["id"] == "80"

    at.number_input(key="request_id").set_value(81).run(timeout=90)
    assert_clean(at)
    assert at.number_input(key="request_id").value == 81
    other = requests.request(demo_copy.dbs, 81, as_of=SEED_AS_OF)["subject_email"]
    assert intake(at)["Data subject's e-mail"] == other
    assert at.query_params["id"] == "81"  # the address names the request shown
    at.run(timeout=90)
    assert at.number_input(key="request_id").value == 81


@pytest.mark.parametrize("link", ["abc", "0", "-3", "80abc", "4.5", "99999999999999999999"])
def test_a_link_with_a_malformed_request_id_names_it_in_an_error(demo_copy, link):
    at = follow_link(link)

    assert not at.exception, texts(at.exception)
    assert [t.value for t in at.title] == ["Data-subject request"]
    errors = texts(at.error).replace("\\", "")
    assert f"The link names request id “{link}”, which is not a request id" in errors
    assert at.number_input(key="request_id").value is None
    assert "Choose a request on the Data-subject requests page" in texts(at.info)

    at.number_input(key="request_id").set_value(80).run(timeout=90)  # the user picks one
    assert_clean(at)
    assert at.query_params["id"] == "80"


def test_a_link_with_an_unknown_request_id_names_it_in_an_error(demo_copy):
    at = follow_link("9999")

    assert not at.exception, texts(at.exception)
    assert texts(at.error) == "There is no data-subject request 9999."
    assert at.number_input(key="request_id").value == 9999
    assert not at.metric


def test_r5_an_unchecked_duplicate_cannot_be_completed_on_the_page(demo_copy):
    from tests.factories import add_request

    dbs = demo_copy.dbs
    email = "duplicate.person@example.no"
    original = add_request(dbs, received_on=SEED_AS_OF, request_type="erasure", subject_email=email)
    duplicate = add_request(
        dbs, received_on=SEED_AS_OF, request_type="erasure", subject_email=email.upper()
    )

    at = open_request(duplicate)

    assert f"This request duplicates request {original}" in texts(at.warning).replace("\\", "")
    assert not [b for b in at.button if b.key == "request_complete"]
    requests.confirm_identity(dbs, original, method="Reply from the address", actor="t",
                              as_of=SEED_AS_OF)  # fmt: skip
    at = open_request(original)
    assert [b for b in at.button if b.key == "request_complete"]


def _erasure_dialog(at: AppTest) -> AppTest:
    at.button(key="request_complete").click().run(timeout=90)
    assert not at.exception, texts(at.exception)
    return at


def test_r5_nothing_is_completed_or_reported_before_identity_is_confirmed(demo_copy):
    """Erasure, access, portability, rectification, restriction: no Complete, no report
    until identity is confirmed on the request (or recorded as not needed, with why)."""
    from tests.factories import add_account, add_request

    dbs = demo_copy.dbs
    email = "unchecked.person@example.no"
    add_account(dbs, email=email)
    for kind in ("erasure", "access", "portability", "rectification", "restriction"):
        rid = add_request(dbs, received_on=SEED_AS_OF, request_type=kind, subject_email=email)

        at = open_request(rid)

        assert not at.exception, texts(at.exception)
        assert "Identity is not confirmed on this request (R5)" in texts(at.warning), kind
        shown = {b.key for b in at.button}
        assert not shown & {"request_complete", "request_prepare_report"}, kind
        requests.confirm_identity(dbs, rid, method="Signed in to the account", actor="t",
                                  as_of=SEED_AS_OF)  # fmt: skip
        cached.clear()  # the API changed the case behind the page's caches
        assert "request_complete" in {b.key for b in open_request(rid).button}, kind
    assert not subjects.find_subject(dbs, email)["users.accounts"].empty


def test_r12_the_erasure_dialog_counts_per_store_and_warns_about_other_members(demo_copy):
    from tests.factories import add_account, add_invoice, add_member, add_request

    dbs = demo_copy.dbs
    email = "company.owner@example.no"
    account = add_account(dbs, email=email, account_type="professional")
    add_member(dbs, account, email="colleague.one@example.no")
    add_member(dbs, account, email="colleague.two@example.no")
    add_invoice(dbs, account_id=account, issued_on=SEED_AS_OF - timedelta(days=40))
    add_invoice(dbs, account_id=account, issued_on=date(2018, 3, 1))
    rid = add_request(dbs, received_on=SEED_AS_OF, request_type="erasure", subject_email=email)
    requests.confirm_identity(
        dbs, rid, method="Reply from the address on file", actor="t", as_of=SEED_AS_OF
    )

    at = _erasure_dialog(open_request(rid))

    preview = table_with(at, "outcome")
    rows = {(w, o): n for w, n, o in preview[["where", "rows", "outcome"]].itertuples(index=False)}
    assert rows[("Accounts the person owns", "deleted with members, sessions, consent (R14)")] == 1
    assert rows[("Invoices of her accounts", "anonymised: past retention (R15)")] == 1
    kept = [o for (w, o) in rows if w == "Invoices of her accounts" and o.startswith("kept")]
    assert len(kept) == 1
    assert f"Account {account} is the person's own and has 2 other member(s)" in texts(at.warning)
    assert [b for b in at.button if b.key == "request_erase_confirm"]


def test_r12_a_completed_erasure_shows_a_readable_receipt_and_the_confirmation_letter(demo_copy):
    from tests.factories import add_account, add_invoice, add_request

    dbs = demo_copy.dbs
    email = "receipt.person@example.no"
    account = add_account(dbs, email=email, full_name="Åse Ødegård")
    add_invoice(dbs, account_id=account, issued_on=SEED_AS_OF - timedelta(days=40))
    rid = add_request(
        dbs, received_on=SEED_AS_OF, request_type="erasure", subject_email=email,
        subject_name="Åse Ødegård",
    )  # fmt: skip
    requests.confirm_identity(
        dbs, rid, method="Reply from the address on file", actor="t", as_of=SEED_AS_OF
    )
    requests.complete_request(dbs, rid, actor="t", as_of=SEED_AS_OF)  # erases, creates tasks

    at = open_request(rid)

    assert_clean(at)
    assert "Erasure receipt (R12)" in [h.value for h in at.subheader]
    erased = table_with(at, "Rows", without="Found")  # not the residue scan's table
    assert ("Accounts", 1) in set(erased[["What", "Rows"]].itertuples(index=False, name=None))
    kept = table_with(at, "Why", without="Found")
    assert "1 invoice(s)" in kept["What"].tolist()
    letter = at.code[0].value
    assert letter.startswith("Hei Åse Ødegård,") and "Dear Åse Ødegård," in letter
    assert "1 faktura(er): bokføringsloven § 13 krever det" in letter
    assert "(R15)" not in letter
    labels = {b.label for b in at.get("download_button")}
    assert {"PDF (nb)", "HTML (nb)", "PDF (en)", "HTML (en)"} <= labels
