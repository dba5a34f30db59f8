"""The worker's loop (`e-rescue worker`): due jobs, then due WeChat messages, until stopped."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from server import clock
from server.worker import outbox, runner, schedule
from server.worker.registry import load_job_handlers

if TYPE_CHECKING:
    from server.runtime import Runtime


def run_worker(
    rt: Runtime, *, once: bool, interval: float = 2.0, stop: threading.Event | None = None
) -> int:
    """Queue the schedule's due runs, run due jobs, then deliver due messages, every `interval`
    seconds (or once). Returns how many jobs and messages were handled."""
    load_job_handlers()
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    total = 0
    known: set[str] = set()
    while True:
        with rt.session_factory() as db:
            schedule.queue_due(db, now=clock.now(), known=known)
            db.commit()
        total += runner.run_due(
            rt.session_factory, worker_id=worker_id, clock=clock.now, deps=rt.job_deps()
        )
        # WeChat messages: queued by state changes, sent here (see worker/outbox.py).
        total += outbox.deliver_due(
            rt.session_factory, rt.gateway, config=rt.config, clock=clock.now
        ).handled
        if once or (stop is not None and stop.is_set()):
            return total
        time.sleep(interval)
