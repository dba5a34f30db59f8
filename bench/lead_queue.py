"""The lead queue under size and under load.

1. Page time as the queue grows: the first and the 500th page of `GET /api/v1/leads` (20 rows,
   center staff) with 10,000 and then 1,000,000 leads, through the real app in-process (median
   of many requests). Keyset pagination over `ix_leads_queue` should keep all four flat.
   Then the first page under a few filters, common values and values nobody has, and as
   staff of departments with many, few and no leads, for the record (no goal; see FILTERS and
   DEPARTMENTS).
2. Load: gunicorn with 2 sync workers on 127.0.0.1, 32 connections from wrk (or, where wrk is
   missing, a threaded Python client) for a bounded time, against a queue page as center staff
   and against a bare Flask JSON endpoint served the same way. Goal: queue ≥ 0.35× bare req/s,
   p99 ≤ 35 ms.

Synthetic leads, each with one evidence row from a department's file (EVIDENCE_MIX), are
bulk-loaded (COPY on PostgreSQL, executemany in one transaction on SQLite) with the indexes of
both tables dropped during the load and rebuilt after it.

    .venv/bin/python bench/lead_queue.py [--engines sqlite,postgresql] [--big 1000000]
                                    [--duration 10] [--no-load]
"""

# ruff: noqa: E402  (the project root goes on the import path before the imports)
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root replaces this script's folder on the import path, so `bench.*` imports
# resolve from the root and nothing in bench/ can shadow a standard module.
sys.path[0] = str(ROOT)

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server import clock, create_app
from server.config import Config
from server.models import Base, Lead, LeadEvidence, Role
from server.services.accounts.staff import create_staff
from server.services.kernel.access import SYSTEM
from server.services.leads import matching
from server.services.leads.queue import encode_cursor
from server.services.places.areas import seed_reference

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PAGE = 20
DEEP_PAGE = 500
#: Under load: (queue req/s ÷ bare Flask req/s, p99 ms) per engine; PostgreSQL's is issue #22's.
GOALS = {"sqlite": (0.35, 35.0), "postgresql": (0.45, 25.0)}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
GIVEN = "秀英华明丽强军芳敏静伟丹霞平刚桂兰玉红建国志勇德福兴海云春梅凤"
REASONS = [
    "医保: 单次自付 ¥32,400",
    "残联: 新认定二级残疾",
    "应急: 房屋火灾",
    "民政: 临时困难",
    "热线: 独居老人",
]
CATEGORY_SETS = [["illness"], ["disabled"], ["disaster"], ["temporary"], ["left_behind"], []]


# --- databases ------------------------------------------------------------------------------


@contextmanager
def fresh_database(engine_name: str) -> Iterator[str]:
    """A new empty SQLite file or PostgreSQL schema, removed afterwards."""
    if engine_name == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="bench-queue-"))
        try:
            yield f"sqlite:///{folder / 'queue.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"bench_queue_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


_NAMES: list[tuple[str, str, str]] = []


def _names() -> list[tuple[str, str, str]]:
    """A pool of names with their sound and shape keys (pinyin is computed once per name)."""
    if not _NAMES:
        rng = random.Random(7)
        for _ in range(3000):
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            _NAMES.append((name, matching.name_key(name), matching.shape_key(name)))
    return _NAMES


_COLUMNS = (
    "id",
    "person_hash",
    "name",
    "name_key",
    "name_shape",
    "status",
    "is_open",
    "channel",
    "categories",
    "priority",
    "priority_reasons",
    "town_id",
    "created_at",
    "updated_at",
    "version",
)


def _rows(start: int, count: int, town_ids: list[int]) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(start)
    names = _names()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for lead_id in range(start, start + count):
        name, key, shape = names[rng.randrange(len(names))]
        # Every synthetic lead is open: page 500 of 20 rows exists even at 10,000 leads.
        status = rng.choices(("new", "triaged", "dispatched"), (7, 2, 1))[0]
        n_reasons = rng.choice((0, 1, 1, 2, 3))
        reasons = rng.sample(REASONS, n_reasons)
        priority = sum(rng.randint(1, 8) for _ in reasons)
        at = base + timedelta(seconds=lead_id * 7)
        yield (
            lead_id,
            f"{lead_id:064x}",
            name,
            key,
            shape,
            status,
            True,
            "feed",
            json.dumps(rng.choice(CATEGORY_SETS), ensure_ascii=False),
            priority,
            json.dumps(reasons, ensure_ascii=False),
            rng.choice(town_ids),
            at,
            at,
            1,
        )


