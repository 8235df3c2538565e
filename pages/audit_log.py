"""Audit log: every action and export, newest first, and whether the hash chain is intact,
compared with its head and the anchors kept outside the ledger (RULES.md R18, R40). Needs the
ledger only."""

from __future__ import annotations

import streamlit as st

from data_access import audit, cached
from pages import _actions
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
report = ui.fetch(cached.chain_status)

if report.ok:
    st.success(
        "The audit chain is intact: every entry matches its content and predecessor under "
        "the audit key, and the log agrees with its head and every anchor."
    )
else:
    where = f" at entry id {report.first_broken}" if report.first_broken is not None else ""
    findings = "\n".join(f"- {ui.escape_markdown(p)}" for p in report.problems)
    st.error(
        f"The audit chain is broken{where}: entries were changed or removed after they "
        f"were written.\n\n{findings}"
    )
for warning in report.warnings:
    st.warning(ui.escape_markdown(warning))
anchored = report.anchor.label if report.anchor else "no anchor yet"
st.caption(
    f"The log holds {report.entries:,} entries (head {report.head[:12]}). "
    f"Latest anchor: {anchored}."
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
    columns=["id", *audit.HASHED_COLUMNS],
)

if _actions.actions_header("Anchor"):
    st.caption(
        "Append the chain's count and head hash to the anchor file now (exports and "
        "prepared reports do it too), so that later removals or rewrites can be shown."
    )
    if st.button("Write an anchor now", key="audit_write_anchor"):
        try:
            anchor = _actions.run(audit.write_anchor, cached.databases())
        except OSError as exc:
            ui.flash(f"The anchor file cannot be written: {ui.escape_markdown(exc)}", "error")
        else:
            ui.flash(
                f"Anchored: {anchor.label}." if anchor else "No anchor file is configured.",
                "success" if anchor else "warning",
            )
        st.rerun()
