"""One breach: its facts, its 72-hour clock, the decisions under art. 33 and 34, the timeline
and edit history, the Datatilsynet draft and the letter to the data subjects in Norwegian
and English (GDPR art. 33, 34; RULES.md R50-R53).

Needs the ledger. The DPO fills in facts and takes the decisions (each a `breaches` action:
audited, refused with the reason and nothing written when it lacks reasoning or does not
fit the breach's state); viewers read and download.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pandas as pd
import streamlit as st

from data_access import audit, breaches, cached, clock, documents
from pages import _actions as actions
from pages import _gate as gate
from pages import _links as links
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "breach"
EDIT = ui.EDIT_KEY_PREFIX
RISK_LABELS = {
    "none": "No risk (unlikely to result in a risk)",
    "risk": "Risk",
    "high": "High risk",
}
LANGUAGES = {"nb": "Norsk (bokmål)", "en": "English"}
EVENT_COLUMNS = ["occurred_oslo", "event", "actor", "details", "occurred_at"]
TEXT_FACTS = {
    "how_arose": "How the breach arose",
    "data_location": "Where the data are now",
    "consequences": "Likely consequences",
    "measures_taken": "Measures taken",
    "measures_planned": "Measures planned",
    "phase_missing": "Still missing from the notification (art. 33(4))",
}

ui.page_header(
    "Breach",
    stores=("ledger",),
    caption="Times in Europe/Oslo with their offset (stored in UTC). The clock: 72 hours from "
    "when the company became aware (art. 33(1), R50).",
)
as_of = ui.as_of()

link = links.follow("breach_id")
breach_id = st.number_input(
    "Breach id", min_value=1, step=1, value=None, key="breach_id", placeholder="e.g. 3"
)
if breach_id is None:
    links.bad_link_error(link, "breach")
    ui.empty_state("Choose a breach on the Breaches page, or enter its id.")
    st.page_link(ui.PAGE_FILES["breaches"], label="Breaches", icon="🚨")
    st.stop()
breach_id = int(breach_id)
links.keep("breach_id", breach_id)
try:
    b = ui.fetch(cached.breach_detail, breach_id, as_of)
except KeyError:
    st.error(f"There is no breach {breach_id}.", icon="🔎")
    st.stop()
version = int(b["version"])


def _yes_no(value) -> str:
    return "" if value is None else ("yes" if value else "no")


def facts_table() -> None:
    """The facts as recorded (shown as data, never as Markdown)."""
    fields = {
        "Title": b["title"],
        "Status": b["status"],
        "Became aware (R50)": breaches.oslo_text(b["aware_at"]),
        "Period": f"{breaches.oslo_text(b['occurred_from'])} – {breaches.oslo_text(b['occurred_to'])}",
        "Reported by": f"{b['reported_by']} ({b['report_channel']})",
        "Processor's notice (art. 33(2))": (
            f"{b['processor'] or ''} {breaches.oslo_text(b['processor_notice_at'])}".strip()
        ),
        "Kind": ", ".join(b["category"]),
        "Main cause": b["cause"] or "",
        "What happened": b["description"] or "",
        "Data categories": ", ".join(b["data_categories"]),
        "Data subjects": _count(b["subjects_count"], b["subjects_estimated"]),
        "Listed by e-mail (kept as keyed hashes)": str(b["subjects_listed"]),
        "Records": _count(b["records_count"], b["records_estimated"]),
        "Relation to those affected": ", ".join(b["subject_relations"]),
        "Processing activities": ", ".join(b["activities"]),
        "Recipients and processors": ", ".join(b["recipients"]),
        **{label: b[name] or "" for name, label in TEXT_FACTS.items()},
    }
    frame = pd.DataFrame({"Field": list(fields), "Value": [str(v) for v in fields.values()]})
    st.dataframe(frame, hide_index=True, width="stretch", key="breach_facts",
                 height=36 * (len(frame) + 1) + 2)  # fmt: skip


def _count(n, estimated) -> str:
    return "" if n is None else f"{n:,}" + (" (estimate)" if estimated else "")


def clock_metrics() -> None:
    st.markdown(f"**Notify Datatilsynet by** {ui.escape_markdown(b['due_oslo'])} (R50)")
    columns = st.columns(3)
    columns[0].metric("Status", b["status"].replace("_", " "))
    if b["clock_running"]:
        columns[1].metric("Hours left", f"{b['hours_left']:.1f}")
    elif b["notified_at"] is not None:
        columns[1].metric("Notified (Oslo)", f"{clock.utc_naive(b['notified_at']):%Y-%m-%d}")
        st.caption(f"Notified {breaches.oslo_text(b['notified_at'])}")
    else:
        columns[1].metric("Clock", "stopped")
    columns[2].metric("Risk", b["risk"] or "not assessed")
    if b["overdue"]:
        st.warning(
            "The 72 hours have passed without a notification: notify now and give the reasons "
            "for the delay (art. 33(1)).",
            icon="⏰",
        )
    if b["notified_late"]:
        st.caption(f"Notified after the 72 hours. Reasons for the delay: {b['delay_reasons']}")


def decisions() -> None:
    st.subheader("Decisions")
    rows = [
        ("Risk assessment", b["risk"] or "", b["risk_reasoning"] or "", b["assessed_by"] or ""),
        (
            "Notify Datatilsynet (art. 33)",
            _yes_no(b["notify_decision"]),
            b["notify_reasoning"] or "",
            b["notify_decided_by"] or "",
        ),  # fmt: skip
        (
            "Tell the data subjects (art. 34)",
            _yes_no(b["subjects_decision"]),
            b["subjects_reasoning"] or "",
            b["subjects_decided_by"] or "",
        ),  # fmt: skip
    ]
    frame = pd.DataFrame(rows, columns=["Decision", "Outcome", "Reasoning", "By"])
    st.dataframe(frame, hide_index=True, width="stretch", key="breach_decisions")
    if b["notification_reference"]:
        st.caption(f"Datatilsynet's reference: {b['notification_reference']}")
    if b["subjects_exemption"]:
        st.caption(f"Exemption: {breaches.EXEMPTIONS[b['subjects_exemption']]}")


facts_table()
clock_metrics()
decisions()

st.subheader("Timeline and edit history")
events = ui.fetch(cached.breach_events, breach_id)
if events.empty:
    ui.empty_state("No step recorded.")
else:
    ui.table(events, page=PAGE, name=f"breach-{breach_id}-timeline", filters={"breach_id": breach_id},
             column_config={"occurred_oslo": "Occurred (Europe/Oslo)"},
             columns=EVENT_COLUMNS, personal=False)  # fmt: skip


# --- the draft and the letter ---------------------------------------------------------------


def documents_section() -> None:
    """Each document as text to paste and as PDF/HTML downloads, prepared on request so the
    download of a document holding personal data is audited once (RULES.md R40)."""
    st.subheader("Datatilsynet draft and the letter to the data subjects")
    dbs = cached.databases()
    for language, tab in zip(LANGUAGES, st.tabs(list(LANGUAGES.values())), strict=True):
        with tab:
            draft = breaches.draft_document(dbs, breach_id, language=language)
            letter = breaches.subject_letter(dbs, breach_id, language=language)
            st.markdown("**Notification draft** (the headings of Datatilsynet's form, in order)")
            st.code(draft.as_text(), language=None, wrap_lines=True)
            downloads(draft, f"draft-{language}")
            st.markdown("**Letter to the data subjects (art. 34(2))**")
            st.code(letter.as_text(), language=None, wrap_lines=True)
            downloads(letter, f"letter-{language}")


def downloads(document: documents.Document, name: str) -> None:
    # An export (audited), which a viewer may make too (R41): keyed like the other exports.
    key = f"export:breach-doc:{breach_id}:{version}:{name}"
    if st.button("Prepare PDF and HTML", key=f"{key}:prepare"):
        actions.run(
            audit.record_export,
            cached.databases(),
            actor=ui.actor(),
            what=f"{PAGE}/{name}",
            filters={"breach_id": breach_id},
            rows=1,
        )
        st.session_state[key] = (documents.to_pdf(document), documents.to_html(document))
    prepared = st.session_state.get(key)
    if prepared:
        left, right = st.columns(2)
        stem = f"breach-{breach_id}-{name}-{as_of.isoformat()}"
        left.download_button("Download PDF", prepared[0], file_name=f"{stem}.pdf",
                             mime="application/pdf", key=f"{key}:pdf", on_click="ignore")  # fmt: skip
        right.download_button("Download HTML", prepared[1], file_name=f"{stem}.html",
                              mime="text/html", key=f"{key}:html", on_click="ignore")  # fmt: skip


documents_section()


# --- acting ---------------------------------------------------------------------------------


def after(result, what: str) -> None:
    actions.report(result, what=what, noun="breach")
    st.rerun()


def _key(name: str) -> str:
    """A form widget's key: new for every version, so a changed breach shows its values."""
    return f"{EDIT}breach:{breach_id}:{version}:{name}"


