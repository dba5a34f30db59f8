"""Staff accounts: each role has exactly the jurisdiction it needs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, ValidationFailed
from server.models import STAFF_ROLES, Role, User
from server.services.accounts import passwords
from server.services.accounts.passwords import PasswordPolicy
from server.services.kernel.access import SYSTEM, Actor, require_role
from server.services.kernel.audit import record
from server.services.places import areas


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
