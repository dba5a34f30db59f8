"""Batches: a department uploads a file; small files are imported at once, large ones by the
worker (`feeds.import_batch` job) with progress; the CLI imports a file from disk the same way.

A queued file waits sealed (`PersonalData.seal_bytes`, the field cipher) in the storage, never in
clear and never in the database, and is deleted when its batch ends, imported or failed; what
is kept afterwards is the batch's counters and its rejected rows (sealed, for errors.xlsx) for
`REJECTED_KEEP_DAYS`. `purge_files` removes whatever an interrupted run left behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from server.errors import DomainError, NotFound
from server.metrics import count_feed_batch
from server.models import (
    BatchStatus,
    Channel,
    Department,
    FeedBatch,
    FeedBatchFile,
    FeedRejectedRow,
    Job,
    JobStatus,
    Lead,
    Role,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.feeds.importer import COUNTERS, Importer
from server.services.feeds.punctuality import punctuality
from server.services.feeds.reader import open_table, peek_table
from server.services.feeds.registry import FEEDS, Feed, OnRoster
from server.services.feeds.settings import access_feed, department_code, effective_feed
from server.services.households.building import queue_roster_placement
from server.services.kernel import jobs, workbooks
from server.services.kernel.access import Actor
from server.services.kernel.audit import record, record_unmasked_export
from server.services.kernel.pii import PersonalData
from server.storage import ObjectMissing, Storage

log = logging.getLogger(__name__)

#: Files up to this size are imported inside the upload request; larger ones go to the worker.
INLINE_MAX_BYTES = 256 * 1024
#: ... and hold at most this many rows (from the sheet's real extent, or the csv's lines).
INLINE_MAX_ROWS = 20_000
JOB_KIND = "feeds.import_batch"
#: Rows per statement when filling the pinyin keys of the leads an import opened.
NAME_KEY_CHUNK = 5000
#: Rejected rows listed in a batch's JSON answer; errors.xlsx has all that were kept.
REJECTED_IN_ANSWER = 200
BROKEN = "导入过程中出错，请稍后重新上传；如仍失败请联系区社会救助综合服务中心"
#: Sealed files waiting for the worker are kept under this storage prefix.
FILES_PREFIX = "feed-batches/"
_FILE_KEY = re.compile(r"^feed-batches/(\d+)-(\d+)-[0-9a-f]+\.sealed$")
#: A stored file no batch names (its upload never committed) is removed once this old.
ORPHAN_AFTER = timedelta(hours=1)
#: Rejected rows (sealed) stay this long after their batch ended, for errors.xlsx.
REJECTED_KEEP_DAYS = 30


@dataclass
class Submitted:
    batch: FeedBatch
    queued: bool


def submit_batch(
    db: Session,
    code: str,
    *,
    content: bytes,
    filename: str,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    storage: Storage | None = None,
    inline_max_bytes: int | None = None,
) -> Submitted:
    """Accept a department's file. The whole file is refused (422) when it is empty, not a
    spreadsheet or has no recognisable header; otherwise small files are imported now and large
    ones are sealed into `storage` and queued for the worker (the caller answers 202)."""
    access_feed(db, code, actor=actor, upload=True)
    feed = effective_feed(db, code)
    limit = INLINE_MAX_BYTES if inline_max_bytes is None else inline_max_bytes
    # Refusals happen here, before anything is kept. A large file is only checked (whole) and
    # read from its first rows: the worker reads it. A small file of many rows (a zip of
    # repetitive rows is tiny) is large too, by its real row count.
    if len(content) <= limit:
        table = open_table(content, filename, feed)
        if table.rows_total is not None and table.rows_total > INLINE_MAX_ROWS:
            table.close()
            table._rows = iter(())
    else:
        table = peek_table(content, filename, feed)
    inline = len(content) <= limit and (table.rows_total or 0) <= INLINE_MAX_ROWS
    batch = _new_batch(db, feed, filename=filename, content=content, actor=actor, now=now)
    if inline:
        _import(db, batch, feed, table, pii=pii, now=now, checkpoint=None)
        fill_name_keys(db, checkpoint=None)
        return Submitted(batch, queued=False)
    batch.rows_total = table.rows_total
    if storage is None:
        raise RuntimeError("a file imported by the worker needs the storage to wait in")
    _store_file(db, batch, content, pii=pii, storage=storage, now=now)
    jobs.enqueue(
        db,
        kind=JOB_KIND,
        payload={"batch_id": batch.id},
        now=now,
        dedup_key=f"feed-batch:{batch.id}",
        # A failure inside the import marks the batch failed itself; further attempts are for
        # a worker that died mid-import (its lease expires): the import starts again from the
        # stored file and adds nothing twice (evidence is keyed).
        max_attempts=3,
    )
    db.flush()
    return Submitted(batch, queued=True)


def _store_file(
    db: Session,
    batch: FeedBatch,
    content: bytes,
    *,
    pii: PersonalData,
    storage: Storage,
    now: datetime,
) -> None:
    """Seal the file into the storage and name it on the batch. The key starts with the time so
    that `purge_files` can tell an upload whose transaction never committed from one in flight."""
    key = f"{FILES_PREFIX}{int(now.timestamp())}-{batch.id}-{secrets.token_hex(8)}.sealed"
    storage.put(key, pii.seal_bytes(content))
    db.add(FeedBatchFile(batch_id=batch.id, storage_key=key))


def _read_file(db: Session, batch_id: int, *, pii: PersonalData, storage: Storage) -> bytes | None:
    stored = db.get(FeedBatchFile, batch_id)
    if stored is None:
        return None
    try:
        return pii.open_bytes(storage.get(stored.storage_key))
    except ObjectMissing:
        return None


def discard_file(db: Session, batch_id: int, *, storage: Storage) -> None:
    """Delete a batch's stored file and its row (the batch ended, either way)."""
    stored = db.get(FeedBatchFile, batch_id)
    if stored is None:
        return
    storage.delete(stored.storage_key)
    db.delete(stored)
    db.flush()


