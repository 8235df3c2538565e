"""Overview: where the company stands today, one box per area, each linking to its page.

Each box needs its own databases; a broken one empties that box only."""

from __future__ import annotations

import math

import streamlit as st

from data_access import cached, daily
from pages import _charts as charts
from pages import _gate as gate
from pages import _numbers as numbers
from pages import _ui as ui
from pages import _words as words

gate.require_access()  # before anything is read (RULES.md R41)

NEARING_DAYS = 30  # the Accounts page's default window (RULES.md R13)
STAGES = words.STAGES
# "Policy versus reality": the sentences get the room, the short columns stay narrow; rows
# tall enough for a reality of two lines to wrap instead of being cut off.
FINDING_COLUMNS = {
    "severity": st.column_config.TextColumn(width="small"),
    "area": st.column_config.TextColumn(width="medium"),
    "promise": st.column_config.TextColumn(width="large"),
    "reality": st.column_config.TextColumn(width="large"),
    "count": st.column_config.NumberColumn(width="small"),
    "rule": st.column_config.TextColumn(width="small"),
}
FINDING_ROW_HEIGHT = 60  # pixels: two lines of text

ui.page_header("Overview", caption="Figures as of the date in the sidebar (Europe/Oslo).")
as_of = ui.as_of()
st.caption(f"As of {as_of.isoformat()}")

# Named before any box runs its queries: the health check reads only the catalogs.
for problem in ui.missing_indexes():
    st.warning(f"Missing index: {ui.escape_markdown(problem.message)}", icon="🐢")

# Rules whose figures the policy findings compute from the source tables.
FINDINGS_RULES = ("R1", "R2", "R8", "R13", "R15", "R16", "R22")
# The radar reads the requests, accounts, support logs and invoices queues (R2-R5, R13-R16).
RADAR_RULES = ("R1", "R2", "R8", "R13", "R14", "R15", "R16")


TODAY_ITEMS = 5


def today_box() -> None:
    """The deadline radar in short: red and amber counts, then the first items."""
    st.subheader("Today")
    if not ui.stores_available(("ledger",)) or ui.waits_for_indexes(RADAR_RULES, "overview_today"):
        return
    items = ui.fetch(cached.radar, as_of)
    counts = daily.severity_counts(items)
    left, right = st.columns(2)
    left.metric("Red items", counts["red"])
    right.metric("Amber items", counts["amber"])
    if items.empty:
        ui.empty_state("Nothing is due within the radar's horizon and nothing is overdue.")
    for row in items.head(TODAY_ITEMS).itertuples():
        icon = "🔴" if row.severity == "red" else "🟠"
        st.markdown(f"{icon} {row.due_on.isoformat()} · {ui.escape_markdown(row.what)}")
    st.page_link(ui.PAGE_FILES["radar"], label=f"Deadline radar ({len(items)} items)", icon="📡")


def accounts_box() -> None:
    st.subheader("Accounts nearing deletion (R13)")
    if not ui.stores_available(("users", "ledger")) or ui.waits_for_indexes(
        ("R13",), "overview_accounts"
    ):
        return
    counts = ui.fetch(cached.stage_counts, as_of, NEARING_DAYS)
    for column, (stage, label) in zip(st.columns(len(STAGES)), STAGES.items(), strict=True):
        column.metric(label, counts.get(stage, 0))
    st.plotly_chart(charts.stage_bar(counts), key="overview_stage_chart")
    st.page_link(ui.PAGE_FILES["accounts"], label="Accounts nearing deletion", icon="⏳")


def requests_box() -> None:
    st.subheader("Data-subject requests (R1–R8)")
    if not ui.stores_available(("support", "ledger")) or ui.waits_for_indexes(
        ("R1", "R2", "R8"), "overview_requests"
    ):
        return
    counts = ui.fetch(cached.request_counts, as_of)
    columns = st.columns(4)
    columns[0].metric("Open requests", counts["open"])
    columns[1].metric("Due this week", counts["due_this_week"])
    columns[2].metric("Overdue requests", counts["overdue"])
    columns[3].metric("Awaiting identity", counts["awaiting_identity"])
    st.page_link(ui.PAGE_FILES["requests"], label="Data-subject requests", icon="📨")


def consent_box() -> None:
    st.subheader("Consent rate per purpose (R21)")
    if not ui.stores_available(("consent", "ledger")):
        return
    # The rates come from the ledger's roll-up; its first build shows a progress bar.
    ui.refresh_consent_rollup()
    rates = ui.fetch(cached.consent_rates, as_of)
    for column, row in zip(st.columns(len(rates)), rates.itertuples(), strict=True):
        has_rate = row.subjects and not math.isnan(row.rate)
        column.metric(
            row.purpose.replace("_", " "), numbers.percent(row.rate) if has_rate else "no rate"
        )
    st.page_link(ui.PAGE_FILES["consent"], label="Consent", icon="✅")


