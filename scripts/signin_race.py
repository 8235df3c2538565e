"""The sign-in race, tried many times: on each try a fresh dashboard server (sign-in
configured, the small demo data) is opened by twelve visitors who have not signed in, every
page address in its own browser context, all at once or `--stagger` ms apart. Prints what
each try's DOMs showed that they must not (a table, an e-mail address, a page heading) and
the total; exits 1 when anything leaked.

    python scripts/signin_race.py [--tries 20] [--stagger 300]

Uses the browser tests' servers (oidc-provider-mock, `streamlit run dashboard.py`) and
Debian's Chromium at /usr/bin/chromium (RULES.md R41; tests/test_browser.py runs two tries).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_access import demo  # noqa: E402
from data_access.engines import Databases  # noqa: E402
from data_access.settings import STORES  # noqa: E402
from tests import browser_support as support  # noqa: E402
from tests.seeded import DEMO_SEED, DPO_EMAIL, PSEUDONYM_KEY, SEED_AS_OF  # noqa: E402

USERS = [{"sub": DPO_EMAIL, "email": DPO_EMAIL, "email_verified": True}]


def small_demo(folder: Path) -> Path:
    """The small demo data generated into `folder` (the demo file names)."""
    folder.mkdir(parents=True, exist_ok=True)
    urls = {store: f"sqlite:///{folder / f'{store}.sqlite'}" for store in STORES}
    dbs = Databases.from_urls(**urls, pseudonym_key=PSEUDONYM_KEY)
    demo.generate(dbs, scale="small", seed=DEMO_SEED, as_of=SEED_AS_OF, progress=None)
    dbs.dispose()
    return folder


def one_try(browser, provider, source: Path, folder: Path, stagger_ms: int) -> list[str]:
    demo_dir = support.copy_demo(source, folder / "demo")
    with support.dashboard(
        folder, provider=provider, demo_dir=demo_dir, roles={DPO_EMAIL: "dpo"}, key=PSEUDONYM_KEY
    ) as fresh:
        return support.leaks_before_sign_in(browser, fresh.url, stagger_ms=stagger_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--stagger", type=int, default=300, help="ms between visitors")
    args = parser.parse_args()
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = small_demo((root / "source").resolve())
        with support.oidc_provider(USERS, root) as provider, support.chromium() as browser:
            for n in range(1, args.tries + 1):
                stagger = 0 if n % 2 else args.stagger
                leaks = one_try(browser, provider, source, root / f"try-{n}", stagger)
                total += len(leaks)
                print(f"try {n:2d} (visitors {stagger} ms apart): {len(leaks)} leak(s)")
                for leak in leaks:
                    print(f"    {leak}")
    print(f"{args.tries} tries, 12 visitors each: {total} leak(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
