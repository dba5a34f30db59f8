"""Long-running processes: the fake WeChat server, the metrics endpoint, the worker, the API."""

from __future__ import annotations

import os
import threading
import time

import click

from server import clock
from server.cli.common import runtime
from server.config import Config

# --- processes --------------------------------------------------------------------------------


@click.command("fake-wechat")
@click.option("--port", default=5100, show_default=True)
def fake_wechat_cmd(port: int) -> None:
    """Run the fake WeChat API server on 127.0.0.1 (for local runs and tests)."""
    from server.wechat.fake_server import FakeWeChatServer

    server = FakeWeChatServer(port=port)
    server.start()
    click.echo(f"fake WeChat API at {server.url} (calls: {server.url}_fake/calls)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


@click.command("metrics")
@click.option("--host", default="127.0.0.1", show_default=True, help="keep it private")
@click.option("--port", type=int, default=None, help="default: METRICS_PORT (9464)")
def metrics_cmd(host: str, port: int | None) -> None:
    """Serve Prometheus metrics on a private port: the counters of every app and worker process
    on this machine (PROMETHEUS_MULTIPROC_DIR) and gauges read from the database."""
    from server.metrics import serve

    rt = runtime()
    port = port or rt.config.metrics_port
    serve(port, host=host, session_factory=rt.read_session_factory, clock=clock.now)
    click.echo(f"metrics: http://{host}:{port}/metrics")
    while True:
        time.sleep(3600)


@click.command("worker")
@click.option("--once", is_flag=True, help="run what is due, then exit (for cron and tests)")
@click.option("--interval", default=2.0, show_default=True, help="seconds between polls")
def worker_cmd(once: bool, interval: float) -> None:
    """Run background jobs recorded in the database."""
    from server.runtime import settle_heap
    from server.worker.loop import run_worker
    from server.worker.registry import load_job_handlers

    rt = runtime()
    if not once:
        load_job_handlers()  # their modules (the importer, pinyin) are part of the start
        settle_heap()
    ran = run_worker(rt, once=once, interval=interval)
    if once:
        click.echo(f"ran {ran} job(s) and message(s)")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000")
@click.option(
    "--dev",
    is_flag=True,
    help="also start the fake WeChat server and a worker in this process (make run)",
)
def serve_cmd(host: str, port: int, dev: bool) -> None:
    """Serve the API (development server; production uses gunicorn, see README)."""
    from server import create_app

    config = Config.from_env()
    if dev:
        _start_dev_companions(config)
    app = create_app(config)
    click.echo(f"API:  http://{host}:{port}/api/v1/   docs: http://{host}:{port}/api/docs")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def _start_dev_companions(config: Config) -> None:
    from urllib.parse import urlparse

    from server.runtime import Runtime
    from server.wechat.fake_server import FakeWeChatServer
    from server.worker.loop import run_worker

    fake_port = urlparse(config.wechat_api_base).port or 5100
    FakeWeChatServer(port=fake_port).start()
    click.echo(f"fake WeChat API: {config.wechat_api_base}")
    rt = Runtime.build(config)
    threading.Thread(
        target=run_worker, args=(rt,), kwargs={"once": False}, daemon=True, name="worker"
    ).start()
    click.echo("worker: started")
