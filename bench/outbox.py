"""Outbox throughput: subscribe messages per second sent through the gateway (wechatpy, keep-alive
connections) to the fake WeChat server, which runs in its own process as WeChat would, with one
worker on SQLite and one and two worker processes on PostgreSQL (they share rows with SKIP
LOCKED). Each run uses a fresh database built by the migrations. Then the cost of one message,
part by part, measured on its own in the same run: the gateway's send alone, the `sent` mark
alone, and the claim's share.

    python bench/outbox.py [messages]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ itself stays off the import path (no script here may shadow a standard module).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import multiprocessing  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, insert, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from server import clock  # noqa: E402
from server.cli.database import upgrade_database  # noqa: E402
from server.config import Config  # noqa: E402
from server.models import OutboxMessage, OutboxState, Role, User  # noqa: E402
from server.runtime import Runtime  # noqa: E402
from server.wechat.fake_state import fake_openid  # noqa: E402
from server.worker import outbox  # noqa: E402

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEMPLATE = "tmpl-application-received"
SEND = "cgi-bin/message/subscribe/send"


def start_fake() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "fake-wechat", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            requests.get(url + "_fake/calls?path=none", timeout=2)
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("fake WeChat server did not start")


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
    upgrade_database(url)
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
    upgrade_database(url)
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


def pg_schema_url() -> tuple[str, str] | None:
    try:
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL not reachable ({exc.__class__.__name__}); PostgreSQL runs skipped")
        return None
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop(schema: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def show_breakdown(label: str, parts: dict[str, float]) -> None:
    total = sum(parts.values())
    print(
        f"  {label} per message: claim {parts['claim']:.0f} µs + send {parts['send']:.0f} µs"
        f" + mark {parts['mark']:.0f} µs = {total:.0f} µs ({1e6 / total:.0f}/s if serial)"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    fake_proc, fake = start_fake()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rate = run(f"sqlite:///{tmp}/bench.db", fake, n, workers=1)
            print(f"SQLite,     1 worker : {rate:7.0f} messages/s ({n} messages)")
            show_breakdown("SQLite", breakdown(f"sqlite:///{tmp}/parts.db", fake, min(n, 1000)))
        for workers in (1, 2):
            target = pg_schema_url()
            if target is None:
                break
            url, schema = target
            try:
                rate = run(url, fake, n, workers=workers)
                print(
                    f"PostgreSQL, {workers} worker{'s' if workers > 1 else ' '}: "
                    f"{rate:7.0f} messages/s ({n} messages)"
                )
            finally:
                drop(schema)
        target = pg_schema_url()
        if target is not None:
            url, schema = target
            try:
                show_breakdown("PostgreSQL", breakdown(url, fake, min(n, 1000)))
            finally:
                drop(schema)
    finally:
        fake_proc.terminate()
        fake_proc.wait(timeout=10)


if __name__ == "__main__":
    main()
