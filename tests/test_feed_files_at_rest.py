"""Department files at rest (issue 17): a file waiting for the worker is sealed in the storage,
never in clear, never in the database, and is deleted when its batch ends, imported or failed;
only the rejected rows stay (sealed) for errors.xlsx."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from server.models import Base, FeedBatch, FeedBatchFile
from server.services.feeds import batches
from tests.builders import make_id_number
from tests.feedfiles import OOP_HEADER, csv_bytes, upload


def oop_row(name: str, id_number: str, amount: int) -> list[object]:
    return [1, name, id_number, "博山区医院", "2026-03-05", "2026-03-15", amount]


@pytest.fixture
def insurer(staff_login):  # noqa: ANN001, ANN201
    return staff_login(role="department_staff", department="medical_insurance")


def clear_anywhere(runtime, secrets: list[str]) -> list[str]:  # noqa: ANN001
    """Where any of `secrets` appears in clear: the database (every byte of the SQLite file and
    its WAL; every row of every table on PostgreSQL) and every object in the storage."""
    found: list[str] = []
    if runtime.engine.dialect.name == "sqlite":
        path = Path(make_url(runtime.config.database_url).database)
        blobs = {p.name: p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}
    else:
        with runtime.engine.connect() as conn:
            blobs = {
                table: "\n".join(
                    conn.execute(text(f"SELECT CAST(t AS text) FROM {table} t")).scalars()
                ).encode()
                for table in Base.metadata.tables
            }
    for key in runtime.storage.keys(""):
        blobs[f"storage:{key}"] = runtime.storage.get(key)
    for where, blob in blobs.items():
        found += [f"{s} in {where}" for s in secrets if s.encode() in blob]
    return found


def test_no_clear_id_number_is_left_anywhere_after_a_failed_and_a_successful_batch(
    client, insurer, runtime, db, monkeypatch
) -> None:
    from server.worker.loop import run_worker

    monkeypatch.setattr(batches, "INLINE_MAX_BYTES", 0)
    good = [make_id_number() for _ in range(20)]
    bad_check_digit = good[0][:-1] + ("0" if good[0][-1] != "0" else "1")
    rows = [OOP_HEADER, *[oop_row(f"人{i}", n, 30000 + i) for i, n in enumerate(good)]]
    rows.append(oop_row("错", bad_check_digit, 30000))
    ok = upload(client, insurer, "insurance_oop", csv_bytes(rows), "ok.csv")
    doomed_ids = [make_id_number() for _ in range(20)]
    doomed_rows = [OOP_HEADER, *[oop_row(f"败{i}", n, 40000) for i, n in enumerate(doomed_ids)]]
    doomed = upload(client, insurer, "insurance_oop", csv_bytes(doomed_rows), "doomed.csv")
    assert ok.status_code == doomed.status_code == 202
    secrets = [*good, bad_check_digit, *doomed_ids]
    # Waiting for the worker: sealed in the storage, nothing in clear anywhere.
    assert len(list(runtime.storage.keys(batches.FILES_PREFIX))) == 2
    assert clear_anywhere(runtime, secrets) == []

    original = batches.Importer.run

    def breaks_on_the_doomed_file(self, table):  # noqa: ANN001, ANN202
        if self.batch.filename == "doomed.csv":
            raise RuntimeError("disk on fire")
        return original(self, table)

    monkeypatch.setattr(batches.Importer, "run", breaks_on_the_doomed_file)
    run_worker(runtime, once=True)

    status = dict(db.execute(select(FeedBatch.filename, FeedBatch.status)).all())
    assert {k: v.value for k, v in status.items()} == {"ok.csv": "done", "doomed.csv": "failed"}
    assert db.scalar(select(func.count()).select_from(FeedBatchFile)) == 0
    assert list(runtime.storage.keys(batches.FILES_PREFIX)) == []
    assert clear_anywhere(runtime, secrets) == []
    assert clear_anywhere(runtime, ["doomed.csv"]), "the search sees what is stored in clear"
    # The rejected row is still given back, whole, to be fixed.
    errors = client.get(
        f"/api/v1/feeds/insurance_oop/batches/{ok.get_json()['id']}/errors.xlsx",
        headers=insurer.headers,
    )
    assert errors.status_code == 200
    import io

    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_filelike(io.BytesIO(errors.data)).get_sheet_by_index(0)
    assert [r[2] for r in sheet.to_python()[1:]] == [bad_check_digit]


def test_the_migration_deletes_clear_files_left_in_the_database_and_fails_their_batches(
    database_url, engine_name, tmp_path
) -> None:  # noqa: ANN001
    """A file kept in clear by the old schema (a failed batch's 15,000 ID numbers) is deleted
    by migration 0017; a batch still waiting for its file fails, asking for it again."""
    from alembic import command
    from sqlalchemy import create_engine

    from server.cli.database import alembic_config
    from tests.builders.migrations import _fresh_url

    url, drop = _fresh_url(database_url, engine_name, tmp_path)
    try:
        command.upgrade(alembic_config(url), "0016")
        engine = create_engine(url)
        id_number = make_id_number()
        with engine.begin() as conn:
            for batch_id, status in ((1, "failed"), (2, "queued")):
                conn.execute(
                    text(
                        "INSERT INTO feed_batches (id, feed_code, filename, sha256, size_bytes,"
                        " status, rows_done, result, header, created_at) VALUES (:id,"
                        " 'insurance_oop', 'f.csv', 'x', 10, :status, 0, '{}', '[]',"
                        " CURRENT_TIMESTAMP)"
                    ),
                    {"id": batch_id, "status": status},
                )
                conn.execute(
                    text("INSERT INTO feed_batch_files (batch_id, content) VALUES (:id, :c)"),
                    {"id": batch_id, "c": f"姓名,身份证号\n甲,{id_number}\n".encode()},
                )
        command.upgrade(alembic_config(url), "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM feed_batch_files")).scalar() == 0
            rows = conn.execute(
                text("SELECT id, status, failure_code FROM feed_batches ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, "failed", None), (2, "failed", "file_purged")]
        engine.dispose()
    finally:
        drop()
