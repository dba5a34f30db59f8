"""A resident's rights over their personal information (PIPL art. 44–47): to see what we hold
about them, and to have their account closed and their data deleted, except what a law obliges
us to keep.

- `my_data`: the account, every application they filed (unmasked: it is theirs), their
  messages and subscriptions, and the leads whose subject they are (found by the ID numbers of
  the applications they filed for themselves): status, channels and categories only, because a
  lead also holds other agencies' findings and staff notes. The look is audited (`pii.viewed`).
- `request_deletion`: idempotent; one pending request per account.
- `decide_deletion` (center staff): carried out, the WeChat link (openid, unionid, session key)
  is removed, every token revoked (the resident is logged out at once), messages, subscriptions
  and unsent WeChat messages deleted and the account closed; applications are social-assistance
  case records that must be kept (社会救助档案), and the answer lists each one kept and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.errors import Conflict, NotFound, ValidationFailed
from server.models import (
    Application,
    AuthToken,
    DeletionRequest,
    DeletionStatus,
    InboxMessage,
    Lead,
    OutboxMessage,
    OutboxState,
    Role,
    Subscription,
    User,
)
from server.services.applications.reading import application_number, masked_view
from server.services.kernel.access import Actor
from server.services.kernel.audit import record, record_unmasked_view
from server.services.kernel.pii import PersonalData

#: Why applications outlive an account (the answer says it to the resident).
RETENTION_REASON = (
    "社会救助申请及办理记录属于社会救助档案，依照《社会救助暂行办法》和档案管理规定须依法保存，"
    "不随账号注销删除；保存期满后按规定销毁"
)
_LEAD_STATUS = {
    "new": "待研判",
    "triaged": "已研判",
    "dispatched": "已转办",
    "awaiting_revisit": "待回访",
    "closed": "已办结",
    "merged": "已合并",
}


def my_data(db: Session, *, actor: Actor, pii: PersonalData, now: datetime) -> dict[str, Any]:
    """Everything we hold about the caller, whole. Recorded as `pii.viewed` (their own)."""
    user = _user(db, actor)
    filed = list(
        db.scalars(
            select(Application).where(Application.filed_by_id == user.id).order_by(Application.id)
        )
    )
    record_unmasked_view(
        db,
        actor=actor,
        target_type="user",
        target_id=user.id,
        fields=["account", "applications", "messages", "leads"],
        now=now,
        purpose="own_data",
    )
    return {
        "account": {
            "id": user.id,
            "role": user.role.value,
            "created_at": user.created_at,
            "last_login_at": user.last_login_at,
            "wechat_linked": user.openid is not None,
            "village_id": user.village_id,
        },
        "applications": [_own_application(a, pii=pii) for a in filed],
        "messages": [
            {"title": m.title, "body": m.body, "created_at": m.created_at, "read": bool(m.read_at)}
            for m in db.scalars(
                select(InboxMessage)
                .where(InboxMessage.user_id == user.id)
                .order_by(InboxMessage.id)
            )
        ],
        "subscriptions": [
            {"template_id": s.template_id, "status": s.status.value, "quota": s.quota}
            for s in db.scalars(select(Subscription).where(Subscription.user_id == user.id))
        ],
        "leads": _leads_about(db, filed, pii=pii),
        "deletion_request": _request_view(_pending(db, user.id)),
        "generated_at": now,
    }


def _own_application(application: Application, *, pii: PersonalData) -> dict[str, Any]:
    view = masked_view(application, pii=pii)
    view["id_number"] = pii.open(application.id_number_enc)
    view["phone"] = pii.open(application.phone_enc)
    view["household"] = [
        {**m, "id_number": pii.open(raw["id_number_enc"]) if raw.get("id_number_enc") else None}
        for m, raw in zip(view["household"], application.household, strict=True)
    ]
    return view


def _leads_about(
    db: Session, filed: list[Application], *, pii: PersonalData
) -> list[dict[str, Any]]:
    """The leads whose subject filed for themselves (not those about people they helped), by
    the ID number's hash under every listed key (a re-keying window)."""
    own = {
        h
        for a in filed
        if not a.on_behalf
        for h in pii.hashes_of_sealed(a.id_number_enc, a.id_hash)
    }
    if not own:
        return []
    leads = db.scalars(select(Lead).where(Lead.person_hash.in_(own)).order_by(Lead.id))
    return [
        {
            "id": lead.id,
            "status": lead.status.value,
            "status_label": _LEAD_STATUS.get(lead.status.value, lead.status.value),
            "channel": lead.channel.value,
            "categories": list(lead.categories),
            "created_at": lead.created_at,
        }
        for lead in leads
    ]


