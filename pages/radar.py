"""Deadline radar: every dated duty due within the horizon and everything overdue, soonest
first, each linked to the page that settles it; the daily run's latest runs; for the DPO,
acknowledging items (which stops their escalation to the deputy and takes automation
alerts off the banner). Needs the ledger; the other databases as their items need them."""

from __future__ import annotations

import streamlit as st

from data_access import cached, daily
from pages import _actions
from pages import _gate as gate
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "radar"
ACK_CHOICE = "radar_ack_choice"
SEVERITY_LABELS = {"red": "🔴 red", "amber": "🟠 amber"}
COLUMNS = ["due_on", "severity", "what", "count", "rule", "days_left", "acknowledged", "link"]
COLUMN_CONFIG = {"what": "What", "link": "Page", "acknowledged": "Acknowledged?"}
RUN_COLUMNS = ["run_id", "as_of", "started_at", "finished_at", "outcome", "error"]
LINKS_SHOWN = 15

ui.page_header(
    "Deadline radar",
    stores=("ledger",),
    caption="Every dated duty due within the horizon, and everything overdue, soonest first "
    "(Europe/Oslo dates). The daily run e-mails it to the DPO each morning; a red item "
    "unacknowledged for 24 hours also goes to the deputy.",
)
as_of = ui.as_of()
default_horizon = cached.settings().daily.horizon_days

# Defaults through session state, not `value=`: the filters are kept across pages.
st.session_state.setdefault("radar_horizon", default_horizon)
st.session_state.setdefault("radar_acked", True)
with st.form("radar_filters"):
    left, middle, right = st.columns(3)
    severities = left.multiselect(
        "Severity", list(SEVERITY_LABELS), format_func=SEVERITY_LABELS.get, key="radar_severity"
    )
    horizon = middle.number_input(
        "Horizon (days)",
        min_value=0,
        max_value=366,
        step=1,
        key="radar_horizon",
    )
    show_acknowledged = right.checkbox("Show acknowledged items", key="radar_acked")
    st.form_submit_button("Apply")

# The radar reads the requests, accounts, support-log and invoice queues (R2-R5, R13-R16).
if ui.waits_for_indexes(("R1", "R2", "R8", "R13", "R14", "R15", "R16"), "radar_page"):
    st.stop()
items = ui.fetch(cached.radar, as_of, int(horizon))
kinds = sorted(items["kind"].unique())
chosen_kinds = st.multiselect("Kind", kinds, key="radar_kind")
shown = items
if severities:
    shown = shown[shown["severity"].isin(severities)]
if chosen_kinds:
    shown = shown[shown["kind"].isin(chosen_kinds)]
if not show_acknowledged:
    shown = shown[~shown["acknowledged"]]
shown = shown.reset_index(drop=True)
filters = {
    "severity": severities,
    "kind": chosen_kinds,
    "horizon_days": int(horizon),
    "acknowledged": show_acknowledged,
}

counts = daily.severity_counts(items)
columns = st.columns(3)
columns[0].metric("Red items", counts["red"])
columns[1].metric("Amber items", counts["amber"])
columns[2].metric("Acknowledged", int(items["acknowledged"].sum()))

if shown.empty:
    ui.empty_state(
        f"Nothing due within {int(horizon)} days and nothing overdue."
        if items.empty
        else "No radar item matches the filters."
    )
else:
    table = shown.assign(severity=shown["severity"].map(SEVERITY_LABELS))
    ui.table(
        table,
        page=PAGE,
        name="items",
        filters=filters,
        columns=COLUMNS,
        personal=False,
        column_config=COLUMN_CONFIG,
    )
    st.subheader("Settle an item")
    for row in shown.head(LINKS_SHOWN).itertuples():
        query = dict(part.split("=", 1) for part in row.link.partition("?")[2].split("&") if part)
        st.page_link(
            ui.PAGE_FILES[row.page],
            label=f"{row.due_on.isoformat()} · {row.what}",
            icon="🔴" if row.severity == "red" else "🟠",
            query_params=query or None,
        )
    if len(shown) > LINKS_SHOWN:
        st.caption(f"The first {LINKS_SHOWN} of {len(shown)} items are linked here.")


def acknowledge_form() -> None:
    """Acknowledge chosen unacknowledged items by key (one click, one action)."""
    if not _actions.actions_header("Acknowledge"):
        return
    open_items = items[~items["acknowledged"]]
    if open_items.empty:
        st.caption("Every item is acknowledged.")
        return
    labels = dict(zip(open_items["key"], open_items["what"], strict=True))
    chosen = st.multiselect(
        "Items to acknowledge", list(labels), format_func=labels.get, key=ACK_CHOICE
    )
    if not st.button(f"Acknowledge ({len(chosen)})", key="radar_acknowledge", disabled=not chosen):
        return
    kinds_of = dict(zip(open_items["key"], open_items["kind"], strict=True))
    result = _actions.run(
        daily.acknowledge,
        cached.databases(),
        [key for key in chosen if key in labels],
        actor=ui.actor(),
        kinds={key: kinds_of[key] for key in chosen if key in kinds_of},
    )
    st.session_state.pop(ACK_CHOICE, None)
    _actions.report(result, what="Acknowledge", noun="item")
    st.rerun()


def latest_runs() -> None:
    st.subheader("The daily run")
    runs = ui.fetch(cached.daily_runs)
    if runs.empty:
        ui.empty_state(
            "The daily run has not run yet: schedule `python -m data_access.daily` (README)."
        )
        return
    ui.table(runs, page=PAGE, name="daily-runs", filters={}, columns=RUN_COLUMNS, personal=False)
    last = int(runs["run_id"].iloc[0])
    st.caption(f"Steps of run {last}:")
    ui.show_frame(ui.display_frame(ui.fetch(cached.daily_run_steps, last)))


def reported_items() -> None:
    """What the daily run reported: when each item was first reported (and first red),
    who acknowledged it and when it was escalated to the deputy."""
    with st.expander("Reported items: acknowledgements and escalations"):
        log = ui.fetch(cached.radar_item_log)
        if log.empty:
            ui.empty_state("No item was reported or acknowledged yet.")
            return
        ui.table(log, page=PAGE, name="reported-items", filters={}, personal=False)


acknowledge_form()
latest_runs()
reported_items()
