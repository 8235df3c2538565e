"""Data-subject requests: the open queue with legal deadlines (GDPR art. 12; RULES.md R1–R8).

Needs the support database (intake) and the ledger (case state)."""

from __future__ import annotations

import streamlit as st

from data_access import cached
from data_access.requests import OPEN_STATUSES
from data_access.rules import add_months
from data_access.tables import REQUEST_TYPES
from pages import _charts as charts
from pages import _gate as gate
from pages import _numbers as numbers
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "data-subject-requests"
ALL = "All"
# Due-window choices in days; None = any deadline.
DUE_WINDOWS = {"Any deadline": None, "Overdue only": -1, "7 days": 7, "14 days": 14, "30 days": 30}
QUEUE_COLUMNS = [
    "request_id",
    "badge",
    "request_type",
    "subject_email",
    "subject_name",
    "channel",
    "received_on",
    "status",
    "due_on",
    "days_left",
    "overdue",
    "extended",
    "duplicate",
]
AWAITING_COLUMNS = [
    "request_id",
    "request_type",
    "subject_email",
    "subject_name",
    "channel",
    "received_on",
    "due_on",
    "unpaused_due_on",
    "paused_days",
    "duplicate",
]
# Headers the common rule (ui.column_label) would not give.
COLUMN_CONFIG = {
    "unpaused_due_on": "Due without the pause (Oslo)",
    "paused_days": "Days paused",
    "duplicate": "Duplicate?",
}


def _overdue_row(row):
    """Overdue requests in red, on screen only."""
    colour = "background-color: rgba(214, 69, 69, 0.18)" if row.get("overdue") else ""
    return [colour] * len(row)


ui.page_header(
    "Data-subject requests",
    stores=("support", "ledger"),
    caption="Deadlines are Europe/Oslo dates: one month from receipt, rolled to the next "
    "Norwegian working day; an extension allows up to three (RULES.md R2–R5).",
)
as_of = ui.as_of()

with st.form("request_filters"):
    left, middle, right = st.columns(3)
    request_type = left.selectbox("Type", [ALL, *REQUEST_TYPES], key="requests_type")
    status = middle.selectbox("Status", [ALL, *OPEN_STATUSES], key="requests_status")
    window = right.selectbox("Due within", list(DUE_WINDOWS), key="requests_due_window")
    st.form_submit_button("Apply")

filters = {
    "request_type": None if request_type == ALL else request_type,
    "status": None if status == ALL else status,
    "due_within_days": DUE_WINDOWS[window],
}
if ui.waits_for_indexes(("R1", "R2", "R8"), "requests_page"):
    st.stop()
counts = ui.fetch(cached.request_counts, as_of)
queue = ui.fetch(cached.open_requests, as_of, **filters)

columns = st.columns(4)
columns[0].metric("Open", counts["open"])
columns[1].metric("Awaiting identity", counts["awaiting_identity"])
columns[2].metric("Due this week", counts["due_this_week"])
columns[3].metric("Overdue", counts["overdue"])


def answering_metrics() -> None:
    """On-time rate and days to close over the twelve months up to as_of, open by type."""
    start = add_months(as_of, -11).replace(day=1)
    answered = ui.fetch(cached.closure_metrics, start, as_of)
    by_type = ui.fetch(cached.open_by_type, as_of)
    rate = answered.attrs.get("on_time_rate")
    median = answered.attrs.get("median_days_to_close")
    left, middle, right = st.columns(3)
    left.metric("Answered (12 months)", answered.attrs.get("answered", 0))
    has_answers = bool(answered.attrs.get("answered"))
    middle.metric(
        "On-time rate (12 months)", numbers.percent(rate) if has_answers else "no answers"
    )
    right.metric("Median days to close", f"{median:.0f}" if has_answers else "no answers")
    st.caption(
        "Answered = completed or refused. On time = closed by the deadline (with its extension "
        "and identity pause); a refusal by the base deadline (R6)."
    )
    first, second = st.columns(2)
    first.plotly_chart(charts.requests_answered(answered), key="requests_answered_chart")
    second.plotly_chart(charts.days_to_close(answered), key="requests_days_chart")
    if not by_type.empty:
        st.plotly_chart(charts.open_requests_by_type(by_type), key="requests_by_type_chart")


with st.expander("How requests are answered", expanded=False):
    answering_metrics()

if queue.empty:
    ui.empty_state("No open requests match these filters.")
    st.stop()

queue = queue.assign(badge=queue["badge"].map(ui.badge))
if queue.attrs.get("truncated"):
    ui.row_cap_caption(queue)
duplicates = int(queue["duplicate"].sum())
if duplicates:
    st.warning(
        f"{duplicates} request(s) repeat a request of the same type from the same e-mail "
        "received shortly before: check whether they are the same request.",
        icon="🔁",
    )


# The row cap applies to the whole queue (caption above), not to each part.
awaiting_mask = queue["status"] == "awaiting_identity"
active, awaiting = queue[~awaiting_mask], queue[awaiting_mask]
active.attrs, awaiting.attrs = {}, {}

st.subheader("Queue")
if active.empty:
    ui.empty_state("No requests in the queue with these filters.")
else:
    ui.table(
        active,
        page=PAGE,
        name="queue",
        filters=filters,
        columns=QUEUE_COLUMNS,
        column_config=COLUMN_CONFIG,
        row_style=_overdue_row,
    )

st.subheader("Awaiting identity")
st.caption(
    "The deadline is paused while the data subject's identity is outstanding (R5): these "
    "are never overdue. The deadline without the pause is shown beside it."
)
if awaiting.empty:
    ui.empty_state("No request is waiting for the data subject's identity.")
else:
    ui.table(
        awaiting,
        page=PAGE,
        name="awaiting-identity",
        filters=filters,
        columns=AWAITING_COLUMNS,
        column_config=COLUMN_CONFIG,
    )


def open_request_form(shown) -> None:
    """Choose a request of the queue and go to its page (its steps and actions)."""
    labels = {
        int(row.request_id): f"#{row.request_id} · {row.request_type} · received "
        f"{row.received_on.isoformat()} · {row.status}" + (" · overdue" if row.overdue else "")
        for row in shown.itertuples()
    }
    if st.session_state.get("requests_open_id") not in labels:
        # The remembered choice left the queue (closed, or filtered out).
        st.session_state.pop("requests_open_id", None)
    with st.form("open_request"):
        chosen = st.selectbox(
            "Request", list(labels), format_func=labels.get, key="requests_open_id"
        )
        go = st.form_submit_button("Open the request")
    if go and chosen is not None:
        st.session_state["request_id"] = int(chosen)
        st.switch_page(ui.PAGE_FILES["request"])


st.subheader("Open a request")
st.caption("Its timeline, deadline and the steps that fit its state are on the request's page.")
open_request_form(queue)
