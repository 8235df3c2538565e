"""Time approved account deletions (RULES.md R14) on SQLite: accounts per second and memory.

    python benchmarks/deletion.py [--accounts 10000] [--seed 42] [--as-of 2026-11-29]
                                  [--data DIR] [--trace-memory]

Generates the medium demo data (50,000 accounts) with `python -m data_access.demo` in a
separate process, so the generator's memory does not count, into `--data` (reused when it
already holds a generated set) or a temporary folder. Each measured run works on a fresh
copy of the four files. It then makes `--accounts` inactive accounts *ready* the way the
product would (a valid notice in the ledger, dated 400 days after the data's anchor day,
with its outbox message) and times `retention.approve_deletions` on them as one job, as
of the day the notices allow deletion.

Prints accounts per second and the process's peak memory (max RSS) before and after the
run; `--trace-memory` adds runs on 1/10 of the batch and on the whole batch under
tracemalloc, whose peaks show whether memory grows with the batch. Target (issue
"Retention actions"): at least 200 accounts/s on SQLite, memory that does not grow with
the batch.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from data_access import audit, letters, retention, rules  # noqa: E402
from data_access.clock import utc_now  # noqa: E402
from data_access.engines import Databases  # noqa: E402
from data_access.ledger_tables import notices, outbox  # noqa: E402
from data_access.settings import STORES, DatabaseSettings  # noqa: E402
from data_access.tables import accounts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEY = "benchmark-key"
ACTOR = "dpo@plaato.example"
NOTICE_AFTER_DAYS = 400  # past every demo account's 12 months of inactivity


def urls(folder: Path) -> dict[str, str]:
    return {store: f"sqlite:///{folder / f'{store}.sqlite'}" for store in STORES}


def generate(folder: Path, seed: int, as_of: date) -> None:
    """The medium demo data in `folder`, by the product's own command line."""
    names = DatabaseSettings()
    env = dict(os.environ)
    for store, url in urls(folder).items():
        env[getattr(names, f"{store}_url_env")] = url
    env[names.pseudonym_key_env] = KEY
    command = [sys.executable, "-m", "data_access.demo", "--scale", "medium"]
    command += ["--seed", str(seed), "--as-of", as_of.isoformat()]
    print(f"Generating the medium demo data into {folder} ...", flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stderr=subprocess.DEVNULL)
    print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)


def open_copy(source: Path, work: Path) -> Databases:
    work.mkdir(parents=True, exist_ok=True)
    for store in STORES:
        shutil.copyfile(source / f"{store}.sqlite", work / f"{store}.sqlite")
    return Databases.from_urls(**urls(work), pseudonym_key=KEY)


def make_ready(dbs: Databases, wanted: int, notice_on: date) -> list[int]:
    """Send (in bulk) a valid notice dated `notice_on` to the first `wanted` accounts whose
    stage is notice_due on that day; returns their ids (they are ready `notice_days` later)."""
    with dbs.users.connect() as conn:
        ids = list(conn.execute(select(accounts.c.id).order_by(accounts.c.id)).scalars())
    states = retention.account_states(dbs, ids, notice_on)
    due = states[states["stage"] == "notice_due"].head(wanted)
    if len(due) < wanted:
        raise SystemExit(f"only {len(due)} accounts are notice_due on {notice_on}")
    policy, now = dbs.policy, utc_now()
    with dbs.ledger.begin() as conn:
        for row in due.itertuples():
            deletable_on = rules.account_deletable_on(
                row.eligible_on, notice_on, policy.notice_days
            )
            letter = letters.inactivity_notice(
                full_name=row.full_name,
                email=row.email,
                last_activity_on=row.last_activity_on,
                deletable_on=deletable_on,
                inactivity_months=policy.account_inactivity_months,
                invoice_years=policy.invoice_retention_years,
            )
            outbox_id = conn.execute(
                insert(outbox).values(
                    created_at=now,
                    kind="inactivity_notice",
                    to_email=row.email,
                    subject_ref=audit.keyed_hash(dbs, row.email),
                    subject=letter.subject,
                    body=letter.body,
                    status="sent",
                    attempts=1,
                    sent_at=now,
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(notices).values(
                    account_id=int(row.account_id),
                    sent_on=notice_on,
                    created_at=now,
                    actor=ACTOR,
                    last_activity_on=row.last_activity_on,
                    deletable_on=deletable_on,
                    outbox_id=outbox_id,
                )
            )
    return [int(a) for a in due["account_id"]]


def run_once(
    source: Path, work: Path, wanted: int, anchor: date, *, trace: bool
) -> tuple[float, int, int | None, float]:
    """One timed deletion on a fresh copy: (seconds, accounts deleted, tracemalloc peak,
    max RSS in MiB just before the deletion)."""
    dbs = open_copy(source, work)
    notice_on = anchor + timedelta(days=NOTICE_AFTER_DAYS)
    ids = make_ready(dbs, wanted, notice_on)
    approve_on = notice_on + timedelta(days=dbs.policy.notice_days)
    rss_before = max_rss_mib()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result = retention.approve_deletions(
        dbs, ids, actor=ACTOR, as_of=approve_on, idempotency_key=f"benchmark-{wanted}"
    )
    elapsed = time.perf_counter() - started
    peak = None
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if result.failed:
        first = next(iter(result.failed.items()))
        print(f"  {len(result.failed)} failed, e.g. account {first[0]}: {first[1]}")
    check(dbs, ids)
    dbs.dispose()
    return elapsed, len(result.succeeded), peak, rss_before


def check(dbs: Databases, ids: list[int]) -> None:
    """The deleted accounts are gone and the audit chain is intact."""
    with dbs.users.connect() as conn:
        left = conn.execute(select(func.count()).where(accounts.c.id.in_(ids[:500]))).scalar_one()
    intact, broken = audit.verify_chain(dbs)
    print(f"  check: {left} of the first 500 accounts left; audit chain intact: {intact}")
    if left or not intact:
        raise SystemExit(f"deletion check failed (accounts left {left}, broken entry {broken})")


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 29))
    parser.add_argument("--data", type=Path, default=None, help="folder to keep the demo data in")
    parser.add_argument("--trace-memory", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dpo-deletion-benchmark-") as temp:
        source = args.data or Path(temp) / "source"
        source.mkdir(parents=True, exist_ok=True)
        if not (source / "ledger.sqlite").exists():
            generate(source, args.seed, args.as_of)
        seconds, deleted, _, before = run_once(
            source, Path(temp) / "run", args.accounts, args.as_of, trace=False
        )
        print(
            f"\napprove_deletions: {deleted:,} accounts in {seconds:.1f} s = "
            f"{deleted / seconds:,.0f} accounts/s"
        )
        print(
            f"peak memory (max RSS): {before:,.0f} MiB before the run, {max_rss_mib():,.0f} after"
        )
        if args.trace_memory:
            for n in (max(args.accounts // 10, 1), args.accounts):
                _, done, peak, _ = run_once(
                    source, Path(temp) / f"trace-{n}", n, args.as_of, trace=True
                )
                print(f"tracemalloc peak for {done:,} accounts: {peak / 2**20:,.1f} MiB")


if __name__ == "__main__":
    main()