#: Each synthetic lead carries one evidence row from a department's file, in these shares
#: (department, feed, share %): department staff see the leads with their department's evidence.
#: Traffic police sent nothing.
EVIDENCE_MIX = (
    ("medical_insurance", "insurance_oop", 60.0),
    ("civil_affairs", "civil_affairs_new", 30.0),
    ("disabled_federation", "disability_new", 5.0),
    ("emergency", "disaster", 4.9),
    ("education", "education_aid", 0.1),
)
_EVIDENCE_COLUMNS = (
    "lead_id",
    "channel",
    "feed_code",
    "summary",
    "facts",
    "dedup_key",
    "department_id",
    "created_at",
)


def _evidence_rows(
    start: int, count: int, department_ids: dict[str, int]
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(-start)
    mix = [(department_ids[code], feed) for code, feed, _share in EVIDENCE_MIX]
    weights = [share for _code, _feed, share in EVIDENCE_MIX]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for lead_id in range(start, start + count):
        department_id, feed = rng.choices(mix, weights)[0]
        yield (lead_id, "feed", feed, "测试", "{}", f"bench:{lead_id}", department_id, at)


def bulk_insert(engine: Any, start: int, count: int) -> float:
    """Load `count` synthetic leads, each with one evidence row; the indexes of both tables are
    dropped first and rebuilt after. Seconds."""
    began = time.perf_counter()
    indexes = [*Lead.__table__.indexes, *LeadEvidence.__table__.indexes]
    with engine.begin() as conn:
        town_ids = [r[0] for r in conn.execute(text("SELECT id FROM towns"))]
        department_ids = {
            code: id_ for code, id_ in conn.execute(text("SELECT code, id FROM departments"))
        }
        for index in indexes:
            index.drop(conn)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        leads = _rows(start, count, town_ids)
        evidence = _evidence_rows(start, count, department_ids)
        if engine.dialect.name == "postgresql":
            _copy(cursor, "leads", _COLUMNS, leads)
            _copy(cursor, "lead_evidence", _EVIDENCE_COLUMNS, evidence)
        else:
            _insert_many(
                cursor,
                "leads",
                _COLUMNS,
                ((*r[:12], _sqlite_time(r[12]), _sqlite_time(r[13]), r[14]) for r in leads),
            )
            _insert_many(
                cursor,
                "lead_evidence",
                _EVIDENCE_COLUMNS,
                ((*r[:7], _sqlite_time(r[7])) for r in evidence),
            )
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    # Statistics for the planners; on PostgreSQL also the visibility map, which autovacuum
    # sets after a load this size (it vacuums after inserts too): without it an index-only
    # scan still visits the table for every entry.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    return time.perf_counter() - began


def _copy(cursor: Any, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_many(cursor: Any, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    marks = ", ".join("?" * len(columns))
    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


# --- the app --------------------------------------------------------------------------------


def build_app(url: str) -> tuple[Any, str]:
    """The real app on `url` with the schema, reference data and a logged-in center staff."""
    app = create_app(Config(database_url=url, log_level="WARNING"))
    runtime = app.extensions["e_rescue"]
    Base.metadata.create_all(runtime.engine)
    with runtime.session_factory() as db:
        seed_reference(db)
        db.commit()
    return app, staff_token(app, "bench-center", Role.CENTER_STAFF)


def staff_token(app: Any, username: str, role: Role, department_code: str | None = None) -> str:
    """A new staff account, logged in through the API: its bearer token."""
    with app.extensions["e_rescue"].session_factory() as db:
        create_staff(
            db,
            username=username,
            password="bench-password-1",
            role=role,
            department_code=department_code,
            now=clock.now(),
            actor=SYSTEM,
            must_change_password=False,
        )
        db.commit()
    resp = app.test_client().post(
        "/api/v1/auth/staff-login", json={"username": username, "password": "bench-password-1"}
    )
    return resp.get_json()["token"]


#: Department staff whose first page is timed: a department with most leads, a few, very
#: few and none (see EVIDENCE_MIX).
DEPARTMENTS = {
    "medical_insurance 60%": "medical_insurance",
    "disabled_federation 5%": "disabled_federation",
    "education 0.1%": "education",
    "traffic_police none": "traffic_police",
}


def department_tokens(app: Any) -> dict[str, str]:
    """A logged-in staff member of each department in DEPARTMENTS, by label."""
    return {
        label: staff_token(app, f"bench-{code}", Role.DEPARTMENT_STAFF, department_code=code)
        for label, code in DEPARTMENTS.items()
    }


def deep_cursor(engine: Any) -> str:
    """The cursor that opens page 500: the key of the last row of page 499 (not timed)."""
    with engine.connect() as conn:
        priority, lead_id = conn.execute(
            text(
                "SELECT priority, id FROM leads WHERE is_open = :t "
                "ORDER BY priority DESC, id LIMIT 1 OFFSET :n"
            ),
            {"t": True, "n": (DEEP_PAGE - 1) * PAGE - 1},
        ).one()
    return encode_cursor(priority, lead_id)


def page_ms(client: Any, token: str, cursor: str | None, runs: int = 60) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    query = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
    samples = []
    for i in range(runs + 5):
        began = time.perf_counter()
        resp = client.get("/api/v1/leads", headers=headers, query_string=query)
        elapsed = (time.perf_counter() - began) * 1000
        assert resp.status_code == 200 and len(resp.get_json()["items"]) == PAGE, resp.data[:300]
        if i >= 5:  # warm-up
            samples.append(elapsed)
    return statistics.median(samples)


#: Filtered first pages, for the record (no goal). Town, status, channel and village are ranges
#: of an index in queue order; a name search reads the index of names and sorts the matches;
#: the feed filter (like department staff's scope) asks an index of each lead it walks; the
#: other filters walk `ix_leads_queue` and skip what does not match, so a value that matches
#: few leads reads many index entries.
FILTERS = {
    "town": {"town": "chengdong"},
    "min_priority": {"min_priority": 20},
    "pinyin name": {"name": "zhang"},
    "a common surname": {"name": "王"},
    "a name nobody has": {"name": "无此人"},
    "a pinyin nobody has": {"name": "xyz"},
    "an open status nobody has": {"status": "awaiting_revisit"},
    "a channel nobody used": {"channel": "police_110"},
    "a category nobody has": {"category": "orphan"},
    "the commonest feed": {"feed": "insurance_oop"},
    "a feed of 0.1%": {"feed": "education_aid"},
    "a feed nobody sent": {"feed": "fire"},
}


def filtered_ms(client: Any, token: str, query: dict[str, Any], runs: int = 10) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    samples = []
    for i in range(runs + 2):
        began = time.perf_counter()
        resp = client.get("/api/v1/leads", headers=headers, query_string={"limit": PAGE, **query})
        elapsed = (time.perf_counter() - began) * 1000
        assert resp.status_code == 200, resp.data[:300]
        if i >= 2:
            samples.append(elapsed)
    return statistics.median(samples)


# --- load -----------------------------------------------------------------------------------

BARE_APP = """
from flask import Flask


def bare_app():
    app = Flask("bare")

    @app.get("/bare")
    def bare():
        return {"ok": True, "items": []}

    return app
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(
    app_spec: str, env: dict[str, str], *, pythonpath: str, ready_path: str
) -> Iterator[str]:
    port = free_port()
    # Production's own settings and hooks (deploy/gunicorn.conf.py), with the bench's workers
    # and port; its metrics files go to a directory of this run.
    metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--config",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--pythonpath",
            pythonpath,
            "--log-level",
            "warning",
            app_spec,
        ],
        cwd=ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"gunicorn died: {proc.stderr.read()}") from None
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        _wait_until_answering(base + ready_path, deadline)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _wait_until_answering(url: str, deadline: float) -> None:
    """The master listens before its workers have booted: wait for real answers."""
    import urllib.request

    answered = 0
    while answered < 10:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
            answered += 1
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} does not answer") from None
            time.sleep(0.2)


def load(
    url: str, headers: dict[str, str], duration: int, connections: int = 32
) -> dict[str, float]:
    """req/s and latency percentiles (ms) with `connections` open at once."""
    if shutil.which("wrk"):
        return _wrk(url, headers, duration, connections)
    return _threaded_client(url, headers, duration, connections)


def _wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> dict[str, float]:
    # One wrk thread drives 32 connections easily and leaves the cores to the server.
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    pct = {p: _ms(re.search(rf"^\s+{p}%\s+(\S+)", out, re.M).group(1)) for p in ("50", "90", "99")}
    return {
        "rps": rps,
        "p50": pct["50"],
        "p90": pct["90"],
        "p99": pct["99"],
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": errors.group(0) if errors else "",
        "tool": f"wrk -t1 -c{connections}",
    }


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))
    if value.endswith("us"):
        return number / 1000
    if value.endswith("ms"):
        return number
    if value.endswith("s"):
        return number * 1000
    return number


def _threaded_client(
    url: str, headers: dict[str, str], duration: int, connections: int
) -> dict[str, Any]:
    """Fallback load tool: `connections` threads, each a fresh connection per request (as wrk
    does with gunicorn's sync workers, which close every connection)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def worker() -> None:
        mine = []
        while time.monotonic() < stop:
            began = time.perf_counter()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    failures[0] += 1
            finally:
                conn.close()
            mine.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))]

    return {
        "rps": len(latencies) / elapsed,
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "non_2xx": float(failures[0]),
        "socket_errors": "",
        "tool": f"python threads x{connections}",
    }


def load_test(url: str, token: str, duration: int) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    (folder / "bench_bare_app.py").write_text(textwrap.dedent(BARE_APP))
    env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "APP_ENV": "development"}
    try:
        bare_app = "bench_bare_app:bare_app()"
        with gunicorn(bare_app, env, pythonpath=str(folder), ready_path="/bare") as base:
            load(f"{base}/bare", {}, 3)  # warm-up
            bare = load(f"{base}/bare", {}, duration)
        with gunicorn(
            "server:create_app()", env, pythonpath=str(ROOT), ready_path="/healthz"
        ) as base:
            headers = {"Authorization": f"Bearer {token}"}
            page = f"{base}/api/v1/leads?limit={PAGE}"
            load(page, headers, 3)  # warm-up: both workers, connection pools, statement caches
            queue = load(page, headers, duration)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return bare, queue


