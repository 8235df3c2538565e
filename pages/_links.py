"""Links that name one record: /request?id=80, /breach?id=3 (one rule for every page).

A page with a record-id input follows its link's `?id=` once per link (the user may then
choose another record), and writes the id it shows back into the link, so the page can be
bookmarked or shared. A link whose id is not a whole number from 1 is named in an error.
"""

from __future__ import annotations

import streamlit as st

from pages import _ui as ui

PARAM = "id"
# The number input's largest value (JavaScript's largest safe integer); an id beyond it is
# no record id.
MAX_ID = 2**53 - 1


def linked_id(link: str | None) -> int | None:
    """The record id a link's ?id= names, or None when it is not a whole number from 1."""
    text = (link or "").strip()
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def follow(widget_key: str) -> str | None:
    """Preselect the record the link names in the input `widget_key`, once per link;
    returns the link's id text, if any."""
    followed = f"{widget_key}_link_followed"
    link = st.query_params.get(PARAM)
    if link is not None and link != st.session_state.get(followed):
        st.session_state[followed] = link
        st.session_state[widget_key] = linked_id(link)
    return link


def keep(widget_key: str, record_id: int) -> None:
    """The link names the record shown."""
    if st.query_params.get(PARAM) != str(record_id):
        st.query_params[PARAM] = str(record_id)
        st.session_state[f"{widget_key}_link_followed"] = str(record_id)


def bad_link_error(link: str | None, noun: str) -> None:
    """st.error when the link names an id that is no `noun` id."""
    if link is not None and linked_id(link) is None:
        st.error(
            f"The link names {noun} id “{ui.escape_markdown(link[:80])}”, which is not a "
            f"{noun} id (a whole number from 1).",
            icon="🔎",
        )


if __name__ == "__main__":  # served as a page in "pages folder" mode
    from pages import _gate

    _gate.not_a_page()
