"""Durable background work, queued side: enqueue in the request's transaction; the handler of
each kind is registered in server/worker/registry.py.

The worker (`server/worker/runner.py`) claims and runs what is queued here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.models import Job


@dataclass
class JobContext:
    """What a handler receives besides its payload."""

    db: Session
    now: datetime
    deps: dict[str, Any]


Handler = Callable[[JobContext, dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}


def register(kind: str, fn: Handler) -> None:
    """Register the handler of `kind`. The application's handlers are registered in one place,
    server/worker/registry.py; the function itself lives in the service that owns the work."""
    _HANDLERS[kind] = _measured(kind, fn)


def handler(kind: str) -> Callable[[Handler], Handler]:
    """`register` as a decorator, for a test's own handlers."""

    def decorate(fn: Handler) -> Handler:
        register(kind, fn)
        return fn

    return decorate


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


def handler_for(kind: str) -> Handler | None:
    """The registered handler of `kind` (the worker's runner looks it up per job)."""
    return _HANDLERS.get(kind)


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
