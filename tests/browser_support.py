"""Servers and a browser for tests/test_browser.py, all on this machine's loopback.

- `OidcProvider`: oidc-provider-mock, an OpenID Connect provider, on http://localhost:<port>
  (Authlib accepts plain http only for localhost). Its users come from `--user-claims`
  (JSON with "sub", "email", "email_verified"); its sign-in form shows one button per such
  user (`<button name="sub" value="<sub>">`), which is how a test chooses who signs in.
- `Dashboard`: `streamlit run dashboard.py` on its own port, started in a folder holding the
  test's `.streamlit/secrets.toml` ([auth] pointing at the provider) and `config.toml`
  (roles, demo_dir = a private copy of the seeded demo). With [auth] configured, sign-in is
  required even though the databases are the demo files.
- `chromium()`: headless Debian Chromium driven by Playwright's Python API.

Each server runs in its own process, is waited for on its health URL, and is stopped (by its
own process id) when the context manager exits.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from data_access.settings import DatabaseSettings
from tests.conftest import ROOT
from tests.seeded import copy_demo  # noqa: F401 - the browser tests' copy of the demo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "artifacts" / "browser"
START_TIMEOUT_S = 60


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll `url` until it answers 200; fail with the process's log if it exits or the
    START_TIMEOUT_S seconds pass."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {START_TIMEOUT_S} s\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """Stop one server process we started, by its id."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class OidcProvider:
    url: str  # http://localhost:<port>

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"


@contextmanager
def oidc_provider(users: list[dict], folder: Path) -> Iterator[OidcProvider]:
    """oidc-provider-mock on a free loopback port with these predefined users."""
    port = free_port()
    log = folder / "oidc-provider.log"
    command = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)]
    for user in users:
        command += ["--user-claims", json.dumps(user)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        provider = OidcProvider(url=f"http://localhost:{port}")
        wait_for(provider.metadata_url, process, log)
        yield provider
    finally:
        stop(process)


@dataclass(frozen=True)
class Dashboard:
    url: str  # http://localhost:<port>
    folder: Path  # the working folder: .streamlit/, config.toml, the demo copy, the log
    demo_dir: Path

    def database_url(self, store: str) -> str:
        return f"sqlite:///{self.demo_dir / f'{store}.sqlite'}"


def write_dashboard_folder(
    folder: Path, *, port: int, provider: OidcProvider, demo_dir: Path, roles: dict[str, str]
) -> Path:
    """The files the dashboard reads at start: .streamlit/config.toml (the repository's,
    so the same server and client options), .streamlit/secrets.toml with [auth], and the
    dashboard's config.toml with `roles` ({e-mail: role}) and demo_dir. Returns the
    config.toml path."""
    streamlit_dir = folder / ".streamlit"
    streamlit_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / ".streamlit" / "config.toml", streamlit_dir / "config.toml")
    (streamlit_dir / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "dpo-dashboard"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n',
        encoding="utf-8",
    )
    by_role: dict[str, list[str]] = {"dpo": [], "viewer": []}
    for email, role in roles.items():
        by_role[role].append(email)
    config = folder / "config.toml"
    config.write_text(
        f"[databases]\ndemo_dir = {json.dumps(str(demo_dir))}\n\n"
        f"[roles]\ndpo = {json.dumps(by_role['dpo'])}\nviewer = {json.dumps(by_role['viewer'])}\n",
        encoding="utf-8",
    )
    return config


@contextmanager
def dashboard(
    folder: Path, *, provider: OidcProvider, demo_dir: Path, roles: dict[str, str], key: str
) -> Iterator[Dashboard]:
    """`streamlit run dashboard.py` from `folder` on a free port, signing in through
    `provider`, on the demo files in `demo_dir`, with pseudonym key `key`."""
    port = free_port()
    config = write_dashboard_folder(
        folder, port=port, provider=provider, demo_dir=demo_dir, roles=roles
    )
    names = DatabaseSettings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPO_")}
    env.update({"DPO_CONFIG": str(config), names.pseudonym_key_env: key})
    log = folder / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "dashboard.py"),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://localhost:{port}"
        wait_for(f"{url}/_stcore/health", process, log)
        yield Dashboard(url=url, folder=folder, demo_dir=demo_dir)
    finally:
        stop(process)


@contextmanager
def chromium() -> Iterator:
    """Headless Debian Chromium through Playwright (never a downloaded browser build)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact under artifacts/browser/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- visitors who have not signed in ------------------------------------------------------

# Every address a visitor can type: the pages (as st.navigation and "pages folder" mode both
# serve them), the Request page with an id, and the shared modules of pages/, which "pages
# folder" mode also serves.
EVERY_PAGE_PATH = [
    "",
    "accounts_nearing_deletion",
    "retention",
    "legal_holds",
    "data_subject_requests",
    "request?id=2",
    "consent",
    "register",
    "breaches",
    "breach",
    "subject_lookup",
    "audit_log",
    "ui",
    "actions",
]
EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def leaks_before_sign_in(browser, url: str, *, stagger_ms: int = 0) -> list[str]:
    """Open every page address in its own fresh browser context, all at once
    (`stagger_ms` 0) or one every `stagger_ms` ms, without signing in; wait until each
    shows the sign-in button; return what each DOM shows that it must not (a table, an
    e-mail address, a heading other than "DPO Dashboard"), one line per finding."""
    pages = []
    for path in EVERY_PAGE_PATH:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/{path}", wait_until="commit")
        pages.append((path, page))
        if stagger_ms:
            page.wait_for_timeout(stagger_ms)
    findings: list[str] = []
    for path, page in pages:
        try:
            page.get_by_role("button", name="Sign in").wait_for()
            page.wait_for_timeout(1500)  # a page that wrongly renders would have by now
            findings += _forbidden_on(page, path)
        finally:
            page.context.close()
    return findings


def _forbidden_on(page, path: str) -> list[str]:
    found = []
    tables = page.locator('[data-testid="stDataFrame"], [data-testid="stTable"]').count()
    if tables:
        found.append(f"/{path}: {tables} table(s)")
    body = page.locator("body").inner_text()
    if EMAIL_IN_TEXT.search(body):
        found.append(f"/{path}: an e-mail address: {EMAIL_IN_TEXT.search(body).group()}")
    headings = [h.strip() for h in page.locator("h1").all_inner_texts()]
    if headings != ["DPO Dashboard"]:
        found.append(f"/{path}: headings {headings}")
    return found
