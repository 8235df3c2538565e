"""Accounts nearing deletion: inactive accounts, their notice and deletion dates and stage
(privacy policy: "deleted (following notification) after being inactive for 12 months";
RULES.md R13). Needs the users database and the ledger."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from data_access import cached
from data_access.retention import STAGES
from pages import _ui as ui

PAGE = "accounts-nearing-deletion"
STAGE_LABELS = {
    "upcoming": "Upcoming",
    "notice_due": "Notice due",
    "notified": "Notified",
    "ready": "Ready to delete",
    "on_hold": "On hold",
}
COLUMNS = [
    "account_id",
    "stage",
    "email",
    "full_name",
    "account_type",
    "last_activity_on",
    "last_activity_by",
    "eligible_on",
    "notice_sent_on",
    "notice_voided",
    "deletable_on",
    "on_hold",
    "hold_ids",
]
COLUMN_CONFIG = {
    "last_activity_on": "Last activity on",
    "last_activity_by": "Last activity by",
    "eligible_on": "Eligible on",
    "notice_sent_on": "Notice sent on",
    "notice_voided": "Notice voided?",
    "deletable_on": "Deletable on",
    "on_hold": "On hold?",
    "hold_ids": "Holds",
}
ROW_COLOURS = {
    "ready": "background-color: rgba(214, 69, 69, 0.18)",
    "notice_due": "background-color: rgba(240, 162, 2, 0.18)",
    "on_hold": "background-color: rgba(107, 79, 187, 0.15)",
}


def _stage_row(row):
    """Colour rows by the action they need: ready (red), notice due (amber), on hold."""
    return [ROW_COLOURS.get(row.get("stage"), "")] * len(row)


policy = ui.policy()
ui.page_header(
    "Accounts nearing deletion",
    stores=("users", "ledger"),
    caption="Last activity is the latest of the account's and its members' activity and its "
    f"creation. An account is deletable no earlier than {policy.account_inactivity_months} "
    f"months after it and {policy.notice_days} days after a valid notice (RULES.md R13). "
    "Dates are Europe/Oslo.",
)
as_of = ui.as_of()

with st.form("accounts_filters"):
    left, right = st.columns([1, 3])
    within_days = left.number_input(
        "Deletion within (days)",
        min_value=0,
        max_value=366,
        value=30,
        step=1,
        key="accounts_within_days",
    )
    stages = right.multiselect(
        "Stages",
        list(STAGES),
        default=list(STAGES),
        key="accounts_stages",
        format_func=STAGE_LABELS.get,
    )
    st.form_submit_button("Apply")

within_days = int(within_days)
chosen = tuple(s for s in STAGES if s in stages)
if not chosen:
    st.warning("Choose at least one stage.")
    st.stop()
counts = ui.fetch(cached.stage_counts, as_of, within_days)
accounts = ui.fetch(cached.accounts_nearing_deletion, as_of, within_days, chosen)

for column, stage in zip(st.columns(len(STAGES)), STAGES, strict=True):
    column.metric(STAGE_LABELS[stage], counts.get(stage, 0))

if accounts.empty:
    ui.empty_state(
        "No account in the chosen stages is due for deletion by "
        f"{(as_of + timedelta(days=within_days)).isoformat()}."
    )
    st.stop()

ui.table(
    accounts,
    page=PAGE,
    name="accounts",
    filters={"within_days": within_days, "stages": list(chosen)},
    columns=COLUMNS,
    column_config=COLUMN_CONFIG,
    row_style=_stage_row,
)
