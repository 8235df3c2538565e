"""Time the demo data generator on SQLite: seconds, rows per second per table, peak memory.

    python benchmarks/demo_generation.py --scale large [--seed 42] [--as-of 2026-11-29] [--keep DIR]

Writes into a temporary folder (deleted afterwards unless --keep names a folder to keep
the four SQLite files in). The target (DESIGN.md "Demo data"): the large scale, about
20 million rows, in under five minutes on a two-core machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_access import demo  # noqa: E402
from data_access.demo_plan import SCALES  # noqa: E402
from data_access.engines import Databases  # noqa: E402
from data_access.settings import STORES  # noqa: E402


def run(folder: Path, scale: str, seed: int, as_of: date | None) -> None:
    dbs = Databases.from_urls(
        **{store: f"sqlite:///{folder / f'{store}.sqlite'}" for store in STORES},
        pseudonym_key=b"benchmark-key",
    )
    timings: dict[str, float] = {}
    last = {"tenth": -1}

    def progress(fraction: float, message: str) -> None:
        if int(fraction * 10) != last["tenth"]:
            last["tenth"] = int(fraction * 10)
            print(
                f"  {time.perf_counter() - started:6.1f} s  {fraction:4.0%}  {message}", flush=True
            )

    started = time.perf_counter()
    counts = demo.generate(
        dbs, scale=scale, seed=seed, as_of=as_of, progress=progress, timings=timings
    )
    elapsed = time.perf_counter() - started
    dbs.dispose()

    print(f"\n{scale} scale, seed {seed}: {sum(counts.values()):,} rows in {elapsed:.1f} s")
    print(f"{'table':<34}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    for key, rows in counts.items():
        seconds = timings.get(key)
        rate = f"{rows / seconds:,.0f}" if seconds else "-"
        shown = f"{seconds:.1f}" if seconds is not None else "-"
        print(f"{key:<34}{rows:>12,}{shown:>10}{rate:>12}")
    for key, seconds in timings.items():
        if key not in counts:
            print(f"{key:<46}{seconds:>10.1f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    size_mib = sum(p.stat().st_size for p in folder.glob("*.sqlite")) / 2**20
    print(f"\npeak memory (max RSS): {peak_mib:,.0f} MiB; database files: {size_mib:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="large")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="folder to write and keep")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep, args.scale, args.seed, args.as_of)
        return
    with tempfile.TemporaryDirectory(prefix="dpo-demo-benchmark-") as folder:
        run(Path(folder), args.scale, args.seed, args.as_of)


if __name__ == "__main__":
    main()
