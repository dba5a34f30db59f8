"""The migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from server.cli.database import alembic_config
from server.models import Base
from tests.builders.migrations import _fresh_url


def _descending_index_names() -> set[str]:
    return {
        index.name
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if any(not hasattr(expr, "name") for expr in index.expressions)
    }


def _without_sqlite_descending_indexes(diff: list, conn, engine_name: str) -> list:
    """SQLite reflects no DESC in an index, so alembic sees every such index as changed.

    Those indexes are checked instead by their stored DDL, which must say DESC.
    """
    if engine_name != "sqlite":
        return diff
    names = _descending_index_names()
    for name in names:
        ddl = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"), {"n": name}
        ).scalar_one()
        assert "DESC" in ddl, f"{name} lost its descending order: {ddl}"
    return [d for d in diff if not (d[0] in ("add_index", "remove_index") and d[1].name in names)]


def _collations(conn, engine_name: str) -> tuple[dict, dict]:
    """(what the models say, what the database has): the columns with a collation of their
    own. Alembic compares a collation only when both sides name one, so a migration that
    forgot one would pass unseen."""
    if engine_name != "postgresql":
        return {}, {}
    expected = {}
    for table in Base.metadata.tables.values():
        for column in table.columns:
            collation = getattr(column.type.dialect_impl(conn.dialect), "collation", None)
            if collation:
                expected[(table.name, column.name)] = collation
    rows = conn.execute(
        text(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND collation_name IS NOT NULL "
            "AND table_name <> 'alembic_version'"
        )
    )
    return expected, {(t, c): name for t, c, name in rows}


def test_migrations_match_the_models(database_url, engine_name, tmp_path):
    url, drop = _fresh_url(database_url, engine_name, tmp_path)
    try:
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
            diff = _without_sqlite_descending_indexes(diff, conn, engine_name)
            expected, collations = _collations(conn, engine_name)
        engine.dispose()
        assert diff == [], f"models and migrations differ: {diff}"
        assert collations == expected
        command.downgrade(alembic_config(url), "base")
    finally:
        drop()


def test_the_app_never_calls_create_all():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "server"
    offenders = [p for p in root.rglob("*.py") if "create_all(" in p.read_text()]
    assert offenders == []
