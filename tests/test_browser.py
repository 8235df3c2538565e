"""The real sign-in, in headless Chromium (RULES.md R40, R41; DESIGN.md "Sign-in").

oidc-provider-mock serves OpenID Connect on http://localhost; the dashboard runs with
`streamlit run` on a private copy of the seeded small demo with [auth] configured, so
everyone signs in. A viewer visits every page and finds no action button; a DPO acts and
downloads a CSV, and every audit entry written meanwhile names the DPO. Screenshots are
saved under artifacts/browser/ (git-ignored).

Marked `browser`; it needs /usr/bin/chromium and runs in CI (CI=true fails instead of
skipping when Chromium is missing).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator

import pytest

from data_access import audit, retention
from data_access.clock import today_oslo
from data_access.engines import Databases
from data_access.settings import STORES
from tests import browser_support as support
from tests import seeded
from tests.conftest import IN_CI

pytestmark = pytest.mark.browser

seeded_demo = seeded.seeded_demo

DPO = seeded.DPO_EMAIL
VIEWER = seeded.VIEWER_EMAIL
NO_ROLE = "visitor@plaato.example"
USERS = [
    {"sub": DPO, "email": DPO, "email_verified": True, "name": "Dina Personvern"},
    {"sub": VIEWER, "email": VIEWER, "email_verified": True, "name": "Vidar Leser"},
    {"sub": NO_ROLE, "email": NO_ROLE, "email_verified": True, "name": "Vera Besøk"},
]
# Every page: its URL path (from the file name, as st.navigation serves it) and its title.
PAGES = {
    "": "Overview",
    "accounts_nearing_deletion": "Accounts nearing deletion",
    "retention": "Retention",
    "legal_holds": "Legal holds",
    "data_subject_requests": "Data-subject requests",
    "consent": "Consent",
    "register": "Register",
    "subject_lookup": "Subject lookup",
    "audit_log": "Audit log",
    "radar": "Deadline radar",
    "retention_schedule": "Retention schedule",
}
# Buttons every signed-in user may see: exports and signing out. Anything else is an action.
NOT_ACTIONS = {"Prepare export", "Sign out"}
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator:
    if not os.access(support.CHROMIUM, os.X_OK):
        message = f"{support.CHROMIUM} is not installed"
        if IN_CI:
            pytest.fail(f"{message}: CI must run the browser tests")
        pytest.skip(message)
    with support.chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def servers(seeded_demo, tmp_path_factory):
    """The OpenID Connect provider and the dashboard on a private copy of the demo."""
    folder = tmp_path_factory.mktemp("browser")
    demo_dir = support.copy_demo(seeded_demo.folder, folder / "demo")
    roles = {DPO: "dpo", VIEWER: "viewer"}
    with support.oidc_provider(USERS, folder) as provider:
        with support.dashboard(
            folder, provider=provider, demo_dir=demo_dir, roles=roles, key=seeded.PSEUDONYM_KEY
        ) as app:
            dbs = Databases.from_urls(
                **{s: app.database_url(s) for s in STORES}, pseudonym_key=seeded.PSEUDONYM_KEY
            )
            yield provider, app, dbs
            dbs.dispose()


def wait_idle(page) -> None:
    """Wait until the script run is over (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(300)


def sign_in(browser, servers, email: str):
    """A new browser context signed in as `email` through the provider's sign-in form."""
    _, app, _ = servers
    context = browser.new_context(accept_downloads=True, viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app.url)
    choose_user(page, email)
    page.get_by_role("heading", name="Overview").wait_for()
    wait_idle(page)
    return page


def choose_user(page, email: str) -> None:
    """Press "Sign in", then pick `email` on the provider's form: one button per
    predefined user (`<button name="sub" value="<sub>">`)."""
    page.get_by_role("button", name="Sign in").click()
    page.locator(f'button[name="sub"][value="{email}"]').click()


def visit(page, app, path: str, title: str) -> None:
    page.goto(f"{app.url}/{path}")
    page.get_by_role("heading", name=title, exact=True).wait_for()
    wait_idle(page)


def button_labels(page) -> set[str]:
    """Labels of the st.button buttons on screen (not form submits or downloads)."""
    texts = page.locator('[data-testid="stButton"] button').all_inner_texts()
    return {t.strip() for t in texts}


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_r41_a_viewer_signs_in_and_finds_no_action_button_on_any_page(chromium_browser, servers):
    _, app, _ = servers
    page = sign_in(chromium_browser, servers, VIEWER)
    try:
        assert f"Signed in as {VIEWER} (viewer)" in sidebar_text(page)
        for path, title in PAGES.items():
            visit(page, app, path, title)
            support.screenshot(page, f"viewer-{path or 'overview'}")
            assert button_labels(page) <= NOT_ACTIONS, f"{title}: {button_labels(page)}"
    finally:
        page.context.close()


def test_r41_a_user_without_a_role_sees_no_access(chromium_browser, servers):
    page = sign_in_without_role(chromium_browser, servers)
    try:
        support.screenshot(page, "no-role")
        assert (
            "has no role in the dashboard" in page.locator('[data-testid="stAlert"]').inner_text()
        )
        assert page.locator('[data-testid="stDataFrame"]').count() == 0
    finally:
        page.context.close()


@pytest.mark.parametrize("path", ["subject_lookup", "audit_log", "ui"])
def test_r41_the_first_visitor_of_a_fresh_server_opening_a_page_link_must_sign_in(
    chromium_browser, servers, seeded_demo, tmp_path, path
):
    # Until the dashboard has run once, Streamlit serves each file in pages/ on its own;
    # every page first sends such a visit back through the dashboard's sign-in gate.
    provider, _, _ = servers
    demo_dir = support.copy_demo(seeded_demo.folder, tmp_path / "demo")
    roles = {DPO: "dpo"}
    with support.dashboard(
        tmp_path, provider=provider, demo_dir=demo_dir, roles=roles, key=seeded.PSEUDONYM_KEY
    ) as fresh:
        context = chromium_browser.new_context(viewport={"width": 1500, "height": 1100})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{fresh.url}/{path}")
            page.get_by_role("button", name="Sign in").wait_for()
            wait_idle(page)
            support.screenshot(page, f"fresh-server-{path}")
            headings = page.locator("h1").all_inner_texts()
            assert [h.strip() for h in headings] == ["DPO Dashboard"]
            assert page.locator('[data-testid="stDataFrame"]').count() == 0
            assert page.locator('[data-testid="stTextInput"]').count() == 0
        finally:
            context.close()


@pytest.mark.parametrize("stagger_ms", [0, 300])
def test_r41_twelve_visitors_of_a_fresh_server_see_no_personal_data_before_sign_in(
    chromium_browser, servers, seeded_demo, tmp_path, stagger_ms
):
    # Every page address opened at once (then 300 ms apart) in fresh browser contexts on a
    # server that has served nothing yet: the race for Streamlit's "pages folder" mode.
    provider, _, _ = servers
    demo_dir = support.copy_demo(seeded_demo.folder, tmp_path / "demo")
    with support.dashboard(
        tmp_path, provider=provider, demo_dir=demo_dir, roles={DPO: "dpo"}, key=seeded.PSEUDONYM_KEY
    ) as fresh:
        assert (
            support.leaks_before_sign_in(chromium_browser, fresh.url, stagger_ms=stagger_ms) == []
        )


def sign_in_without_role(browser, servers):
    _, app, _ = servers
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app.url)
    choose_user(page, NO_ROLE)
    page.get_by_role("heading", name="No access").wait_for()
    wait_idle(page)
    return page


