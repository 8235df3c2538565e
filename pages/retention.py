"""Retention: customer-service logs and invoices past their retention period (RULES.md R15,
R16; bokføringsloven §13), and for the DPO the actions: purge logs, anonymise invoices
(each after a confirmation, as a resumable job with a progress bar), resume a job that did
not finish. Contacts need the support database, invoices the users database; both need the
ledger for legal holds, and each part works without the other."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from data_access import cached, retention
from data_access.tables import CHANNELS
from pages import _actions
from pages import _gate as gate
from pages import _jobs as jobs
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "retention"
ALL = "All"
CONTACTS_KEY = "retention_contacts"
INVOICES_KEY = "retention_invoices"
PURGE = "purge_contacts"
ANONYMISE = "anonymise_invoices"
# Shown in the order the data functions return them.
CONTACT_COLUMNS = retention.CONTACT_COLUMNS
INVOICE_COLUMNS = retention.INVOICE_COLUMNS
# Headers the common rule (ui.column_label) would not give.
COLUMN_CONFIG = {"on_hold": "On hold?"}

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


def listing(frame: pd.DataFrame, *, key: str, id_column: str, name: str, filters, columns):
    """The table, selectable by id for a DPO (with its export); returns the selected ids."""
    if not _actions.can_act():
        ui.table(
            frame,
            page=PAGE,
            name=name,
            filters=filters,
            columns=columns,
            column_config=COLUMN_CONFIG,
        )
        return []
    reader = cached.full_reader(frame)
    selected = _actions.selectable_table(
        frame,
        key=key,
        id_column=id_column,
        columns=columns,
        column_config=COLUMN_CONFIG,
        full_export=reader is not None,
    )
    ui.export_table(
        ui.display_frame(frame, columns),
        page=PAGE,
        name=name,
        filters=filters,
        full=(lambda limit: ui.display_frame(reader(limit), columns)) if reader else None,
        column_config=COLUMN_CONFIG,
    )
    return selected


def selection_actions(
    frame: pd.DataFrame, selected: list[int], *, key: str, id_column: str, name: str, verb: str
) -> None:
    """ "<verb> selected" and "<verb> all shown" buttons; each opens the confirmation."""
    left, right = st.columns(2)
    chosen = left.button(
        f"{verb} selected ({len(selected):,})", key=f"{name}_selected", disabled=not selected
    )
    every = right.button(f"{verb} all shown ({len(frame):,})", key=f"{name}_all")
    if chosen and not _actions.refuse_if_stale(key, selected, frame, id_column):
        jobs.open_dialog(name, selected)
    if every:
        jobs.open_dialog(name, [int(i) for i in frame[id_column]])


def held_among(frame: pd.DataFrame, ids: list[int], id_column: str) -> int:
    """How many of `ids` the listing shows as under a legal hold."""
    wanted = set(ids)
    return int(frame.loc[frame[id_column].isin(wanted), "on_hold"].sum())


# --- customer-service logs (R16) -----------------------------------------------------------


@st.dialog("Purge customer-service logs", width="large", on_dismiss=jobs.dismisser(PURGE))
def confirm_purge(contact_ids: list[int]) -> None:
    held = held_among(contacts, contact_ids, "contact_id")
    st.markdown(
        f"**{len(contact_ids):,} customer-service log(s)** (chat, e-mail, phone) past their "
        f"{policy.support_log_months}-month retention on {as_of.isoformat()} will be deleted "
        "permanently from the support database, with everything they hold (name, e-mail, "
        "phone, location, summary). This cannot be undone."
    )
    _confirm_and_run(
        PURGE,
        contact_ids,
        held_note=f"{held} of them are under a legal hold: they are kept and the attempt is "
        "recorded (R17)."
        if held
        else None,
        label=f"Purge {len(contact_ids):,} log(s)",
        noun="contact",
        action=retention.purge_support_contacts,
        running="Purging…",
        what="Purge",
        table_key=CONTACTS_KEY,
    )


def _confirm_and_run(name, ids, *, held_note, label, noun, action, running, what, table_key):
    """The shared end of a confirmation dialog: the hold warning, the typed confirmation,
    the job with a progress bar and one idempotency key per click, then the result."""
    if held_note:
        st.warning(held_note, icon="⚖️")
    if not jobs.confirmed(name, len(ids), label=label, noun=noun):
        return
    result = _actions.run(
        action,
        cached.databases(),
        ids,
        actor=ui.actor(),
        as_of=as_of,
        idempotency_key=_actions.click_key(name),
        progress=jobs.progress_bar(running),
    )
    jobs.finish(name, result, what=what, noun=noun, table_key=table_key)


# --- invoices (R15) ------------------------------------------------------------------------


@st.dialog("Anonymise invoices", width="large", on_dismiss=jobs.dismisser(ANONYMISE))
def confirm_anonymise(invoice_ids: list[int]) -> None:
    held = held_among(invoices, invoice_ids, "invoice_id")
    st.markdown(
        f"**{len(invoice_ids):,} invoice(s)** past bookkeeping retention on "
        f"{as_of.isoformat()} ({policy.invoice_retention_years} years after the end of their "
        "financial year, bokføringsloven §13) lose their customer name and contact person. "
        "Number, amount, currency and dates are kept. This cannot be undone."
    )
    _confirm_and_run(
        ANONYMISE,
        invoice_ids,
        held_note=f"{held} of them belong to an account under a legal hold: they are kept as "
        "they are and the attempt is recorded (R17)."
        if held
        else None,
        label=f"Anonymise {len(invoice_ids):,} invoice(s)",
        noun="invoice",
        action=retention.anonymise_invoices,
        running="Anonymising…",
        what="Anonymise",
        table_key=INVOICES_KEY,
    )


def resume(job_id: int, progress: jobs.Progress):
    return _actions.run(
        retention.resume_job, cached.databases(), job_id, actor=ui.actor(), progress=progress
    )


contacts = invoices = pd.DataFrame(columns=["on_hold"])

st.subheader(f"Customer-service logs (kept {policy.support_log_months} months, R16)")
if ui.stores_available(("support",)) and not ui.waits_for_indexes(
    ("R16",), "retention_contacts_index"
):
    contacts = ui.fetch(cached.support_contacts_past_retention, as_of, channel)
    left, right = st.columns(2)
    left.metric("Support contacts past retention", contacts.attrs.get("total", len(contacts)))
    right.metric("Of those shown, on hold", _held(contacts))
    if contacts.empty:
        ui.empty_state("No customer-service log is past its retention.")
    else:
        chosen_contacts = listing(
            contacts,
            key=CONTACTS_KEY,
            id_column="contact_id",
            name="support-contacts",
            filters={"channel": channel},
            columns=CONTACT_COLUMNS,
        )
        if _actions.actions_header("Purge"):
            selection_actions(
                contacts,
                chosen_contacts,
                key=CONTACTS_KEY,
                id_column="contact_id",
                name=PURGE,
                verb="Purge",
            )
    jobs.show_results(PURGE, id_label="contact_id")
    jobs.unfinished_jobs(
        "support_purge",
        title="support-log purge(s)",
        resume=resume,
        noun="contact",
        results_as=PURGE,
    )

st.subheader(
    f"Invoices (kept {policy.invoice_retention_years} years after the financial year, R15)"
)
if ui.stores_available(("users",)) and not ui.waits_for_indexes(
    ("R15",), "retention_invoices_index"
):
    invoices = ui.fetch(cached.invoices_past_retention, as_of)
    left, right = st.columns(2)
    left.metric("Invoices past retention", invoices.attrs.get("total", len(invoices)))
    right.metric("Of those shown, on hold", _held(invoices))
    if invoices.empty:
        ui.empty_state("No invoice with personal data is past its retention.")
    else:
        chosen_invoices = listing(
            invoices,
            key=INVOICES_KEY,
            id_column="invoice_id",
            name="invoices",
            filters={},
            columns=INVOICE_COLUMNS,
        )
        if _actions.actions_header("Anonymise"):
            selection_actions(
                invoices,
                chosen_invoices,
                key=INVOICES_KEY,
                id_column="invoice_id",
                name=ANONYMISE,
                verb="Anonymise",
            )
    jobs.show_results(ANONYMISE, id_label="invoice_id")
    jobs.unfinished_jobs(
        "invoice_anonymisation",
        title="invoice anonymisation(s)",
        resume=resume,
        noun="invoice",
        results_as=ANONYMISE,
    )

if jobs.dialog_ids(PURGE) is not None:
    confirm_purge(jobs.dialog_ids(PURGE))
elif jobs.dialog_ids(ANONYMISE) is not None:
    confirm_anonymise(jobs.dialog_ids(ANONYMISE))
