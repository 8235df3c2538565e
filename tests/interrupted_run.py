"""An action run in a process of its own and SIGKILLed mid-job, as a crashing server would
(DESIGN.md "Actions": a claim is a lease; a job whose lease expired is interrupted).

`killed_mid_job(dbs, action, ...)` starts `python -m tests.interrupted_run '<json>'`, waits
until the child has paused where asked, SIGKILLs it and returns the id of the job it left
behind. The child pauses:
- 'after_batch': after its `pause_after`-th batch, whose store changes, done marks and audit
  entries are all committed (the progress callback, called after each batch);
- 'before_done_marks': after the store transaction of its first batch committed, before
  that batch's done marks and audit entries are written (the worst moment).
It runs with a short lease (`lease_seconds`), so the test sees the lease expire soon after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from sqlalchemy import select, update

from data_access import jobs, requests, retention
from data_access.clock import utc_now
from data_access.engines import Databases
from data_access.ledger_tables import jobs as jobs_table
from data_access.settings import STORES, Policy

ROOT = Path(__file__).resolve().parent.parent
PAUSED = "paused"  # what the child writes to the marker file once it has paused


def killed_mid_job(
    dbs: Databases,
    tmp_path: Path,
    action: str,
    *,
    pause_at: str = "after_batch",
    pause_after: int = 1,
    batch_targets: int = 3,
    lease_seconds: int = 2,
    timeout: float = 120.0,
    **arguments,
) -> int:
    """Run `action` ('approve_deletions' | 'complete_request') with `arguments` (JSON values
    and an `as_of` date) in a child process on the same databases, SIGKILL it where
    `pause_at` says; returns the job id.

    Raises AssertionError when the child ends or does not pause within `timeout` seconds."""
    marker = tmp_path / f"paused-{time.monotonic_ns()}"
    spec = {
        "urls": {s: dbs.engine(s).url.render_as_string(hide_password=False) for s in STORES},
        "key": dbs.pseudonym_key.hex(),
        "lease_seconds": lease_seconds,
        "batch_targets": batch_targets,
        "pause_at": pause_at,
        "pause_after": pause_after,
        "marker": str(marker),
        "action": action,
        "arguments": {**arguments, "as_of": arguments["as_of"].isoformat()},
    }
    log = tmp_path / "interrupted_run.log"
    with log.open("ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.interrupted_run", json.dumps(spec)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while not (marker.exists() and marker.read_text() == PAUSED):
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            raise AssertionError(f"the child did not pause: {log.read_text(errors='replace')}")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    with dbs.ledger.connect() as conn:
        return conn.execute(select(jobs_table.c.id).order_by(jobs_table.c.id.desc())).scalar()


def wait_for_lease_to_expire(dbs: Databases, job_id: int) -> None:
    """Sleep until the job's lease has expired by the clock (its process is gone)."""
    with dbs.ledger.connect() as conn:
        expires = conn.execute(
            select(jobs_table.c.lease_expires_at).where(jobs_table.c.id == job_id)
        ).scalar_one()
    time.sleep(max((expires - utc_now()).total_seconds(), 0) + 1.1)


def set_lease(dbs: Databases, job_id: int, expires_at) -> None:
    """Move a job's lease (naive UTC), as if its run were still alive or long gone."""
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(jobs_table).where(jobs_table.c.id == job_id).values(lease_expires_at=expires_at)
        )


# --- the child -------------------------------------------------------------------------------


def _pause(marker: str) -> None:
    Path(marker).write_text(PAUSED)
    time.sleep(3600)  # until SIGKILLed


def _install_pause(spec: dict):
    """The progress callback that pauses after the `pause_after`-th batch, or for
    'before_done_marks' none, and the first done mark pauses instead."""
    if spec["pause_at"] == "before_done_marks":
        done_mark = jobs._mark_done

        def paused_done_mark(*args, **kwargs):
            _pause(spec["marker"])
            return done_mark(*args, **kwargs)

        jobs._mark_done = paused_done_mark
        return None
    seen = {"batches": 0}

    def progress(_fraction: float, _message: str) -> None:
        seen["batches"] += 1
        if seen["batches"] == spec["pause_after"]:
            _pause(spec["marker"])

    return progress


def main(spec: dict) -> None:
    dbs = Databases.from_urls(
        **spec["urls"],
        policy=Policy(job_lease_seconds=spec["lease_seconds"]),
        pseudonym_key=bytes.fromhex(spec["key"]),
    )
    jobs.BATCH_TARGETS = spec["batch_targets"]
    progress = _install_pause(spec)
    arguments = dict(spec["arguments"])
    arguments["as_of"] = date.fromisoformat(arguments["as_of"])
    if spec["action"] == "approve_deletions":
        result = retention.approve_deletions(dbs, progress=progress, **arguments)
    elif spec["action"] == "complete_request":
        result = requests.complete_request(dbs, progress=progress, **arguments)
    else:
        raise SystemExit(f"unknown action {spec['action']!r}")
    raise SystemExit(f"the action finished without pausing: {result}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
