"""Department data feeds (部门信息共享): settings, uploaded batches, rejected rows, the roster of
people already receiving aid, and the ledger of what each once-per-period rule already raised."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, enum_column, intpk, key_string


class FeedSetting(Base):
    """What center staff changed about a feed; the registry in services/feeds gives defaults."""

    __tablename__ = "feed_settings"

    id: Mapped[intpk]
    #: The feed's code in the registry (e.g. `insurance_oop`).
    code: Mapped[str] = mapped_column(String(40), unique=True)
    #: Field → extra header names accepted for it, added to the registry's own aliases.
    column_aliases: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Threshold in yuan replacing the registry's default (null: use the default).
    threshold: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class BatchStatus(enum.StrEnum):
    QUEUED = "queued"  # stored, waiting for the worker
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # refused as a whole or broke in the worker; `failure` says why


class FeedBatch(Base):
    """One file a department sent, with its progress and what became of its rows."""

    __tablename__ = "feed_batches"
    __table_args__ = (Index("ix_feed_batches_feed", "feed_code", "id"),)

    id: Mapped[intpk]
    feed_code: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the file: the same file sent twice is recognised (and adds nothing).
    sha256: Mapped[str] = mapped_column(key_string(64), index=True)
    size_bytes: Mapped[int]
    status: Mapped[BatchStatus] = mapped_column(enum_column(BatchStatus, 10), index=True)
    #: Data rows in the file (known once the header is found) and rows handled so far.
    rows_total: Mapped[int | None]
    rows_done: Mapped[int] = mapped_column(default=0)
    #: Counters of the result: read, accepted, rejected, below_threshold, leads_created,
    #: leads_updated, already_covered, duplicates, roster_added, roster_updated.
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Why the whole file was refused or the import broke (plain Chinese), with a code.
    failure_code: Mapped[str | None] = mapped_column(String(40))
    failure: Mapped[str | None] = mapped_column(String(500))
    #: The header row (1-based) and the columns as sent, for errors.xlsx.
    header_row: Mapped[int | None]
    header: Mapped[list[Any]] = mapped_column(default=list)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class FeedBatchFile(Base):
    """Where the uploaded file of a batch the worker still has to import is kept: sealed
    (`PersonalData.seal_bytes`) in the storage (server/storage), deleted with this row when the
    batch ends, imported or failed (services/feeds/batches.py)."""

    __tablename__ = "feed_batch_files"

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("feed_batches.id", ondelete="CASCADE"), primary_key=True
    )
    #: The storage key of the sealed bytes (`feed-batches/<stored at>-<batch>-<random>.sealed`).
    storage_key: Mapped[str] = mapped_column(String(200))


class FeedRejectedRow(Base):
    """A row refused by validation, kept (sealed) so errors.xlsx can give it back to be fixed."""

    __tablename__ = "feed_rejected_rows"
    __table_args__ = (Index("ix_feed_rejected_rows_batch", "batch_id", "row_number"),)

    id: Mapped[intpk]
    batch_id: Mapped[int] = mapped_column(ForeignKey("feed_batches.id", ondelete="CASCADE"))
    #: 1-based row number in the file as the department sees it in Excel.
    row_number: Mapped[int]
    #: The header of the first column at fault, the error code and its Chinese message.
    column: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(300))
    #: The row's cells as sent, JSON-encoded then encrypted (they may hold an ID number).
    values_enc: Mapped[str] = mapped_column(Text)


class RosterProgramme(enum.StrEnum):
    """What a person on the roster already receives."""

    DIBAO = "dibao"  # 低保
    TEKUN = "tekun"  # 特困
    ORPHAN = "orphan"  # 孤困儿童
    TEMPORARY = "temporary"  # 临时救助


class RosterEntry(Base):
    """A person already receiving aid, kept current by the civil_affairs_new feed."""

    __tablename__ = "roster_entries"

    id: Mapped[intpk]
    #: Keyed hash of the normalised ID number: the comparison joins on it.
    person_hash: Mapped[str] = mapped_column(key_string(64), unique=True)
    id_number_enc: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(50))
    programme: Mapped[RosterProgramme] = mapped_column(enum_column(RosterProgramme, 20))
    #: When the aid was granted, as the department reported it.
    since: Mapped[date | None]
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("feed_batches.id"))
    updated_at: Mapped[datetime]


class RuleLedger(Base):
    """What a once-per-period rule already raised: one row per rule, person and period."""

    __tablename__ = "rule_ledger"
    __table_args__ = (UniqueConstraint("rule", "person_hash", "period"),)

    id: Mapped[intpk]
    #: The rule's code, e.g. `annual_oop_40k`.
    rule: Mapped[str] = mapped_column(String(40))
    person_hash: Mapped[str] = mapped_column(key_string(64))
    #: The period the rule looks at, e.g. `2026` for a yearly rule.
    period: Mapped[str] = mapped_column(String(10))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("feed_batches.id"))
    created_at: Mapped[datetime]
