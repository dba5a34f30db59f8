"""Outbox throughput: subscribe messages per second sent through wechatpy to the fake WeChat
server on loopback, with one worker (SQLite and PostgreSQL) and two workers (PostgreSQL, which
shares rows with SKIP LOCKED). Each run uses a fresh database built by the migrations.

    python bench/outbox.py [messages]
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from server import clock  # noqa: E402
from server.cli import upgrade_database  # noqa: E402
from server.config import Config  # noqa: E402
from server.models import OutboxMessage, OutboxState, Role, User  # noqa: E402
from server.runtime import Runtime  # noqa: E402
from server.services import outbox  # noqa: E402
from server.wechat.fake_server import FakeWeChatServer, fake_openid  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TEMPLATE = "tmpl-application-received"


def fill(rt: Runtime, n: int) -> None:
    now = clock.now()
    with rt.session_factory() as db:
        users = [
            User(role=Role.RESIDENT, openid=fake_openid(f"bench{i}"), created_at=now)
            for i in range(n)
        ]
        db.add_all(users)
        db.flush()
        db.add_all(
            OutboxMessage(
                dedup_key=f"bench:{i}",
                user_id=user.id,
                event="received",
                data={"thing1": f"消息{i}", "character_string2": f"SQ{i:08d}"},
                page="pages/detail/detail?id=1",
                state=OutboxState.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for i, user in enumerate(users)
        )
        db.commit()


def run(url: str, fake: FakeWeChatServer, n: int, workers: int) -> float:
    upgrade_database(url)
    # Long-term template: the quota bookkeeping stays out of the figure.
    config = Config(database_url=url, wechat_api_base=fake.url, wechat_long_term_templates=TEMPLATE)
    rt = Runtime.build(config)
    fill(rt, n)
    rt.gateway.send_subscribe_message  # noqa: B018 - build the gateway before timing
    fake.reset()
    sent: list[int] = []

    def work() -> None:
        report = outbox.deliver_due(rt.session_factory, rt.gateway, config=config, clock=clock.now)
        sent.append(report.sent)

    start = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert sum(sent) == n, f"sent {sum(sent)} of {n}"
    assert len(fake.calls("cgi-bin/message/subscribe/send")) == n
    rt.engine.dispose()
    return n / elapsed


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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    fake = FakeWeChatServer(port=0)
    fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rate = run(f"sqlite:///{tmp}/bench.db", fake, n, workers=1)
            print(f"SQLite,     1 worker : {rate:7.0f} messages/s ({n} messages)")
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
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
