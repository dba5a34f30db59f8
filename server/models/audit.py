"""The audit trail: state changes and unmasked views of personal data. Append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, intpk


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_target", "target_type", "target_id"),)

    id: Mapped[intpk]
    at: Mapped[datetime] = mapped_column(index=True)
    #: Who acted (null for the system: worker, scheduled checks).
    actor_id: Mapped[int | None] = mapped_column(index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    #: A dotted verb, e.g. `lead.created`, `dispatch.signed`, `pii.viewed`.
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[int | None]
    #: What changed (old/new values) or what was shown; never clear-text ID or phone numbers.
    detail: Mapped[dict[str, Any]]
    ip: Mapped[str | None] = mapped_column(String(64))