def only_ready_accounts(page) -> None:
    """Filter the Accounts page to the stage "Ready to delete" (remove the other chips)."""
    stages = page.get_by_test_id("stMultiSelect")
    for label in ("Upcoming", "Notice due", "Notified", "On hold"):
        stages.locator(f'[aria-label="Remove {label}"]').click()
    page.get_by_role("button", name="Apply").click()
    wait_idle(page)


def select_first_row(page) -> None:
    """Tick the first row's checkbox in the first table (the grid is drawn on a canvas, so
    the click goes to the checkbox's position: header row, then half a row down)."""
    box = page.get_by_test_id("stDataFrame").first.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    wait_idle(page)


def test_r40_r41_a_dpo_approves_a_deletion_downloads_a_csv_and_is_named_in_the_audit_log(
    chromium_browser, servers, tmp_path
):
    _, app, dbs = servers
    day = today_oslo()
    before = int(audit.audit_entries(dbs, limit=1)["id"].max())
    ready = retention.accounts_nearing_deletion(dbs, day, 30, stages=["ready"])
    assert len(ready) >= 2, "the demo has accounts ready for deletion"
    doomed = int(ready["account_id"].iloc[0])
    page = sign_in(chromium_browser, servers, DPO)
    try:
        assert f"Signed in as {DPO} (dpo)" in sidebar_text(page)
        visit(page, app, "accounts_nearing_deletion", "Accounts nearing deletion")
        support.screenshot(page, "dpo-accounts")
        assert "Approve deletion (0)" in button_labels(page)  # a DPO has the actions

        only_ready_accounts(page)
        select_first_row(page)
        page.get_by_role("button", name="Approve deletion (1)").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Delete 1 account(s)").click()
        page.get_by_text("Approve deletion: 1 succeeded, 0 failed.").wait_for()
        wait_idle(page)
        support.screenshot(page, "dpo-approved-deletion")

        # The tables' own "Download as CSV" is off: every download is the audited export.
        assert page.get_by_role("button", name="Download as CSV").count() == 0
        page.get_by_role("button", name="Prepare export").first.click()
        download_button = page.get_by_test_id("stDownloadButton").get_by_role("button")
        download_button.wait_for()
        with page.expect_download() as info:
            download_button.first.click()
        download = info.value
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        support.screenshot(page, "dpo-accounts-export")
    finally:
        page.context.close()

    # The approved account is gone (R13, R14).
    assert retention.account_states(dbs, [doomed], day).empty
    # The download holds the filtered list as it stands after the deletion (R40).
    assert download.suggested_filename == f"accounts-nearing-deletion-accounts-{day}-excel.csv"
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # CSV for Excel: UTF-8 with BOM
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Account"  # headed as on screen
    assert [int(r[0]) for r in rows[1:]] == list(ready["account_id"].iloc[1:])
    # Every audit entry written meanwhile names the DPO (R18, R41).
    entries = audit.audit_entries(dbs)
    new = entries[entries["id"] > before]
    assert set(new["actor"]) == {DPO}
    assert {"account_deletion.planned", "export"} <= set(new["action"])
    exports = new[new["action"] == "export"]
    assert list(exports["target"]) == ["accounts-nearing-deletion/accounts"]
