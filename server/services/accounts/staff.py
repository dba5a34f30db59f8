"""Staff accounts: each role has exactly the jurisdiction it needs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.errors import Conflict, NotFound, ValidationFailed
from server.models import STAFF_ROLES, AuthToken, Role, User
from server.services.accounts import passwords
from server.services.accounts.passwords import PasswordPolicy
from server.services.kernel.access import SYSTEM, Actor, require_role
from server.services.kernel.audit import record
from server.services.places import areas

#: The roles a staff account may hold (what account forms offer).
ACCOUNT_ROLES = STAFF_ROLES


def create_staff(
    db: Session,
    *,
    username: str,
    password: str,
    role: Role,
    now: datetime,
    actor: Actor,
    town_code: str | None = None,
    department_code: str | None = None,
    display_name: str | None = None,
    policy: PasswordPolicy = PasswordPolicy(),
    must_change_password: bool = True,
) -> User:
    """A staff account. The password handed out must be changed at its first login unless
    `must_change_password=False` (demo and test accounts, seeded as already changed)."""
    if actor is not SYSTEM:
        require_role(actor, Role.SYSTEM_ADMIN)
    if role not in STAFF_ROLES:
        raise ValidationFailed(
            "只能创建工作人员账号",
            code="not_a_staff_role",
            errors={"role": ["must be a staff role"]},
        )
    passwords.check_new_password(db, user=None, username=username, password=password, policy=policy)
    if db.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict("用户名已存在", code="username_taken")
    user = User(
        username=username,
        role=role,
        display_name=display_name or username,
        created_at=now,
        is_active=True,
    )
    passwords.set_password(
        db,
        user=user,
        password=password,
        now=now,
        policy=policy,
        chosen_by_user=not must_change_password,
    )
    _set_jurisdiction(db, user, role, town_code=town_code, department_code=department_code)
    db.add(user)
    db.flush()
    record(
        db,
        actor=actor,
        action="staff.created",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"username": username, "role": role.value},
    )
    return user


def _set_jurisdiction(
    db: Session, user: User, role: Role, *, town_code: str | None, department_code: str | None
) -> None:
    """A town for town staff, a department for department staff, nothing for the others."""
    user.town_id = None
    user.department_id = None
    if role is Role.TOWN_STAFF:
        if not town_code:
            raise ValidationFailed(
                "镇街工作人员须指定所属镇街",
                code="town_required",
                errors={"town": ["required for town_staff"]},
            )
        user.town_id = areas.town_by_code(db, town_code).id
    if role is Role.DEPARTMENT_STAFF:
        if not department_code:
            raise ValidationFailed(
                "部门工作人员须指定所属部门",
                code="department_required",
                errors={"department": ["required for department_staff"]},
            )
        user.department_id = areas.department_by_code(db, department_code).id


def list_staff(db: Session, *, actor: Actor) -> list[User]:
    """Every staff account (system administrator)."""
    require_role(actor, Role.SYSTEM_ADMIN)
    return list(db.scalars(select(User).where(User.role.in_(list(STAFF_ROLES))).order_by(User.id)))


def _staff_account(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES:
        raise NotFound("未找到该工作人员账号")
    return user


def _revoke_tokens(db: Session, user: User, *, now: datetime) -> None:
    db.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user.id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def change_staff(
    db: Session,
    user_id: int,
    *,
    role: Role,
    town_code: str | None,
    department_code: str | None,
    actor: Actor,
    now: datetime,
) -> User:
    """Change an account's role and jurisdiction (system administrator, audited with before
    and after). Its sessions end, so the next request is made with the new rights. An
    administrator cannot change their own account (三员分立: another must)."""
    require_role(actor, Role.SYSTEM_ADMIN)
    user = _staff_account(db, user_id)
    if user.id == actor.user_id:
        raise Conflict("不能修改自己的角色或管辖范围", code="own_account")
    if role not in STAFF_ROLES:
        raise ValidationFailed(
            "只能设置为工作人员角色",
            code="not_a_staff_role",
            errors={"role": ["must be a staff role"]},
        )
    before = {"role": user.role.value, "town_id": user.town_id, "department_id": user.department_id}
    _set_jurisdiction(db, user, role, town_code=town_code, department_code=department_code)
    user.role = role
    after = {"role": role.value, "town_id": user.town_id, "department_id": user.department_id}
    if after == before:
        return user
    _revoke_tokens(db, user, now=now)
    db.flush()
    record(
        db,
        actor=actor,
        action="staff.changed",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"username": user.username, "before": before, "after": after},
    )
    return user


#: Temporary passwords: unambiguous characters of each kind, so one read aloud or copied from
#: the screen works; always long enough for the policy.
_TEMP_KINDS = ("abcdefghjkmnpqrstuvwxyz", "ABCDEFGHJKMNPQRSTUVWXYZ", "23456789")


@dataclass(frozen=True, slots=True)
class PasswordReset:
    user: User
    #: Shown once to the administrator, never stored in clear; must be changed at next login.
    temporary_password: str


def temporary_password(policy: PasswordPolicy = PasswordPolicy()) -> str:
    """A password to hand out (new accounts, resets): long enough and of three kinds."""
    length = policy.min_length + 4
    pool = "".join(_TEMP_KINDS)
    chars = [secrets.choice(kind) for kind in _TEMP_KINDS]
    chars += [secrets.choice(pool) for _ in range(max(length, 12) - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def reset_password(
    db: Session,
    user_id: int,
    *,
    actor: Actor,
    now: datetime,
    policy: PasswordPolicy = PasswordPolicy(),
) -> PasswordReset:
    """A temporary password for a staff member who forgot theirs (system administrator): shown
    once, changed at the next login; the account's sessions end. Audited (without the
    password)."""
    require_role(actor, Role.SYSTEM_ADMIN)
    user = _staff_account(db, user_id)
    if user.id == actor.user_id:
        raise Conflict("不能重置自己的密码，请在“修改密码”中修改", code="own_account")
    while True:
        temporary = temporary_password(policy)
        if not user.username or user.username.lower() not in temporary.lower():
            break
    passwords.set_password(
        db, user=user, password=temporary, now=now, policy=policy, chosen_by_user=False
    )
    _revoke_tokens(db, user, now=now)
    db.flush()
    record(
        db,
        actor=actor,
        action="staff.password_reset",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"username": user.username},
    )
    return PasswordReset(user=user, temporary_password=temporary)
