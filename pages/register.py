"""Register: findings, the record of processing activities, recipients and processors, and
cookies (GDPR art. 28, 30, 44–49; ekomloven §3-15; RULES.md R24, R30–R32). Needs the ledger."""

from __future__ import annotations

import streamlit as st

from data_access import cached
from data_access.register import SEVERITIES
from pages import _ui as ui

PAGE = "register"
SEVERITY_ICONS = {"high": "🔴", "medium": "🟠", "low": "🟡"}

ui.page_header(
    "Register",
    stores=("ledger",),
    caption="What the privacy policy promises, checked against the register (RULES.md R32).",
)
as_of = ui.as_of()

with st.form("register_filters"):
    severities = st.multiselect(
        "Findings of severity", list(SEVERITIES), default=list(SEVERITIES), key="register_severity"
    )
    st.form_submit_button("Apply")

findings = ui.fetch(cached.findings, as_of)
activities = ui.fetch(cached.processing_activities)
recipients = ui.fetch(cached.recipients)
cookies = ui.fetch(cached.cookies)

if activities.empty and recipients.empty and cookies.empty:
    ui.empty_state("The register is empty: no processing activities, recipients or cookies.")
    st.stop()

st.subheader("Findings")
counts = findings["severity"].value_counts()
for column, severity in zip(st.columns(len(SEVERITIES)), SEVERITIES, strict=True):
    column.metric(f"{SEVERITY_ICONS[severity]} {severity}", int(counts.get(severity, 0)))
shown = findings[findings["severity"].isin(severities)]
if shown.empty:
    ui.empty_state("No findings of the chosen severity.")
else:
    ui.table(
        shown,
        page=PAGE,
        name="findings",
        filters={"severity": sorted(severities)},
        personal=False,
    )

st.subheader("Processing activities (art. 30)")
ui.table(activities, page=PAGE, name="processing-activities", filters={}, personal=False)

st.subheader("Recipients and processors")
ui.table(recipients, page=PAGE, name="recipients", filters={}, personal=False)

st.subheader("Cookies")
ui.table(cookies, page=PAGE, name="cookies", filters={}, personal=False)
