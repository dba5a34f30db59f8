"""Append-only audit trail. Every state change and every unmasked view writes one row.

Nothing here updates or deletes an entry, and the API offers no route that could.

Whoever shows a whole ID or phone number (a detail view, a printed slip, an export) calls
`record_unmasked_view` or `record_unmasked_export` in the same transaction, so the look and its
record commit or roll back together.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from server.clock import TZ
from server.db import insert_if_missing
from server.errors import NotFound
from server.models import AuditChain, AuditEntry, Role, User
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role

#: Someone saw personal data in full on screen / in a file they took away.
PII_VIEWED = "pii.viewed"
PII_EXPORTED = "pii.exported"
#: Actions that mean "personal data was shown unmasked" (older modules use their own verbs).
UNMASKED_ACTIONS = (PII_VIEWED, PII_EXPORTED)

#: Where a session keeps its entries until commit, and the chain key (from the Runtime's
#: session factory: `Session.info`).
_PENDING = "audit_pending"
CHAIN_KEY = "audit_chain_key"
_HEAD = 1

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
    """One entry, for callers without an `Actor` (logins: `anonymous` for a name nobody has).

    The entry is written when its transaction commits, chained onto the last one (see
    `_chain_at_commit`); if the transaction (or the savepoint it was recorded in) rolls back,
    it is dropped with everything else."""
    entry = AuditEntry(
        at=now,
        actor_id=actor_id,
        actor_role=actor_role,
        action=action,
        target_type=target_type,
        target_id=target_id,
        # As stored and read back (JSON), so the hash sealed now is the hash verified later.
        detail=json.loads(json.dumps(scrub(detail or {}), ensure_ascii=False)),
        ip=ip,
    )
    db.info.setdefault(_PENDING, []).append((entry, _current_transaction(db)))
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


# --- the chain --------------------------------------------------------------------------------


class AuditChainKeyMissing(RuntimeError):
    """Audit entries were recorded in a session that cannot chain them."""


def _current_transaction(db: Session) -> SessionTransaction:
    txn = db.get_nested_transaction() or db.get_transaction()
    if txn is None:
        db.connection()  # begin the session's transaction, so the entry belongs to it
        txn = db.get_transaction()
    assert txn is not None
    return txn


def _within(txn: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while txn is not None:
        if txn is ancestor:
            return True
        txn = txn.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [(e, t) for e, t in pending if not _within(t, previous_transaction)]


@event.listens_for(Session, "before_commit")
def _chain_at_commit(session: Session) -> None:
    """Append the transaction's entries to the chain, last of all its writes.

    Everything else is flushed first; then the chain's head row is locked (`FOR UPDATE` on
    PostgreSQL; SQLite's one writer already holds its lock), so two committing writers never
    chain onto the same entry, and the head is the last lock a transaction takes: no
    deadlock, and the head is held only for the entries' INSERT and the COMMIT."""
    pending = session.info.pop(_PENDING, None)
    root = session.get_transaction()
    entries = [e for e, t in pending or () if root is not None and _within(t, root)]
    if not entries:
        return
    key = session.info.get(CHAIN_KEY)
    if key is None:
        raise AuditChainKeyMissing("audit entries need a session from Runtime.session_factory")
    session.flush()
    head = locked_head(session)
    for entry in entries:
        head.last_seq += 1
        entry.seq, entry.prev_hash = head.last_seq, head.last_hash
        entry.hash = entry_hash(key, entry)
        head.last_hash = entry.hash
        session.add(entry)
    seal_head(key, head)


def locked_head(session: Session) -> AuditChain:
    """The chain's head row, created on first use (genesis: nothing before entry 1)."""
    insert_if_missing(
        session,
        AuditChain,
        {"id": _HEAD, "last_seq": 0, "last_hash": "", "first_seq": 1, "first_prev_hash": "",
         "mac": ""},
        key="id",
    )  # fmt: skip
    head = session.get(AuditChain, _HEAD, with_for_update=True, populate_existing=True)
    assert head is not None
    return head


def entry_hash(key: bytes, entry: AuditEntry) -> str:
    """HMAC-SHA256 over every field of the entry and the hash before it."""
    fields = [
        entry.seq,
        entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        entry.actor_id,
        entry.actor_role,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.detail,
        entry.ip,
        entry.prev_hash,
    ]
    body = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _head_mac(key: bytes, head: AuditChain) -> str:
    body = f"head|{head.first_seq}|{head.first_prev_hash}|{head.last_seq}|{head.last_hash}"
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def seal_head(key: bytes, head: AuditChain) -> None:
    """The head's own MAC: cutting entries off the end, or moving the start forward, cannot be
    hidden by rewriting the head without the key."""
    head.mac = _head_mac(key, head)


# --- reading the trail (the audit administrator) ----------------------------------------------


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
    #: The acting staff member's login name (the console's filter; the API takes `actor_id`).
    actor_username: str | None = None


