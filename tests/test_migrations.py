"""The migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from server.cli import alembic_config
from server.models import Base


def _fresh_url(database_url: str, engine_name: str, tmp_path) -> tuple[str, callable]:
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.db'}", lambda: None
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    schema = url.query["options"].split("=")[1] + "_mig"
    admin = create_engine(url.difference_update_query(["options"]), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    fresh = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return fresh.render_as_string(hide_password=False), drop


def test_migrations_match_the_models(database_url, engine_name, tmp_path):
    url, drop = _fresh_url(database_url, engine_name, tmp_path)
    try:
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        engine.dispose()
        assert diff == [], f"models and migrations differ: {diff}"
        command.downgrade(alembic_config(url), "base")
    finally:
        drop()


def test_the_app_never_calls_create_all():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "server"
    offenders = [p for p in root.rglob("*.py") if "create_all(" in p.read_text()]
    assert offenders == []
