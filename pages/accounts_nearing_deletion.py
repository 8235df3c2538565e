"""Accounts nearing deletion: inactive accounts, their notice and deletion dates and stage
(privacy policy: "deleted (following notification) after being inactive for 12 months";
RULES.md R13), and for the DPO the actions: send inactivity notices, approve deletions
(R14) after a confirmation with the deletion plan, resume a deletion that did not finish,
and deliver the outbox. Needs the users database and the ledger."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from data_access import cached, mailer, retention
from data_access.retention import STAGES
from data_access.retention.deletion import KIND as DELETION_KIND
from data_access.settings import smtp_password
from pages import _actions
from pages import _gate as gate
from pages import _jobs as jobs
from pages import _ui as ui
from pages import _words as words

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "accounts-nearing-deletion"
TABLE_KEY = "accounts_table"
MAX_WITHIN_DAYS = 366  # the widest "Deletion within" window, in days
SEND = "send_notices"
APPROVE = "approve_deletion"
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
# What the deletion dialog lists of each account it will delete.
DIALOG_COLUMNS = ["account_id", "email", "full_name", "stage", "deletable_on"]
# Headers the common rule (ui.column_label) would not give.
COLUMN_CONFIG = {"notice_voided": "Notice voided?", "on_hold": "On hold?"}
ROW_COLOURS = {
    "ready": "background-color: rgba(214, 69, 69, 0.18)",
    "notice_due": "background-color: rgba(240, 162, 2, 0.18)",
    "on_hold": "background-color: rgba(107, 79, 187, 0.15)",
}
OUTBOX_COLUMNS = [
    "id",
    "created_at",
    "kind",
    "to_email",
    "subject",
    "status",
    "attempts",
    "last_error",
    "sent_at",
]


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

# Defaults through session state, which keeps the filters across pages (ui.keep_widget_values).
st.session_state.setdefault("accounts_within_days", 30)
st.session_state.setdefault("accounts_stages", list(STAGES))
with st.form("accounts_filters"):
    left, right = st.columns([1, 3])
    # No min_value/max_value: Streamlit would quietly replace a value outside them with
    # the default; the check below says so instead.
    within_days = left.number_input(
        "Deletion within (days)",
        step=1,
        key="accounts_within_days",
        help=f"0 to {MAX_WITHIN_DAYS} days after the as-of date.",
    )
    stages = right.multiselect(
        "Stages", list(STAGES), key="accounts_stages", format_func=words.word
    )
    st.form_submit_button("Apply")

within_days = int(within_days)
if not 0 <= within_days <= MAX_WITHIN_DAYS:
    st.error(
        f"“Deletion within” must be from 0 to {MAX_WITHIN_DAYS} days, not {within_days}. "
        "Nothing is listed until it is.",
        icon="🛑",
    )
    st.stop()
chosen = tuple(s for s in STAGES if s in stages)
if not chosen:
    st.warning("Choose at least one stage.")
    st.stop()
filters = {"within_days": within_days, "stages": list(chosen)}
if ui.waits_for_indexes(("R13",), "accounts_page"):
    st.stop()
counts = ui.fetch(cached.stage_counts, as_of, within_days)
accounts = ui.fetch(cached.accounts_nearing_deletion, as_of, within_days, chosen)

for column, stage in zip(st.columns(len(STAGES)), STAGES, strict=True):
    column.metric(words.word(stage), counts.get(stage, 0))


def account_table() -> list[int]:
    """The accounts, selectable by id for a DPO; returns the selected account ids."""
    if not _actions.can_act():
        ui.table(
            accounts,
            page=PAGE,
            name="accounts",
            filters=filters,
            columns=COLUMNS,
            column_config=COLUMN_CONFIG,
            row_style=_stage_row,
        )
        return []
    reader = cached.full_reader(accounts)
    selected = _actions.selectable_table(
        accounts,
        key=TABLE_KEY,
        id_column="account_id",
        columns=COLUMNS,
        column_config=COLUMN_CONFIG,
        full_export=reader is not None,
    )
    ui.export_table(
        ui.display_frame(accounts, COLUMNS),
        page=PAGE,
        name="accounts",
        filters=filters,
        full=(lambda limit: ui.display_frame(reader(limit), COLUMNS)) if reader else None,
        column_config=COLUMN_CONFIG,
    )
    return selected


def invoices_note(plan) -> None:
    """What happens to the accounts' invoices, in one sentence (R15): how many are kept and
    until when (the latest retention end), and how many are past retention already."""
    kept = plan[plan["action"] == "detach and keep"]
    past = plan[plan["action"] == "detach; anonymise now"]
    parts = []
    kept_rows = int(kept["rows"].fillna(0).sum())
    if kept_rows:
        last = max(d for d in kept["kept_until"] if d is not None)
        parts.append(
            f"{kept_rows:,} invoice(s) are detached and kept under bokføringsloven §13 (R15), "
            f"each until the end of its own retention (the last on {last.isoformat()}), then "
            "anonymised."
        )
    past_rows = int(past["rows"].fillna(0).sum())
    if past_rows:
        parts.append(
            f"{past_rows:,} invoice(s) are past retention already: anonymise them on the "
            "Retention page."
        )
    if parts:
        st.info(" ".join(parts), icon="🧾")


def untold_accounts(ready: list[int]) -> dict[int, str]:
    """{account id: notice status} of the ready accounts whose notice was not delivered:
    left out of the deletion unless the DPO ticks to include them (R13, "deleted following
    notification": a notice still in the outbox told nobody)."""
    undelivered = ui.fetch(cached.undelivered_notices, tuple(ready))
    if undelivered.empty:
        return {}
    statuses = ", ".join(sorted(set(undelivered["status"])))
    st.warning(
        f"**{len(undelivered):,} of these account(s) were not told**: their notice is "
        f"{statuses} in the outbox, not delivered. Deliver the outbox first (under the table), or "
        "tell them another way. They are left out of this deletion unless you include them.",
        icon="📭",
    )
    ui.show_frame(ui.display_frame(undelivered))
    include = st.checkbox(
        f"Include the {len(undelivered):,} account(s) whose notice was not delivered",
        key="approve_deletion:include_untold",
    )
    if include:
        return {}
    return {
        int(a): s for a, s in zip(undelivered["account_id"], undelivered["status"], strict=True)
    }


@st.dialog("Approve deletion", width="large", on_dismiss=jobs.dismisser(APPROVE))
def confirm_deletion(account_ids: list[int]) -> None:
    """The deletion plan per database, the typed count above 50 accounts, then the job with
    a progress bar (RULES.md R14)."""
    ready = [i for i in account_ids if stage_of.get(i) == "ready"]
    untold = untold_accounts(ready)
    ready = [i for i in ready if i not in untold]
    others = len(account_ids) - len(ready) - len(untold)
    plan = ui.fetch(cached.deletion_plan, tuple(ready), as_of)
    st.markdown(
        f"**{len(ready):,} account(s)** ready for deletion as of {as_of.isoformat()} will be "
        "deleted permanently. This cannot be undone."
    )
    if others:
        st.caption(
            f"{others} other selected account(s) are not ready; they are not deleted and the "
            "results say why (an attempt on an account under a legal hold is recorded)."
        )
    st.markdown("**The accounts**")
    chosen = accounts[accounts["account_id"].isin(ready)]
    ui.show_frame(ui.display_frame(chosen, DIALOG_COLUMNS))
    st.markdown("**What goes, per database**")
    ui.show_frame(ui.display_frame(plan))
    invoices_note(plan)
    label = f"Delete {len(ready):,} account(s)"
    if not jobs.confirmed(APPROVE, len(ready), label=label, noun="account", enabled=bool(ready)):
        return
    progress = jobs.progress_bar("Deleting…")
    result = _actions.run(
        retention.approve_deletions,
        cached.databases(),
        [i for i in account_ids if i not in untold],
        actor=ui.actor(),
        as_of=as_of,
        idempotency_key=_actions.click_key(APPROVE),
        progress=progress,
    )
    for account_id in untold:
        result.failed[account_id] = (
            f"not deleted: its notice was not delivered ({untold[account_id]}), so the account "
            "holder was not told (R13)"
        )
    jobs.finish(
        APPROVE,
        result,
        what="Approve deletion",
        noun="account",
        table_key=TABLE_KEY,
    )


def account_actions(selected: list[int]) -> None:
    """Send notice / approve deletion for the selected accounts (a DPO only)."""
    if not _actions.actions_header():
        return
    picked = pd.Series([stage_of.get(i) for i in selected], dtype=object)
    due, ready = int((picked == "notice_due").sum()), int((picked == "ready").sum())
    st.caption(
        f"{len(selected):,} selected: {due:,} notice due, {ready:,} ready to delete. "
        "Only those are acted on; the others are reported with the reason."
    )
    left, middle, right = st.columns(3)
    send = left.button(f"Send notice ({due:,})", key="accounts_send_notice", disabled=not selected)
    approve = middle.button(
        f"Approve deletion ({ready:,})", key="accounts_approve", disabled=not ready
    )
    if right.button("Clear selection", key="accounts_clear_selection", disabled=not selected):
        _actions.clear_selection(TABLE_KEY)
        st.rerun()
    if (send or approve) and _actions.refuse_if_stale(TABLE_KEY, selected, accounts, "account_id"):
        return
    if send:
        result = _actions.run(
            retention.send_deletion_notices,
            cached.databases(),
            selected,
            actor=ui.actor(),
            as_of=as_of,
        )
        jobs.finish(
            SEND,
            result,
            what="Send notice",
            noun="account",
            table_key=TABLE_KEY,
        )
    if approve:
        jobs.open_dialog(APPROVE, selected)


def resume(job_id: int, progress: jobs.Progress):
    return _actions.run(
        retention.resume_job, cached.databases(), job_id, actor=ui.actor(), progress=progress
    )


def outbox() -> None:
    """Messages waiting, sent or failed; "Deliver outbox" when [smtp] is configured."""
    st.subheader("Outbox")
    outbox_counts = ui.fetch(cached.outbox_counts)
    for column, status in zip(st.columns(len(mailer.STATUSES)), mailer.STATUSES, strict=True):
        column.metric(f"Outbox {status}", outbox_counts[status])
    messages = ui.fetch(cached.outbox_messages)
    if messages.empty:
        ui.empty_state("The outbox is empty.")
    else:
        ui.table(
            messages,
            page=PAGE,
            name="outbox",
            filters={},
            columns=OUTBOX_COLUMNS,
        )
    if not _actions.can_act():
        return
    settings = cached.settings()
    if not settings.smtp.configured:
        st.caption(
            "Set [smtp] in config.toml to deliver the outbox by e-mail; until then messages "
            "wait here."
        )
        return
    pending = outbox_counts["pending"]
    if st.button(
        f"Deliver outbox ({pending:,} pending)", key="accounts_deliver", disabled=not pending
    ):
        with st.spinner(f"Sending through {settings.smtp.host}…"):
            delivery = _actions.run(
                mailer.deliver_outbox,
                cached.databases(),
                settings.smtp,
                password=smtp_password(settings),
            )
        errors = "\n".join(f"- message {i}: {e}" for i, e in list(delivery.errors.items())[:20])
        message = f"Deliver outbox: {delivery.sent} sent, {delivery.failed} failed."
        ui.flash(
            f"{message}\n\n{errors}" if errors else message, "warning" if errors else "success"
        )
        st.rerun()


stage_of = {int(i): s for i, s in zip(accounts["account_id"], accounts["stage"], strict=True)}
if accounts.empty:
    ui.empty_state(
        "No account in the chosen stages is due for deletion by "
        f"{(as_of + timedelta(days=within_days)).isoformat()}."
    )
    selection: list[int] = []
else:
    selection = account_table()
    account_actions(selection)
if jobs.dialog_ids(APPROVE) is not None:
    confirm_deletion(jobs.dialog_ids(APPROVE))
jobs.show_results(SEND, id_label="account_id")
jobs.show_results(APPROVE, id_label="account_id")
jobs.unfinished_jobs(
    DELETION_KIND,
    title="account deletion(s)",
    resume=resume,
    noun="account",
    results_as=APPROVE,
)
outbox()
