"""Background work recorded durably in the database and run by `e-rescue worker`."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, enum_column, intpk, key_string


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "status", "run_at"),
        Index("ix_jobs_lease", "status", "lease_expires_at"),
    )

    id: Mapped[intpk]
    #: Name of a handler registered in `server.services.kernel.jobs`.
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]]
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, 10), default=JobStatus.QUEUED)
    #: Not before this moment (retries back off by moving it).
    run_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    #: Optional key so the same work is never queued twice (e.g. one deadline check per day).
    dedup_key: Mapped[str | None] = mapped_column(key_string(120), unique=True)
    #: The worker running it (host:pid:thread) and when it claimed it.
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_at: Mapped[datetime | None]
    #: While running: the worker's lease, extended by its heartbeat. A running job whose lease
    #: has passed belongs to a worker that died; the next worker claims it again (an attempt).
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
