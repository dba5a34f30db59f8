"""Engine and session. One commit per request or command, rollback on error.

Services receive a `Session` and only `flush()`; the request boundary (see `server/__init__.py`)
or the CLI command commits once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, Select, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """The engine for `url`. `hide_parameters`: a database error's message (and so every log
    line and traceback that carries it) shows the statement but never its bound values, which
    are names, ID numbers, phones and sealed values."""
    kwargs.setdefault("hide_parameters", True)
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


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (a dropped or refused connection,
    a server shutting down, SQLite's file that cannot be opened or is locked), as opposed to a
    fault in a statement. Such a connection is discarded by the pool, so once the database is
    back the next request simply succeeds: no restart, no pre-ping."""
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(
    engine: Engine, *, info: dict[str, Any] | None = None
) -> sessionmaker[Session]:
    """`info` is copied into every session (the audit chain key: `services/kernel/audit.py`)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True, info=info or {})


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


def insert_if_missing(session: Session, model: Any, values: dict[str, Any], *, key: str) -> None:
    """INSERT a row unless one with the same `key` exists (`ON CONFLICT DO NOTHING`), so two
    transactions that both find it missing do not collide; lock it afterwards to change it."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=[key]))


def copy_rows(
    cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """PostgreSQL: COPY `rows` into `table` on a psycopg cursor, the server's cheapest way in
    (no per-row executor). Each value goes as psycopg adapts it; the caller owns the
    transaction (and any savepoint a failure should roll back to)."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            write(row)


@contextmanager
def savepoint(session: Session) -> Iterator[Any]:
    """`session.begin_nested()` that is a savepoint on SQLite too.

    Python's sqlite3 driver opens a transaction only before its first INSERT/UPDATE/DELETE, so
    a SAVEPOINT issued first starts the transaction itself, and its RELEASE then *commits* it
    (SQLite: releasing the outermost savepoint is a COMMIT): the rows of the savepoint were
    committed at once, before the rest of the request, and other requests saw them half made
    (identical retries got "正在提交中" 409s; 59 of 60 at once). Here the transaction is opened
    first with BEGIN IMMEDIATE, which also takes SQLite's one write lock, so a competing
    writer waits (busy timeout) and then reads what the winner committed. PostgreSQL: a plain
    savepoint."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        if driver is not None and not driver.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    with session.begin_nested() as nested:
        yield nested


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


class Precompiled:
    """A Core SELECT compiled once per dialect and run as the driver's SQL.

    For the few statements that every request of a hot view runs (the login check, a queue
    page): even from its compiled cache, a Core execution derives the statement's cache key and
    builds an execution context each time, which costs more than SQLite's answer (a 20-row
    queue page: 116 µs against 43 µs on the driver's cursor). Bound values and result columns
    pass through the same type processors a Core execution applies, so callers get the same
    Python values; errors go through SQLAlchemy (`exec_driver_sql`), so a dropped connection
    still invalidates the pool. Only for statements without expanding (IN-list) or
    render-time parameters.

    `plan_per_value=True` keeps PostgreSQL from caching a generic plan: psycopg prepares a
    statement on its fifth run, and after five more PostgreSQL may plan it once for any value.
    A statement whose best plan depends on its values (a filter that matches a few rows or
    most of them) should be planned with them each time.
    """

    def __init__(self, statement: Select[Any], *, plan_per_value: bool = False) -> None:
        self.statement = statement
        self.plan_per_value = plan_per_value
        self._by_dialect: dict[str, _DriverSQL] = {}

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        dialect = connection.dialect
        driver_sql = self._by_dialect.get(dialect.name)
        if driver_sql is None:
            driver_sql = self._by_dialect[dialect.name] = _DriverSQL.compile(
                self.statement, dialect, plan_per_value=self.plan_per_value
            )
        return driver_sql.rows(connection, params)


@dataclass(frozen=True, slots=True)
class _DriverSQL:
    sql: str
    #: Parameter names in the order a positional driver (sqlite3's `?`) wants; None: by name.
    positions: tuple[str, ...] | None
    #: (name, type processor, the value the statement itself holds, e.g. SQLite's OFFSET 0)
    binds: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: Extra keywords of the driver's `execute` (psycopg's `prepare=False`).
    execute_options: Mapping[str, Any]

    @classmethod
    def compile(
        cls, statement: Select[Any], dialect: Dialect, *, plan_per_value: bool = False
    ) -> _DriverSQL:
        compiled = statement.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("render-time parameters cannot be precompiled")
        names = tuple(compiled.positiontup or ()) if dialect.positional else None
        binds = tuple(
            (
                name,
                bind.type.dialect_impl(dialect).bind_processor(dialect),
                _GIVEN_BY_CALLER if bind.required else bind.value,
            )
            for name, bind in compiled.binds.items()
        )
        results = tuple(
            (index, processor)
            for index, column in enumerate(statement.selected_columns)
            if (processor := _result_processor(column.type, dialect)) is not None
        )
        never_prepare = plan_per_value and dialect.driver == "psycopg"
        options = {"prepare": False} if never_prepare else {}
        return cls(compiled.string, names, binds, results, options)

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        values = {}
        for name, process, own in self.binds:
            value = params[name] if own is _GIVEN_BY_CALLER else params.get(name, own)
            values[name] = value if process is None else process(value)
        driver_params: Any = (
            tuple(values[name] for name in self.positions) if self.positions is not None else values
        )
        fetched = self._fetch(connection, driver_params)
        if not self.results:
            return fetched
        out = []
        for row in fetched:
            row = list(row)
            for index, process in self.results:
                row[index] = process(row[index])
            out.append(tuple(row))
        return out

    def _fetch(self, connection: Connection, driver_params: Any) -> list[tuple[Any, ...]]:
        """The driver's cursor, straight: SQLAlchemy's result set-up (reading the cursor's
        description into result metadata, per execution) is the largest cost left on
        PostgreSQL. One cursor per pooled connection is kept and reused (a new psycopg cursor
        per statement cost 80 µs of CPU against 47). On a driver error the statement runs
        again through SQLAlchemy, which classifies the error as for any statement: a dropped
        connection invalidates the pool and raises its `DBAPIError` (api/errors.py answers
        503); the driver's own error stays chained to it."""
        pooled = connection.connection
        try:
            cursor = pooled.info.get(_CURSOR)
            if cursor is None:
                cursor = pooled.info[_CURSOR] = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(self.sql, driver_params, **self.execute_options)
            return cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error:
            pooled.info.pop(_CURSOR, None)
            return list(connection.exec_driver_sql(self.sql, driver_params).tuples())


#: Where a pooled connection keeps the cursor `Precompiled` reuses (its `info` lives as long as
#: the driver's connection).
_CURSOR = "precompiled_cursor"
_GIVEN_BY_CALLER = object()


def _result_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    return type_.dialect_impl(dialect).result_processor(dialect, None)
