"""Retention schedule ("sletteplan"): every data category of the privacy policy with its
rule and legal basis, and the evidence that retention runs: the last enforcement (when, by
whom or by the daily run, how many rows), what is overdue now, what a legal hold keeps and
the next due date (GDPR art. 5(1)(e), 5(2); RULES.md R12-R18). Needs the ledger, users and
support databases."""

from __future__ import annotations

import streamlit as st

from data_access import cached
from data_access.daily.schedule import SCHEDULE_COLUMNS
from pages import _gate as gate
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "retention-schedule"
# Every column of the schedule but the job id and the page key (used for the links).
COLUMNS = [c for c in SCHEDULE_COLUMNS if c not in ("last_job_id", "page")]
COLUMN_CONFIG = {
    "last_enforced_at": "Last enforced (UTC)",
    "last_enforced_by": "By",
    "last_rows": "Rows deleted/anonymised",
    "overdue": "Overdue now",
    "on_hold": "Kept under hold",
    "next_due_on": "Next due (Oslo)",
}

ui.page_header(
    "Retention schedule",
    stores=("ledger", "users", "support"),
    caption="What the policy keeps, for how long and why, and the proof that it is deleted "
    "on time: the last job that removed each category's rows, from the ledger.",
)
as_of = ui.as_of()
plan = ui.fetch(cached.retention_schedule, as_of)

never = plan["last_enforced_at"].isna()
overdue = int(plan["overdue"].fillna(0).sum())
left, middle, right = st.columns(3)
left.metric("Categories", len(plan))
middle.metric("Never enforced", int(never.sum()))
right.metric("Records overdue", overdue)
if overdue:
    st.warning(
        f"{overdue} record(s) are past their retention on {as_of.isoformat()}: settle them "
        "on the pages linked below, or let the daily run's radar remind you.",
        icon="⏳",
    )
ui.table(
    plan,
    page=PAGE,
    name="schedule",
    filters={},
    columns=COLUMNS,
    personal=False,
    column_config=COLUMN_CONFIG,
)
st.caption(
    "“Overdue now” and “Next due” apply to categories with a dated rule of their own "
    "(accounts, customer-service logs, invoices); usage statistics go with their account, "
    "the others follow a withdrawal or an erasure request. “Overdue now” leaves out what a "
    "legal hold keeps."
)
for row in plan[plan["overdue"].fillna(0) > 0].drop_duplicates("page").itertuples():
    st.page_link(ui.PAGE_FILES[row.page], label=f"Settle: {row.category}", icon="🗂️")
