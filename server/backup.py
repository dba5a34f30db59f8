"""`e-rescue backup` / `restore`: the database and every stored object in one tar file.

- PostgreSQL: `pg_dump --format=custom` (of the schema in `search_path` when the URL names one),
  restored with `pg_restore --clean --if-exists --no-owner`: the tool the database ships, a
  consistent snapshot without stopping the app, every table, sequence, index and trigger.
- SQLite: the `sqlite3` online backup API (a consistent copy while the app runs), restored with
  the same API into the configured file.
- Storage (photos, department files waiting for the worker): every object under `storage/`.
- `manifest.json`: format, engine, Alembic revision, the row count of every table and the
  object count, checked after a restore.

The archive holds personal data: sealed values stay sealed (restore them with the same
`FIELD_ENCRYPTION_KEY`, and the same `AUDIT_CHAIN_KEY` for `audit verify`), names and photos are
in clear. Keep it on encrypted media with the access of the database itself.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Engine, func, inspect, select, table, text
from sqlalchemy.engine import make_url

from server.storage import Storage

FORMAT = 1
MANIFEST = "manifest.json"
STORAGE_DIR = "storage/"


class BackupError(RuntimeError):
    """The backup or restore could not be done; the message says why."""


@dataclass
class Manifest:
    format: int
    engine: str
    revision: str | None
    created_at: str
    tables: dict[str, int]
    objects: int

    def dumps(self) -> bytes:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=2).encode()


def row_counts(engine: Engine) -> dict[str, int]:
    names = [n for n in inspect(engine).get_table_names() if n != "alembic_version"]
    with engine.connect() as conn:
        return {
            n: conn.execute(select(func.count()).select_from(table(n))).scalar_one()
            for n in sorted(names)
        }


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _libpq(url: str) -> tuple[list[str], dict[str, str], str | None]:
    """pg_dump/pg_restore connection arguments, environment and schema for a SQLAlchemy URL."""
    parsed = make_url(url)
    args = ["--dbname", parsed.database or "postgres"]
    if parsed.host:
        args += ["--host", parsed.host]
    if parsed.port:
        args += ["--port", str(parsed.port)]
    if parsed.username:
        args += ["--username", parsed.username]
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    schema = None
    options = unquote(str(parsed.query.get("options", "")))
    if "search_path=" in options:
        schema = options.split("search_path=", 1)[1].split()[0].split(",")[0]
    return args, env, schema


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-2000:]}")


def _dump_database(engine: Engine, url: str, into: Path) -> str:
    if engine.dialect.name == "sqlite":
        target = into / "database.sqlite"
        source = sqlite3.connect(make_url(url).database or "")
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return target.name
    args, env, schema = _libpq(url)
    target = into / "database.pgdump"
    schema_args = ["--schema", schema] if schema else []
    _run(
        ["pg_dump", *args, "--format=custom", "--no-owner", "--no-acl", *schema_args,
         "--file", str(target)],
        env,
    )  # fmt: skip
    return target.name


def create(
    engine: Engine,
    url: str,
    storage: Storage,
    out: Path,
    *,
    now: datetime,
    progress: Callable[[str], None] = lambda _m: None,
) -> Manifest:
    """Write the backup of the database and the storage to `out` (a tar file)."""
    with tempfile.TemporaryDirectory(prefix="e-rescue-backup-") as tmp:
        progress("database")
        dump = _dump_database(engine, url, Path(tmp))
        tables = row_counts(engine)
        partial = out.with_name(out.name + ".partial")
        objects = 0
        with tarfile.open(partial, "w") as tar:
            tar.add(Path(tmp) / dump, arcname=dump)
            progress("storage")
            for key in storage.keys(""):
                data = storage.get(key)
                info = tarfile.TarInfo(STORAGE_DIR + key)
                info.size, info.mtime = len(data), int(now.timestamp())
                tar.addfile(info, io.BytesIO(data))
                objects += 1
            manifest = Manifest(
                format=FORMAT,
                engine=engine.dialect.name,
                revision=_revision(engine),
                created_at=now.isoformat(),
                tables=tables,
                objects=objects,
            )
            body = manifest.dumps()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(body), int(now.timestamp())
            tar.addfile(info, io.BytesIO(body))
        os.replace(partial, out)  # a backup cut short never looks like a whole one
    return manifest


def read_manifest(archive: Path) -> Manifest:
    try:
        with tarfile.open(archive, "r") as tar:
            member = tar.extractfile(MANIFEST)
            assert member is not None
            data: dict[str, Any] = json.loads(member.read())
    except (tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{archive} is not an e-rescue backup (no readable {MANIFEST})") from exc
    if data.get("format") != FORMAT:
        raise BackupError(f"backup format {data.get('format')!r} is not {FORMAT}")
    return Manifest(**data)


def restore(
    engine: Engine,
    url: str,
    storage: Storage,
    archive: Path,
    *,
    progress: Callable[[str], None] = lambda _m: None,
) -> Manifest:
    """Replace the database's contents with the backup's and put its objects back into the
    storage; then check every table's row count against the manifest. Stop the app and the
    workers first."""
    manifest = read_manifest(archive)
    if manifest.engine != engine.dialect.name:
        raise BackupError(
            f"a {manifest.engine} backup cannot be restored into {engine.dialect.name}"
        )
    with (
        tempfile.TemporaryDirectory(prefix="e-rescue-restore-") as tmp,
        tarfile.open(archive) as tar,
    ):
        progress("database")
        name = "database.sqlite" if manifest.engine == "sqlite" else "database.pgdump"
        member = tar.extractfile(name)
        if member is None:
            raise BackupError(f"the backup holds no {name}")
        dump = Path(tmp) / name
        with dump.open("wb") as fh:
            shutil.copyfileobj(member, fh)
        engine.dispose()
        _restore_database(engine, url, dump)
        progress("storage")
        for info in tar:
            if info.isfile() and info.name.startswith(STORAGE_DIR):
                data = tar.extractfile(info)
                assert data is not None
                storage.put(info.name[len(STORAGE_DIR) :], data.read())
    engine.dispose()
    got = row_counts(engine)
    if got != manifest.tables:
        names = set(got) | set(manifest.tables)
        wrong = sorted(k for k in names if got.get(k) != manifest.tables.get(k))
        raise BackupError(f"restored row counts differ from the backup's in: {', '.join(wrong)}")
    return manifest


def _restore_database(engine: Engine, url: str, dump: Path) -> None:
    if engine.dialect.name == "sqlite":
        source = sqlite3.connect(dump)
        target = sqlite3.connect(make_url(url).database or "", timeout=30)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return
    args, env, _schema = _libpq(url)
    _run(
        ["pg_restore", *args, "--clean", "--if-exists", "--no-owner", "--no-acl",
         "--single-transaction", "--exit-on-error", str(dump)],
        env,
    )  # fmt: skip
