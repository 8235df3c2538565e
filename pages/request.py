"""One data-subject request: the intake, its deadline, the timeline of every step, and the
steps that fit its state (GDPR art. 12-21; RULES.md R1-R12, R23).

Needs the support database (intake) and the ledger (case); completing an erasure or a
consent withdrawal also changes the users, consent and support databases. Every step is a
`requests` action: audited, re-checked against the case's version, refused with a message
when it does not fit.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from data_access import audit, cached, clock, documents, erasure_documents, requests
from data_access import prepared as prepared_files
from data_access.requests import duplicates as request_duplicates
from data_access.rules import add_months
from pages import _actions as actions
from pages import _gate as gate
from pages import _jobs as jobs
from pages import _links as links
from pages import _ui as ui
from pages import _words as words

gate.require_access()  # before anything is read (RULES.md R41)

ERASE_PENDING = "request_erase_pending"  # the request whose erasure awaits confirmation
EVENT_COLUMNS = ["effective_on", "event", "actor", "details", "occurred_at"]
TASK_COLUMNS = ["task_id", "recipient", "status", "reason", "closed_by", "closed_on"]

ui.page_header(
    "Data-subject request",
    stores=("support", "ledger"),
    caption="Dates are Europe/Oslo dates; the deadline follows RULES.md R2-R5.",
)
as_of = ui.as_of()


link = links.follow("request_id")
request_id = st.number_input(
    "Request id", min_value=1, step=1, value=None, key="request_id", placeholder="e.g. 42"
)
if request_id is None:
    links.bad_link_error(link, "request")
    ui.empty_state("Choose a request on the Data-subject requests page, or enter its id.")
    st.page_link(ui.PAGE_FILES["requests"], label="Data-subject requests", icon="📨")
    st.stop()
request_id = int(request_id)
links.keep("request_id", request_id)

try:
    detail = ui.fetch(cached.request_detail, request_id, as_of)
except KeyError:
    st.error(f"There is no data-subject request {request_id}.", icon="🔎")
    st.stop()
case = detail["case"] or {}
version = int(case.get("version") or 0)
kind = detail["request_type"]


# --- what it is and when it is due -----------------------------------------------------------


def intake_table() -> None:
    """The intake as customer service recorded it (shown as data, never as Markdown)."""
    fields = {
        "Type": kind,
        "Channel": detail["channel"],
        "Received at (Oslo time)": clock.oslo_text(detail["received_at"], seconds=True),
        "Received on (Oslo, R1)": detail["received_on"].isoformat(),
        "Data subject's e-mail": detail["subject_email"],
        "Name": detail["subject_name"] or "",
        "Account id": "" if detail["account_id"] is None else str(detail["account_id"]),
        "Details": detail["details"] or "",
        "Identity": _identity_text(),
    }
    frame = pd.DataFrame({"Field": list(fields), "Value": list(fields.values())})
    st.dataframe(frame, hide_index=True, width="stretch", key="request_intake")


def _identity_text() -> str:
    confirmed, asked = case.get("identity_confirmed_on"), case.get("identity_requested_on")
    if confirmed:
        return f"confirmed {confirmed.isoformat()}: {case.get('identity_method')}"
    if asked:
        return f"asked for on {asked.isoformat()}, not yet confirmed"
    return "not asked for"


def deadline_metrics() -> None:
    columns = st.columns(5)
    columns[0].metric("Status", words.word(detail["status"]))
    if not detail["is_open"]:
        columns[1].metric("Closed on", detail["closed_on"].isoformat())
        columns[2].metric("Was due on", detail["due_on"].isoformat())
        if case.get("outcome_note"):
            st.text(f"Outcome: {case['outcome_note']}")
        return
    columns[1].metric("Due on", detail["due_on"].isoformat())
    left = detail["days_left"]
    columns[2].metric("Days left", left, delta=ui.badge(detail["badge"]), delta_color="off")
    columns[3].metric("Without the pause (R5)", detail["unpaused_due_on"].isoformat())
    columns[4].metric("Days paused", detail["paused_days"])
    if detail["overdue"]:
        st.warning(f"Overdue since {detail['due_on'].isoformat()} (R8).", icon="⏰")
    if detail["extended"]:
        st.caption("Extended (R3): due three months after receipt, plus any identity pause.")


intake_table()
deadline_metrics()

st.subheader("Timeline")
events = detail["events"]
if events.empty:
    ui.empty_state("No step taken yet: the request is as customer service received it.")
else:
    ui.show_frame(ui.display_frame(events, EVENT_COLUMNS), key="request_timeline")

tasks = ui.fetch(cached.recipient_tasks, request_id)
if not tasks.empty:
    st.subheader("Recipient notifications (R11)")
    ui.show_frame(ui.display_frame(tasks, TASK_COLUMNS), key="request_tasks")


def receipt_section() -> None:
    """The erasure's receipt in words (R12, R18): erased and kept per store, the residue
    scan, downloads as HTML and PDF in each letter language, and the confirmation letter to
    the data subject. The receipt names no one; the letter uses the intake's name and
    address (kept as proof, R18) and is shown, not stored."""
    receipt = ui.fetch(cached.erasure_receipt, request_id)
    if receipt is None:
        return
    st.subheader("Erasure receipt (R12)")
    document = erasure_documents.receipt_document(receipt, lang="en")
    for section in document.sections:
        if section.table is not None and not section.table.empty:
            st.markdown(f"**{section.heading}**")
            st.dataframe(section.table, hide_index=True, width="stretch")
        else:
            for paragraph in section.paragraphs:
                st.caption(ui.escape_markdown(paragraph))
    columns = st.columns(4)
    n = 0
    for lang in cached.settings().letters.languages:
        if lang not in ("nb", "en"):
            continue
        localized = erasure_documents.receipt_document(receipt, lang=lang)
        name = f"erasure-receipt-{receipt.receipt_id}-{lang}"
        columns[n % 4].download_button(
            f"PDF ({lang})",
            data=documents.to_pdf(localized),
            file_name=f"{name}.pdf",
            mime="application/pdf",
            key=f"request_receipt_pdf_{lang}",
            on_click="ignore",
            icon=":material/download:",
        )
        columns[(n + 1) % 4].download_button(
            f"HTML ({lang})",
            data=documents.to_html(localized).encode("utf-8"),
            file_name=f"{name}.html",
            mime="text/html",
            key=f"request_receipt_html_{lang}",
            on_click="ignore",
            icon=":material/download:",
        )
        n += 2
    if receipt.status == "done":
        letter = erasure_documents.confirmation_letter(
            full_name=detail["subject_name"],
            email=detail["subject_email"],
            receipt=receipt,
            letters=cached.settings().letters,
        )
        with st.expander("Confirmation letter to the data subject (art. 12(3), art. 17)"):
            st.text(f"Subject: {letter.subject}")
            st.code(letter.body, language=None)


receipt_section()


# --- acting ----------------------------------------------------------------------------------


def after(result, *, what: str) -> None:
    """Keep the outcome of a step (run through `actions.run`, which cleared the caches of
    what it wrote) for the next run, and rerun."""
    actions.report(result, what=what, noun="request")
    st.rerun()


def identity_actions() -> None:
    if case.get("identity_confirmed_on"):
        return
    st.markdown("**Identity (R5)**")
    asked = case.get("identity_requested_on")
    if not asked:
        window = ui.policy().identity_pause_window_days
        pauses = (as_of - detail["received_on"]).days <= window
        st.caption(
            "Asking now pauses the deadline until the identity arrives."
            if pauses
            else f"Asked more than {window} days after receipt, the deadline does not pause."
        )
        if st.button("Ask for identity", key="request_ask_identity"):
            result = actions.run(
                requests.request_identity,
                cached.databases(),
                request_id,
                actor=ui.actor(),
                as_of=as_of,
                expected_version=version,
            )
            after(result, what="Identity asked for")
    with st.form("request_confirm_identity"):
        method = st.text_input(
            "How was the identity checked? (no identity documents are stored)",
            key="request_identity_method",
            max_chars=200,
        )
        if st.form_submit_button("Confirm identity"):
            result = actions.run(
                requests.confirm_identity,
                cached.databases(),
                request_id,
                method=method,
                actor=ui.actor(),
                as_of=as_of,
                expected_version=version,
            )
            after(result, what="Identity confirmed")


def extend_action() -> None:
    if case.get("extended"):
        return
    base = requests.base_due_date(detail["received_on"], case, as_of, ui.policy())
    st.markdown("**Extend the deadline (R3, R4)**")
    st.caption(
        f"The data subject must be told of the extension and why by {base.isoformat()}; the "
        "deadline then becomes three months after receipt. One extension per request."
    )
    st.session_state.setdefault("request_extension_notified_on", as_of)
    with st.form("request_extend"):
        reason = st.text_area("Reason told to the data subject", key="request_extension_reason")
        notified_on = st.date_input(
            "Told on", key="request_extension_notified_on", format="YYYY-MM-DD"
        )
        if st.form_submit_button("Extend the deadline"):
            result = actions.run(
                requests.extend_request,
                cached.databases(),
                request_id,
                reason=reason,
                notified_on=notified_on,
                actor=ui.actor(),
                as_of=as_of,
                expected_version=version,
            )
            after(result, what="Extension")


def report_action() -> None:
    """Access and portability: prepare (audited) and download the report."""
    what = "access report (R9)" if kind == "access" else "portability export (R10)"
    st.caption(f"Prepare the {what}, send it to the data subject, then complete the request.")
    key = f"request_report:{request_id}"
    if st.button(f"Prepare the {what}", key="request_prepare_report"):
        try:
            report = actions.run(
                requests.prepare_report,
                cached.databases(),
                request_id,
                actor=ui.actor(),
                as_of=as_of,
                expected_version=version,
            )
        except (requests.RequestRefused, ValueError) as exc:
            ui.flash(f"The report was not prepared: {ui.escape_markdown(exc)}", "error")
        else:
            # Held process-wide by the person's keyed hash, so erasing them drops it from
            # every session (data_access/prepared.py).
            subject = audit.keyed_hash(cached.databases(), detail["subject_email"])
            prepared_files.drop((st.session_state.get(key) or {}).get("token"))
            st.session_state[key] = {
                "token": prepared_files.hold(report.data, subjects=(subject,)),
                "file_name": report.file_name,
            }
            ui.flash(
                f"Prepared {report.file_name}; the download is recorded in the audit log, "
                f"which now holds {report.audit_head}."
            )
        st.rerun()
    prepared = st.session_state.get(key)
    data = prepared_files.get(prepared["token"]) if prepared else None
    if prepared and data is None:
        st.session_state.pop(key, None)
        st.caption("The prepared report is gone (expired, or the person was erased).")
    elif prepared:
        st.download_button(
            f"Download {prepared['file_name']}",
            data=data,
            file_name=prepared["file_name"],
            mime="application/zip",
            key="request_report_download",
            on_click="ignore",
            icon=":material/download:",
        )


def complete_inputs() -> dict:
    """The type's inputs for completion: purposes (R23) or the checklist ticks."""
    if kind == "withdraw_consent":
        offered = list(cached.settings().policy_facts.consent_purposes)
        st.session_state.setdefault("request_purposes", offered)
        purposes = st.multiselect("Purposes to withdraw (R23)", offered, key="request_purposes")
        return {"purposes": purposes}
    if kind in requests.CHECKLISTS:
        ticked = [
            step
            for step, label in requests.CHECKLISTS[kind].items()
            if st.checkbox(label, key=f"request_check_{step}")
        ]
        return {"checklist": ticked}
    return {}


