"""Importing a department file: validate rows, compare them with the roster and the open leads,
and add leads and evidence — in chunks, set-based.

Per chunk of rows the database sees a fixed number of statements whatever the chunk's size:
one IN-list lookup of the roster, one of the open leads (locked on PostgreSQL), one of closed
leads, one bulk insert each for leads, evidence, ledger and rejected rows (see bulk.py), and one
bulk update of the leads that gained evidence. Never one query per row. Idempotent by
construction: evidence carries a content key per person, so the same file twice, or overlapping
rows in a later file, add nothing; a once-per-period rule writes a ledger row per person and
period and raises nobody twice.

Per row, only what the row needs: every row is validated (a rejected row must say why, whatever
its amount); rows below the feed's threshold are then only counted; the rest get their keyed
hash, their signal (reason, facts, dedup key), and — for people without an open lead — a sealed
ID number and the name's keys. Cells that repeat down a column (dates, hospitals) are converted
once per distinct value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import (
    Department,
    FeedBatch,
    FeedRejectedRow,
    User,
)
from server.services.feeds.bulk import Bulk
from server.services.feeds.comparison import Comparison
from server.services.feeds.namekeys import NameKeys
from server.services.feeds.reader import Table
from server.services.feeds.registry import Feed, OnRoster
from server.services.feeds.rows import (
    RowChecks,
    _area_maps,
    _Checked,
    _validators,
)
from server.services.kernel.access import SYSTEM, Actor
from server.services.kernel.pii import PersonalData
from server.services.leads.core import CATEGORIES

#: Rows per chunk: per chunk the database sees a fixed number of statements and the worker
#: commits once, so progress shows; a chunk's rows and what they become stay in memory.
CHUNK_ROWS = 10_000


COUNTERS = (
    "read",
    "accepted",
    "rejected",
    "below_threshold",
    "leads_created",
    "leads_updated",
    "already_covered",
    "duplicates",
    "roster_added",
    "roster_updated",
    #: Rows accepted without an ID number (feeds where it is optional), and of them those
    #: whose new lead has candidates (the same person, perhaps) for staff to merge.
    "without_id",
    "with_candidates",
    #: 合计 / 小计 / 总计 rows: skipped, not errors.
    "totals_skipped",
)


@dataclass
class Progress:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    earliest_event: date | None = None
    rejected_kept: int = 0


class Importer(RowChecks, Comparison):
    """Imports one batch's rows. Build it, then call `run(table)`; it only flushes.

    `checkpoint` runs after each chunk: the worker and the CLI commit there so progress is seen
    and memory stays bounded; an inline (small) import just flushes.
    """

    def __init__(
        self,
        db: Session,
        *,
        batch: FeedBatch,
        feed: Feed,
        pii: PersonalData,
        now: datetime,
        checkpoint: Callable[[FeedBatch], None] | None = None,
        chunk_rows: int | None = None,
        resume_after: int = 0,
    ) -> None:
        self.db = db
        #: Data rows a previous attempt imported and committed (its worker died): skipped,
        #: with that attempt's counts carried on.
        self.resume_after = resume_after
        self.batch = batch
        self.feed = feed
        self.pii = pii
        self.now = now
        self.today = now.date()
        self.checkpoint = checkpoint
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self.progress = Progress()
        self.dialect = db.get_bind().dialect.name
        self._towns, self._villages = _area_maps(db)
        self._validators = _validators(feed, today=self.today)
        self.bulk = Bulk(db)
        self._name_key = NameKeys()
        #: The evidence rows name the department whose file this is.
        self.department_id: int | None = db.scalar(
            select(Department.id).where(Department.code == feed.department)
        )
        uploader = db.get(User, batch.uploaded_by) if batch.uploaded_by else None
        self._uploader_role = uploader.role.value if uploader is not None else "system"
        #: Who the per-row path (rows without an ID number) acts as: the uploader.
        self._actor = (
            Actor(user_id=uploader.id, role=uploader.role, department_id=uploader.department_id)
            if uploader is not None
            else SYSTEM
        )
        self._categories_on = [c for c in feed.categories if c in CATEGORIES]
        self._categories_off = [
            c for c in (*feed.categories, *feed.categories_off_roster) if c in CATEGORIES
        ]

    # --- driving ------------------------------------------------------------------------------

    def run(self, table: Table) -> dict[str, Any]:
        """Import every data row of `table`.

        On PostgreSQL a two-stage pipeline: this thread reads and validates chunk N+1 (pure
        Python, no database) while one helper thread does chunk N's database work, which mostly
        waits on the server. The session is only ever used by one thread at a time: the stages
        hand over at `pending.result()`. On SQLite the stages run one after the other: the
        engine works inside this process and the sqlite3 module takes the GIL back after every
        row it steps, so a second thread gains nothing (measured: slightly slower).
        """
        self.batch.header_row = table.header_row
        self.batch.header = table.header
        self.batch.rows_total = table.rows_total
        plan = self._plan(table)
        rows = table.data_rows()
        if self.resume_after:
            self._restore_progress()
            rows = islice(rows, self.resume_after, None)
        pool: ThreadPoolExecutor | None = None
        pending: Future[None] | None = None
        try:
            for chunk in _chunks(rows, self.chunk_rows):
                checked = self._validate(chunk, plan)
                del chunk
                if not self.bulk.pg or (
                    pending is None and pool is None and checked.read < self.chunk_rows
                ):
                    self._store(checked)  # SQLite, or a small file: one chunk, no thread
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-import")
                if pending is not None:
                    pending.result()
                pending = pool.submit(self._store, checked)
            if pending is not None:
                pending.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.batch.rows_total = self.progress.counts["read"]
        self.batch.rows_done = self.progress.counts["read"]
        return self.result()

    def _restore_progress(self) -> None:
        """The counts the previous attempt committed with its last chunk."""
        saved = self.batch.result or {}
        self.progress.counts = {k: int(saved.get(k, 0)) for k in COUNTERS}
        earliest = saved.get("earliest_event")
        self.progress.earliest_event = date.fromisoformat(earliest) if earliest else None
        self.progress.rejected_kept = (
            self.db.scalar(
                select(func.count())
                .select_from(FeedRejectedRow)
                .where(FeedRejectedRow.batch_id == self.batch.id)
            )
            or 0
        )

    def result(self) -> dict[str, Any]:
        earliest = self.progress.earliest_event
        return {
            **self.progress.counts,
            "earliest_event": earliest.isoformat() if earliest else None,
        }

    def _store(self, checked: _Checked) -> None:
        """The database stage of one chunk; ends with the caller's checkpoint (commit)."""
        counts = self.progress.counts
        self.bulk.begin_chunk(
            self.batch.id, counts["read"], async_commit=self.checkpoint is not None
        )
        counts["read"] += checked.read
        counts["accepted"] += checked.valid
        counts["rejected"] += len(checked.rejected)
        counts["below_threshold"] += checked.below_threshold
        counts["totals_skipped"] += checked.totals
        earliest = self.progress.earliest_event
        if checked.earliest is not None and (earliest is None or checked.earliest < earliest):
            self.progress.earliest_event = checked.earliest
        self._keep_rejected(checked.rejected)
        if self.feed.on_roster is OnRoster.ROSTER:
            self._update_roster(checked.accepted)
        else:
            self._compare(checked.accepted)
            self._without_id(checked.without_id)
        self.batch.rows_done = counts["read"]
        self.batch.result = self.result()
        self.db.flush()
        if self.checkpoint is not None:
            self.checkpoint(self.batch)


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
