"""The security administrator's room (三员分立): locks and the password policy in force."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from server.api.deps import current_actor, db, now, requires, runtime
from server.api.staff import StaffSchema
from server.models import Role
from server.services.accounts import security
from server.services.accounts.auth import LoginPolicy

blp = Blueprint("security", __name__, url_prefix="/api/v1", description="Security administration")


class LockedAccountSchema(Schema):
    user_id = fields.Integer(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True)
    failures = fields.Integer(required=True)
    locked_until = fields.DateTime(required=True)


class PasswordPolicySchema(Schema):
    min_length = fields.Integer(required=True)
    min_kinds = fields.Integer(required=True)
    history = fields.Integer(required=True)
    max_age_days = fields.Integer(required=True)
    max_failures = fields.Integer(required=True)
    lock_seconds = fields.Integer(required=True)
    idle_timeout_seconds = fields.Integer(required=True)


@blp.route("/security/locked-accounts")
@requires(Role.SECURITY_ADMIN)
@blp.response(200, LockedAccountSchema(many=True))
def list_locked_accounts() -> Any:
    """Staff accounts locked now by failed logins (security administrator)."""
    return security.locked_accounts(db(), actor=current_actor(), now=now())


@blp.route("/staff/<int(max=9007199254740991):user_id>/unlock", methods=["POST"])
@requires(Role.SECURITY_ADMIN)
@blp.response(200, StaffSchema)
def unlock_account(user_id: int) -> Any:
    """Unlock a staff account locked by failed logins (security administrator; audited)."""
    return security.unlock_account(db(), user_id=user_id, actor=current_actor(), now=now())


@blp.route("/security/password-policy")
@requires(Role.SECURITY_ADMIN)
@blp.response(200, PasswordPolicySchema)
def password_policy() -> dict[str, int]:
    """The password and lockout rules in force (set by `PASSWORD_*`, `LOGIN_*`,
    `STAFF_IDLE_TIMEOUT`)."""
    config = runtime().config
    policy = LoginPolicy.from_config(config)
    return {
        "min_length": policy.passwords.min_length,
        "min_kinds": policy.passwords.min_kinds,
        "history": policy.passwords.history,
        "max_age_days": policy.passwords.max_age_days,
        "max_failures": policy.max_failures,
        "lock_seconds": int(policy.lock.total_seconds()),
        "idle_timeout_seconds": config.staff_idle_timeout,
    }
