"""Breaches: the breach register (avviksprotokoll) with each breach's 72-hour clock, filters
and an export; for the DPO, a short form that logs a breach in under a minute, to be filled
in on the breach's own page (GDPR art. 33(5); RULES.md R50-R53). Needs the ledger."""

from __future__ import annotations

from datetime import datetime, time

import pandas as pd
import streamlit as st

from data_access import breaches, cached, clock
from pages import _actions as actions
from pages import _gate as gate
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "breaches"
STATUS_LABELS = {
    "open": "Open",
    "assessed": "Assessed",
    "notified": "Notified",
    "not_notified": "Not notified",
    "closed": "Closed",
}
CHANNEL_LABELS = {
    "employee": "An employee",
    "processor": "A processor's notice (art. 33(2))",
    "data_subject": "A data subject",
    "third_party": "Someone else outside the company",
    "monitoring": "Monitoring or an alert",
    "other": "Other",
}
COLUMNS = [
    "breach_id",
    "clock",
    "title",
    "status",
    "risk",
    "aware_at",
    "due_oslo",
    "hours_left",
    "notified_at",
    "notified_late",
    "subjects_count",
    "report_channel",
]
COLUMN_CONFIG = {
    "breach_id": "Breach",
    "clock": "Clock (R50)",
    "due_oslo": "Due (Europe/Oslo)",
    "hours_left": st.column_config.NumberColumn("Hours left", format="%.1f"),
    "notified_late": "Notified late?",
}


def clock_badge(row: pd.Series) -> str:
    """🔴 overdue or under 24 hours left, 🟠 under 48, 🟢 more; ⚪ once the clock stopped."""
    if not row["clock_running"]:
        return "⚪ stopped"
    if row["overdue"]:
        return "🔴 overdue"
    if row["hours_left"] < 24:
        return "🔴 under 24 h"
    return "🟠 under 48 h" if row["hours_left"] < 48 else "🟢 more than 48 h"


ui.page_header(
    "Breaches",
    stores=("ledger",),
    caption="Every personal-data breach is logged, also those not notified (art. 33(5)). "
    "Datatilsynet must be notified within 72 hours of becoming aware (art. 33(1)); times "
    "are shown in Europe/Oslo with the offset, stored in UTC.",
)
as_of = ui.as_of()

# Initialised through session state, not `default=`, so the value is kept across pages.
st.session_state.setdefault("breach_filter_status", [s for s in STATUS_LABELS if s != "closed"])
with st.form("breach_filters"):
    left, middle, right = st.columns(3)
    statuses = left.multiselect(
        "Status",
        list(STATUS_LABELS),
        format_func=STATUS_LABELS.get,
        key="breach_filter_status",
    )
    risks = middle.multiselect(
        "Risk", list(breaches.RISKS), key="breach_filter_risk", placeholder="Any risk"
    )
    running_only = right.checkbox("Only clocks still running", key="breach_filter_running")
    st.form_submit_button("Apply filters")

register = ui.fetch(cached.breach_list, as_of)
counts = ui.fetch(cached.breach_counts, as_of)
columns = st.columns(4)
columns[0].metric("Open breaches", counts["open"])
columns[1].metric("Clocks running", counts["clock_running"])
columns[2].metric("Clocks run out", counts["overdue"])
columns[3].metric("Notification undecided", counts["undecided"])
if counts["overdue"]:
    st.warning(
        f"{counts['overdue']} breach(es) are past their 72 hours without a notification or a "
        "decision not to notify: notify now and give the reasons for the delay (art. 33(1)).",
        icon="⏰",
    )

shown = register
if statuses:
    shown = shown[shown["status"].isin(statuses)]
if risks:
    shown = shown[shown["risk"].isin(risks)]
if running_only:
    shown = shown[shown["clock_running"].astype(bool)]
shown = shown.assign(clock=[clock_badge(r) for _, r in shown.iterrows()]).reset_index(drop=True)
filters = {"status": statuses, "risk": risks, "running_only": running_only}

st.subheader("The register")
if register.empty:
    ui.empty_state("No breach has been logged yet.")
elif shown.empty:
    ui.empty_state("No breach matches the filters.")
else:
    ui.table(
        shown,
        page=PAGE,
        name="breaches",
        filters=filters,
        columns=COLUMNS,
        column_config=COLUMN_CONFIG,
        full=lambda limit: shown,
    )
    chosen = st.selectbox(
        "Open a breach",
        list(shown["breach_id"]),
        format_func=lambda i: f"{i}: {shown.loc[shown['breach_id'] == i, 'title'].iloc[0]}",
        key="breach_open_choice",
        index=None,
        placeholder="Choose a breach to see its timeline, decisions and draft",
    )
    if chosen is not None and st.button("Open breach", key="breach_open"):
        st.session_state["breach_id"] = int(chosen)
        st.switch_page(ui.PAGE_FILES["breach"])


def log_form() -> None:
    """Log a breach: title, when the company became aware (Oslo time), who reported it and
    how, and a first description. The rest is filled in on the breach's page."""
    st.caption(
        "Log it now, fill in later: the clock starts when the company became aware, not "
        "when the log is complete (art. 33(1), 33(4))."
    )
    now = datetime.now(clock.OSLO)
    st.session_state.setdefault("breach_log_aware_on", now.date())
    st.session_state.setdefault("breach_log_aware_time", time(now.hour, now.minute))
    with st.form("breach_log", clear_on_submit=False):
        title = st.text_input("Title (what, in a few words)", key="breach_log_title")
        left, middle, right = st.columns(3)
        aware_on = left.date_input(
            "Became aware on (Oslo)", key="breach_log_aware_on", format="YYYY-MM-DD"
        )
        aware_time = middle.time_input("at (Oslo time)", key="breach_log_aware_time", step=60)
        channel = right.selectbox(
            "How it was reported",
            list(CHANNEL_LABELS),
            format_func=CHANNEL_LABELS.get,
            key="breach_log_channel",
        )
        reporter = st.text_input(
            "Who reported it (name, team or processor)", key="breach_log_reporter"
        )
        category = st.multiselect(
            "Kind of breach", list(breaches.CATEGORIES), key="breach_log_category"
        )
        description = st.text_area("What happened (first account)", key="breach_log_description")
        submitted = st.form_submit_button("Log breach")
    if not submitted:
        return
    try:
        aware_at = breaches.oslo_to_utc(aware_on, aware_time.hour, aware_time.minute)
        breach_id = actions.run(
            breaches.log_breach,
            cached.databases(),
            title=title,
            aware_at=aware_at,
            reported_by=reporter,
            report_channel=channel,
            category=category,
            description=description,
            actor=ui.actor(),
            as_of=as_of,
        )
    except (ValueError, AttributeError) as exc:
        st.error(f"{ui.escape_markdown(exc)} Nothing was logged.", icon="🛑")
        return
    for key in ("breach_log_title", "breach_log_reporter", "breach_log_description"):
        st.session_state.pop(key, None)
    st.session_state["breach_id"] = breach_id
    due = breaches.oslo_text(breaches.notification_due_at(aware_at))
    ui.flash(
        f"Breach {breach_id} logged; Datatilsynet must be notified by {due} unless it is "
        "unlikely to result in a risk. Open it to assess it and fill in the facts.",
        "success",
    )
    st.rerun()


if actions.actions_header("Log a breach"):
    log_form()
