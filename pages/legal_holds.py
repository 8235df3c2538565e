"""Legal holds: the active holds, those past their review date flagged (GDPR art. 17(3)(e);
RULES.md R17). Read-only for now. Needs the ledger."""

from __future__ import annotations

import streamlit as st

from data_access import cached
from pages import _ui as ui

PAGE = "legal-holds"
COLUMNS = [
    "id",
    "past_review",
    "scope",
    "account_id",
    "contact_id",
    "email",
    "reason",
    "case_ref",
    "owner",
    "placed_on",
    "review_on",
]


def _past_review_row(row):
    """Holds past their review date in amber, on screen only."""
    colour = "background-color: rgba(240, 162, 2, 0.22)" if row.get("past_review") else ""
    return [colour] * len(row)


ui.page_header(
    "Legal holds",
    stores=("ledger",),
    caption="A hold blocks every deletion, purge, anonymisation and erasure in its scope "
    "until it is released (RULES.md R17). Dates are Europe/Oslo.",
)
as_of = ui.as_of()

holds = ui.fetch(cached.active_holds, as_of)

if holds.empty:
    ui.empty_state("No active legal holds.")
    st.stop()

past_review = int(holds["past_review"].sum())
left, right = st.columns(2)
left.metric("Active holds", len(holds))
right.metric("Past review date", past_review)
if past_review:
    st.warning(
        f"{past_review} hold(s) are past their review date: confirm they are still needed "
        "or release them.",
        icon="⚖️",
    )
ui.table(
    holds,
    page=PAGE,
    name="active-holds",
    filters={},
    columns=COLUMNS,
    column_config={"past_review": "Past review?", "review_on": "Review on"},
    row_style=_past_review_row,
)