def complete(inputs: dict, note: str) -> None:
    bar = st.progress(0.0, text="Completing…") if kind == "erasure" else None

    def progress(fraction: float, message: str = "") -> None:
        if bar is not None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message or "Erasing…")

    result = actions.run(
        requests.complete_request,
        cached.databases(),
        request_id,
        actor=ui.actor(),
        as_of=as_of,
        note=note,
        expected_version=version,
        idempotency_key=actions.click_key("complete_request"),
        progress=progress,
        **inputs,
    )
    actions.next_click("complete_request")
    if result.failed and tasks.empty and kind in requests.TASK_TYPES:
        created = requests.recipient_tasks(cached.databases(), request_id)
        if not created.empty:
            # The expected first attempt (R11): not an error, the next step.
            ui.flash(ui.escape_markdown(result.failed[request_id]), "info")
            st.rerun()
    after(result, what="Completion")


def _forget_erasure() -> None:
    st.session_state.pop(ERASE_PENDING, None)


@st.dialog("Erase the data subject?", width="large", on_dismiss=_forget_erasure)
def confirm_erasure(inputs: dict, note: str) -> None:
    """Say exactly what the erasure does, store by store with counts, before it runs; it
    cannot be undone. Only once identity is confirmed on this request (R5) or recorded as
    not needed, with the reason: an erasure for someone who is not the data subject would
    erase another person."""
    if not case.get("identity_confirmed_on"):
        st.error(
            "Identity is not confirmed on this request (R5). Erasing for someone who is not "
            "the data subject erases another person. Confirm the identity (how it was "
            'checked) under "Identity" on the page first; if no check is needed, record '
            'that there with the reason, e.g. "request came from the account\'s own address".',
            icon="🪪",
        )
        if st.button("Close", key="request_erase_close"):
            _forget_erasure()
            st.rerun()
        return
    preview = ui.fetch(cached.erasure_preview, detail["subject_email"], as_of)
    if preview.empty:
        st.info("Nothing is held about this e-mail today: the erasure finds no row.", icon="ℹ️")
    else:
        st.dataframe(
            preview.table,
            hide_index=True,
            width="stretch",
            key="request_erase_preview",
            column_config={"where": "Where", "rows": "Rows", "outcome": "What happens"},
        )
    for account_id, others in preview.other_members.items():
        st.warning(
            f"Account {account_id} is the person's own and has {others} other member(s): "
            "the account goes with them, and they lose their access (R14).",
            icon="👥",
        )
    st.caption(
        "A residue scan of every text column then shows where her e-mail, phone or name "
        "still appears (R18); then one notification task per recipient is created (R11). "
        "It cannot be undone."
    )
    left, right = st.columns(2)
    if left.button("Erase and continue", key="request_erase_confirm", type="primary"):
        _forget_erasure()
        complete(inputs, note)
    if right.button("Cancel", key="request_erase_cancel"):
        _forget_erasure()
        st.rerun()