def _new_batch(
    db: Session,
    feed: Feed,
    *,
    filename: str,
    content: bytes | None,
    actor: Actor,
    now: datetime,
    sha256: str | None = None,
    size: int | None = None,
) -> FeedBatch:
    batch = FeedBatch(
        feed_code=feed.code,
        filename=(Path(filename).name or "upload")[:200],
        sha256=sha256 or hashlib.sha256(content or b"").hexdigest(),
        size_bytes=size if size is not None else len(content or b""),
        status=BatchStatus.QUEUED,
        rows_done=0,
        result=dict.fromkeys(COUNTERS, 0),
        header=[],
        uploaded_by=actor.user_id,
        created_at=now,
    )
    db.add(batch)
    db.flush()
    record(
        db,
        actor=actor,
        action="feed.batch_received",
        target_type="feed_batch",
        target_id=batch.id,
        now=now,
        detail={"feed": feed.code, "filename": batch.filename, "bytes": batch.size_bytes},
    )
    return batch


def _import(
    db: Session,
    batch: FeedBatch,
    feed: Feed,
    table: Any,
    *,
    pii: PersonalData,
    now: datetime,
    checkpoint: Callable[[FeedBatch], None] | None,
    chunk_rows: int | None = None,
    resume_after: int = 0,
) -> None:
    if not resume_after:
        batch.status, batch.started_at = BatchStatus.RUNNING, now
    kwargs = {} if chunk_rows is None else {"chunk_rows": chunk_rows}
    importer = Importer(
        db,
        batch=batch,
        feed=feed,
        pii=pii,
        now=now,
        checkpoint=checkpoint,
        resume_after=resume_after,
        **kwargs,
    )
    batch.result = importer.run(table)
    batch.status, batch.finished_at = BatchStatus.DONE, now
    if feed.on_roster is OnRoster.ROSTER:
        queue_roster_placement(db, batch.id, now=now)
    db.flush()
    count_feed_batch(feed.code, BatchStatus.DONE.value, batch.result)


