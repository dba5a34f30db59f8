"""The staff console's queue screen (线索库) at size and under load, beside the JSON queue page.

1. Server time of `GET /console/leads` (the whole HTML page: login check, 20 rows, the total up
   to "1000+", town and village names, the template) through the real app in-process, median of
   many requests, first page and page 500, with 10,000 and then 1,000,000 leads; the JSON page
   (`GET /api/v1/leads?limit=20`) timed the same way beside it.
2. Load: gunicorn with 2 sync workers, 32 connections (wrk, or a threaded Python client)
   for a short time, against the console's queue page as center staff (session cookie) and the
   JSON queue page (bearer token) in the same run. Goal: console ≥ 0.5× the JSON page's req/s,
   p99 ≤ 50 ms.

The leads are bench/lead_queue.py's (bench/support/leads.py: synthetic leads with department
evidence, bulk-loaded); gunicorn and the load come from bench/support too. SQLite by default
(the machine is shared); `--engines` adds PostgreSQL.

    .venv/bin/python bench/console.py [--engines sqlite] [--big 1000000] [--duration 8]
"""

# ruff: noqa: E402  (the project root goes on the import path before the imports)
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

import argparse
import os
import re
import statistics
import time
from typing import Any

from bench.support.databases import fresh_database
from bench.support.http_load import load, load_tool
from bench.support.leads import (
    DEEP_PAGE,
    PAGE,
    build_app,
    bulk_insert,
    deep_cursor,
    page_ms,
    staff_token,
)
from bench.support.processes import gunicorn
from server.models import Role

GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0
_ROW = re.compile(r'name="lead_ids"')


def console_cookie(app: Any) -> str:
    """A center staff member logged in through the console's form: the session cookie."""
    staff_token(app, "bench-console", Role.CENTER_STAFF)  # creates the account
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post(
        "/console/login",
        data={"username": "bench-console", "password": "bench-password-1", "csrf_token": csrf},
    )
    assert resp.status_code == 303, resp.status_code
    return client.get_cookie("boshan_console", path="/console").value


def console_ms(client: Any, cursor: str | None, runs: int = 40) -> float:
    samples = []
    query = {"cursor": cursor} if cursor else {}
    for i in range(runs + 5):
        began = time.perf_counter()
        resp = client.get("/console/leads", query_string=query)
        elapsed = (time.perf_counter() - began) * 1000
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200 and len(_ROW.findall(body)) == PAGE, body[:500]
        if i >= 5:
            samples.append(elapsed)
    return statistics.median(samples)


def load_both(
    url: str, token: str, cookie: str, duration: int, connections: int = 32
) -> tuple[dict, dict]:
    env = {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "APP_ENV": "development"}
    with gunicorn("server:create_app()", env, pythonpath=str(ROOT), ready_path="/healthz") as base:
        bearer = {"Authorization": f"Bearer {token}"}
        session = {"Cookie": f"boshan_console={cookie}"}
        json_page = f"{base}/api/v1/leads?limit={PAGE}"
        console_page = f"{base}/console/leads"
        load(json_page, bearer, 2)  # warm-up: both workers, pools, statement caches
        load(console_page, session, 2)
        json_load = load(json_page, bearer, duration, connections)
        console_load = load(console_page, session, duration, connections)
    return json_load, console_load


def run_engine(engine_name: str, args: argparse.Namespace) -> None:
    print(f"\n== {engine_name} ==", flush=True)
    with fresh_database(engine_name, tables="create_all", prefix="bench_queue") as url:
        app, token = build_app(url)
        cookie = console_cookie(app)
        engine = app.extensions["e_rescue"].engine
        api_client = app.test_client()
        console_client = app.test_client()
        console_client.set_cookie("boshan_console", cookie, path="/console")
        loaded = 0
        for size in (args.small, args.big):
            seconds = bulk_insert(engine, loaded + 1, size - loaded)
            loaded = size
            print(f"loaded {size:>9,} leads in {seconds:6.1f} s", flush=True)
            cursor = deep_cursor(engine)
            first, deep = console_ms(console_client, None), console_ms(console_client, cursor)
            json_first = page_ms(api_client, token, None, runs=40)
            json_deep = page_ms(api_client, token, cursor, runs=40)
            print(
                f"  console page 1: {first:6.2f} ms   page {DEEP_PAGE}: {deep:6.2f} ms"
                f"   | JSON page 1: {json_first:5.2f} ms   page {DEEP_PAGE}: {json_deep:5.2f} ms"
                "   (median, in-process)",
                flush=True,
            )
        if args.no_load:
            return
        for connections in args.connections:
            report_load(url, token, cookie, args.duration, connections)
        engine.dispose()


def report_load(url: str, token: str, cookie: str, duration: int, connections: int) -> None:
    """Both pages under one load; with more connections than the 2 workers, each request also
    waits its turn (Little's law: mean latency = connections / req/s), so p99 at 32
    connections measures that queue as much as the page."""
    json_load, console_load = load_both(url, token, cookie, duration, connections)
    print(f"load ({json_load['tool']}, {duration} s each, gunicorn 2 sync workers):")
    for label, r in (("JSON queue page", json_load), ("console queue page", console_load)):
        print(
            f"  {label:<19} {r['rps']:8.0f} req/s   p50 {r['p50']:6.2f} ms"
            f"   p90 {r['p90']:6.2f} ms   p99 {r['p99']:6.2f} ms   non-2xx {r['non_2xx']:.0f}"
        )
    ratio = console_load["rps"] / json_load["rps"]
    ok_ratio = "ok" if ratio >= GOAL_RATIO else "BELOW GOAL"
    ok_p99 = "ok" if console_load["p99"] <= GOAL_P99_MS else "ABOVE GOAL"
    print(f"  ratio console/JSON: {ratio:.2f}x (goal ≥ {GOAL_RATIO}x: {ok_ratio})")
    print(f"  console p99: {console_load['p99']:.2f} ms (goal ≤ {GOAL_P99_MS} ms: {ok_p99})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=8, help="seconds per load run")
    parser.add_argument("--no-load", action="store_true", help="page times only")
    parser.add_argument(
        "--connections",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[32, 2],
        help="load runs with these many connections (default: 32, then 2 = one per worker)",
    )
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load tool: {load_tool()}")
    for engine_name in args.engines.split(","):
        run_engine(engine_name.strip(), args)


if __name__ == "__main__":
    main()
