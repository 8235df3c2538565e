"""Run or resume any retention job by id (the pages' "Resume" button, DESIGN.md "Actions")."""

from __future__ import annotations

from collections.abc import Callable

from data_access import jobs, stores
from data_access.engines import Databases
from data_access.results import ActionResult
from data_access.retention import deletion, purges
from data_access.stores import writes

HANDLERS: dict[str, jobs.Handler] = {**deletion.HANDLERS, **purges.HANDLERS}
KINDS = (deletion.KIND, *purges.KINDS)  # the job kinds HANDLERS runs


@writes(*stores.DATABASES)
def resume_job(
    dbs: Databases,
    job_id: int,
    *,
    actor: str,
    progress: Callable[[float, str], None] | None = None,
) -> ActionResult:
    """Finish a partial or interrupted deletion, purge or anonymisation job: only steps not
    yet done run, audited with `actor`, the one resuming it (DESIGN.md "Actions").

    While another run holds the job's live lease nothing runs: every target is in `failed`
    with the reason that the job is running now, and until when. Raises KeyError for an
    unknown job id."""
    outcome = jobs.run_job(dbs, job_id, HANDLERS, actor=actor, progress=progress)
    return outcome.as_action_result()