# --- main -----------------------------------------------------------------------------------


def run_engine(engine_name: str, args: argparse.Namespace) -> None:
    print(f"\n== {engine_name} ==", flush=True)
    with fresh_database(engine_name) as url:
        app, token = build_app(url)
        department_logins = department_tokens(app)
        engine = app.extensions["e_rescue"].engine
        client = app.test_client()
        loaded = 0
        for size in (args.small, args.big):
            seconds = bulk_insert(engine, loaded + 1, size - loaded)
            loaded = size
            print(f"loaded {size:>9,} leads in {seconds:6.1f} s (indexes rebuilt)", flush=True)
            first = page_ms(client, token, None)
            deep = page_ms(client, token, deep_cursor(engine))
            print(
                f"  page 1:   {first:6.2f} ms   page {DEEP_PAGE}: {deep:6.2f} ms"
                f"   (GET /api/v1/leads, {PAGE} rows, median)",
                flush=True,
            )
            filtered = "   ".join(
                f"{label} {filtered_ms(client, token, query):.1f}"
                for label, query in FILTERS.items()
            )
            print(f"  filtered first page, ms: {filtered}", flush=True)
            departments = "   ".join(
                f"{label} {filtered_ms(client, department_token, {}):.1f}"
                for label, department_token in department_logins.items()
            )
            print(f"  department staff's first page, ms: {departments}", flush=True)
        if args.no_load:
            return
        bare, queue = load_test(url, token, args.duration)
        ratio = queue["rps"] / bare["rps"]
        print(f"load ({bare['tool']}, {args.duration} s each, gunicorn 2 sync workers):")
        for label, r in (("bare Flask JSON", bare), ("queue page (center)", queue)):
            print(
                f"  {label:<20} {r['rps']:8.0f} req/s   p50 {r['p50']:6.2f} ms"
                f"   p90 {r['p90']:6.2f} ms   p99 {r['p99']:6.2f} ms"
                f"   non-2xx {r['non_2xx']:.0f} {r['socket_errors']}"
            )
        goal_ratio, goal_p99 = GOALS[engine_name]
        verdict_ratio = "ok" if ratio >= goal_ratio else "BELOW GOAL"
        verdict_p99 = "ok" if queue["p99"] <= goal_p99 else "ABOVE GOAL"
        print(f"  ratio queue/bare: {ratio:.2f}x (goal ≥ {goal_ratio}x: {verdict_ratio})")
        print(f"  queue p99: {queue['p99']:.2f} ms (goal ≤ {goal_p99} ms: {verdict_p99})")
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--no-load", action="store_true", help="page times only")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load tool: {'wrk' if shutil.which('wrk') else 'python'}")
    for engine_name in args.engines.split(","):
        run_engine(engine_name.strip(), args)


if __name__ == "__main__":
    main()