def list_entries(
    db: Session,
    filters: AuditFilter,
    *,
    actor: Actor,
    limit: int,
    before: int | None,
    now: datetime,
) -> dict[str, Any]:
    """Newest first, `limit` at a time; `before` is the keyset cursor (an entry id). Only the
    audit administrator reads the trail, and each read is itself recorded (`audit.read`)."""
    require_role(actor, Role.AUDIT_ADMIN)
    query = _filtered(select(AuditEntry, User), filters).outerjoin(
        User, User.id == AuditEntry.actor_id
    )
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = db.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    record(
        db,
        actor=actor,
        action="audit.read",
        target_type="audit",
        target_id=None,
        now=now,
        detail={"filters": _described(filters), "before": before, "rows": len(rows)},
    )
    return {
        "items": [_view(entry, user) for entry, user in rows],
        "next_before": rows[-1][0].id if more else None,
    }


#: At most this many entries go into one export (narrow the filter for more).
EXPORT_LIMIT = 20_000

#: What the console calls each action (the code is shown beside it; unknown codes as they are).
ACTION_LABELS = {
    PII_VIEWED: "查看完整个人信息",
    PII_EXPORTED: "导出个人信息",
    "audit.read": "查阅审计记录",
    "audit.exported": "导出审计记录",
    "audit.pruned": "清理过期审计记录",
    "login.succeeded": "登录",
    "login.failed": "登录失败",
    "password.changed": "修改密码",
    "account.unlocked": "解除锁定",
    "staff.created": "新建工作人员账号",
    "lead.created": "新建线索",
    "lead.reported": "报告线索",
    "lead.merge": "合并线索",
    "lead.unmerge": "撤销合并",
    "lead.kept_apart": "标记非同一人",
    "lead.exported": "导出线索",
    "lead.informed": "记录告知",
    "lead.revisited": "回访",
    "ledger.exported": "导出台帐",
    "supervision.exported": "导出通报",
    "town_summary.submitted": "提交月度小结",
    "feed.batch_received": "部门数据报送",
    "feed.settings_changed": "修改部门数据设置",
    "calendar.year_loaded": "载入节假日安排",
    "helper.appointed": "任命协理员",
    "helper.revoked": "撤销协理员",
    "helper_invitation.created": "生成协理员邀请",
    "helper_invitation.revoked": "作废协理员邀请",
    "visit.recorded": "登记走访",
    "visit.edited": "修改走访",
    "application.decision": "申请办结",
    "application.rated": "申请评价",
    "photo.uploaded": "上传照片",
}


def export_entries(db: Session, filters: AuditFilter, *, actor: Actor, now: datetime) -> bytes:
    """The filtered trail as an xlsx workbook, newest first (at most `EXPORT_LIMIT` rows),
    for the audit administrator only; the export is itself audited (`audit.exported`)."""
    import xlsxwriter

    require_role(actor, Role.AUDIT_ADMIN)
    query = _filtered(select(AuditEntry, User), filters).outerjoin(
        User, User.id == AuditEntry.actor_id
    )
    rows = db.execute(query.order_by(AuditEntry.id.desc()).limit(EXPORT_LIMIT)).all()
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    sheet = book.add_worksheet("审计记录")
    bold = book.add_format({"bold": True})
    header = [
        "序号",
        "时间",
        "操作人",
        "角色",
        "操作",
        "操作代码",
        "对象类型",
        "对象编号",
        "IP",
        "详情",
    ]
    sheet.write_row(0, 0, header, bold)
    sheet.set_column(1, 1, 18)
    sheet.set_column(9, 9, 60)
    for i, (entry, user) in enumerate(rows, start=1):
        view = _view(entry, user)
        sheet.write_row(
            i,
            0,
            [
                view["seq"] if view["seq"] is not None else "",
                view["at"].astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S"),
                view["actor_name"] or "系统",
                view["actor_role"],
                ACTION_LABELS.get(view["action"], view["action"]),
                view["action"],
                view["target_type"],
                view["target_id"] if view["target_id"] is not None else "",
                view["ip"] or "",
                json.dumps(view["detail"], ensure_ascii=False),
            ],
        )
    book.close()
    record(
        db,
        actor=actor,
        action="audit.exported",
        target_type="audit",
        target_id=None,
        now=now,
        detail={"filters": _described(filters), "rows": len(rows)},
    )
    return buffer.getvalue()


def get_entry(db: Session, entry_id: int, *, actor: Actor, now: datetime) -> dict[str, Any]:
    require_role(actor, Role.AUDIT_ADMIN)
    row = db.execute(
        select(AuditEntry, User)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(AuditEntry.id == entry_id)
    ).first()
    if row is None:
        raise NotFound("未找到该审计记录")
    record(db, actor=actor, action="audit.read", target_type="audit", target_id=entry_id, now=now)
    return _view(*row)


def _described(filters: AuditFilter) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, date) else getattr(value, "value", value)
        for name, value in vars(filters).items()
        if value not in (None, False)
    }


def _filtered(query: Any, f: AuditFilter) -> Any:
    if f.actor_id is not None:
        query = query.where(AuditEntry.actor_id == f.actor_id)
    if f.actor_username:
        query = query.where(
            AuditEntry.actor_id.in_(select(User.id).where(User.username == f.actor_username))
        )
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
        "seq": entry.seq,
        "hash": entry.hash,
    }