def _oslo_input(label: str, name: str, default: datetime | None, container=st):
    """A date and a time input (Oslo) for a UTC timestamp; returns naive UTC or None."""
    local = None
    if default is not None:
        local = clock.utc_naive(default).replace(tzinfo=UTC).astimezone(clock.OSLO)
    left, right = container.columns(2)
    day = left.date_input(f"{label}: date (Oslo)", value=local.date() if local else None,
                          key=_key(f"{name}_on"), format="YYYY-MM-DD")  # fmt: skip
    at = right.time_input(f"{label}: time (Oslo)", value=time(local.hour, local.minute) if local else None,
                          key=_key(f"{name}_time"), step=60)  # fmt: skip
    if not isinstance(day, date):
        return None
    at = at or time(0, 0)
    return breaches.oslo_to_utc(day, at.hour, at.minute)


def _opened_at() -> datetime:
    """When this version of the breach was first shown (UTC): the default of the "notified"
    and "told" times, fixed so the inputs keep their identity across reruns."""
    return st.session_state.setdefault(f"breach_opened:{breach_id}:{version}", clock.utc_now())


def facts_form() -> None:
    choices = ui.fetch(cached.breach_register_choices)
    with st.expander("Fill in or correct the facts", expanded=b["status"] == "open"):
        with st.form(_key("facts")):
            title = st.text_input("Title", value=b["title"], key=_key("title"))
            aware_at = _oslo_input("Became aware", "aware", b["aware_at"])
            occurred_from = _oslo_input("Began", "from", b["occurred_from"])
            occurred_to = _oslo_input("Ended", "to", b["occurred_to"])
            left, right = st.columns(2)
            cause = left.selectbox("Main cause", breaches.CAUSES, key=_key("cause"),
                                   index=_index(breaches.CAUSES, b["cause"]), placeholder="Choose")  # fmt: skip
            category = right.multiselect("Kind of breach", breaches.CATEGORIES,
                                         default=b["category"], key=_key("category"))  # fmt: skip
            description = st.text_area(
                "What happened", value=b["description"] or "", key=_key("description")
            )
            known = sorted(
                set(choices["data_categories"]) | set(b["data_categories"]), key=str.lower
            )
            data_categories = st.multiselect("Types of personal data (from the register)", known,
                                             default=b["data_categories"], key=_key("data_categories"),
                                             accept_new_options=True)  # fmt: skip
            relations = st.multiselect("Relation to those affected", breaches.RELATIONS,
                                       default=b["subject_relations"], key=_key("relations"))  # fmt: skip
            left, middle, right, last = st.columns(4)
            subjects = left.number_input("Data subjects", min_value=0, step=1, value=b["subjects_count"],
                                         key=_key("subjects"))  # fmt: skip
            subjects_est = middle.checkbox("estimate", value=bool(b["subjects_estimated"]),
                                           key=_key("subjects_est"))  # fmt: skip
            records = right.number_input("Records", min_value=0, step=1, value=b["records_count"],
                                         key=_key("records"))  # fmt: skip
            records_est = last.checkbox(
                "estimate ", value=bool(b["records_estimated"]), key=_key("records_est")
            )
            activities = st.multiselect("Processing activities affected", list(choices["activities"]),
                                        default=b["activity_ids"], format_func=choices["activities"].get,
                                        key=_key("activities"))  # fmt: skip
            recipients = st.multiselect("Recipients and processors affected", list(choices["recipients"]),
                                        default=b["recipient_ids"], format_func=choices["recipients"].get,
                                        key=_key("recipients"))  # fmt: skip
            texts = {
                name: st.text_area(label, value=b[name] or "", key=_key(name))
                for name, label in TEXT_FACTS.items()
            }
            follows = st.date_input("The missing information follows on (Oslo)", value=b["phase_follows_on"],
                                    key=_key("follows"), format="YYYY-MM-DD")  # fmt: skip
            submitted = st.form_submit_button("Save facts")
    if submitted:
        result = actions.run(breaches.update_breach, cached.databases(), breach_id, actor=ui.actor(), title=title, aware_at=aware_at,
            occurred_from=occurred_from, occurred_to=occurred_to, cause=cause, category=category,
            description=description, data_categories=data_categories, subject_relations=relations,
            subjects_count=subjects, subjects_estimated=subjects_est, records_count=records,
            records_estimated=records_est, activity_ids=activities, recipient_ids=recipients,
            phase_follows_on=follows, **texts,
        )  # fmt: skip
        after(result, "Facts saved")


