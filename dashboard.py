"""DPO Dashboard entry point: `streamlit run dashboard.py`.

Page config, settings, the sign-in gate, first-start demo data, the demo-mode banner, the
sidebar "as of" date, the database health warning, then st.navigation over the pages
(DESIGN.md "Layout", "Sign-in"). A broken database is named here once; each page stops only
if it needs that database.

Sign-in (RULES.md R41): with an [auth] section in .streamlit/secrets.toml, everyone signs in
with OpenID Connect (st.login) and needs a role in config.toml [roles]; without it the
dashboard runs only in demo mode (every database a demo SQLite file) and refuses otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn

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
    "Requests": [
        st.Page(ui.PAGE_FILES["requests"], title="Data-subject requests", icon="📨"),
        st.Page(ui.PAGE_FILES["request"], title="Request", icon="📄"),
    ],
    "Consent": [st.Page(ui.PAGE_FILES["consent"], title="Consent", icon="✅")],
    "Register": [st.Page(ui.PAGE_FILES["register"], title="Register", icon="📒")],
    "Look-up": [
        st.Page(ui.PAGE_FILES["lookup"], title="Subject lookup", icon="🔎"),
        st.Page(ui.PAGE_FILES["audit"], title="Audit log", icon="🧾"),
    ],
}


def only_page(render: Callable[[], None]) -> NoReturn:
    """Show `render` as the app's only page, then stop.

    Every stop before the real navigation goes through st.navigation: a script that stops
    without calling it puts Streamlit in its "pages/ folder" mode, which lists and serves
    each file in pages/ on its own, without this gate.
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


def client_options(settings: Settings) -> None:
    """Browser-side options that keep data in the dashboard's own, audited paths.

    Tracebacks can show data values: only demo mode without sign-in shows them (the option
    is process-wide, and demo mode is a property of the whole process). The tables' own
    "Download as CSV" is off everywhere: it would bypass the audited, formula-safe export
    (RULES.md R40).
    """
    demo = settings.demo_mode and not ui.signin_configured()
    st.set_option("client.showErrorDetails", "full" if demo else "none")
    st.set_option("client.disableDataExport", True)


def gate(settings: Settings) -> ui.Identity:
    """Let through only a user who may see the dashboard (RULES.md R41); otherwise show why
    and stop: the refusal without sign-in outside demo mode, the sign-in page, or "no access"."""
    if not ui.signin_configured():
        if not settings.demo_mode:
            only_page(lambda: refuse_without_signin(settings))
        return ui.identity()
    who = ui.identity()
    if not who.signed_in:
        only_page(sign_in_page)
    if who.role is None:
        only_page(lambda: no_access_page(who))
    return who


def refuse_without_signin(settings: Settings) -> None:
    """Outside demo mode sign-in is required: name the databases that are not demo files and
    what to configure."""
    databases = "\n".join(
        f"- the {store} database ({settings.database_description(store)})"
        for store in settings.not_demo_files()
    )
    variables = ", ".join(
        getattr(settings.databases, f"{store}_url_env") for store in settings.not_demo_files()
    )
    st.error(
        "The dashboard will not start: sign-in is not configured, and these databases are "
        f"not the embedded demo files:\n\n{databases}\n\n"
        "Without sign-in only the demo databases may be used (RULES.md R41). Configure "
        "OpenID Connect sign-in in `.streamlit/secrets.toml` under `[auth]` (`redirect_uri`, "
        "`cookie_secret`, `client_id`, `client_secret`, `server_metadata_url`; see the "
        'README, "Sign-in") and give each user a role in `config.toml` under `[roles]`, '
        f"or unset {variables} to run the demo.",
        icon="🔒",
    )


def sign_in_page() -> None:
    """The sign-in page for a visitor who is not signed in."""
    st.title("DPO Dashboard")
    st.write("Sign in with your company account to see the dashboard.")
    st.button("Sign in", key="sign_in", type="primary", on_click=_login)


def _login() -> None:
    """st.login with the one provider in [auth]: unnamed (its settings directly in [auth])
    or the only named section under it."""
    auth = st.secrets.get("auth", {})
    named = [name for name, value in auth.items() if isinstance(value, Mapping)]
    st.login(named[0] if len(named) == 1 and "client_id" not in auth else None)


def no_access_page(who: ui.Identity) -> None:
    """A signed-in user without a role or without a verified e-mail: say why."""
    st.title("No access")
    st.error(who.problem or "You have no role in the dashboard.", icon="🚫")
    st.button("Sign out", key="sign_out", on_click=st.logout)


def check_databases() -> None:
    """Stop with a clear message when the databases cannot be set up at all (no pseudonym key
    outside demo mode); otherwise warn once about each broken database, table or column."""
    try:
        cached.databases()
    except PseudonymKeyMissing as exc:
        message = str(exc)

        def key_missing() -> None:
            st.error(message, icon="🛑")

        only_page(key_missing)
    problems = ui.store_problems()
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
    client_options(settings)
    who = gate(settings)
    if settings.demo_mode and not who.signed_in:
        st.info("Demo mode: embedded demo databases, no sign-in", icon="🧪")
    elif settings.demo_mode:
        st.info("Demo databases: the data shown is generated demo data.", icon="🧪")
    ensure_demo_data(settings)
    check_databases()
    ui.keep_widget_values()
    sidebar(settings, who)
    st.navigation(PAGES).run()


main()