def import_stored_batch(
    db: Session,
    batch_id: int,
    *,
    pii: PersonalData,
    storage: Storage,
    now: datetime,
    checkpoint: Callable[[FeedBatch], None],
) -> FeedBatch:
    """The worker's side: import a queued batch's stored file, chunk by chunk.

    `checkpoint` (the caller's commit) runs after each chunk so progress shows and memory stays
    bounded. A file refused as a whole, or an import that breaks, leaves the batch FAILED with
    the reason; repeating an import is harmless (evidence and ledger keys make it idempotent).
    The stored file is deleted when the batch ends, either way.
    """
    batch = db.get(FeedBatch, batch_id)
    if batch is None or batch.status is BatchStatus.DONE:
        raise NotFound("未找到待导入的批次", code="batch_not_found")
    content = _read_file(db, batch_id, pii=pii, storage=storage)
    if content is None:
        discard_file(db, batch_id, storage=storage)
        return _fail(batch, "file_missing", "上传的文件已不在，请重新上传", now=now)
    feed = effective_feed(db, batch.feed_code)
    try:
        table = open_table(content, batch.filename, feed)
    except DomainError as exc:
        discard_file(db, batch_id, storage=storage)
        return _fail(batch, exc.code, exc.message, now=now)
    # The reader holds its own copy of the workbook: the opened bytes need not stay in memory
    # for the whole import.
    del content
    # A batch left running with rows committed belongs to a worker that died mid-import (its
    # job was claimed again): carry on after those rows, with their counts and rejected rows.
    resume_after = batch.rows_done if batch.status is BatchStatus.RUNNING else 0
    if not resume_after:
        db.execute(delete(FeedRejectedRow).where(FeedRejectedRow.batch_id == batch.id))
    _import(
        db, batch, feed, table, pii=pii, now=now, checkpoint=checkpoint, resume_after=resume_after
    )
    discard_file(db, batch_id, storage=storage)
    return batch


def _fail(batch: FeedBatch, code: str, message: str, *, now: datetime) -> FeedBatch:
    batch.status, batch.finished_at = BatchStatus.FAILED, now
    batch.failure_code, batch.failure = code[:40], message[:500]
    count_feed_batch(batch.feed_code, BatchStatus.FAILED.value, {})
    return batch