def unfinished_erasure(inputs: dict, note: str) -> bool:
    """The request's erasure if it did not finish (a store failed, or the run was
    interrupted): what happened, and "Resume the erasure" unless it is running now (a live
    lease). True when there is one: resuming completes the request as far as it can, with
    no new confirmation (the erasure was confirmed when it started)."""
    job = ui.fetch(cached.unfinished_erasure, request_id)
    if job is None:
        return False
    claim = jobs.claim_text(job["status"], job["claimed_by"], job["lease_expires_at"])
    if job["status"] == "running":
        st.info(ui.escape_markdown(f"The erasure (job {job['job_id']}): {claim}"), icon="⏳")
        return True
    error = f" {job['error']}" if isinstance(job["error"], str) else ""
    st.warning(
        ui.escape_markdown(
            f"The erasure (job {job['job_id']}) did not finish ({job['status']}).{error} "
            f"{claim} Resume finishes it; nothing is erased twice."
        ),
        icon="⏸️",
    )
    if st.button("Resume the erasure", key="request_resume_erasure", type="primary"):
        complete(inputs, note)
    return True


def complete_action() -> None:
    st.markdown("**Complete (R9-R12, R23)**")
    blocker = ui.fetch(cached.duplicate_blocker, request_id)
    if blocker:
        st.warning(f"{ui.escape_markdown(blocker)} It cannot be completed yet.", icon="👯")
        return
    if kind in request_duplicates.IDENTITY_TYPES and not case.get("identity_confirmed_on"):
        # Answering an impostor hands over, changes or erases another person's data.
        st.warning(
            "Identity is not confirmed on this request (R5): a report, an erasure or a "
            "change made for someone who is not the data subject would reach another "
            'person. Confirm the identity under "Identity" first (how it was checked); if no '
            'check is needed, record that there with the reason, e.g. "request came from the '
            "account's own address\".",
            icon="🪪",
        )
        return
    if kind in ("access", "portability"):
        report_action()
    inputs = complete_inputs()
    if kind in requests.TASK_TYPES:
        st.caption(
            "The first attempt creates one task per recipient in the register; the request "
            "completes once every task is closed as sent or not possible (R11)."
        )
    note = st.text_input("Outcome told to the data subject (optional)", key="request_note")
    if kind == "erasure" and unfinished_erasure(inputs, note):
        return  # finishing the erasure is the completion's next step: its button is there
    if st.button("Complete the request", key="request_complete", type="primary"):
        if kind == "erasure" and not any(e == "erased" for e in events["event"]):
            # The confirmation stays open across reruns until confirmed or dismissed.
            st.session_state[ERASE_PENDING] = request_id
        else:
            complete(inputs, note)
    if st.session_state.get(ERASE_PENDING) == request_id:
        confirm_erasure(inputs, note)


