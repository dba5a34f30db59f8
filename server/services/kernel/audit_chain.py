"""Keeping the audit chain: verifying it, pruning what is past retention, exporting it.

Entries are chained as they commit (`services/kernel/audit.py`). `verify` walks the chain from the
first entry kept to the head and names the first entry deleted, altered or out of place;
`prune` deletes entries past retention oldest first, in batches, moving the chain's start so
what is left still verifies; `export_lines` gives entries as JSON lines for a log platform.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from server.config import MIN_AUDIT_RETENTION_DAYS
from server.errors import ValidationFailed
from server.models import AuditChain, AuditEntry
from server.services.kernel.access import SYSTEM
from server.services.kernel.audit import (
    _HEAD,
    _head_mac,
    entry_hash,
    locked_head,
    record,
    seal_head,
)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    #: Entries whose hash was checked.
    checked: int
    first_seq: int | None
    last_seq: int | None
    #: Entries from before the chain existed (migration 0014), not covered by it.
    unchained: int
    problem: str | None = None
    #: The first entry where the chain breaks.
    broken_at: int | None = None


def verify(db: Session, *, key: bytes, batch: int = 5000) -> ChainReport:
    """Check every kept entry against its hash and the one before it, and the head's MAC."""
    unchained = db.scalar(select(func.count()).where(AuditEntry.seq.is_(None))) or 0
    head = db.get(AuditChain, _HEAD)
    if head is None:
        any_sealed = db.scalar(select(AuditEntry.seq).where(AuditEntry.seq.is_not(None)).limit(1))
        if any_sealed is not None:
            return ChainReport(False, 0, None, None, unchained, "审计链头记录缺失", any_sealed)
        return ChainReport(True, 0, None, None, unchained)
    if head.mac != _head_mac(key, head):
        return _broken(head, 0, unchained, "审计链头记录被改动（或密钥不符）", head.last_seq)
    expected_seq, expected_prev, checked = head.first_seq, head.first_prev_hash, 0
    stray = db.scalar(select(func.min(AuditEntry.seq)).where(AuditEntry.seq < head.first_seq))
    if stray is not None:
        return _broken(head, 0, unchained, f"第 {stray} 条在保留起点之前却仍存在", stray)
    while True:
        entries = db.scalars(
            select(AuditEntry)
            .where(AuditEntry.seq >= expected_seq)
            .order_by(AuditEntry.seq)
            .limit(batch)
        ).all()
        for entry in entries:
            if entry.seq != expected_seq:
                problem = f"第 {expected_seq} 条已被删除"
                return _broken(head, checked, unchained, problem, expected_seq)
            if entry.prev_hash != expected_prev:
                return _broken(
                    head, checked, unchained, f"第 {entry.seq} 条未接在前一条之后", entry.seq
                )
            if entry_hash(key, entry) != entry.hash:
                return _broken(head, checked, unchained, f"第 {entry.seq} 条已被改动", entry.seq)
            expected_seq, expected_prev = entry.seq + 1, entry.hash
            checked += 1
        db.expunge_all()
        if len(entries) < batch:
            break
    if expected_seq - 1 != head.last_seq or expected_prev != head.last_hash:
        return _broken(
            head, checked, unchained, f"第 {expected_seq} 条起的记录已被删除", expected_seq
        )
    return ChainReport(True, checked, head.first_seq, head.last_seq, unchained)


def _broken(head: AuditChain, checked: int, unchained: int, problem: str, at: int) -> ChainReport:
    return ChainReport(False, checked, head.first_seq, head.last_seq, unchained, problem, at)


def prune(db: Session, *, key: bytes, now: datetime, keep_days: int, batch: int = 5000) -> int:
    """Delete one batch of the oldest entries older than `keep_days` and move the chain's
    start past them; returns how many went (0: nothing left to prune). The caller commits
    after each batch, so a long prune holds the head only briefly and can stop and resume.
    Entries from before the chain (no `seq`) past retention go too."""
    if keep_days < MIN_AUDIT_RETENTION_DAYS:
        raise ValidationFailed(
            f"审计记录至少保留 {MIN_AUDIT_RETENTION_DAYS} 天", code="retention_too_short"
        )
    cutoff = now - timedelta(days=keep_days)
    _allow_pruning(db)
    unchained = db.execute(
        delete(AuditEntry)
        .where(AuditEntry.seq.is_(None), AuditEntry.at < cutoff)
        .execution_options(synchronize_session=False)
    ).rowcount
    head = locked_head(db)
    young = db.scalar(
        select(func.min(AuditEntry.seq)).where(AuditEntry.seq.is_not(None), AuditEntry.at >= cutoff)
    )
    # Entries are pruned in chain order: the first one young enough to keep, and all after
    # it, stay (an older-dated entry committed later is kept with it).
    boundary = young if young is not None else head.last_seq + 1
    stop = min(boundary, head.first_seq + batch)
    if stop <= head.first_seq:
        return unchained
    last_gone = db.scalar(select(AuditEntry).where(AuditEntry.seq == stop - 1))
    deleted = db.execute(
        delete(AuditEntry)
        .where(AuditEntry.seq >= head.first_seq, AuditEntry.seq < stop)
        .execution_options(synchronize_session=False)
    ).rowcount
    head.first_seq = stop
    head.first_prev_hash = last_gone.hash if last_gone is not None else head.first_prev_hash
    seal_head(key, head)
    db.flush()
    if stop == boundary:  # done: say so once, as the newest entry
        record(
            db,
            actor=SYSTEM,
            action="audit.pruned",
            target_type="audit",
            target_id=None,
            now=now,
            detail={"before": cutoff.isoformat(), "first_seq": stop},
        )
    return deleted + unchained


def _allow_pruning(db: Session) -> None:
    """On PostgreSQL the append-only trigger lets this transaction delete entries older than
    180 days, and nothing younger (migration 0014)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL e_rescue.audit_prune = 'on'"))


def export_lines(db: Session, *, after_seq: int = 0, batch: int = 5000) -> Iterator[str]:
    """Every chained entry after `after_seq`, oldest first, one JSON object a line (with its
    `seq` and `hash`, so the platform can check the chain and resume from the last `seq`)."""
    while True:
        entries = db.scalars(
            select(AuditEntry)
            .where(AuditEntry.seq > after_seq)
            .order_by(AuditEntry.seq)
            .limit(batch)
        ).all()
        for entry in entries:
            yield json.dumps(_exported(entry), ensure_ascii=False, sort_keys=True)
            after_seq = entry.seq or after_seq
        db.expunge_all()
        if len(entries) < batch:
            return


def _exported(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "detail": entry.detail,
        "ip": entry.ip,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