def run_import_job(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    """The worker's handler of `JOB_KIND` (registered in server/worker/registry.py)."""
    batch_id = int(payload["batch_id"])
    storage: Storage = ctx.deps["storage"]
    try:
        import_stored_batch(
            ctx.db,
            batch_id,
            pii=ctx.deps["pii"],
            storage=storage,
            now=ctx.now,
            checkpoint=lambda _b: ctx.db.commit(),
        )
        fill_name_keys(ctx.db, checkpoint=ctx.db.commit)
    except Exception:
        log.exception("feed batch %s broke", batch_id)
        ctx.db.rollback()
        batch = ctx.db.get(FeedBatch, batch_id)
        if batch is not None and batch.status is not BatchStatus.DONE:
            _fail(batch, "import_broke", BROKEN, now=ctx.now)
            discard_file(ctx.db, batch_id, storage=storage)
    ctx.db.commit()
    try:
        purge_files(ctx.db, storage=storage, now=ctx.now)
    except Exception:  # the import stands; what is left is purged next time
        log.exception("purging feed files after batch %s failed", batch_id)
        ctx.db.rollback()


def purge_files(db: Session, *, storage: Storage, now: datetime) -> dict[str, int]:
    """Remove what nothing needs any more (run after each queued import, and by
    `e-rescue feeds purge` from cron): the stored file of every batch that has ended (imported,
    failed, or whose job gave up), stored files no batch names once `ORPHAN_AFTER` old, and
    rejected rows `REJECTED_KEEP_DAYS` after their batch ended. Only flushes."""
    gave_up = select(Job.payload).where(Job.kind == JOB_KIND, Job.status == JobStatus.FAILED)
    abandoned = {
        int(p["batch_id"]) for p in db.scalars(gave_up) if isinstance(p, dict) and "batch_id" in p
    }
    files = db.execute(
        select(FeedBatchFile.batch_id, FeedBatch.status).join(
            FeedBatch, FeedBatch.id == FeedBatchFile.batch_id
        )
    ).all()
    ended = 0
    for batch_id, status in files:
        if status in (BatchStatus.DONE, BatchStatus.FAILED) or batch_id in abandoned:
            batch = db.get(FeedBatch, batch_id)
            if batch is not None and batch.status not in (BatchStatus.DONE, BatchStatus.FAILED):
                _fail(batch, "import_broke", BROKEN, now=now)
            discard_file(db, batch_id, storage=storage)
            ended += 1
    named = set(db.scalars(select(FeedBatchFile.storage_key)))
    orphans = 0
    for key in list(storage.keys(FILES_PREFIX)):
        match = _FILE_KEY.match(key)
        stored_at = int(match.group(1)) if match else 0
        if key not in named and now.timestamp() - stored_at > ORPHAN_AFTER.total_seconds():
            storage.delete(key)
            orphans += 1
    old = select(FeedBatch.id).where(
        FeedBatch.finished_at < now - timedelta(days=REJECTED_KEEP_DAYS)
    )
    rejected = db.execute(delete(FeedRejectedRow).where(FeedRejectedRow.batch_id.in_(old))).rowcount
    db.flush()
    return {"files": ended, "orphans": orphans, "rejected_rows": rejected or 0}


def import_file(
    db: Session,
    code: str,
    path: Path,
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    checkpoint: Callable[[FeedBatch], None],
    chunk_rows: int | None = None,
) -> FeedBatch:
    """The CLI's side (`e-rescue import-feed CODE FILE`): import a file from disk in chunks."""
    access_feed(db, code, actor=actor, upload=True)
    feed = effective_feed(db, code)
    table = open_table(path, path.name, feed)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    batch = _new_batch(
        db,
        feed,
        filename=path.name,
        content=None,
        actor=actor,
        now=now,
        sha256=digest.hexdigest(),
        size=path.stat().st_size,
    )
    batch.rows_total = table.rows_total
    checkpoint(batch)
    _import(db, batch, feed, table, pii=pii, now=now, checkpoint=checkpoint, chunk_rows=chunk_rows)
    return batch


def fill_name_keys(db: Session, *, checkpoint: Callable[[], None] | None) -> int:
    """Give feed leads still without one their pinyin name key (services/leads/matching.py), which
    hotline reports without an ID number are matched by.

    The importer now writes the key with each lead it opens (an UPDATE of every new lead
    afterwards cost more than the key itself), so after an import this finds nothing to do;
    it stays for leads opened before that. The worker and the CLI run it right after the
    import; a small inline upload runs it before answering. Returns the number of leads filled.
    """
    from server.services.leads.matching import name_key

    table = Lead.__table__
    statement = (
        update(table).where(table.c.id == bindparam("b_id")).values(name_key=bindparam("key"))
    )
    filled, after = 0, 0
    while True:
        rows = db.execute(
            select(Lead.id, Lead.name)
            .where(Lead.name_key.is_(None), Lead.channel == Channel.FEED, Lead.id > after)
            .order_by(Lead.id)
            .limit(NAME_KEY_CHUNK)
        ).all()
        if rows:
            after = rows[-1][0]
            # A derived search key, not a change staff could conflict with: no version bump.
            db.execute(
                statement,
                [{"b_id": i, "key": name_key(n)[:120] or None} for i, n in rows],
                execution_options={"synchronize_session": False},
            )
            filled += len(rows)
            if checkpoint is not None:
                checkpoint()
        if len(rows) < NAME_KEY_CHUNK:
            return filled


# --- reading --------------------------------------------------------------------------------


def access_batch(db: Session, code: str, batch_id: int, *, actor: Actor) -> FeedBatch:
    access_feed(db, code, actor=actor)
    batch = db.scalar(
        select(FeedBatch).where(FeedBatch.id == batch_id, FeedBatch.feed_code == code)
    )
    if batch is None:
        raise NotFound("未找到该批次", code="batch_not_found")
    return batch


def batch_view(db: Session, batch: FeedBatch, *, pii: PersonalData) -> dict[str, Any]:
    rejected = [
        {"row": r.row_number, "column": r.column, "code": r.code, "message": r.message}
        for r in db.scalars(
            select(FeedRejectedRow)
            .where(FeedRejectedRow.batch_id == batch.id)
            .order_by(FeedRejectedRow.row_number)
            .limit(REJECTED_IN_ANSWER)
        )
    ]
    result = {k: int(batch.result.get(k, 0)) for k in COUNTERS}
    total = batch.rows_total
    return {
        "id": batch.id,
        "feed_code": batch.feed_code,
        "filename": batch.filename,
        "status": batch.status.value,
        "rows_total": total,
        "rows_done": batch.rows_done,
        "progress": round(min(batch.rows_done / total, 1.0), 4)
        if total
        else (1.0 if batch.status is BatchStatus.DONE else 0.0),
        "result": result,
        "rejected": rejected,
        "failure_code": batch.failure_code,
        "failure": batch.failure,
        "header_row": batch.header_row,
        "created_at": batch.created_at,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
    }


def list_batches(db: Session, code: str, *, actor: Actor, limit: int = 20) -> list[FeedBatch]:
    access_feed(db, code, actor=actor)
    return list(
        db.scalars(
            select(FeedBatch)
            .where(FeedBatch.feed_code == code)
            .order_by(FeedBatch.id.desc())
            .limit(limit)
        )
    )


def errors_workbook(
    db: Session, batch: FeedBatch, *, pii: PersonalData, actor: Actor, now: datetime
) -> bytes:
    """The rejected rows as sent, with an 错误说明 column, so the department can fix and resend.

    The rows hold whole ID numbers and names: the download is recorded as an unmasked export
    (`audit.record_unmasked_export`) in the caller's transaction, which commits with the answer.
    """
    buffer = io.BytesIO()
    book = workbooks.new_workbook(buffer)
    sheet = book.add_worksheet("未通过校验的行")
    bold = book.add_format({"bold": True})
    header = list(batch.header) or []
    workbooks.write_row(sheet, 0, 0, [*header, "原行号", "错误说明"], bold)
    text = book.add_format({"num_format": "@"})
    rows = db.scalars(
        select(FeedRejectedRow)
        .where(FeedRejectedRow.batch_id == batch.id)
        .order_by(FeedRejectedRow.row_number)
        .execution_options(yield_per=1000)
    )
    width = len(header)
    written = 0
    for index, row in enumerate(rows, start=1):
        cells = json.loads(pii.open(row.values_enc) or "[]")
        cells = (cells + [""] * width)[:width] if width else cells
        workbooks.write_row(sheet, index, 0, cells, text)  # long ID numbers stay whole
        workbooks.write(sheet, index, len(cells), row.row_number)
        workbooks.write(sheet, index, len(cells) + 1, f"{row.column}：{row.message}")
        written = index
    book.close()
    record_unmasked_export(
        db,
        actor=actor,
        what="feed_errors_xlsx",
        fields=["id_number", "name"],
        rows=written,
        now=now,
        target_type="feed_batch",
        target_id=batch.id,
        filters={"feed": batch.feed_code},
    )
    return buffer.getvalue()


# --- punctuality ----------------------------------------------------------------------------


def list_feeds(db: Session, *, actor: Actor, today: date) -> list[dict[str, Any]]:
    """Every feed the actor may see, with its last batch, next due date and punctuality."""
    feeds = list(FEEDS)
    if actor.role is Role.DEPARTMENT_STAFF:
        mine = department_code(db, actor)
        feeds = [f for f in feeds if f.department == mine]
    last_ids = (
        select(func.max(FeedBatch.id))
        .where(FeedBatch.status == BatchStatus.DONE)
        .group_by(FeedBatch.feed_code)
    )
    last = {b.feed_code: b for b in db.scalars(select(FeedBatch).where(FeedBatch.id.in_(last_ids)))}
    departments = dict(db.execute(select(Department.code, Department.name)).all())
    calendar = WorkCalendar.load(db)
    items = []
    for feed in feeds:
        batch = last.get(feed.code)
        uploaded = batch.created_at.date() if batch else None
        earliest = batch.result.get("earliest_event") if batch else None
        state = punctuality(
            feed,
            last_upload=uploaded,
            earliest_event=date.fromisoformat(earliest) if earliest else None,
            today=today,
            calendar=calendar,
        )
        items.append(
            {
                "code": feed.code,
                "name": feed.name,
                "department": feed.department,
                "department_name": departments.get(feed.department, feed.department),
                "cadence": feed.cadence.value,
                "due_rule": feed.due_rule,
                "threshold_field": feed.threshold_field,
                "last_batch": (
                    {
                        "id": batch.id,
                        "filename": batch.filename,
                        "created_at": batch.created_at,
                        "rows_total": batch.rows_total,
                    }
                    if batch
                    else None
                ),
                "next_due": state.next_due,
                "state": state.state.value,
                "state_label": state.label,
                "late_by_working_days": state.late_by,
                "calendar_certain": state.certain,
            }
        )
    return items
