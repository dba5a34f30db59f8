"""Two (or more) staff acting at the same moment, on either engine: the helpers behind every
"exactly one wins" test. Reuse them for any pair of state changes.

`race` runs a service call in several threads, each in its own session, after every thread has
read what it will change (`prepare`), so each acts on the same stale state: the case a version
column or a row lock must settle. `race_http` sends the same kind of request from several
threads through the real app at once and returns each response.

Both work on SQLite too: its reads take no lock, so both threads read version 1; the first
write takes the file's write lock and the second waits for it (the busy timeout), then finds the
version changed. On PostgreSQL the second waits on the row lock instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.errors import Conflict

#: How long a thread waits for the others at the barrier and to finish (seconds).
TIMEOUT = 60


def race(
    runtime: Any,
    prepare: Callable[[Session], Any],
    act: Callable[[Session, Any, int], Any],
    *,
    parties: int = 2,
) -> list[str]:
    """Run `act(session, prepared, i)` in `parties` threads once each has run `prepare`; each
    commits. Returns each thread's outcome: "ok", "stale" (StaleDataError) or
    "conflict:<code>" (a domain 409)."""
    barrier = threading.Barrier(parties, timeout=TIMEOUT)
    outcomes = ["" for _ in range(parties)]

    def run(i: int) -> None:
        with runtime.session_factory() as db:
            try:
                state = prepare(db)
                barrier.wait()
                act(db, state, i)
                db.commit()
                outcomes[i] = "ok"
            except StaleDataError:
                db.rollback()
                outcomes[i] = "stale"
            except Conflict as exc:
                db.rollback()
                outcomes[i] = f"conflict:{exc.code}"

    _run_all([threading.Thread(target=run, args=(i,)) for i in range(parties)])
    return outcomes


@dataclass(frozen=True)
class Call:
    """One request of a race: who sends it, and what."""

    headers: dict[str, str]
    path: str
    json: dict[str, Any] | None = None
    method: str = "POST"


def race_http(app: Any, calls: list[Call]) -> list[Any]:
    """Send `calls` at once, each from its own thread and test client; their responses in the
    order given (read `.status_code` and `.get_json()`)."""
    barrier = threading.Barrier(len(calls), timeout=TIMEOUT)
    responses: list[Any] = [None for _ in calls]

    def send(i: int, call: Call) -> None:
        client = app.test_client()
        barrier.wait()
        responses[i] = client.open(
            call.path, method=call.method, json=call.json or {}, headers=call.headers
        )

    _run_all([threading.Thread(target=send, args=(i, c)) for i, c in enumerate(calls)])
    return responses


def _run_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a racing thread did not finish"
