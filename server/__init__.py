"""Boshan e-Rescue (博山e救助) backend. `create_app()` is the one place that wires everything."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from server.config import Config

_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.-]{8,64}$")


def create_app(config: Config | None = None) -> Flask:
    from server import headers
    from server.api import register_api
    from server.console import register_console
    from server.runtime import Runtime

    config = config or Config.from_env()
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_upload_bytes + 64 * 1024,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["e_rescue"] = Runtime.build(config)
    _configure_logging(config)
    _register_request_hooks(app)
    headers.install(app)
    register_api(app)
    _trust_proxies(app, config.proxy_hops)
    # The console sets the session interface: signed cookies on /console paths, none elsewhere.
    register_console(app, config)
    return app


def _trust_proxies(app: Flask, hops: int) -> None:
    """Behind `hops` reverse proxies, take the client's address and scheme from the
    X-Forwarded-For/-Proto values they append (werkzeug's ProxyFix reads the last `hops`
    entries, so a client cannot forge its own). With 0 the headers are ignored."""
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _configure_logging(config: Config) -> None:
    from server.logs import configure

    configure(config.log_format, config.log_level)


def _measure(response: Response) -> None:
    """Count and time the request (server/metrics.py) and log one line about it: method, route
    pattern, status and time; never the query string or the body (they may name a person)."""
    from server.metrics import HTTP_REQUESTS, HTTP_SECONDS

    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    HTTP_SECONDS.labels(route).observe(seconds)
    logging.getLogger("server.request").info(
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        response.status_code,
        seconds * 1000,
        extra={
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "ms": round(seconds * 1000, 1),
        },
    )


def _commit_failed(session: Any, exc: Exception) -> Response:
    """The answer when the request's commit fails: 503 while the database is unreachable, else
    409 (a concurrent change won)."""
    from server.api.errors import error_body, unavailable
    from server.db import database_unreachable

    log = logging.getLogger("server.request")
    try:
        session.rollback()
    except Exception:  # the connection is gone; the pool discards it
        log.warning("rollback after a failed commit failed too")
    if database_unreachable(exc):
        log.warning("commit failed: database unreachable (%s)", type(exc).__name__)
        body, status = unavailable()
    else:
        log.exception("commit failed")
        body, status = error_body(409, "conflict", "保存失败：记录已被他人修改，请刷新后重试")
    body.status_code = status
    return body


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def commit_and_tag(response: Response) -> Response:
        """Commit once per request, before the answer leaves; errors roll back."""
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if session.info.get("read_only"):
                    pass  # nothing to commit: its statements ran outside a transaction
                elif response.status_code < 400 or g.get("keep_changes"):
                    session.commit()
                else:
                    session.rollback()
            except Exception as exc:
                response = _commit_failed(session, exc)
            finally:
                session.close()
        response.headers["X-Request-Id"] = g.get("request_id", "")
        _measure(response)
        return response

    @app.teardown_request
    def close_session(_exc: BaseException | None) -> None:
        connection = g.pop("db_connection", None)  # a read_only view's (api/deps.connection)
        if connection is not None:
            connection.close()
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()
