"""The security administrator's work (三员分立): account locks and the password policy in force.
Key rotation is `services/kernel/rotation.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from server.errors import Conflict, NotFound, ValidationFailed
from server.models import STAFF_ROLES, AuthToken, LoginThrottle, Role, User
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


#: The longest lock the security administrator sets by hand (then it lapses or is renewed).
MAX_LOCK_DAYS = 365


def lock_account(
    db: Session, *, username: str, days: int, reason: str, actor: Actor, now: datetime
) -> User:
    """Lock a staff account by hand (a lost laptop, someone who left) for `days`: logins are
    refused as for too many failures, and its sessions end now. Lifted by `unlock_account`."""
    require_role(actor, Role.SECURITY_ADMIN)
    if not 1 <= days <= MAX_LOCK_DAYS:
        raise ValidationFailed(
            f"锁定天数须在 1 到 {MAX_LOCK_DAYS} 之间", errors={"days": ["超出范围"]}
        )
    user = db.scalar(
        select(User).where(
            func.lower(User.username) == username.strip().lower(), User.role.in_(list(STAFF_ROLES))
        )
    )
    if user is None or not user.username:
        raise NotFound("未找到该工作人员账号")
    if user.id == actor.user_id:
        raise Conflict("不能锁定自己的账号", code="own_account")
    key = f"user:{user.username.lower()}"
    until = now + timedelta(days=days)
    row = db.get(LoginThrottle, key)
    if row is None:
        db.add(LoginThrottle(key=key, failures=0, window_started_at=now, locked_until=until))
    else:
        row.locked_until = until
    db.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user.id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    db.flush()
    record(
        db,
        actor=actor,
        action="account.locked",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"username": user.username, "until": until.isoformat(), "reason": reason[:200]},
    )
    return user