def task_actions() -> None:
    open_tasks = tasks[tasks["status"] == "open"]
    if open_tasks.empty:
        return
    st.markdown("**Close a recipient notification (R11)**")
    names = dict(zip(open_tasks["task_id"].astype(int), open_tasks["recipient"], strict=True))
    if st.session_state.get("request_task_id") not in names:
        st.session_state.pop("request_task_id", None)
    with st.form("request_close_task"):
        task_id = st.selectbox(
            "Recipient", list(names), format_func=names.get, key="request_task_id"
        )
        outcome = st.radio(
            "Outcome",
            list(requests.TASK_OUTCOMES),
            format_func={"sent": "Sent", "not_possible": "Not possible / disproportionate"}.get,
            horizontal=True,
            key="request_task_outcome",
        )
        reason = st.text_input("Reason (required when not possible)", key="request_task_reason")
        if st.form_submit_button("Close the task"):
            result = actions.run(
                requests.close_recipient_task,
                cached.databases(),
                int(task_id),
                outcome=outcome,
                reason=reason,
                actor=ui.actor(),
                as_of=as_of,
            )
            actions.report(result, what="Recipient task", noun="task")
            # The next task starts with an empty reason: this one belonged to this task.
            st.session_state.pop("request_task_reason", None)
            st.rerun()


