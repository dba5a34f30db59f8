"""gunicorn settings for the app: `gunicorn -c deploy/gunicorn.conf.py` (e-rescue-app.service).

Sync workers, as measured in the README (gthread with keep-alive piled connections onto one
worker). The reverse proxy in front terminates TLS and keeps client connections; set
`PROXY_HOPS=1` behind one. Every value can be overridden from the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

#: `server:create_app()` reads the rest of its settings from the environment (README).
wsgi_app = "server:create_app()"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
#: Two to four per core: the app waits on the database for a good part of each request.
workers = int(os.environ.get("GUNICORN_WORKERS", str(2 * (os.cpu_count() or 1))))
worker_class = "sync"
#: The slowest request is a 10 MB upload or an xlsx export; a stuck worker is killed after this.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
#: No periodic worker restarts: each new worker process would leave one more metrics file.
max_requests = 0
#: The app writes its own request line (JSON with LOG_FORMAT=json); gunicorn logs only errors.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
#: Each worker builds its own engine and pool after the fork.
preload_app = False
#: Only the local proxy may set X-Forwarded-*; the app trusts PROXY_HOPS of them.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "e-rescue-app"

#: Prometheus multiprocess mode: every worker counts into files here (server/metrics.py);
#: `e-rescue metrics` serves their sum on a private port.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/run/e-rescue/prometheus")


def on_starting(server) -> None:  # noqa: ANN001
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


def post_worker_init(worker) -> None:  # noqa: ANN001
    """The app is loaded: take its start-up heap out of the collector's walks (the p99)."""
    from server.runtime import settle_heap

    settle_heap()


def child_exit(server, worker) -> None:  # noqa: ANN001
    """A worker that exits stops counting; its counts are kept in the sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
