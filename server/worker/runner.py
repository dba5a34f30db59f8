"""The job runner of `e-rescue worker`: claim due jobs under a lease and run their handlers.

Jobs are queued by the services (`services/kernel/jobs.py`), in the request's transaction.

Rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers on several
machines share the queue; SQLite runs one worker (its writes are serialised anyway).

A claimed job carries a lease (LEASE_SECONDS) that a heartbeat thread of its worker extends
while the handler runs. A worker that dies (SIGKILL, power, OOM) stops extending it, and once
it has passed the next worker claims the job again, counting the attempt; a job whose attempts
are used up that way is marked failed. Only the worker holding the current lease marks a job
done or failed, so a worker that was merely too slow does not overwrite its successor. Handlers
must therefore be safe to run again from the start (the feed import is: evidence is keyed).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.models import Job, JobStatus
from server.services.kernel.backoff import backoff
from server.services.kernel.jobs import JobContext, handler_for
from server.worker.registry import load_job_handlers

log = logging.getLogger(__name__)

#: How long a claim lasts without a heartbeat, and how often the heartbeat renews it.
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 15.0


def claim_next(db: Session, *, worker_id: str, now: datetime) -> Job | None:
    """The next due job, claimed under a lease: a queued one whose time has come, or a running
    one whose worker's lease has passed (that worker died). The attempt is counted; a job
    reclaimed with no attempts left is marked failed and the next one is looked for."""
    while True:
        query = (
            select(Job)
            .where(
                or_(
                    and_(Job.status == JobStatus.QUEUED, Job.run_at <= now),
                    and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now),
                )
            )
            .order_by(Job.run_at, Job.id)
            .limit(1)
        )
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = db.scalar(query)
        if job is None:
            return None
        if job.status is JobStatus.RUNNING:
            log.warning(
                "job %s (%s): lease of %s expired at %s, claimed again",
                job.id,
                job.kind,
                job.locked_by,
                job.lease_expires_at,
            )
            job.last_error = (
                f"worker {job.locked_by} stopped (lease expired {job.lease_expires_at})"
            )[:4000]
            if job.attempts >= job.max_attempts:
                job.status, job.finished_at, job.lease_expires_at = JobStatus.FAILED, now, None
                db.flush()
                continue
        job.status, job.locked_by, job.locked_at = JobStatus.RUNNING, worker_id, now
        job.lease_expires_at = now + timedelta(seconds=LEASE_SECONDS)
        job.attempts += 1
        db.flush()
        return job


#: A failed job's wait before its next try: 5 s, doubling, up to an hour (`kernel.backoff`).
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(hours=1)


def run_due(
    factory: sessionmaker[Session],
    *,
    worker_id: str,
    clock: Callable[[], datetime],
    deps: dict[str, Any],
    limit: int | None = None,
) -> int:
    """Run due jobs one per transaction until none is due (or `limit` ran). Returns the count."""
    load_job_handlers()
    done = 0
    while limit is None or done < limit:
        with factory() as db:
            job = claim_next(db, worker_id=worker_id, now=clock())
            if job is None:
                db.rollback()
                return done
            db.commit()
            job_id = job.id
        _run_one(factory, job_id, clock=clock, deps=deps)
        done += 1
    return done


def _run_one(
    factory: sessionmaker[Session],
    job_id: int,
    *,
    clock: Callable[[], datetime],
    deps: dict[str, Any],
) -> None:
    with factory() as db:
        job = db.get(Job, job_id)
        assert job is not None
        lease = (job.locked_by, job.attempts)
        fn = handler_for(job.kind)
        with _Heartbeat(factory, job_id, lease, clock=clock):
            try:
                if fn is None:
                    raise LookupError(f"no handler registered for job kind {job.kind!r}")
                fn(JobContext(db=db, now=clock(), deps=deps), dict(job.payload))
                failure = None
            except Exception:
                failure = traceback.format_exc(limit=5)[-4000:]
                db.rollback()
                log.exception("job %s failed, attempt %s", job_id, lease[1])
            _finish(db, job_id, lease, failure=failure, now=clock())


def _finish(
    db: Session, job_id: int, lease: tuple[str | None, int], *, failure: str | None, now: datetime
) -> None:
    """Mark the job done, or failed / queued again after a failure, if the lease is still
    ours (a worker whose lease was taken over leaves the job to its successor)."""
    job = db.get(Job, job_id, populate_existing=True)
    assert job is not None
    if job.status is not JobStatus.RUNNING or (job.locked_by, job.attempts) != lease:
        log.warning("job %s: lease lost to %s, result not recorded", job_id, job.locked_by)
        db.rollback()
        return
    job.lease_expires_at = None
    if failure is None:
        job.status, job.finished_at = JobStatus.DONE, now
    else:
        job.last_error = failure
        if job.attempts >= job.max_attempts:
            job.status, job.finished_at = JobStatus.FAILED, now
        else:
            job.status = JobStatus.QUEUED
            job.run_at = now + backoff(job.attempts, base=RETRY_BASE, cap=RETRY_CAP)
        job.locked_by = None
    db.commit()


class _Heartbeat:
    """While a job runs: a thread that extends its lease every HEARTBEAT_SECONDS, in its own
    short transactions, as long as the lease is still this worker's."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        job_id: int,
        lease: tuple[str | None, int],
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._factory, self._job_id, self._lease, self._clock = factory, job_id, lease, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat")

    def __enter__(self) -> _Heartbeat:
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.renew()
            except OperationalError:  # the database busy or away: try again at the next beat
                log.warning("job %s: heartbeat failed", self._job_id, exc_info=True)

    def renew(self) -> bool:
        worker, attempt = self._lease
        with self._factory() as db:
            renewed = db.execute(
                update(Job)
                .where(
                    Job.id == self._job_id,
                    Job.status == JobStatus.RUNNING,
                    Job.locked_by == worker,
                    Job.attempts == attempt,
                )
                .values(lease_expires_at=self._clock() + timedelta(seconds=LEASE_SECONDS))
                .execution_options(synchronize_session=False)
            ).rowcount
            db.commit()
        return bool(renewed)
