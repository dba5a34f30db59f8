"""Builders for migration tests: an empty database beside the run's own, to migrate step by step.

`_fresh_url` keeps the name it had in tests/test_migrations.py."""

from __future__ import annotations

import re

from sqlalchemy import create_engine, text


def _fresh_url(database_url: str, engine_name: str, tmp_path) -> tuple[str, callable]:
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.db'}", lambda: None
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    options = str(url.query["options"])
    run_schema = re.search(r"-csearch_path=(\S+)", options).group(1)
    schema = run_schema + "_mig"
    admin = create_engine(url.difference_update_query(["options"]), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    fresh = url.update_query_dict(
        {"options": options.replace(f"-csearch_path={run_schema}", f"-csearch_path={schema}")}
    )
    return fresh.render_as_string(hide_password=False), drop
