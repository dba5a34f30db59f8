"""Durable background work: enqueue in the request's transaction, run in `e-rescue worker`.

Rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers on several
machines share the queue; SQLite runs one worker (its writes are serialised anyway).
"""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.db import savepoint
from server.models import Job, JobStatus

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What a handler receives besides its payload."""

    db: Session
    now: datetime
    deps: dict[str, Any]


Handler = Callable[[JobContext, dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register a job handler. Handlers live in the service module that owns the work."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = _measured(kind, fn)
        return fn

    return register


def _measured(kind: str, fn: Handler) -> Handler:
    """`fn`, counted and timed for the metrics (`e_rescue_jobs_total{kind, outcome}`)."""
    import time

    from server.metrics import JOB_SECONDS, JOBS

    def run(ctx: JobContext, payload: dict[str, Any]) -> None:
        start = time.perf_counter()
        try:
            fn(ctx, payload)
        except Exception:
            JOBS.labels(kind, "error").inc()
            raise
        finally:
            JOB_SECONDS.labels(kind).observe(time.perf_counter() - start)
        JOBS.labels(kind, "done").inc()

    return run


def registered_kinds() -> list[str]:
    return sorted(_HANDLERS)


def enqueue(
    db: Session,
    *,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    run_at: datetime | None = None,
    dedup_key: str | None = None,
    max_attempts: int = 5,
) -> Job | None:
    """Queue work in the caller's transaction. With `dedup_key`, queuing twice is a no-op."""
    if dedup_key is not None:
        existing = db.scalar(select(Job).where(Job.dedup_key == dedup_key))
        if existing is not None:
            return None
    job = Job(
        kind=kind,
        payload=payload,
        run_at=run_at or now,
        created_at=now,
        dedup_key=dedup_key,
        max_attempts=max_attempts,
    )
    try:
        with savepoint(db):
            db.add(job)
            db.flush()
    except IntegrityError:
        return None  # a concurrent request queued the same key first
    return job


def claim_next(db: Session, *, worker_id: str, now: datetime) -> Job | None:
    query = (
        select(Job)
        .where(Job.status == JobStatus.QUEUED, Job.run_at <= now)
        .order_by(Job.run_at, Job.id)
        .limit(1)
    )
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job = db.scalar(query)
    if job is None:
        return None
    job.status, job.locked_by, job.locked_at = JobStatus.RUNNING, worker_id, now
    job.attempts += 1
    db.flush()
    return job


def backoff(attempt: int, *, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff with full jitter."""
    return timedelta(seconds=random.uniform(0, min(cap, base * 2 ** (attempt - 1))))


def run_due(
    factory: sessionmaker[Session],
    *,
    worker_id: str,
    clock: Callable[[], datetime],
    deps: dict[str, Any],
    limit: int | None = None,
) -> int:
    """Run due jobs one per transaction until none is due (or `limit` ran). Returns the count."""
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
        fn = _HANDLERS.get(job.kind)
        try:
            if fn is None:
                raise LookupError(f"no handler registered for job kind {job.kind!r}")
            fn(JobContext(db=db, now=clock(), deps=deps), dict(job.payload))
            job.status, job.finished_at = JobStatus.DONE, clock()
            db.commit()
        except Exception:
            db.rollback()
            job = db.get(Job, job_id)
            assert job is not None
            job.last_error = traceback.format_exc(limit=5)[-4000:]
            if job.attempts >= job.max_attempts:
                job.status, job.finished_at = JobStatus.FAILED, clock()
            else:
                job.status = JobStatus.QUEUED
                job.run_at = clock() + backoff(job.attempts)
            job.locked_by = None
            db.commit()
            log.exception("job %s (%s) failed, attempt %s", job_id, job.kind, job.attempts)