def request_deletion(
    db: Session, *, actor: Actor, reason: str | None, now: datetime
) -> tuple[DeletionRequest, bool]:
    """The caller's pending request, made now unless one is pending already (then returned
    as it is: asking twice is asking once). Returns (request, created)."""
    user = _user(db, actor)
    existing = _pending(db, user.id)
    if existing is not None:
        return existing, False
    request = DeletionRequest(
        user_id=user.id,
        status=DeletionStatus.PENDING,
        pending_key=user.id,
        reason=(reason or "").strip()[:500] or None,
        requested_at=now,
    )
    try:
        with savepoint(db):
            db.add(request)
            db.flush()
    except IntegrityError:
        concurrent = _pending(db, user.id)  # the same request at the same moment
        assert concurrent is not None
        return concurrent, False
    record(
        db,
        actor=actor,
        action="account.deletion_requested",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"request": request.id},
    )
    return request, True


def list_deletion_requests(db: Session, *, status: DeletionStatus | None) -> list[dict[str, Any]]:
    query = select(DeletionRequest).order_by(DeletionRequest.id)
    if status is not None:
        query = query.where(DeletionRequest.status == status)
    return [_request_view(r) for r in db.scalars(query.limit(500))]  # type: ignore[misc]


def decide_deletion(
    db: Session,
    request_id: int,
    *,
    actor: Actor,
    outcome: DeletionStatus,
    note: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Carry out (`completed`) or refuse (`refused`, a note required) a pending request."""
    request = db.get(DeletionRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound("未找到该注销申请", code="deletion_request_not_found")
    if request.status is not DeletionStatus.PENDING:
        raise Conflict("该注销申请已处理", code="deletion_request_decided")
    note = (note or "").strip()[:500] or None
    if outcome is DeletionStatus.REFUSED and not note:
        raise ValidationFailed(
            "不予注销须说明理由", code="note_required", errors={"note": ["请填写理由"]}
        )
    if outcome is DeletionStatus.COMPLETED:
        request.outcome = _close_account(db, request.user_id, now=now)
    request.status, request.pending_key = outcome, None
    request.decided_at, request.decided_by_id, request.note = now, actor.user_id, note
    record(
        db,
        actor=actor,
        action=f"account.deletion_{outcome.value}",
        target_type="user",
        target_id=request.user_id,
        now=now,
        detail={"request": request.id, "kept": len((request.outcome or {}).get("kept", []))},
    )
    db.flush()
    return _request_view(request)  # type: ignore[return-value]


def _close_account(db: Session, user_id: int, *, now: datetime) -> dict[str, Any]:
    user = db.get(User, user_id)
    assert user is not None
    user.openid = user.unionid = user.session_key_enc = None
    user.display_name = None
    user.is_active = False
    if user.role is Role.HELPER:
        user.role, user.village_id = Role.RESIDENT, None
    tokens = db.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    deleted = {
        "messages": db.execute(
            delete(InboxMessage).where(InboxMessage.user_id == user_id)
        ).rowcount,
        "subscriptions": db.execute(
            delete(Subscription).where(Subscription.user_id == user_id)
        ).rowcount,
        "unsent_wechat_messages": db.execute(
            delete(OutboxMessage).where(
                OutboxMessage.user_id == user_id, OutboxMessage.state == OutboxState.PENDING
            )
        ).rowcount,
    }
    kept = [
        {"what": f"救助申请 {application_number(a)}", "reason": RETENTION_REASON}
        for a in db.scalars(
            select(Application).where(Application.filed_by_id == user_id).order_by(Application.id)
        )
    ]
    return {
        "wechat_unlinked": True,
        "logged_out_tokens": tokens,
        "deleted": deleted,
        "kept": kept,
    }


def _request_view(request: DeletionRequest | None) -> dict[str, Any] | None:
    if request is None:
        return None
    return {
        "id": request.id,
        "user_id": request.user_id,
        "status": request.status.value,
        "reason": request.reason,
        "requested_at": request.requested_at,
        "decided_at": request.decided_at,
        "note": request.note,
        "outcome": request.outcome,
    }


def request_view(request: DeletionRequest) -> dict[str, Any]:
    view = _request_view(request)
    assert view is not None
    return view


def _pending(db: Session, user_id: int) -> DeletionRequest | None:
    return db.scalar(select(DeletionRequest).where(DeletionRequest.pending_key == user_id))


def _user(db: Session, actor: Actor) -> User:
    user = db.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None:
        raise NotFound("未找到账号", code="user_not_found")
    return user