def _index(options, value):
    return list(options).index(value) if value in options else None


def affected_form() -> None:
    with st.expander("List people affected by e-mail (kept as keyed hashes only, R18)"):
        with st.form(_key("affected")):
            emails = st.text_area("E-mail addresses, one per line", key=_key("emails"))
            submitted = st.form_submit_button("Add to the list")
    if submitted:
        lines = [line for line in (emails or "").splitlines() if line.strip()]
        after(actions.run(breaches.add_affected_emails, cached.databases(), breach_id, lines, actor=ui.actor()),
              "People listed")  # fmt: skip


def assess_form() -> None:
    st.markdown("**Risk assessment** (art. 33(1), 34(1))")
    with st.form(_key("assess")):
        risk = st.radio("Risk to the rights and freedoms of those affected", list(RISK_LABELS),
                        format_func=RISK_LABELS.get, index=_index(list(RISK_LABELS), b["risk"]),
                        key=_key("risk"), horizontal=True)  # fmt: skip
        reasoning = st.text_area(
            "Reasoning (required)", value=b["risk_reasoning"] or "", key=_key("risk_reasoning")
        )
        submitted = st.form_submit_button("Record assessment")
    if submitted:
        after(actions.run(breaches.assess, cached.databases(), breach_id, risk=risk, reasoning=reasoning,
                              actor=ui.actor()), "Assessment")  # fmt: skip


