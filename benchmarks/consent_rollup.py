"""Time the consent roll-up against the naive way (a window-function query over all events
per render) on SQLite, at the large demo scale (10,000,000 consent events).

    python benchmarks/consent_rollup.py [--folder DIR] [--scale large] [--as-of 2026-11-29]

Without --folder, the demo data of --scale is generated into a temporary folder (about
3.5 GB and a few minutes for large) and deleted afterwards; with --folder, the four demo
SQLite files there are used and 100,000 benchmark events are added to its consent database
(and removed again at the end). Targets (DESIGN.md "Scale and speed"): the Consent page's
data calls <= 0.5 s warm; an incremental refresh after 100,000 new events <= 5 s; the first
full build, with progress, <= 3 minutes. The naive figures are the same calls answered by
`consent._direct_*`. At the end the roll-up's answers are checked against the direct ones.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, func, insert, select, update  # noqa: E402

from data_access import consent, consent_rollup, demo, rules  # noqa: E402
from data_access.engines import Databases  # noqa: E402
from data_access.ledger_tables import consent_rollup_recent, consent_rollup_state  # noqa: E402
from data_access.settings import STORES  # noqa: E402
from data_access.tables import CONSENT_PURPOSES, consent_events  # noqa: E402

NEW_EVENTS = 100_000
TARGETS = {"page": 0.5, "incremental": 5.0, "build": 180.0}


def page_calls(as_of: date, direct: bool):
    """The Consent page's data calls for `as_of` (rates on two days, 12-month trend,
    breakdowns by source and notice version, withdrawals in the trend period)."""
    start = rules.add_months(as_of.replace(day=1), -11)
    compare = rules.add_months(as_of, -6)
    if direct:
        return [
            ("rates", lambda dbs: consent._direct_rates(dbs, as_of)),
            ("rates, second day", lambda dbs: consent._direct_rates(dbs, compare)),
            ("trend, 12 months", lambda dbs: consent._direct_trend(dbs, start, as_of)),
            ("by source", lambda dbs: consent._direct_breakdown(dbs, as_of, "source")),
            (
                "by notice version",
                lambda dbs: consent._direct_breakdown(dbs, as_of, "notice_version"),
            ),
            ("withdrawals", lambda dbs: consent._direct_withdrawals(dbs, start, as_of)),
        ]
    return [
        ("refresh (nothing new)", lambda dbs: consent_rollup.refresh(dbs)),
        ("rates", lambda dbs: consent.consent_rates(dbs, as_of)),
        ("rates, second day", lambda dbs: consent.consent_rates(dbs, compare)),
        ("trend, 12 months", lambda dbs: consent.consent_trend(dbs, start, as_of)),
        ("by source", lambda dbs: consent.breakdown(dbs, as_of, by="source")),
        ("by notice version", lambda dbs: consent.breakdown(dbs, as_of, by="notice_version")),
        ("withdrawals", lambda dbs: consent.withdrawals(dbs, start, as_of)),
    ]


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - started, value


def render(dbs: Databases, as_of: date, *, direct: bool, label: str) -> float:
    """One warm render's data calls. The roll-up's calls run once before (warm caches); the
    naive ones read the events the build has just read (warm in the operating system's
    cache) and take minutes each, so they run once."""
    calls = page_calls(as_of, direct)
    if not direct:
        for _name, call in calls:
            call(dbs)
    total = 0.0
    for name, call in calls:
        seconds, _ = timed(call, dbs)
        total += seconds
        print(f"    {label:<8} {name:<24} {seconds:8.3f} s", flush=True)
    return total


def add_events(dbs: Databases, as_of: date, n: int, seed: int = 7) -> tuple[int, int]:
    """`n` new events after the newest id: new visitors' banner choices, later choices of
    existing accounts, and one in ten dated days before the subject's latest event (late
    arrivals). Returns the id range added."""
    r = random.Random(seed)
    with dbs.consent.connect() as conn:
        top = int(conn.execute(select(func.max(consent_events.c.id))).scalar_one())
        accounts = int(conn.execute(select(func.max(consent_events.c.account_id))).scalar() or 1)
    noon = datetime.combine(as_of, datetime.min.time()) + timedelta(hours=11)
    rows = []
    for i in range(n):
        back = timedelta(days=r.randint(1, 400)) if i % 10 == 1 else timedelta(seconds=i % 3600)
        account = r.randint(1, accounts) if i % 2 else None
        rows.append(
            {
                "id": top + 1 + i,
                "account_id": account,
                "email": None,
                "visitor_id": None if account else f"bench-{seed}-{i // 2}",
                "purpose": r.choice(CONSENT_PURPOSES),
                "action": r.choice(("granted", "withdrawn")),
                "occurred_at": noon - back,
                "source": r.choice(("app", "cookie_banner", "web")),
                "notice_version": None,
            }
        )
    with dbs.consent.begin() as conn:
        for start in range(0, n, 20_000):
            conn.execute(insert(consent_events), rows[start : start + 20_000])
    return top + 1, top + n


def refresh_rounds(dbs: Databases, as_of: date, most: int = 14) -> tuple[list[dict], int]:
    """Rounds of NEW_EVENTS new events and a refresh, until a refresh has merged the
    recent histories into the large table (or `most` rounds). Returns per round the recent
    rows before it, the seconds and the rows merged (0: none), and the last id added."""
    print(f"\nFurther rounds of {NEW_EVENTS:,} new events until the recent histories merge:")
    rounds, last_id = [], 0
    for seed in range(8, 8 + most):
        recent = _recent_rows(dbs)
        _first, last_id = add_events(dbs, as_of, NEW_EVENTS, seed=seed)
        seconds, refreshed = timed(consent_rollup.refresh, dbs)
        merged = refreshed.merged
        rounds.append({"recent": recent, "seconds": seconds, "merged": merged})
        note = f", merged {merged:,} rows into the large table" if merged else ""
        print(f"    {recent:>9,} recent rows before: {seconds:6.2f} s{note}", flush=True)
        if merged:
            break
    return rounds, last_id


def _recent_rows(dbs: Databases) -> int:
    with dbs.ledger.connect() as conn:
        return conn.execute(select(func.count()).select_from(consent_rollup_recent)).scalar_one()


def same_answers(dbs: Databases, as_of: date) -> bool:
    start = rules.add_months(as_of.replace(day=1), -11)
    pairs = [
        (consent.consent_rates(dbs, as_of), consent._direct_rates(dbs, as_of)),
        (consent.consent_trend(dbs, start, as_of), consent._direct_trend(dbs, start, as_of)),
        (consent.breakdown(dbs, as_of), consent._direct_breakdown(dbs, as_of, "source")),
        (consent.withdrawals(dbs, start, as_of), consent._direct_withdrawals(dbs, start, as_of)),
    ]
    return all(a.equals(b) for a, b in pairs)


def run(folder: Path, as_of: date, *, naive: bool = True) -> None:
    dbs = Databases.from_urls(
        **{s: f"sqlite:///{folder / f'{s}.sqlite'}" for s in STORES}, pseudonym_key=b"bench"
    )
    dbs.create_all()
    with dbs.consent.connect() as conn:
        events = conn.execute(select(func.count()).select_from(consent_events)).scalar_one()
    print(f"{events:,} consent events in {folder}\n")

    with dbs.ledger.begin() as conn:  # a first build: forget any earlier or interrupted one
        conn.execute(
            update(consent_rollup_state).values(status="empty", build_token=None, watermark=0)
        )
    print("First full build (Rebuild), with progress:")
    last = {"tenth": -1}

    started = time.perf_counter()

    def progress(fraction: float, message: str) -> None:
        if int(fraction * 10) != last["tenth"]:
            last["tenth"] = int(fraction * 10)
            elapsed = time.perf_counter() - started
            print(f"    {elapsed:6.1f} s  {fraction:4.0%}  {message}", flush=True)

    build, result = timed(
        consent_rollup.rebuild, dbs, actor="benchmark@localhost", progress=progress
    )
    assert result.ok, result.failed

    # The roll-up's figures first, the naive ones (minutes of queries) at the end.
    print("\nOne render of the Consent page's data calls, warm:")
    page = render(dbs, as_of, direct=False, label="roll-up")

    print(f"\nIncremental refresh after {NEW_EVENTS:,} new events:")
    first_id, last_id = add_events(dbs, as_of, NEW_EVENTS)
    incremental, refreshed = timed(consent_rollup.refresh, dbs)
    print(f"    {incremental:.2f} s: applied {refreshed.applied:,}, recomputed ", end="")
    print(f"{refreshed.recomputed:,} subjects")
    rounds, last_id = refresh_rounds(dbs, as_of)
    print("\nThe naive way, once per render:")
    naive_page = render(dbs, as_of, direct=True, label="naive") if naive else 0.0
    equal = same_answers(dbs, as_of) if naive else "not checked (--skip-naive)"

    unmerged = [r for r in rounds if not r["merged"]]
    slowest = max(unmerged, key=lambda r: r["seconds"]) if unmerged else None
    merging = next((r for r in rounds if r["merged"]), None)
    rows = [
        ("Consent page data calls, warm", page, naive_page, TARGETS["page"]),
        (f"After {NEW_EVENTS:,} new events", incremental, naive_page, TARGETS["incremental"]),
    ]
    if slowest:
        name = f"  same, {slowest['recent']:,} recent rows"
        rows.append((name, slowest["seconds"], naive_page, TARGETS["incremental"]))
    if merging:
        name = f"  same, merging {merging['merged']:,} rows"
        rows.append((name, merging["seconds"], naive_page, TARGETS["incremental"]))
    rows.append(("First full build", build, naive_page, TARGETS["build"]))
    print(f"\n{'figure':<34}{'roll-up':>10}{'naive':>10}{'ratio':>8}{'target':>9}")
    for name, ours, naive, target in rows:
        ratio = f"{naive / ours:.0f}x" if ours and naive else "-"
        mark = "ok" if ours <= target else "MISSED"
        print(f"{name:<34}{ours:>9.2f}s{naive:>9.2f}s{ratio:>8}{target:>8.1f}s {mark}")
    print(
        "\nNaive = the same calls answered by a window-function query over all events, once "
        "per render\n(measured after the new events); the first build is compared with one "
        "naive render."
    )
    print(f"Roll-up answers equal the direct computation after the refresh: {equal}")

    with dbs.consent.begin() as conn:  # leave the data as it was
        conn.execute(delete(consent_events).where(consent_events.c.id.between(first_id, last_id)))
    dbs.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="existing demo SQLite files")
    parser.add_argument("--scale", default="large")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 29))
    parser.add_argument(
        "--skip-naive",
        action="store_true",
        help="time the roll-up only (the naive way takes minutes)",
    )
    args = parser.parse_args()
    if args.folder:
        run(args.folder, args.as_of, naive=not args.skip_naive)
        return 0
    with tempfile.TemporaryDirectory(prefix="consent-rollup-") as folder:
        dbs = Databases.from_urls(
            **{s: f"sqlite:///{Path(folder) / f'{s}.sqlite'}" for s in STORES},
            pseudonym_key=b"bench",
        )
        print(f"Generating the {args.scale} demo data in {folder} ...", flush=True)
        demo.generate(dbs, scale=args.scale, seed=42, as_of=args.as_of, progress=None)
        dbs.dispose()
        run(Path(folder), args.as_of, naive=not args.skip_naive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
