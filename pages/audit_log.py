"""Audit log: every action and export, newest first, and whether the hash chain is intact
(RULES.md R18, R40). Needs the ledger only."""

from __future__ import annotations

import streamlit as st

from data_access import cached
from pages import _gate as gate
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "audit-log"

ui.page_header(
    "Audit log",
    stores=("ledger",),
    caption="Entries name people only by a keyed hash of their e-mail. Times are UTC.",
)

with st.form("audit_filters"):
    action = st.text_input(
        "Action", key="audit_action", placeholder="all actions, or e.g. export"
    ).strip()
    st.form_submit_button("Apply")

entries = ui.fetch(cached.audit_entries, action=action or None)
intact, broken_at = ui.fetch(cached.chain_status)

if intact:
    st.success("The audit chain is intact: every entry matches its content and predecessor.")
else:
    st.error(
        f"The audit chain is broken at entry {broken_at}: that entry or one before it was "
        "changed or removed after it was written."
    )

if entries.empty:
    ui.empty_state("No audit entries" + (f" for the action '{action}'." if action else " yet."))
    st.stop()

st.metric("Entries shown", f"{len(entries):,}")
ui.table(
    entries,
    page=PAGE,
    name="entries",
    filters={"action": action or None},
    columns=[
        "id",
        "occurred_at",
        "actor",
        "action",
        "rule",
        "store",
        "subject_ref",
        "target",
        "counts",
        "details",
    ],
)
