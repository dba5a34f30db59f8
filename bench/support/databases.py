"""A fresh database per engine (a SQLite file, a PostgreSQL schema or database), dropped
afterwards, with its tables built as each benchmark needs; bulk loading of rows."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

#: How a fresh database gets its tables: the models' create_all or the Alembic migrations.
Tables = Literal["create_all", "migrations"]


def pg_url(variable: str = "BENCH_PG_URL") -> str:
    """The PostgreSQL server the benchmarks use (read when called, not at import)."""
    return os.environ.get(variable, "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_database(
    engine_name: str, *, tables: Tables | None, prefix: str = "bench"
) -> Iterator[str]:
    """A new SQLite file or PostgreSQL schema (on `pg_url()`), removed afterwards."""
    if engine_name == "sqlite":
        with sqlite_database(prefix, tables=tables) as url:
            yield url
    elif engine_name == "postgresql":
        with postgresql_schema(pg_url(), prefix=prefix, tables=tables) as url:
            yield url
    else:
        raise SystemExit(f"unknown engine {engine_name!r} (sqlite or postgresql)")


@contextmanager
def sqlite_database(prefix: str = "bench", *, tables: Tables | None) -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        url = f"sqlite:///{folder / f'{prefix}.db'}"
        build_tables(url, tables)
        yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgresql_schema(
    server_url: str, *, prefix: str = "bench", tables: Tables | None
) -> Iterator[str]:
    """A new schema on `server_url`, first on the search path of the URL given, dropped with
    everything in it afterwards."""
    from sqlalchemy.engine import make_url

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with _admin(server_url) as admin:
        admin.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = url.render_as_string(hide_password=False)
        build_tables(rendered, tables)
        yield rendered
    finally:
        with _admin(server_url) as admin:
            admin.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def postgresql_database(
    server_url: str, *, prefix: str = "bench", tables: Tables | None
) -> Iterator[str]:
    """A new database on `server_url`, dropped afterwards with its connections (children that
    were killed may leave some)."""
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin(server_url) as admin:
        admin.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        build_tables(url, tables)
        yield url
    finally:
        with _admin(server_url) as admin:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _admin(server_url: str) -> Iterator[Any]:
    from sqlalchemy import create_engine

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def build_tables(url: str, tables: Tables | None) -> None:
    if tables == "migrations":
        from server.cli.database import upgrade_database

        upgrade_database(url)
    elif tables == "create_all":
        from server.db import make_engine
        from server.models import Base

        engine = make_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()


def load_rows(
    cursor: Any, dialect: str, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Bulk-load `rows` on a driver cursor: COPY on PostgreSQL, one executemany on SQLite (with
    datetimes stored as SQLAlchemy stores them). The caller commits."""
    if dialect == "postgresql":
        from server.db import copy_rows

        copy_rows(cursor, table, columns, rows)
        return
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    # Only the columns that hold datetimes are converted (read off the first row): a check of
    # every value would cost seconds at a million rows.
    moments = [i for i, value in enumerate(first) if isinstance(value, datetime)]

    def stored(row: tuple[Any, ...]) -> list[Any]:
        out = list(row)
        for i in moments:
            out[i] = out[i].astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return out

    marks = ", ".join("?" * len(columns))
    cursor.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
        map(stored, itertools.chain([first], rows)),
    )
