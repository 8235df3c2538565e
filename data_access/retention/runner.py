"""Run or resume any retention job by id (the pages' "Resume" button, DESIGN.md "Actions")."""

from __future__ import annotations

from collections.abc import Callable

from data_access import jobs
from data_access.engines import Databases
from data_access.results import ActionResult
from data_access.retention import deletion, purges

HANDLERS: dict[str, jobs.Handler] = {**deletion.HANDLERS, **purges.HANDLERS}


def resume_job(
    dbs: Databases, job_id: int, *, progress: Callable[[float, str], None] | None = None
) -> ActionResult:
    """Finish a partial deletion, purge or anonymisation job: only steps not yet done run.

    Raises KeyError for an unknown job id."""
    return jobs.run_job(dbs, job_id, HANDLERS, progress=progress).as_action_result()
