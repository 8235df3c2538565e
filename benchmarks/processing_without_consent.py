"""Time the R22 finding "usage sessions without consent" at the large demo scale
(5,000,000 usage sessions, 10,000,000 consent events) on SQLite, against the naive way.

    python benchmarks/processing_without_consent.py --folder DIR [--as-of 2026-11-29]

DIR holds the four demo SQLite files (`python -m data_access.demo --scale large` with a
config.toml pointing there, or the folder `benchmarks/consent_rollup.py` generates). The
dashboard's way (`consent.processing_without_consent`) sends each account's spans without a
granted usage_statistics state to the users database, which finds the sessions in them
through its index. The naive way streams every session past the accounts' consent
timelines in Python, once in storage order and once newest first (as the page lists them,
and as the dashboard did before). The answers are compared: the same sessions with the
same states.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from bisect import bisect_right
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from data_access import consent  # noqa: E402
from data_access.clock import day_end_utc  # noqa: E402
from data_access.engines import Databases  # noqa: E402
from data_access.settings import STORES  # noqa: E402
from data_access.tables import consent_events, usage_sessions  # noqa: E402

ROWS_SHOWN = 1_000


def naive_findings(dbs: Databases, as_of: date, newest_first: bool) -> dict[int, str]:
    """session id -> state at its start, for every session without a granted state: every
    session read and looked up in its account's timeline; `newest_first` reads them in the
    order the page shows them (what the dashboard did before), else in storage order."""
    before = day_end_utc(as_of)
    e = consent_events
    query = (
        select(e.c.account_id, e.c.occurred_at, e.c.action)
        .where(e.c.purpose == "usage_statistics", e.c.account_id.is_not(None))
        .where(e.c.occurred_at < before)
        .order_by(e.c.account_id, e.c.occurred_at, e.c.id)
    )
    timelines: dict[int, tuple[list, list]] = {}
    with dbs.consent.connect() as conn:
        for account_id, at, action in conn.execute(query):
            times, actions = timelines.setdefault(account_id, ([], []))
            times.append(at)
            actions.append(action)
    s = usage_sessions
    sessions = select(s.c.id, s.c.account_id, s.c.started_at).where(s.c.started_at < before)
    if newest_first:
        sessions = sessions.order_by(s.c.started_at.desc(), s.c.id.desc())
    found: dict[int, str] = {}
    with dbs.users.connect() as conn:
        for session_id, account_id, started_at in conn.execute(
            sessions, execution_options={"yield_per": 10_000}
        ):
            times, actions = timelines.get(account_id, ([], []))
            position = bisect_right(times, started_at)
            state = actions[position - 1] if position else "none"
            if state != "granted":
                found[session_id] = state
    return found


def timed(function, *args, **kwargs):
    started, cpu = time.perf_counter(), time.process_time()
    value = function(*args, **kwargs)
    return time.perf_counter() - started, time.process_time() - cpu, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="the demo SQLite files")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 29))
    args = parser.parse_args()
    dbs = Databases.from_urls(
        **{s: f"sqlite:///{args.folder / f'{s}.sqlite'}" for s in STORES}, pseudonym_key=b"bench"
    )
    with dbs.users.connect() as conn:
        sessions = conn.execute(select(func.count()).select_from(usage_sessions)).scalar_one()
    print(f"{sessions:,} usage sessions in {args.folder}\n")

    wall, cpu, shown = timed(consent.processing_without_consent, dbs, args.as_of, ROWS_SHOWN)
    frame = shown["usage_sessions"]
    print(f"dashboard: {wall:7.2f} s wall, {cpu:7.2f} s CPU, {frame.attrs['total']:,} findings")
    everything = consent._sessions_without_consent(dbs, args.as_of, 10**9)
    ours = dict(zip(everything["session_id"], everything["state_at_time"], strict=True))
    for label, newest_first in (("naive, storage order", False), ("naive, newest first", True)):
        naive_wall, naive_cpu, naive = timed(naive_findings, dbs, args.as_of, newest_first)
        print(
            f"{label}: {naive_wall:7.2f} s wall, {naive_cpu:7.2f} s CPU, {len(naive):,} "
            f"findings, {naive_wall / wall:.1f}x the dashboard's wall time; "
            f"same sessions and states: {ours == naive}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MiB")
    dbs.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
