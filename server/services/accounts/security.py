"""The security administrator's work (三员分立): account locks and the password policy in force.
Key rotation is `services/kernel/rotation.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import STAFF_ROLES, LoginThrottle, Role, User
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record


@dataclass(frozen=True)
class LockedAccount:
    user_id: int
    username: str
    role: str
    failures: int
    locked_until: datetime


def locked_accounts(db: Session, *, actor: Actor, now: datetime) -> list[LockedAccount]:
    """Staff accounts locked now by failed logins, soonest unlocked first."""
    require_role(actor, Role.SECURITY_ADMIN)
    rows = db.execute(
        select(User, LoginThrottle)
        .join(LoginThrottle, LoginThrottle.key == "user:" + func.lower(User.username))
        .where(LoginThrottle.locked_until > now, User.role.in_(list(STAFF_ROLES)))
        .order_by(LoginThrottle.locked_until, User.id)
    ).all()
    return [
        LockedAccount(
            user_id=user.id,
            username=user.username or "",
            role=user.role.value,
            failures=row.failures,
            locked_until=row.locked_until,
        )
        for user, row in rows
    ]


def unlock_account(db: Session, *, user_id: int, actor: Actor, now: datetime) -> User:
    """Lift a lock before it lapses and forget the account's failures (audited)."""
    require_role(actor, Role.SECURITY_ADMIN)
    user = db.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES or not user.username:
        raise NotFound("未找到该工作人员账号")
    key = f"user:{user.username.lower()}"
    was = db.get(LoginThrottle, key)
    db.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
    record(
        db,
        actor=actor,
        action="account.unlocked",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={
            "username": user.username,
            "was_locked": bool(was and was.locked_until and was.locked_until > now),
        },
    )
    return user
