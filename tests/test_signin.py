"""Sign-in and roles (RULES.md R41; DESIGN.md "Sign-in"), through the dashboard in AppTest.

- Demo mode (every database a demo SQLite file, no [auth]) runs without sign-in, with a
  banner, and the demo user acts as DPO.
- Any other database without [auth] refuses to start and says which database and what to
  configure.
- With [auth], nobody sees a page before signing in; a signed-in user needs a verified
  e-mail and a role in config.toml [roles]. Viewers browse and export; only DPOs act, and
  what they do is recorded under their e-mail.

AppTest's `at.user` stands in for the identity provider (`seeded.sign_in`); the real
OpenID Connect flow runs in tests/test_browser.py.
"""

from __future__ import annotations

import os

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from data_access import audit, cached
from data_access.settings import STORES, DatabaseSettings
from pages import _ui as ui
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF
from tests.seeded import DPO_EMAIL, VIEWER_EMAIL, sign_in, write_config
from tests.test_pages import PAGES, _navigation_as_served, texts  # noqa: F401

seeded_demo = seeded.seeded_demo
app_env = seeded.app_env

SERVER_URL = "postgresql+psycopg://dpo_app:s3cret-password@db.plaato.example:5432/users"
DEMO_BANNER = "Demo mode: embedded demo databases, no sign-in"


def run_app(*, email: str | None = None, page: str | None = None, **claims) -> AppTest:
    """The dashboard as of SEED_AS_OF; signed in as `email` (with sign-in configured) when
    given, signed out with sign-in configured when email is "" and no sign-in when None."""
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.session_state["as_of"] = SEED_AS_OF
    if email is not None:
        sign_in(at, email, **claims)
        if not email:
            at.user = {"is_logged_in": False}
    at.run(timeout=60)
    if page:
        at.switch_page(f"pages/{page}.py").run(timeout=60)
    return at


def buttons(at: AppTest) -> set[str]:
    """Keys of the buttons on screen that are not exports, forms or sign-out: the actions."""
    keys = {b.key for b in at.button}
    return {
        k
        for k in keys
        if k and not k.startswith(("export:", "FormSubmitter:")) and k not in {"sign_out"}
    }


# --- pure rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "email"),
    [
        (
            {"email": " Kari.Nordmann@Plaato.Example ", "email_verified": True},
            "kari.nordmann@plaato.example",
        ),
        ({"email": "kari@plaato.example", "email_verified": "true"}, "kari@plaato.example"),
        ({"email": "kari@plaato.example"}, "kari@plaato.example"),  # no claim (Entra ID)
        ({"email": "kari@plaato.example", "email_verified": False}, None),
        ({"email": "kari@plaato.example", "email_verified": "false"}, None),
        ({"email": "kari@plaato.example", "email_verified": None}, None),
        ({"email_verified": True}, None),
        ({"email": "not-an-address", "email_verified": True}, None),
        ({"email": 42}, None),
        # Look-alikes: the Kelvin sign lower-cases to "k", the full-width k is NFKC "k".
        ({"email": "\u212aari@plaato.example", "email_verified": True}, None),
        ({"email": "\uff4bari@plaato.example", "email_verified": True}, None),
    ],
)
def test_r41_actor_is_the_verified_email(claims, email):
    found, problem = ui.verified_email(claims)
    assert found == email
    assert (problem is None) == (email is not None)


def test_r41_settings_name_the_databases_that_are_not_demo_files(tmp_path):
    from data_access.settings import load_settings

    config = write_config(tmp_path, tmp_path / "data")
    demo = load_settings(config, environ={})
    assert demo.demo_mode and demo.not_demo_files() == []

    # The same demo file spelled through a relative path still counts as the demo file.
    relative = os.path.relpath(tmp_path / "data" / "users.sqlite")
    assert load_settings(config, environ={"DPO_USERS_URL": f"sqlite:///{relative}"}).demo_mode

    other = load_settings(
        config, environ={"DPO_USERS_URL": SERVER_URL, "DPO_LEDGER_URL": "sqlite:////srv/l.db"}
    )
    assert not other.demo_mode
    assert other.not_demo_files() == ["users", "ledger"]
    assert other.database_description("users") == "$DPO_USERS_URL: a postgresql+psycopg URL"
    assert other.database_description("ledger") == "$DPO_LEDGER_URL: the SQLite file /srv/l.db"


# --- without sign-in -----------------------------------------------------------------------


def test_r41_demo_mode_runs_without_signin_with_a_banner_as_the_demo_dpo(app_env):
    at = run_app(page="accounts_nearing_deletion")

    assert not at.exception
    assert DEMO_BANNER in texts(at.info)
    assert "Signed in as" not in texts(at.sidebar.text)
    assert "Actions are for the DPO role" not in texts(at.caption)
    assert st.get_option("client.showErrorDetails") == "full"
    assert st.get_option("client.disableDataExport") is True  # only the audited export (R40)


def test_r41_a_postgresql_url_without_signin_refuses_to_start(app_env, monkeypatch):
    monkeypatch.setenv("DPO_USERS_URL", SERVER_URL)

    at = run_app()

    assert not at.exception
    message = texts(at.error)
    assert "The dashboard will not start: sign-in is not configured" in message
    assert "the users database ($DPO_USERS_URL: a postgresql+psycopg URL)" in message
    assert "`.streamlit/secrets.toml` under `[auth]`" in message
    assert "unset DPO_USERS_URL to run the demo" in message
    assert "s3cret" not in message  # the URL's password is never shown
    assert not at.title  # no page ran
    assert DEMO_BANNER not in texts(at.info)
    assert st.get_option("client.showErrorDetails") == "none"


