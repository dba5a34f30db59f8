"""Request-scoped access for console views: the session, the runtime, the time, the actor.

The same request globals as `server/api/deps.py` (`g.db_session`, `g.now`), so the one
commit-at-the-boundary hook of `create_app` commits or rolls back console requests too.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from server import clock
from server.errors import Unauthorized
from server.runtime import Runtime
from server.services.kernel.access import Actor


def runtime() -> Runtime:
    return current_app.extensions["e_rescue"]


def db() -> Session:
    if "db_session" not in g:
        rt = runtime()
        factory = rt.read_session_factory if g.get("read_only") else rt.session_factory
        g.db_session = factory()
    return g.db_session


def connection() -> Connection:
    """A connection for reading (see server/api/deps.py: a read-only page runs its statements
    without a transaction)."""
    if not g.get("read_only"):
        return db().connection()
    if "db_connection" not in g:
        g.db_connection = runtime().read_engine.connect()
    return g.db_connection


def now() -> datetime:
    if "now" not in g:
        g.now = clock.now()
    return g.now


def client_ip() -> str:
    return request.remote_addr or "unknown"


def actor() -> Actor:
    found = g.get("actor")
    if found is None:
        raise Unauthorized()
    return found