def refuse_action() -> None:
    st.markdown("**Refuse (R6, R7)**")
    base = requests.base_due_date(detail["received_on"], case, as_of, ui.policy())
    if as_of > base:
        st.warning(
            f"A refusal was due by {base.isoformat()}, the base deadline, even when extended "
            "(R6); this one is late.",
            icon="⏰",
        )
    previous = ui.fetch(cached.previous_request_on, request_id)
    if previous is None:
        st.caption("R7: no earlier request of this type from this person: not excessive.")
    elif add_months(previous, 12) <= detail["received_on"]:
        st.warning(
            f"R7: this person's previous request of this type was on {previous.isoformat()}, "
            "12 months or more before: this request is not manifestly excessive.",
            icon="⚠️",
        )
    else:
        st.caption(
            f"R7: this person made a request of this type on {previous.isoformat()}, less "
            "than 12 months before."
        )
    with st.form("request_refuse"):
        reason = st.text_area(
            "Reason (the written justification the data subject is told)",
            key="request_refusal_reason",
        )
        in_part = st.checkbox("Refused in part", key="request_refusal_in_part")
        unfounded = st.checkbox(
            "Manifestly unfounded or excessive (art. 12(5))", key="request_refusal_unfounded"
        )
        st.caption(
            "The letter names the right to complain to Datatilsynet and to a judicial remedy."
        )
        if st.form_submit_button("Refuse the request"):
            result = actions.run(
                requests.refuse_request,
                cached.databases(),
                request_id,
                reason=reason,
                in_part=in_part,
                manifestly_unfounded=unfounded,
                actor=ui.actor(),
                as_of=as_of,
                expected_version=version,
            )
            after(result, what="Refusal")


def withdraw_action() -> None:
    st.markdown("**Withdrawn by the data subject**")
    if st.button("Mark withdrawn", key="request_withdraw"):
        result = actions.run(
            requests.withdraw_request,
            cached.databases(),
            request_id,
            actor=ui.actor(),
            as_of=as_of,
            expected_version=version,
        )
        after(result, what="Withdrawal")


def erasure_backups() -> None:
    """After an erasure: what backups still hold, and until when (R12, from its receipt)."""
    erased = events[events["event"] == "erased"]
    if erased.empty:
        return
    note = json.loads(erased["details"].iloc[-1] or "{}").get("backups")
    if note:
        st.info(ui.escape_markdown(note), icon="💾")


def refusal_letter() -> None:
    refused = events[events["event"] == "refused"]
    if refused.empty:
        return
    letter = json.loads(refused["details"].iloc[-1] or "{}").get("letter")
    if letter:
        with st.expander("Refusal letter"):
            st.text(letter)


erasure_backups()
refusal_letter()
if detail["is_open"] and actions.actions_header("Steps"):
    if detail["status"] == "awaiting_identity":
        st.info("Waiting for the data subject's identity: the deadline is paused (R5).")
    identity_actions()
    extend_action()
    task_actions()
    complete_action()
    refuse_action()
    withdraw_action()
elif not detail["is_open"]:
    st.caption(f"Closed on {detail['closed_on'].isoformat()}; a closed request cannot change.")
