"""Subject lookup: every row held about one person, by e-mail, in all four databases
(GDPR art. 15; RULES.md R9, R12). Needs every database."""

from __future__ import annotations

import streamlit as st

from data_access import audit, cached, subjects
from data_access import prepared as prepared_files
from data_access.settings import STORES
from pages import _gate as gate
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "subject-lookup"

ui.page_header(
    "Subject lookup",
    stores=STORES,
    caption="Found by e-mail (trimmed, case-insensitive), through the accounts the person "
    "owns, by their phone numbers (calls with no e-mail; never by a name alone) and by their "
    "e-mail inside support summaries and request details. Times and dates are "
    "Europe/Oslo (times with their offset).",
)

# The address typed is not kept in this session: the submit callback empties the field and
# holds the look-up process-wide under a token (data_access/prepared.py) that erasing the
# person clears in every session (RULES.md R12, R18).
LOOKUP = "lookup:token"
REFUSED = "lookup:refused"


def take_lookup() -> None:
    """On "Look up": the entered address as a held look-up, the field emptied."""
    entered = st.session_state.get("lookup_email", "")
    st.session_state["lookup_email"] = ""
    prepared_files.drop(st.session_state.pop(LOOKUP, None))
    if not entered.strip():
        return
    try:
        email = subjects.normalised_email(entered)
    except ValueError as exc:
        st.session_state[REFUSED] = str(exc)
        return
    subject = audit.keyed_hash(cached.databases(), email)
    st.session_state[LOOKUP] = prepared_files.hold(email, subjects=(subject,))


with st.form("lookup_form"):
    st.text_input("E-mail address", key="lookup_email", placeholder="name@example.no")
    st.form_submit_button("Look up", on_click=take_lookup)

refused = st.session_state.pop(REFUSED, None)
if refused:
    st.error(refused, icon="✉️")
    st.stop()
email = prepared_files.get(st.session_state.get(LOOKUP))
if email is None:
    if st.session_state.pop(LOOKUP, None):
        st.info(
            "The look-up was cleared (the person was erased, or it expired); enter the "
            "address again to look them up."
        )
    else:
        st.info("Enter the data subject's e-mail address to see everything held about them.")
    st.stop()
st.caption(f"Looked up: {ui.escape_markdown(email)}")

found = ui.fetch(cached.find_subject, email)
held = {name: frame for name, frame in found.items() if not frame.empty}

if not held:
    ui.empty_state(
        f"Nothing held about this address ({ui.escape_markdown(email)}) in any of the four "
        "databases."
    )
    st.stop()

left, right = st.columns(2)
left.metric("Tables with data", f"{len(held)} of {len(found)}")
right.metric("Rows", sum(len(frame) for frame in held.values()))
# Exports are audited under the keyed hash, never the e-mail itself (RULES.md R18).
filters = {"subject_ref": audit.keyed_hash(cached.databases(), email)}
for name, frame in held.items():
    st.subheader(name)
    kept = frame.attrs.get("kept_after_deletion") or []
    if kept:
        st.caption(
            f"{len(kept)} invoice(s) kept for bookkeeping after the person's account was "
            "deleted or erased (R14, R15): restricted to bookkeeping, part of an access "
            "report (R9)."
        )
    ui.table(frame, page=PAGE, name=name.replace(".", "-"), filters=filters)
