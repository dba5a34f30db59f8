"""Prometheus metrics: requests, jobs, imports, the outbox and WeChat errors are counted; every
process's counts are summed on a private port (multiprocess mode), never on the public app."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from prometheus_client import REGISTRY, generate_latest

from server.metrics import registry
from tests.builders import make_id_number
from tests.feedfiles import OOP_HEADER, csv_bytes, upload

ROOT = Path(__file__).resolve().parent.parent


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_by_route_pattern_not_by_path(client, resident_login) -> None:
    route = {"method": "GET", "route": "/api/v1/public/policies", "status": "200"}
    before = value("e_rescue_http_requests_total", **route)
    assert client.get("/api/v1/public/policies").status_code == 200
    assert client.get("/api/v1/public/policies?name=张三").status_code == 200
    assert value("e_rescue_http_requests_total", **route) == before + 2
    assert value("e_rescue_http_request_seconds_count", route="/api/v1/public/policies") >= 2


def test_wechat_errors_are_counted_by_errcode(client) -> None:
    labels = {"api": "sns/jscode2session", "errcode": "40029"}
    before = value("e_rescue_wechat_errors_total", **labels)
    resp = client.post("/api/v1/auth/wechat-login", json={"code": "bad-code-1"})
    assert resp.status_code >= 400
    assert value("e_rescue_wechat_errors_total", **labels) == before + 1


def test_jobs_and_imports_are_counted_with_their_rows(
    client, staff_login, runtime, monkeypatch
) -> None:
    from server.services.feeds import batches
    from server.worker.loop import run_worker

    monkeypatch.setattr(batches, "INLINE_MAX_BYTES", 0)
    insurer = staff_login(role="department_staff", department="medical_insurance")
    rows = [OOP_HEADER, *[[1, f"人{i}", make_id_number(), "医院", "2026-03-05", "2026-03-15",
                           30000] for i in range(3)]]  # fmt: skip
    job = {"kind": batches.JOB_KIND, "outcome": "done"}
    batch = {"feed": "insurance_oop", "status": "done"}
    accepted = {"feed": "insurance_oop", "result": "accepted"}
    before = [value("e_rescue_jobs_total", **job), value("e_rescue_feed_batches_total", **batch),
              value("e_rescue_feed_rows_total", **accepted)]  # fmt: skip
    assert upload(client, insurer, "insurance_oop", csv_bytes(rows), "f.csv").status_code == 202
    run_worker(runtime, once=True)
    assert value("e_rescue_jobs_total", **job) == before[0] + 1
    assert value("e_rescue_feed_batches_total", **batch) == before[1] + 1
    assert value("e_rescue_feed_rows_total", **accepted) == before[2] + 3


def test_outbox_depth_and_age_are_read_from_the_database_at_scrape_time(runtime) -> None:
    from server import clock

    text = generate_latest(registry(runtime.read_session_factory, clock.now)).decode()
    assert 'e_rescue_outbox_depth{state="pending"} 0.0' in text
    assert "e_rescue_outbox_oldest_due_seconds 0.0" in text


def test_the_public_app_serves_no_metrics(client) -> None:
    assert client.get("/metrics").status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REQUESTS = """
from server import create_app
app = create_app()
client = app.test_client()
for _ in range(3):
    assert client.get("/api/v1/public/policies").status_code == 200
"""


def test_metrics_of_several_processes_are_summed_on_a_private_port(tmp_path: Path) -> None:
    """Two app processes count into PROMETHEUS_MULTIPROC_DIR; `e-rescue metrics` serves the
    sum on its own loopback port."""
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "LOG_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "server.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", REQUESTS], env=env, check=True, cwd=tmp_path)
    port = _free_port()
    server = subprocess.Popen([*cli, "metrics", "--port", str(port)], env=env)
    try:
        text = ""
        for _ in range(300):
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        labels = 'method="GET",route="/api/v1/public/policies",status="200"'
        line = f"e_rescue_http_requests_total{{{labels}}}"
        assert f"{line} 6.0" in text
        assert 'e_rescue_outbox_depth{state="pending"} 0.0' in text
    finally:
        server.terminate()
        server.wait(timeout=10)
