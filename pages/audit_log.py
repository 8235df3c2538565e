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
    caption="Entries name people only by a keyed hash of their e-mail. Times are Europe/Oslo with their offset.",
)

with st.form("audit_filters"):
    first, second = st.columns(2)
    text = first.text_input(
        "Search", key="audit_text", placeholder="words in action, target, details or actor"
    ).strip()
    actor = second.text_input(
        "Actor", key="audit_actor", placeholder="all actors, or part of an e-mail"
    ).strip()
    since = first.date_input("From (Oslo date)", value=None, key="audit_since")
    until = second.date_input("To (Oslo date)", value=None, key="audit_until")
    subject = st.text_input(
        "Data subject's e-mail",
        key="audit_subject",
        placeholder="finds the entries naming this person by keyed hash",
        help="The e-mail is turned into its keyed hash and is neither stored nor shown.",
    ).strip()
    st.form_submit_button("Apply")

if since and until and since > until:
    st.error(f"The period is empty: From ({since}) is after To ({until}).")
    st.stop()
entries = ui.fetch(
    cached.audit_entries,
    text=text or None,
    since=since,
    until=until,
    actor=actor or None,
    subject_email=subject or None,
)
# What the export's own audit entry records: the filters, the person only by keyed hash.
filters = {
    "text": text or None,
    "since": since.isoformat() if since else None,
    "until": until.isoformat() if until else None,
    "actor": actor or None,
    "subject_ref": audit.keyed_hash(cached.databases(), subject) if subject else None,
}
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
    filtered = any(value for value in filters.values())
    ui.empty_state("No audit entries match these filters." if filtered else "No audit entries yet.")
    st.stop()

st.metric("Entries shown", f"{len(entries):,}")
ui.table(
    entries,
    page=PAGE,
    name="entries",
    filters=filters,
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
