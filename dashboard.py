"""DPO Dashboard entry point: `streamlit run dashboard.py`.

Page config, settings, first-start demo data, the demo-mode banner, the sidebar "as of"
date, the database health warning, then st.navigation over the pages (DESIGN.md "Layout").
A broken database is named here once; each page stops only if it needs that database.
"""

from __future__ import annotations

import streamlit as st

from data_access import cached, demo
from data_access.clock import today_oslo
from data_access.engines import PseudonymKeyMissing
from data_access.settings import Settings, SettingsError
from pages import _ui as ui

PAGES = {
    "Today": [st.Page(ui.PAGE_FILES["overview"], title="Overview", icon="🏠", default=True)],
    "Retention": [
        st.Page(ui.PAGE_FILES["accounts"], title="Accounts nearing deletion", icon="⏳"),
        st.Page(ui.PAGE_FILES["retention"], title="Retention", icon="🗂️"),
        st.Page(ui.PAGE_FILES["holds"], title="Legal holds", icon="⚖️"),
    ],
    "Requests": [st.Page(ui.PAGE_FILES["requests"], title="Data-subject requests", icon="📨")],
    "Consent": [st.Page(ui.PAGE_FILES["consent"], title="Consent", icon="✅")],
    "Register": [st.Page(ui.PAGE_FILES["register"], title="Register", icon="📒")],
    "Look-up": [
        st.Page(ui.PAGE_FILES["lookup"], title="Subject lookup", icon="🔎"),
        st.Page(ui.PAGE_FILES["audit"], title="Audit log", icon="🧾"),
    ],
}


def load_settings() -> Settings:
    """The settings, or st.error with the SettingsError message and stop."""
    try:
        return cached.settings()
    except (SettingsError, FileNotFoundError) as exc:
        st.error(f"The settings cannot be read: {exc}", icon="🛑")
        st.stop()


def ensure_demo_data(settings: Settings) -> None:
    """First start in demo mode: generate the demo databases with a progress bar, then rerun.
    Checked once per session; nothing happens when the data is already there."""
    if not settings.demo_mode or st.session_state.get("demo_data_checked"):
        return
    slot = st.empty()

    def progress(fraction: float, message: str = "") -> None:
        slot.progress(min(max(fraction, 0.0), 1.0), text=message or "Preparing demo data…")

    created = demo.ensure_demo_data(settings, progress=progress)
    st.session_state["demo_data_checked"] = True
    slot.empty()
    if created:
        cached.clear()
        st.cache_resource.clear()
        st.rerun()


def check_databases() -> None:
    """Stop with a clear message when the databases cannot be set up at all (no pseudonym key
    outside demo mode); otherwise warn once about each broken database, table or column."""
    try:
        cached.databases()
    except PseudonymKeyMissing as exc:
        st.error(str(exc), icon="🛑")
        st.stop()
    problems = ui.store_problems()
    if problems:
        st.warning(
            "Some data is unavailable; pages that need it say so, the others work.\n\n"
            + "\n".join(f"- {ui.describe_problem(p)}" for p in problems),
            icon="⚠️",
        )


def sidebar(settings: Settings) -> None:
    """The "as of" date (Europe/Oslo), kept in session state across pages."""
    # Initialise through session state, not `value=`, so tests and pages can set it first.
    st.session_state.setdefault("as_of", today_oslo())
    st.sidebar.date_input(
        "As of (Europe/Oslo)",
        key="as_of",
        format="YYYY-MM-DD",
        help="Look at the dashboard as it stands on another day; deadlines and stages follow.",
    )
    if settings.demo_mode:
        st.sidebar.caption("Demo data is generated relative to the day it was created.")


def main() -> None:
    st.set_page_config(page_title="DPO Dashboard", page_icon="🛡️", layout="wide")
    settings = load_settings()
    if settings.demo_mode:
        st.info("Demo mode: embedded demo databases, no sign-in", icon="🧪")
    ensure_demo_data(settings)
    check_databases()
    sidebar(settings)
    st.navigation(PAGES).run()


main()