def notification_form() -> None:
    st.markdown("**Notify Datatilsynet?** (art. 33)")
    with st.form(_key("notify")):
        notify = st.radio("Decision", ["yes", "no"], key=_key("notify_choice"), horizontal=True,
                          format_func={"yes": "Notify", "no": "Do not notify (no risk)"}.get)  # fmt: skip
        reasoning = st.text_area("Reasoning (required either way)", key=_key("notify_reasoning"))
        sent = st.checkbox("Datatilsynet has been notified", key=_key("sent"))
        notified_at = _oslo_input("Notified", "notified", _opened_at())
        reference = st.text_input("Datatilsynet's reference", key=_key("reference"))
        delay = st.text_area(
            "Reasons for the delay (when notified after the 72 hours)", key=_key("delay")
        )
        submitted = st.form_submit_button("Record decision")
    if submitted:
        result = actions.run(breaches.decide_notification, cached.databases(), breach_id, notify=notify == "yes", reasoning=reasoning,
            actor=ui.actor(), notified_at=notified_at if sent and notify == "yes" else None,
            reference=reference, delay_reasons=delay,
        )  # fmt: skip
        after(result, "Notification decision")


def subjects_form() -> None:
    st.markdown("**Tell the data subjects?** (art. 34)")
    with st.form(_key("subjects_form")):
        notify = st.radio("Decision", ["yes", "no"], key=_key("subjects_choice"), horizontal=True,
                          format_func={"yes": "Tell them", "no": "Do not tell them"}.get)  # fmt: skip
        reasoning = st.text_area("Reasoning (required either way)", key=_key("subjects_reasoning"))
        exemption = st.selectbox("Art. 34(3) exemption (high risk, not told)", list(breaches.EXEMPTIONS),
                                 format_func=breaches.EXEMPTIONS.get, index=None, key=_key("exemption"),
                                 placeholder="None")  # fmt: skip
        how = st.text_input("How they were told (letter, e-mail, public notice)", key=_key("how"))
        told = st.checkbox("They have been told", key=_key("told"))
        told_at = _oslo_input("Told", "told", _opened_at())
        submitted = st.form_submit_button("Record decision")
    if submitted:
        result = actions.run(breaches.decide_subject_notice, cached.databases(), breach_id, notify=notify == "yes", reasoning=reasoning,
            actor=ui.actor(), how=how, exemption=exemption,
            notified_at=told_at if told and notify == "yes" else None,
        )  # fmt: skip
        after(result, "Decision on telling the data subjects")


def close_form() -> None:
    st.markdown("**Close the breach** (its record stays in the register)")
    with st.form(_key("close")):
        note = st.text_area("Closing note", key=_key("note"))
        sure = st.checkbox("The decisions are taken and recorded; close it", key=_key("sure"))
        submitted = st.form_submit_button("Close breach")
    if submitted:
        if not sure:
            st.error("Tick the confirmation to close the breach; nothing was changed.", icon="🛑")
            return
        after(
            actions.run(breaches.close, cached.databases(), breach_id, actor=ui.actor(), note=note),
            "Close",
        )


if b["status"] == "closed":
    st.caption("The breach is closed; its record stays in the register (art. 33(5)).")
elif actions.actions_header("Act on the breach"):
    facts_form()
    affected_form()
    if b["status"] in ("open", "assessed") and b["notify_decision"] is None:
        assess_form()
    if b["risk"] is not None and b["status"] == "assessed":
        notification_form()
    if b["risk"] is not None:
        subjects_form()
    if b["status"] in ("notified", "not_notified"):
        close_form()
