"""Append-only audit trail. Every state change and every unmasked view writes one row.

Nothing here updates or deletes an entry, and the API offers no route that could.

Whoever shows a whole ID or phone number (a detail view, a printed slip, an export) calls
`record_unmasked_view` or `record_unmasked_export` in the same transaction, so the look and its
record commit or roll back together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import NotFound
from server.models import AuditEntry, Role, User
from server.services import idnumber
from server.services.access import Actor, require_role

#: Someone saw personal data in full on screen / in a file they took away.
PII_VIEWED = "pii.viewed"
PII_EXPORTED = "pii.exported"
#: Actions that mean "personal data was shown unmasked" (older modules use their own verbs).
UNMASKED_ACTIONS = (PII_VIEWED, PII_EXPORTED)

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


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
    return record_event(
        db,
        actor_id=actor.user_id,
        actor_role=actor.role.value,
        action=action,
        target_type=target_type,
        target_id=target_id,
        now=now,
        detail=detail,
        ip=actor.ip,
    )


def record_event(
    db: Session,
    *,
    actor_id: int | None,
    actor_role: str,
    action: str,
    target_type: str,
    target_id: int | None,
    now: datetime,
    ip: str | None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """One entry, for callers without an `Actor` (logins: `anonymous` for a name nobody has)."""
    entry = AuditEntry(
        at=now,
        actor_id=actor_id,
        actor_role=actor_role,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=scrub(detail or {}),
        ip=ip,
    )
    db.add(entry)
    return entry


def record_unmasked_view(
    db: Session,
    *,
    actor: Actor,
    target_type: str,
    target_id: int | None,
    fields: list[str],
    now: datetime,
    purpose: str | None = None,
) -> AuditEntry:
    """Record that `actor` was shown `fields` (e.g. ["id_number", "phone"]) of one record whole."""
    detail: dict[str, Any] = {"fields": sorted(fields)}
    if purpose:
        detail["purpose"] = purpose
    return record(
        db,
        actor=actor,
        action=PII_VIEWED,
        target_type=target_type,
        target_id=target_id,
        now=now,
        detail=detail,
    )


def record_unmasked_export(
    db: Session,
    *,
    actor: Actor,
    what: str,
    fields: list[str],
    rows: int,
    now: datetime,
    target_type: str = "export",
    target_id: int | None = None,
    filters: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record a file that carries whole personal data: which file, which fields, how many rows."""
    detail: dict[str, Any] = {"what": what, "fields": sorted(fields), "rows": rows}
    if filters:
        detail["filters"] = filters
    return record(
        db,
        actor=actor,
        action=PII_EXPORTED,
        target_type=target_type,
        target_id=target_id,
        now=now,
        detail=detail,
    )


def scrub(value: Any) -> Any:
    """Mask anything that looks like an ID or mobile number: the trail must not become a leak."""
    if isinstance(value, str):
        value = _ID_NUMBER.sub(lambda m: idnumber.mask(m.group()) or "", value)
        return _MOBILE.sub(lambda m: idnumber.mask_phone(m.group()) or "", value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


# --- reading the trail (center staff) ---------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    actor_id: int | None = None
    actor_role: Role | None = None
    #: An exact action, or a prefix ending in "." (e.g. "lead." for every lead change).
    action: str | None = None
    target_type: str | None = None
    target_id: int | None = None
    #: Days in Asia/Shanghai, both inclusive.
    start: date | None = None
    end: date | None = None
    ip: str | None = None
    #: Only views and exports that showed personal data unmasked.
    unmasked: bool = False


def list_entries(
    db: Session, filters: AuditFilter, *, actor: Actor, limit: int, before: int | None
) -> dict[str, Any]:
    """Newest first, `limit` at a time; `before` is the keyset cursor (an entry id)."""
    require_role(actor, Role.CENTER_STAFF)
    query = _filtered(select(AuditEntry, User), filters).outerjoin(
        User, User.id == AuditEntry.actor_id
    )
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = db.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [_view(entry, user) for entry, user in rows],
        "next_before": rows[-1][0].id if more else None,
    }


def get_entry(db: Session, entry_id: int, *, actor: Actor) -> dict[str, Any]:
    require_role(actor, Role.CENTER_STAFF)
    row = db.execute(
        select(AuditEntry, User)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(AuditEntry.id == entry_id)
    ).first()
    if row is None:
        raise NotFound("未找到该审计记录")
    return _view(*row)


def _filtered(query: Any, f: AuditFilter) -> Any:
    if f.actor_id is not None:
        query = query.where(AuditEntry.actor_id == f.actor_id)
    if f.actor_role is not None:
        query = query.where(AuditEntry.actor_role == f.actor_role.value)
    if f.action:
        if f.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(f.action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == f.action)
    if f.target_type:
        query = query.where(AuditEntry.target_type == f.target_type)
    if f.target_id is not None:
        query = query.where(AuditEntry.target_id == f.target_id)
    if f.start is not None:
        query = query.where(AuditEntry.at >= datetime.combine(f.start, time(), TZ))
    if f.end is not None:
        query = query.where(AuditEntry.at < datetime.combine(f.end + timedelta(days=1), time(), TZ))
    if f.ip:
        query = query.where(AuditEntry.ip == f.ip)
    if f.unmasked:
        query = query.where(AuditEntry.action.in_(UNMASKED_ACTIONS))
    return query


def _view(entry: AuditEntry, user: User | None) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "actor_name": (user.display_name or user.username) if user else None,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "detail": entry.detail,
        "ip": entry.ip,
    }
