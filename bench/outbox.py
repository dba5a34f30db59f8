"""Outbox throughput: subscribe messages per second sent through the gateway (wechatpy, keep-alive
connections) to the fake WeChat server, which runs in its own process as WeChat would, with one
worker on SQLite and one and two worker processes on PostgreSQL (they share rows with SKIP
LOCKED). Each run uses a fresh database built by the migrations. Then the cost of one message,
part by part, measured on its own in the same run: the gateway's send alone, the `sent` mark
alone, and the claim's share.

    python bench/outbox.py [messages]
"""

# ruff: noqa: E402  (the project root goes on the import path before the imports)
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root replaces this script's folder on the import path (nothing in bench/ may
# shadow a standard module).
sys.path[0] = str(ROOT)

import multiprocessing
import tempfile
import time

import requests
from sqlalchemy import create_engine, insert, text, update

from bench.support.databases import fresh_database, pg_url
from bench.support.processes import Processes, start_fake_wechat
from server import clock
from server.config import Config
from server.models import OutboxMessage, OutboxState, Role, User
from server.runtime import Runtime
from server.wechat.fake_state import fake_openid
from server.worker import outbox

TEMPLATE = "tmpl-application-received"
SEND = "cgi-bin/message/subscribe/send"


def fill(rt: Runtime, n: int) -> None:
    now = clock.now()
    with rt.engine.begin() as conn:
        conn.execute(
            insert(User.__table__),
            [
                {"role": Role.RESIDENT, "openid": fake_openid(f"bench{i}"), "created_at": now}
                for i in range(n)
            ],
        )
        ids = [r[0] for r in conn.execute(text("SELECT id FROM users ORDER BY id"))][-n:]
        conn.execute(
            insert(OutboxMessage.__table__),
            [
                {
                    "dedup_key": f"bench:{i}",
                    "user_id": user_id,
                    "event": "received",
                    "data": {"thing1": f"消息{i}", "character_string2": f"SQ{i:08d}"},
                    "page": "pages/detail/detail?id=1",
                    "state": OutboxState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i, user_id in enumerate(ids)
            ],
        )


def config_for(url: str, fake: str) -> Config:
    # Long-term template: the quota bookkeeping stays out of the figure.
    return Config(database_url=url, wechat_api_base=fake, wechat_long_term_templates=TEMPLATE)


def _worker(url: str, fake: str, start: multiprocessing.synchronize.Event, out) -> None:  # noqa: ANN001
    config = config_for(url, fake)
    rt = Runtime.build(config)
    rt.gateway.send_subscribe_message  # noqa: B018 - build the gateway before timing
    start.wait()
    report = outbox.deliver_due(rt.session_factory, rt.gateway, config=config, clock=clock.now)
    out.put(report.sent)
    rt.dispose()


def sent_calls(fake: str) -> int:
    answer = requests.get(fake + "_fake/calls", params={"path": SEND}, timeout=30)
    return len(answer.json()["calls"])


def run(url: str, fake: str, n: int, workers: int) -> float:
    rt = Runtime.build(config_for(url, fake))
    fill(rt, n)
    rt.dispose()
    requests.post(fake + "_fake/reset", timeout=10)
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, fake, start, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let each worker import and connect before the clock starts
    began = time.perf_counter()
    start.set()
    sent = sum(out.get() for _ in procs)
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join()
    assert sent == n, f"sent {sent} of {n}"
    assert sent_calls(fake) == n, "WeChat received each message exactly once"
    return n / elapsed


def breakdown(url: str, fake: str, n: int) -> dict[str, float]:
    """Microseconds per message of each part, each timed alone on the same database."""
    config = config_for(url, fake)
    rt = Runtime.build(config)
    fill(rt, n)
    gateway = rt.gateway
    data = {"thing1": "消息", "character_string2": "SQ00000001"}
    t = time.perf_counter()
    for i in range(n):
        gateway.send_subscribe_message(
            openid=fake_openid(f"bench{i}"), template_id=TEMPLATE, data=data, page="p/d/d?id=1"
        )
    send = (time.perf_counter() - t) / n
    report = outbox.DeliveryReport()
    t = time.perf_counter()
    claimed = []
    while batch := outbox._claim(rt.engine, config=config, now=clock.now(), batch=100,
                                 report=report):  # fmt: skip
        claimed += batch
    claim = (time.perf_counter() - t) / n
    with rt.engine.connect() as marks:
        marks.execution_options(isolation_level="AUTOCOMMIT")
        t = time.perf_counter()
        for message in claimed:
            marks.execute(outbox._MARK_SENT, {"m_id": message.id, "m_at": clock.now()})
        mark = (time.perf_counter() - t) / n
    with rt.engine.begin() as conn:
        conn.execute(update(OutboxMessage.__table__).values(state=OutboxState.PENDING))
    rt.dispose()
    return {"claim": claim * 1e6, "send": send * 1e6, "mark": mark * 1e6}


def postgresql_reachable() -> bool:
    try:
        engine = create_engine(pg_url())
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL not reachable ({exc.__class__.__name__}); PostgreSQL runs skipped")
        return False
    return True


def show_breakdown(label: str, parts: dict[str, float]) -> None:
    total = sum(parts.values())
    print(
        f"  {label} per message: claim {parts['claim']:.0f} µs + send {parts['send']:.0f} µs"
        f" + mark {parts['mark']:.0f} µs = {total:.0f} µs ({1e6 / total:.0f}/s if serial)"
    )


#: Issue #22: messages a second with one worker on SQLite, two on PostgreSQL.
GOAL_PER_SECOND = 500


def _verdict(rate: float) -> str:
    return f"goal ≥ {GOAL_PER_SECOND}/s: {'met' if rate >= GOAL_PER_SECOND else 'BELOW GOAL'}"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as logs, Processes(Path(logs)) as procs:
        fake = start_fake_wechat(procs)
        with fresh_database("sqlite", tables="migrations") as url:
            rate = run(url, fake, n, workers=1)
        print(f"SQLite,     1 worker : {rate:7.0f} messages/s ({n} messages; {_verdict(rate)})")
        with fresh_database("sqlite", tables="migrations") as url:
            show_breakdown("SQLite", breakdown(url, fake, min(n, 1000)))
        if not postgresql_reachable():
            return
        for workers in (1, 2):
            with fresh_database("postgresql", tables="migrations") as url:
                rate = run(url, fake, n, workers=workers)
            goal = f"; {_verdict(rate)}" if workers == 2 else ""
            print(
                f"PostgreSQL, {workers} worker{'s' if workers > 1 else ' '}: "
                f"{rate:7.0f} messages/s ({n} messages{goal})"
            )
        with fresh_database("postgresql", tables="migrations") as url:
            show_breakdown("PostgreSQL", breakdown(url, fake, min(n, 1000)))


if __name__ == "__main__":
    main()
