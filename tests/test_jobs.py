"""Background work is durable, retried with backoff, and never run twice by two workers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from server import clock
from server.models import Job, JobStatus
from server.services.kernel import jobs
from server.worker import runner

RAN: list[int] = []
_lock = threading.Lock()


@jobs.handler("test.record")
def _record(ctx: jobs.JobContext, payload: dict) -> None:
    with _lock:
        RAN.append(payload["n"])


@jobs.handler("test.fail")
def _fail(ctx: jobs.JobContext, payload: dict) -> None:
    raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def _clear():
    RAN.clear()


def test_queued_work_runs_once_and_is_marked_done(runtime, db):
    jobs.enqueue(db, kind="test.record", payload={"n": 1}, now=clock.now())
    db.commit()
    ran = runner.run_due(runtime.session_factory, worker_id="w1", clock=clock.now, deps={})
    assert ran == 1 and RAN == [1]
    assert runner.run_due(runtime.session_factory, worker_id="w1", clock=clock.now, deps={}) == 0
    db.expire_all()
    assert db.scalar(select(Job.status)) is JobStatus.DONE


def test_the_same_dedup_key_is_queued_once(db):
    assert (
        jobs.enqueue(
            db, kind="test.record", payload={"n": 1}, now=clock.now(), dedup_key="daily:2026-11-28"
        )
        is not None
    )
    assert (
        jobs.enqueue(
            db, kind="test.record", payload={"n": 2}, now=clock.now(), dedup_key="daily:2026-11-28"
        )
        is None
    )


def test_failures_back_off_then_give_up(runtime, db):
    jobs.enqueue(db, kind="test.fail", payload={}, now=clock.now(), max_attempts=2)
    db.commit()
    runner.run_due(runtime.session_factory, worker_id="w1", clock=clock.now, deps={})
    db.expire_all()
    job = db.scalar(select(Job))
    assert job.status is JobStatus.QUEUED and job.attempts == 1 and "boom" in job.last_error
    later = lambda: clock.now() + timedelta(hours=2)  # noqa: E731
    runner.run_due(runtime.session_factory, worker_id="w1", clock=later, deps={})
    db.expire_all()
    assert db.scalar(select(Job.status)) is JobStatus.FAILED


def test_two_workers_on_postgresql_never_run_the_same_job(runtime, db, engine_name):
    if engine_name != "postgresql":
        pytest.skip("SKIP LOCKED sharing is a PostgreSQL feature; SQLite runs one worker")
    for n in range(60):
        jobs.enqueue(db, kind="test.record", payload={"n": n}, now=clock.now())
    db.commit()
    threads = [
        threading.Thread(
            target=runner.run_due,
            args=(runtime.session_factory,),
            kwargs={"worker_id": f"w{i}", "clock": clock.now, "deps": {}},
        )
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(RAN) == list(range(60)), "every job ran exactly once"


def test_worker_once_command_runs_what_is_due(runtime, db, database_url, monkeypatch):
    from click.testing import CliRunner

    from server.cli import main

    jobs.enqueue(db, kind="test.record", payload={"n": 7}, now=clock.now())
    db.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    # It also runs what its own schedule says is due (server/worker/schedule.py), once.
    from server.worker.schedule import SCHEDULE

    assert f"ran {1 + len(SCHEDULE)} job(s)" in result.output and RAN == [7]
    again = CliRunner().invoke(main, ["worker", "--once"])
    assert "ran 0 job(s)" in again.output
