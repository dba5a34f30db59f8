"""Every background job handler, registered explicitly here and nowhere else.

Services queue work by kind (`server.services.kernel.jobs.enqueue`) and own the function that
does it; this table says which function handles which kind. The worker's runner calls
`load_job_handlers()` before it claims a job, so importing a module never registers anything.
"""

from __future__ import annotations

from server.services.dispatches import supervision
from server.services.feeds import batches
from server.services.households import building
from server.services.kernel import jobs
from server.worker import duties

HANDLERS: dict[str, jobs.Handler] = {
    batches.JOB_KIND: batches.run_import_job,
    building.PLACE_ROSTER_JOB: building.run_place_roster_job,
    supervision.JOB_KIND: supervision.run_check_job,
    duties.PURGE_FEED_FILES: duties.purge_feed_files,
    duties.PRUNE_AUDIT: duties.prune_audit,
    duties.CHECK_CALENDAR: duties.check_calendar,
}


def load_job_handlers() -> None:
    """Register every handler (idempotent: a kind already registered keeps its handler)."""
    for kind, fn in HANDLERS.items():
        if jobs.handler_for(kind) is None:
            jobs.register(kind, fn)
