"""A job whose worker died is claimed again (issue 17): jobs carry a lease that a heartbeat
extends; an expired lease is claimed again with its attempt counted, and a feed import whose
worker was killed (a real process, SIGKILL) finishes once, with no duplicate evidence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server import clock
from server.models import BatchStatus, FeedBatch, Job, JobStatus, LeadEvidence
from server.services.kernel import jobs
from server.worker import runner
from tests.builders import make_id_number
from tests.feedfiles import OOP_HEADER, upload, xlsx

ROOT = Path(__file__).resolve().parent.parent
RAN: list[int] = []


@jobs.handler("test.lease")
def _lease_job(ctx: jobs.JobContext, payload: dict) -> None:
    time.sleep(payload.get("sleep", 0))
    RAN.append(payload["n"])


@pytest.fixture(autouse=True)
def _clear():
    RAN.clear()


def _claim(runtime, worker: str, at) -> Job | None:
    with runtime.session_factory() as db:
        job = runner.claim_next(db, worker_id=worker, now=at)
        db.commit()
        return job


def test_a_running_job_whose_lease_expired_is_claimed_again_with_its_attempt_counted(runtime, db):
    start = clock.now()
    jobs.enqueue(db, kind="test.lease", payload={"n": 1}, now=start)
    db.commit()
    assert _claim(runtime, "dead-worker", start) is not None  # ... and then it died
    assert _claim(runtime, "w2", start + timedelta(seconds=runner.LEASE_SECONDS - 1)) is None
    later = start + timedelta(seconds=runner.LEASE_SECONDS + 1)
    ran = runner.run_due(runtime.session_factory, worker_id="w2", clock=lambda: later, deps={})
    assert ran == 1 and RAN == [1]
    db.expire_all()
    job = db.scalar(select(Job))
    assert (job.status, job.attempts, job.locked_by) == (JobStatus.DONE, 2, "w2")
    assert "dead-worker" in job.last_error and job.lease_expires_at is None


def test_a_job_whose_workers_keep_dying_fails_when_its_attempts_are_used_up(runtime, db):
    at = clock.now()
    jobs.enqueue(db, kind="test.lease", payload={"n": 1}, now=at, max_attempts=2)
    db.commit()
    for n in range(2):
        at += timedelta(seconds=runner.LEASE_SECONDS + 1)
        assert _claim(runtime, f"dies-{n}", at) is not None
    assert _claim(runtime, "w3", at + timedelta(seconds=runner.LEASE_SECONDS + 1)) is None
    db.expire_all()
    job = db.scalar(select(Job))
    assert (job.status, job.attempts) == (JobStatus.FAILED, 2) and RAN == []


def test_the_heartbeat_keeps_a_long_job_its_own(runtime, db, monkeypatch):
    monkeypatch.setattr(runner, "LEASE_SECONDS", 0.4)
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.05)
    jobs.enqueue(db, kind="test.lease", payload={"n": 1, "sleep": 1.2}, now=clock.now())
    db.commit()
    worker = threading.Thread(
        target=runner.run_due,
        args=(runtime.session_factory,),
        kwargs={"worker_id": "slow", "clock": clock.now, "deps": {}},
    )
    worker.start()
    stolen = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        time.sleep(0.1)
        stolen.append(_claim(runtime, "thief", clock.now()))
    worker.join()
    assert stolen and all(job is None for job in stolen) and RAN == [1]


def test_a_feed_import_whose_worker_is_killed_finishes_once_without_duplicates(
    client, staff_login, runtime, db, config, fake_wechat, monkeypatch
):
    from server.services.feeds import batches
    from server.worker.loop import run_worker

    monkeypatch.setattr(batches, "INLINE_MAX_BYTES", 0)
    insurer = staff_login(role="department_staff", department="medical_insurance")
    rows = [
        [1, f"人{i}", make_id_number(), "博山区医院", "2026-03-05", "", 30000 + i]
        for i in range(40)
    ]
    resp = upload(client, insurer, "insurance_oop", xlsx([OOP_HEADER, *rows]))
    assert resp.status_code == 202, resp.get_json()
    batch_id = resp.get_json()["id"]

    args = {"db": config.database_url, "uploads": config.upload_dir, "wechat": fake_wechat.url}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.worker_child",
            json.dumps({**args, "chunk": 10, "pause": 30}),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "chunk 10"  # one chunk committed ...
        child.send_signal(signal.SIGKILL)  # ... and the worker is killed in the next pause
    finally:
        child.kill()
        child.wait()
    db.expire_all()
    job = db.scalar(select(Job).where(Job.kind == batches.JOB_KIND))
    batch = db.get(FeedBatch, batch_id)
    assert (job.status, job.attempts, batch.status, batch.rows_done) == (
        JobStatus.RUNNING,
        1,
        BatchStatus.RUNNING,
        10,
    )

    later = clock.now() + timedelta(seconds=runner.LEASE_SECONDS + 1)
    monkeypatch.setattr(clock, "now", lambda: later)
    run_worker(runtime, once=True)
    run_worker(runtime, once=True)  # nothing left to do: the batch finishes once
    db.expire_all()
    job = db.scalar(select(Job).where(Job.kind == batches.JOB_KIND))
    batch = db.get(FeedBatch, batch_id)
    assert (job.status, job.attempts) == (JobStatus.DONE, 2)
    assert batch.status is BatchStatus.DONE and batch.rows_done == 40
    assert batch.result["read"] == 40 and batch.result["leads_created"] == 40
    evidence = db.scalar(
        select(func.count()).select_from(LeadEvidence).where(LeadEvidence.batch_id == batch_id)
    )
    assert evidence == 40
