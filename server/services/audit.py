"""Append-only audit trail. Every state change and every unmasked view writes one row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.models import AuditEntry
from server.services.access import Actor


def record(
    db: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: int | None,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=now,
        actor_id=actor.user_id,
        actor_role=actor.role.value,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=detail or {},
        ip=actor.ip,
    )
    db.add(entry)
    return entry
