"""The sign-in gate (RULES.md R41; DESIGN.md "Sign-in"): who may see the dashboard, and what
everyone else sees instead.

Every file in pages/ calls `require_access()` before it reads anything, and dashboard.py
runs the same `refusal()` before its navigation. A page therefore decides from the
session's own identity (`st.user` and config.toml `[roles]`) whether to show anything,
however Streamlit serves it: through dashboard.py's st.navigation, or on its own in
Streamlit's "pages folder" mode, which a fresh server uses until dashboard.py has run once,
and whatever another session does meanwhile.

Nothing here reads a database; the settings and the secrets are all it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from data_access import cached
from data_access.engines import PseudonymKeyMissing
from data_access.settings import Settings, SettingsError
from pages import _ui as ui

Refusal = Callable[[], None]


def require_access() -> ui.Identity:
    """The first call of every page: the current user when they may see the dashboard;
    otherwise show the refusal, the sign-in page or "no access", and stop the page before
    it reads any data (RULES.md R41). Viewers pass: each action checks the DPO role itself
    (pages/_actions.py).

    Also leaves Streamlit's "pages folder" mode once the visitor is let through (see
    `_leave_pages_folder_mode`), so that the next run goes through dashboard.py's
    navigation; security never depends on that.
    """
    settings = _settings_or_stop()
    client_options(settings)
    stop = refusal(settings)
    if stop is not None:
        stop()
        st.stop()
    _leave_pages_folder_mode()
    return ui.identity()


def refusal(settings: Settings) -> Refusal | None:
    """None when the current user may see the dashboard; otherwise what to show instead:
    the refusal to run without sign-in outside demo mode, the missing pseudonym key, the
    sign-in page, or "no access" for a signed-in user without a verified e-mail or a role."""
    if not ui.signin_configured():
        if not settings.demo_mode:
            return lambda: refuse_without_signin(settings)
    else:
        who = ui.identity()
        if not who.signed_in:
            return sign_in_page
        if who.role is None:
            return lambda: no_access_page(who)
    return _key_missing()


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


def _settings_or_stop() -> Settings:
    try:
        return cached.settings()
    except (SettingsError, FileNotFoundError) as exc:
        st.error(f"The settings cannot be read: {exc}", icon="🛑")
        st.stop()


def _key_missing() -> Refusal | None:
    """Outside demo mode the databases need the pseudonym key; without it nothing starts."""
    try:
        cached.databases()
    except PseudonymKeyMissing as exc:
        message = str(exc)
        return lambda: st.error(message, icon="🛑")
    return None


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


# --- navigation only ---------------------------------------------------------------------

# Streamlit's pages manager keeps, process-wide, whether the app is in "pages folder" mode
# (each file in pages/ served on its own, listed in the sidebar). st.navigation leaves that
# mode the same way. This is a private attribute: tests/test_gate.py fails if it disappears,
# and nothing but navigation depends on it.
_PAGES_FOLDER_FLAG = "uses_pages_directory"


def _leave_pages_folder_mode() -> None:
    """After the gate let a visitor through on a page served on its own: leave "pages
    folder" mode and rerun, so that dashboard.py (sidebar, "as of" date, navigation) serves
    the same page."""
    if getattr(PagesManager, _PAGES_FOLDER_FLAG, None):
        setattr(PagesManager, _PAGES_FOLDER_FLAG, False)
        st.rerun()


def not_a_page() -> None:
    """For the shared modules in pages/ (their names start with "_"), which Streamlit's
    "pages folder" mode would also serve as pages: the gate, then a pointer to the
    dashboard; they show nothing of their own."""
    require_access()
    st.info("This address is not a page of the dashboard.", icon="ℹ️")


if __name__ == "__main__":  # served as a page in "pages folder" mode
    not_a_page()
