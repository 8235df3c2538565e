"""Photograph the Overview page for the README: docs/overview.png.

Starts `streamlit run dashboard.py` headless on a free port on the demo data (the database
URL variables are removed from the server's environment, so the first start generates the
demo data if `data/` is empty), opens it in headless Chromium through Playwright, waits until
the Overview has drawn its figures and nothing is running, saves a full-page PNG and stops
the server.

    python scripts/screenshot_overview.py [OUTPUT.png] [--timeout SECONDS]

Uses Debian's Chromium at /usr/bin/chromium; Playwright's own browser download is not needed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Removed from the server's environment so it runs in demo mode on the files under data/.
DATABASE_VARIABLES = (
    "DPO_USERS_URL",
    "DPO_CONSENT_URL",
    "DPO_SUPPORT_URL",
    "DPO_LEDGER_URL",
    "DPO_PSEUDONYM_KEY",
)
WIDTH, HEIGHT = 1440, 900

# True once the page has its figures and Streamlit is idle: a metric is drawn, the "Running"
# status widget is gone, no element is greyed out as stale and no progress bar or skeleton
# (demo data being generated, a chart loading) remains.
READY = """(title) => {
  const headings = [...document.querySelectorAll('h1, h2')].map(h => h.innerText.trim());
  if (!headings.some(t => t.startsWith(title))) return false;
  if (document.querySelectorAll('[data-testid="stMetric"]').length === 0) return false;
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  if (status && /Running/i.test(status.innerText)) return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  if (document.querySelector('[data-testid="stProgress"], [data-testid="stSkeleton"]')) return false;
  return true;
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(app: Path, port: int, log) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in DATABASE_VARIABLES}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_health(server: subprocess.Popen, url: str, deadline: float) -> None:
    """Until Streamlit's health endpoint answers "ok"; raises if the server exits or times out."""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer on {url}")


def wait_until_ready(page: Page, title: str, deadline: float) -> None:
    """Until READY has held for two seconds in a row (a rerun may start right after a run)."""
    steady_since = None
    while time.monotonic() < deadline:
        if page.evaluate(READY, title):
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= 2:
                return
        else:
            steady_since = None
        page.wait_for_timeout(500)
    raise TimeoutError(f"the {title} page did not finish drawing")


def full_page_png(page: Page, output: Path) -> None:
    """Streamlit scrolls inside its main block, not the body: grow the viewport to the
    content's height first so the full-page screenshot holds all of it."""
    height = page.evaluate(
        """() => Math.max(
            document.body.scrollHeight,
            ...[...document.querySelectorAll('[data-testid="stMain"], section.main')]
                .map(e => e.scrollHeight))"""
    )
    page.set_viewport_size({"width": WIDTH, "height": max(HEIGHT, min(int(height) + 40, 8000))})
    page.wait_for_timeout(1000)
    output.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(output), full_page=True)


def screenshot(app: Path, output: Path, *, title: str, timeout: float) -> None:
    """Run `app` on a free port, photograph the page once `title` has drawn, stop the server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as log:
        server = start_server(app, port, log)
        try:
            wait_for_health(server, url, deadline)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                    page.goto(url, wait_until="domcontentloaded")
                    wait_until_ready(page, title, deadline)
                    full_page_png(page, output)
                finally:
                    browser.close()
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace")[-4000:])
            raise
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "output", nargs="?", type=Path, default=ROOT / "docs" / "overview.png", help="PNG to write"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds to wait in all (the first start generates the demo data)",
    )
    parser.add_argument("--app", type=Path, default=ROOT / "dashboard.py", help=argparse.SUPPRESS)
    parser.add_argument("--title", default="Overview", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    screenshot(args.app.resolve(), args.output.resolve(), title=args.title, timeout=args.timeout)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
