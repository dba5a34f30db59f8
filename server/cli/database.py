"""`e-rescue db`: the schema, migrated by Alembic."""

from __future__ import annotations

from pathlib import Path

import click

from server.cli.common import ROOT, redact
from server.config import Config
from server.db import unit_of_work

# --- database ---------------------------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """Database migrations."""


def alembic_config(url: str):  # noqa: ANN201
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str) -> None:
    """Apply every migration, then seed the reference data (idempotent)."""
    from alembic import command

    from server.db import make_engine, make_session_factory
    from server.services.places.areas import seed_reference

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as db:
        seed_reference(db)
    engine.dispose()


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations and seed the reference data (towns, departments, public information)."""
    config = Config.from_env()
    upgrade_database(config.database_url)
    click.echo(f"database up to date: {redact(config.database_url)}")