def test_r41_sqlite_files_that_are_not_the_demo_files_also_refuse(app_env, monkeypatch, tmp_path):
    # The seeded files are real SQLite databases, but config.toml's demo_dir is elsewhere.
    monkeypatch.setattr(cached, "CONFIG_PATH", write_config(tmp_path, tmp_path / "elsewhere"))

    at = run_app()

    message = texts(at.error)
    for store in STORES:
        variable = getattr(DatabaseSettings(), f"{store}_url_env")
        assert f"the {store} database (${variable}: the SQLite file " in message
    assert not at.title


# --- with sign-in --------------------------------------------------------------------------


def test_r41_with_signin_configured_a_visitor_sees_only_the_sign_in_page(app_env):
    at = run_app(email="")

    assert [t.value for t in at.title] == ["DPO Dashboard"]
    assert at.button(key="sign_in").label == "Sign in"
    assert not at.dataframe and not at.metric
    # Sign-in is required even on the demo files, and there is no demo banner.
    assert DEMO_BANNER not in texts(at.info)
    assert st.get_option("client.showErrorDetails") == "none"


def test_r41_a_signed_in_user_without_a_role_has_no_access(app_env):
    at = run_app(email="someone.else@plaato.example", email_verified=True)

    assert [t.value for t in at.title] == ["No access"]
    # The e-mail is shown as text: its Markdown characters escaped.
    assert texts(at.error) == (
        f"You are signed in as {ui.escape_markdown('someone.else@plaato.example')}, but that "
        "address has no role in the dashboard. Ask the DPO to add it to config.toml under "
        "[roles] (dpo or viewer)."
    )
    assert at.button(key="sign_out").label == "Sign out"
    assert not at.dataframe


def test_r41_an_unverified_email_has_no_access_even_with_a_role(app_env):
    at = run_app(email=DPO_EMAIL, email_verified=False)

    assert [t.value for t in at.title] == ["No access"]
    assert "has not verified the e-mail address" in texts(at.error)
    assert not at.dataframe


def test_r41_a_kelvin_sign_look_alike_of_a_dpo_has_no_access(app_env, monkeypatch, tmp_path):
    config = write_config(tmp_path, app_env.folder)
    config.write_text(config.read_text().replace(DPO_EMAIL, "kari@plaato.example"))
    monkeypatch.setattr(cached, "CONFIG_PATH", config)
    at = run_app(email="\u212aari@plaato.example", email_verified=True)

    assert [t.value for t in at.title] == ["No access"]
    assert "changes under Unicode NFKC normalisation" in texts(at.error)
    assert not at.dataframe and not at.metric


def test_r41_roles_match_the_email_case_insensitively(app_env):
    at = run_app(email=DPO_EMAIL.upper(), email_verified=True)

    assert [t.value for t in at.title] == ["Overview"]
    assert f"Signed in as {DPO_EMAIL} (dpo)" in texts(at.sidebar.text)


@pytest.mark.parametrize("page", list(PAGES))
def test_r41_a_viewer_browses_every_page_without_action_buttons(app_env, page):
    at = run_app(email=VIEWER_EMAIL, email_verified=True, page=page)

    assert not at.exception, texts(at.exception)
    assert [t.value for t in at.title] == [PAGES[page]]
    assert buttons(at) == set()
    assert f"Signed in as {VIEWER_EMAIL} (viewer)" in texts(at.sidebar.text)


def test_r41_a_viewer_exports_and_the_export_is_recorded_under_the_viewer(app_env):
    at = run_app(email=VIEWER_EMAIL, email_verified=True, page="accounts_nearing_deletion")
    before = len(audit.audit_entries(app_env.dbs, action="export"))

    at.button(key="export:accounts-nearing-deletion:accounts:prepare").click().run(timeout=60)

    entries = audit.audit_entries(app_env.dbs, action="export")
    assert len(entries) == before + 1
    assert entries.iloc[0]["actor"] == VIEWER_EMAIL
    assert entries.iloc[0]["target"] == "accounts-nearing-deletion/accounts"


def test_r40_plain_csv_keeps_formulas_so_only_a_dpo_is_offered_it_with_a_warning(app_env):
    key = "export:accounts-nearing-deletion:accounts:format"
    viewer = run_app(email=VIEWER_EMAIL, email_verified=True, page="accounts_nearing_deletion")
    assert viewer.radio(key=key).options == ["CSV for Excel", "Excel workbook (.xlsx)"]

    dpo = run_app(email=DPO_EMAIL, email_verified=True, page="accounts_nearing_deletion")
    assert "Plain CSV (comma, for tools; unsafe in spreadsheets)" in dpo.radio(key=key).options
    assert ui.PLAIN_CSV_WARNING not in texts(dpo.caption)
    dpo.radio(key=key).set_value("plain").run(timeout=60)
    assert ui.PLAIN_CSV_WARNING in texts(dpo.caption)


def test_r41_a_dpo_signed_in_is_the_actor_of_an_export(app_env):
    at = run_app(email=DPO_EMAIL, email_verified=True, page="legal_holds")

    at.button(key="export:legal-holds:active-holds:prepare").click().run(timeout=60)

    newest = audit.audit_entries(app_env.dbs, action="export").iloc[0]
    assert newest["actor"] == DPO_EMAIL
    assert newest["target"] == "legal-holds/active-holds"
