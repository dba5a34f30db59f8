"""The periodic duties that have no job of their own in a service: each a thin adapter from a
job's context to the service function that does the work (the schedule queues them)."""

from __future__ import annotations

import logging
from typing import Any

from server.services.calendar.holidays import coverage
from server.services.feeds.batches import purge_files
from server.services.kernel import audit_chain
from server.services.kernel.jobs import JobContext

log = logging.getLogger(__name__)

PURGE_FEED_FILES = "feeds.purge_files"
PRUNE_AUDIT = "audit.prune"
CHECK_CALENDAR = "calendar.check"


def purge_feed_files(ctx: JobContext, payload: dict[str, Any]) -> None:
    """What department files left behind (services/feeds/batches.purge_files)."""
    done = purge_files(ctx.db, storage=ctx.deps["storage"], now=ctx.now)
    log.info("feed files purged", extra={"purged": done})


def prune_audit(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Audit entries past retention (AUDIT_RETENTION_DAYS, at least 180), batch by batch in
    the job's transaction; the chain still verifies afterwards."""
    config = ctx.deps["config"]
    total = 0
    while gone := audit_chain.prune(
        ctx.db,
        key=config.audit_chain_key_bytes,
        now=ctx.now,
        keep_days=config.audit_retention_days,
    ):
        total += gone
    log.info("audit pruned", extra={"pruned": total})


def check_calendar(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Log an error (for the log platform's alert) while this or next year's holidays are
    missing past their deadline; the console shows its banner meanwhile."""
    info = coverage(ctx.db, today=ctx.now.date())
    for key in ("this_year", "next_year"):
        if info[key]["status"] == "missing":
            log.error(
                "holiday calendar missing",
                extra={"year": info[key]["year"], "detail": info[key]["message"]},
            )
