"""Engine and session. One commit per request or command, rollback on error.

Services receive a `Session` and only `flush()`; the request boundary (see `server/__init__.py`)
or the CLI command commits once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: it costs a round trip on every request. A connection the server dropped
    # fails one request with 503 (api/errors.py) and invalidates the pool; connections are
    # also recycled before typical idle timeouts of proxies and firewalls.
    return create_engine(url, pool_recycle=1800, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for requests that only read, on an engine whose connections are in autocommit
    (`make_engine(url, isolation_level="AUTOCOMMIT")`, its own small pool): no BEGIN and COMMIT
    round trips, half of a small read's trips to PostgreSQL. Each statement sees the latest
    committed data. A flush in such a session is a bug and raises rather than writing."""
    return sessionmaker(
        bind=engine, expire_on_commit=False, autoflush=False, info={"read_only": True}
    )


class ReadOnlySessionWrote(RuntimeError):
    """A read-only request tried to write."""


@event.listens_for(Session, "before_flush")
def _refuse_writes_in_read_sessions(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get("read_only") and (session.new or session.dirty or session.deleted):
        raise ReadOnlySessionWrote("a read-only request tried to write")


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for a CLI command or a job: commit at the end, rollback on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
