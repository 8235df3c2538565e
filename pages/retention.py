"""Retention: customer-service logs and invoices past their retention period (RULES.md R15,
R16; bokføringsloven §13). Contacts need the support database, invoices the users database;
both need the ledger for legal holds, and each part works without the other."""

from __future__ import annotations

import streamlit as st

from data_access import cached
from data_access.tables import CHANNELS
from pages import _ui as ui

PAGE = "retention"
ALL = "All"
CONTACT_COLUMNS = [
    "contact_id",
    "channel",
    "started_at",
    "started_on",
    "retained_until",
    "account_id",
    "on_hold",
    "hold_ids",
]
INVOICE_COLUMNS = [
    "invoice_id",
    "invoice_number",
    "issued_on",
    "retained_until",
    "account_id",
    "on_hold",
    "hold_ids",
]
COLUMN_CONFIG = {"retained_until": "Retained until", "on_hold": "On hold?", "hold_ids": "Holds"}

ui.page_header(
    "Retention",
    stores=("ledger",),
    caption="Listed from the day after their retention ends. Items under a legal hold are "
    "shown but stay until the hold is released (RULES.md R17). Dates are Europe/Oslo.",
)
as_of = ui.as_of()
policy = ui.policy()

with st.form("retention_filters"):
    channel = st.selectbox("Support channel", [ALL, *CHANNELS], key="retention_channel")
    st.form_submit_button("Apply")
channel = None if channel == ALL else channel


def _held(frame) -> int:
    return int(frame["on_hold"].sum()) if not frame.empty else 0


st.subheader(f"Customer-service logs (kept {policy.support_log_months} months, R16)")
if ui.stores_available(("support",)):
    contacts = ui.fetch(cached.support_contacts_past_retention, as_of, channel)
    left, right = st.columns(2)
    left.metric("Support contacts past retention", contacts.attrs.get("total", len(contacts)))
    right.metric("Of those shown, on hold", _held(contacts))
    if contacts.empty:
        ui.empty_state("No customer-service log is past its retention.")
    else:
        ui.table(
            contacts,
            page=PAGE,
            name="support-contacts",
            filters={"channel": channel},
            columns=CONTACT_COLUMNS,
            column_config=COLUMN_CONFIG,
        )

st.subheader(
    f"Invoices (kept {policy.invoice_retention_years} years after the financial year, R15)"
)
if ui.stores_available(("users",)):
    invoices = ui.fetch(cached.invoices_past_retention, as_of)
    left, right = st.columns(2)
    left.metric("Invoices past retention", invoices.attrs.get("total", len(invoices)))
    right.metric("Of those shown, on hold", _held(invoices))
    if invoices.empty:
        ui.empty_state("No invoice with personal data is past its retention.")
    else:
        ui.table(
            invoices,
            page=PAGE,
            name="invoices",
            filters={},
            columns=INVOICE_COLUMNS,
            column_config=COLUMN_CONFIG,
        )
