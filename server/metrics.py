"""Prometheus metrics (prometheus-client), in multiprocess mode under gunicorn.

Every app and worker process counts into files under `PROMETHEUS_MULTIPROC_DIR` (set it to an
empty directory before the processes start, as `deploy/gunicorn.conf.py` and the systemd units
do); `e-rescue metrics` serves the sum of all of them, plus gauges read from the database at
scrape time (outbox depth and age, jobs waiting), on a private port, never on the public app.
Without the variable each process keeps its counts in memory (tests, `make run`).

Counters never carry personal data: labels are routes (`/api/v1/leads/<int:lead_id>`), methods,
statuses, job kinds, feed codes and WeChat error codes, all from small fixed sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Histogram

_NS = "e_rescue"

HTTP_REQUESTS = Counter(
    f"{_NS}_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    f"{_NS}_http_request_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS = Counter(f"{_NS}_jobs", "Background jobs run, by outcome", ["kind", "outcome"])
JOB_SECONDS = Histogram(
    f"{_NS}_job_seconds",
    "Time a background job ran",
    ["kind"],
    buckets=(0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
FEED_BATCHES = Counter(
    f"{_NS}_feed_batches", "Department files imported, by outcome", ["feed", "status"]
)
FEED_ROWS = Counter(
    f"{_NS}_feed_rows", "Rows of department files, by what became of them", ["feed", "result"]
)
OUTBOX = Counter(f"{_NS}_outbox_messages", "Outbox messages handled, by outcome", ["outcome"])
WECHAT_CALLS = Counter(f"{_NS}_wechat_calls", "Calls to the WeChat API", ["api"])
WECHAT_ERRORS = Counter(
    f"{_NS}_wechat_errors",
    "WeChat API calls that failed, by WeChat's errcode (`transport` when no answer was read)",
    ["api", "errcode"],
)


def count_wechat_error(api: str | None, errcode: int | None) -> None:
    WECHAT_ERRORS.labels(api or "-", "transport" if errcode is None else str(errcode)).inc()


def count_feed_batch(feed: str, status: str, result: dict[str, Any]) -> None:
    FEED_BATCHES.labels(feed, status).inc()
    for name in ("accepted", "rejected", "below_threshold", "duplicates"):
        value = result.get(name)
        if isinstance(value, int) and value:
            FEED_ROWS.labels(feed, name).inc(value)


class DatabaseCollector:
    """Gauges read from the database at each scrape: what waits in the outbox and the jobs
    table, and how old the oldest due message is (the number to alert on)."""

    def __init__(self, session_factory: Any, clock: Any) -> None:
        self.session_factory = session_factory
        self.clock = clock

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func, select

        from server.models import Job, JobStatus, OutboxMessage, OutboxState

        now = self.clock()
        depth = GaugeMetricFamily(
            f"{_NS}_outbox_depth", "Outbox messages by state", labels=["state"]
        )
        age = GaugeMetricFamily(
            f"{_NS}_outbox_oldest_due_seconds",
            "Age of the oldest outbox message due and not yet sent (0: none)",
        )
        jobs = GaugeMetricFamily(
            f"{_NS}_jobs_waiting", "Background jobs queued or running", labels=["kind", "status"]
        )
        with self.session_factory() as db:
            counts = dict(
                db.execute(
                    select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
                ).all()
            )
            for state in OutboxState:
                depth.add_metric([state.value], counts.get(state, 0))
            oldest = db.scalar(
                select(func.min(OutboxMessage.next_attempt_at)).where(
                    OutboxMessage.state.in_([OutboxState.PENDING, OutboxState.SENDING]),
                    OutboxMessage.next_attempt_at <= now,
                )
            )
            age.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
            for kind, status, n in db.execute(
                select(Job.kind, Job.status, func.count())
                .where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                .group_by(Job.kind, Job.status)
            ):
                jobs.add_metric([kind, status.value], n)
        yield depth
        yield age
        yield jobs


class _ThisProcess:
    """This process's own counters (no multiprocess directory)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        yield from self.source.collect()


def registry(session_factory: Any = None, clock: Any = None) -> Any:
    """What the metrics port serves: every process's counters (multiprocess mode) or this
    process's, and the database gauges when a session factory is given."""
    import os

    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    reg = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(reg)
    else:
        reg.register(_ThisProcess(REGISTRY))
    if session_factory is not None:
        reg.register(DatabaseCollector(session_factory, clock))
    return reg


def serve(port: int, *, host: str = "127.0.0.1", session_factory: Any = None, clock: Any = None):  # noqa: ANN201
    """Serve the metrics on `host:port` from a thread; returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=registry(session_factory, clock))
