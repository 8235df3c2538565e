"""DPO Dashboard entry point: `streamlit run dashboard.py`.

Page config, settings, the sign-in gate, first-start demo data, the demo-mode banner, the
ledger migrated to the current schema, the database health warning, the sidebar "as of" date,
then st.navigation over the pages, with the automation banner for a DPO (a failed daily-run
step or an unfinished job) above each page (DESIGN.md "Layout", "Sign-in"). A broken
database is named here once; each page stops only if it needs that database.

Sign-in (RULES.md R41): with an [auth] section in .streamlit/secrets.toml, everyone signs in
with OpenID Connect (st.login) and needs a role in config.toml [roles]; without it the
dashboard runs only in demo mode (every database a demo SQLite file) and refuses otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import NoReturn

import streamlit as st

from data_access import cached, demo, failures
from data_access.settings import Settings, SettingsError
from pages import _gate
from pages import _ui as ui

PAGES = {
    "Today": [
        st.Page(ui.PAGE_FILES["overview"], title="Overview", icon="🏠", default=True),
        st.Page(ui.PAGE_FILES["radar"], title="Deadline radar", icon="📡"),
    ],
    "Retention": [
        st.Page(ui.PAGE_FILES["schedule"], title="Retention schedule", icon="🗓️"),
        st.Page(ui.PAGE_FILES["accounts"], title="Accounts nearing deletion", icon="⏳"),
        st.Page(ui.PAGE_FILES["retention"], title="Retention", icon="🗂️"),
        st.Page(ui.PAGE_FILES["holds"], title="Legal holds", icon="⚖️"),
    ],
    "Requests": [
        st.Page(ui.PAGE_FILES["requests"], title="Data-subject requests", icon="📨"),
        st.Page(ui.PAGE_FILES["request"], title="Request", icon="📄"),
    ],
    "Consent": [st.Page(ui.PAGE_FILES["consent"], title="Consent", icon="✅")],
    "Breaches": [
        st.Page(ui.PAGE_FILES["breaches"], title="Breaches", icon="🚨"),
        st.Page(ui.PAGE_FILES["breach"], title="Breach", icon="📋"),
    ],
    "Register": [st.Page(ui.PAGE_FILES["register"], title="Register", icon="📒")],
    "Look-up": [
        st.Page(ui.PAGE_FILES["lookup"], title="Subject lookup", icon="🔎"),
        st.Page(ui.PAGE_FILES["audit"], title="Audit log", icon="🧾"),
    ],
    "Inspection": [
        st.Page(ui.PAGE_FILES["inspection"], title="Inspection pack", icon="🗃️"),
    ],
}


def only_page(render: Callable[[], None]) -> NoReturn:
    """Show `render` as the app's only page, then stop.

    Every stop before the real navigation goes through st.navigation: a script that stops
    without calling it puts Streamlit in its "pages/ folder" mode, which lists every file
    in pages/ in the sidebar and serves each on its own (each page still runs the gate).
    """
    st.navigation([st.Page(render, title="DPO Dashboard", default=True)], position="hidden").run()
    st.stop()


def load_settings() -> Settings:
    """The settings, or st.error with the SettingsError message and stop."""
    try:
        return cached.settings()
    except (SettingsError, FileNotFoundError) as exc:
        message = f"The settings cannot be read: {exc}"

        def settings_error() -> None:
            st.error(message, icon="🛑")

        only_page(settings_error)


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


def gate(settings: Settings) -> ui.Identity:
    """Let through only a user who may see the dashboard (RULES.md R41); otherwise show why
    and stop (pages/_gate.py, the same gate every page runs)."""
    stop = _gate.refusal(settings)
    if stop is not None:
        only_page(stop)
    return ui.identity()


def migrate_ledger() -> None:
    """Bring the ledger to the current schema before any page reads it (demo mode or not);
    a ledger that cannot be migrated is named here and its health problems follow."""
    try:
        cached.migrated_ledger()
    except Exception as exc:  # noqa: BLE001 - shown in words; the pages report the ledger
        st.error(
            "The ledger could not be migrated to the current schema: "
            f"{ui.escape_markdown(failures.in_words(exc))}. Run `python -m data_access.migrate` "
            "to see the full error.",
            icon="🛑",
        )


def check_databases() -> None:
    """Warn once about each broken database, table or column, and say how many indexes are
    missing (the gate has already stopped when they cannot be set up at all: no pseudonym
    key outside demo mode)."""
    problems = [p for p in ui.store_problems() if p.kind != "index"]
    slow = ui.missing_indexes()
    if slow:
        st.warning(
            f"{len(slow)} index(es) the dashboard's queries need are missing: pages that "
            'need them wait for a "Compute anyway" instead of running slowly. The Overview '
            "names them; `python -m data_access.indexes --check` prints their DDL.",
            icon="🐢",
        )
    if problems:
        st.warning(
            "Some data is unavailable; pages that need it say so, the others work.\n\n"
            + "\n".join(f"- {ui.describe_problem(p)}" for p in problems),
            icon="⚠️",
        )


def sidebar(settings: Settings, who: ui.Identity) -> None:
    """Who is signed in (and a sign-out button), then the "as of" date (Europe/Oslo), kept
    in session state across pages."""
    if who.signed_in:
        # Plain text: Markdown would turn the address into a link.
        st.sidebar.text(f"Signed in as {who.email} ({who.role})")
        st.sidebar.button("Sign out", key="sign_out", on_click=st.logout)
    # Initialise through session state, not `value=`, so tests and pages can set it first.
    st.session_state.setdefault("as_of", ui.today())
    refused = ui.keep_valid_as_of()
    # The widget itself accepts any day, so a wrong one reaches the check above and is
    # refused in words instead of being dropped silently by the date picker.
    st.sidebar.date_input(
        "As of (Europe/Oslo)",
        key="as_of",
        format="YYYY-MM-DD",
        min_value=date(1, 1, 1),
        max_value=date(9999, 12, 31),
        help="Look at the dashboard as it stands on another day; deadlines and stages "
        "follow. Actions run only on today's view: they always happen today.",
    )
    if refused:
        st.sidebar.error(f"{refused} Showing {ui.as_of().isoformat()} instead.")
    if ui.what_if():
        st.sidebar.button("Back to today", key="as_of_today", on_click=_back_to_today)
    if settings.demo_mode:
        st.sidebar.caption("Demo data is generated relative to the day it was created.")


def _back_to_today() -> None:
    st.session_state["as_of"] = ui.today()


def main() -> None:
    st.set_page_config(page_title="DPO Dashboard", page_icon="🛡️", layout="wide")
    settings = load_settings()
    _gate.client_options(settings)
    who = gate(settings)
    if settings.demo_mode and not who.signed_in:
        st.info("Demo mode: embedded demo databases, no sign-in", icon="🧪")
    elif settings.demo_mode:
        st.info("Demo databases: the data shown is generated demo data.", icon="🧪")
    ensure_demo_data(settings)
    migrate_ledger()
    check_databases()
    ui.keep_widget_values()
    sidebar(settings, who)
    ui.what_if_banner()
    page = st.navigation(PAGES)
    ui.automation_banner()  # after st.navigation: its link needs the registered pages
    page.run()


main()