def retention_box() -> None:
    st.subheader("Past retention (R15, R16)")
    left, right = st.columns(2)
    if ui.stores_available(("support", "ledger")) and not ui.waits_for_indexes(
        ("R16",), "overview_contacts"
    ):
        contacts = ui.fetch(cached.count_support_contacts_past_retention, as_of)
        left.metric("Support contacts past retention", contacts)
    if ui.stores_available(("users", "ledger")) and not ui.waits_for_indexes(
        ("R15",), "overview_invoices"
    ):
        invoices = ui.fetch(cached.count_invoices_past_retention, as_of)
        right.metric("Invoices past retention", invoices)
    st.page_link(ui.PAGE_FILES["retention"], label="Retention", icon="🗂️")


def holds_box() -> None:
    st.subheader("Legal holds (R17)")
    if not ui.stores_available(("ledger",)):
        return
    holds = ui.fetch(cached.active_holds, as_of)
    left, right = st.columns(2)
    left.metric("Active legal holds", len(holds))
    right.metric("Holds past review", ui.fetch(cached.holds_past_review, as_of))
    st.page_link(ui.PAGE_FILES["holds"], label="Legal holds", icon="⚖️")


def breaches_box() -> None:
    """Open breaches and the hours left on each running 72-hour clock (RULES.md R50)."""
    st.subheader("Breaches (R50)")
    if not ui.stores_available(("ledger",)):
        return
    counts = ui.fetch(cached.breach_counts, as_of)
    columns = st.columns(3)
    columns[0].metric("Open breaches", counts["open"])
    columns[1].metric("Clocks running", counts["clock_running"])
    columns[2].metric("Clocks run out", counts["overdue"])
    running = ui.fetch(cached.open_breaches, as_of)
    running = running[running["clock_running"].astype(bool)]
    if running.empty:
        st.caption("No 72-hour clock is running.")
    else:
        ui.show_frame(
            ui.display_frame(running, ["breach_id", "title", "due_oslo", "hours_left", "overdue"]),
            column_config={
                "breach_id": "Breach",
                "due_oslo": "Due (Europe/Oslo)",
                "hours_left": st.column_config.NumberColumn("Hours left", format="%.1f"),
            },
            key="overview_breaches",
        )
    st.page_link(ui.PAGE_FILES["breaches"], label="Breaches", icon="🚨")


def register_box() -> None:
    st.subheader("Register findings (R32)")
    if not ui.stores_available(("ledger",)):
        return
    counts = ui.fetch(cached.findings_count, as_of)
    for column, (severity, count) in zip(st.columns(len(counts)), counts.items(), strict=True):
        column.metric(f"{severity.capitalize()} findings", count)
    st.page_link(ui.PAGE_FILES["register"], label="Register", icon="📒")


FINDING_ICONS = {"high": "🔴", "medium": "🟠", "low": "🟡", "ok": "🟢", "unknown": "⚪"}


def findings_box() -> None:
    """The policy's promises against the data: a count per promise, the rule, and a link to
    the page that fixes it (config.toml [policy_facts] and [policy])."""
    st.subheader("Policy versus reality")
    st.caption("What the privacy policy promises, checked against the data on the as-of date.")
    if ui.waits_for_indexes(FINDINGS_RULES, "overview_findings"):
        return
    checks = ui.fetch(cached.policy_findings, as_of)
    shown = checks.assign(severity=checks["severity"].map(lambda s: f"{FINDING_ICONS[s]} {s}"))
    ui.show_frame(
        ui.display_frame(shown, ["severity", "area", "promise", "reality", "count", "rule"]),
        key="overview_policy_findings",
        column_config=FINDING_COLUMNS,
        row_height=FINDING_ROW_HEIGHT,
    )
    broken = checks[checks["count"].fillna(0) > 0]
    for row in broken.itertuples():
        st.page_link(
            ui.PAGE_FILES[row.page],
            label=f"{row.area}: {row.count:,} to fix ({row.rule})",
            icon=FINDING_ICONS[row.severity],
        )
    for row in checks[checks["problem"].notna()].itertuples():
        st.caption(
            f"{ui.escape_markdown(row.area)}: not checked ({ui.escape_markdown(row.problem)})"
        )


for box in (
    today_box,
    accounts_box,
    requests_box,
    consent_box,
    retention_box,
    holds_box,
    breaches_box,
    register_box,
    findings_box,
):
    with st.container(border=True):
        box()

with st.expander("Databases"):
    ui.show_frame(ui.display_frame(ui.fetch(cached.health_summary)))
