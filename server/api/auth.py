"""Login (WeChat and staff), logout, and who am I."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import (
    bearer_token,
    client_ip,
    current_user,
    db,
    now,
    public,
    requires,
    runtime,
)
from server.services.accounts import auth

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Identity")


class WeChatLoginSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "wx.login() code"},
    )


class StaffLoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=256), load_only=True
    )


class StaffPasswordChangeSchema(StaffLoginSchema):
    new_password = fields.String(
        required=True,
        validate=validate.Length(min=1, max=256),
        load_only=True,
        metadata={
            "description": "≥ 8 characters of three kinds, not the username, not one of the last 5"
        },
    )


class AreaRefSchema(Schema):
    code = fields.String()
    name = fields.String()


class MeSchema(Schema):
    id = fields.Integer(required=True)
    role = fields.String(required=True)
    display_name = fields.String(allow_none=True)
    town = fields.Nested(AreaRefSchema, allow_none=True)
    village = fields.Nested(AreaRefSchema, allow_none=True)
    department = fields.Nested(AreaRefSchema, allow_none=True)


class TokenSchema(Schema):
    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    user = fields.Nested(MeSchema, required=True)


class OkSchema(Schema):
    ok = fields.Boolean(required=True)


@blp.route("/auth/wechat-login", methods=["POST"])
@blp.arguments(WeChatLoginSchema)
@blp.response(200, TokenSchema)
@public
def wechat_login(body: dict[str, Any]) -> auth.IssuedToken:
    """Log a resident in with a `wx.login` code (the openid never comes from the client)."""
    rt = runtime()
    return auth.wechat_login(
        db(),
        code=body["code"],
        gateway=rt.gateway,
        pii=rt.pii,
        now=now(),
        ttl=rt.config.resident_token_ttl,
    )


@blp.route("/auth/staff-login", methods=["POST"])
@blp.arguments(StaffLoginSchema)
@blp.response(200, TokenSchema)
@public
def staff_login(body: dict[str, Any]) -> auth.IssuedToken:
    """Staff password login. Five failures lock the account for 15 minutes; failures from one
    address beyond its limit are answered slowly. A first login, or a password older than 90
    days, answers 403 `password_change_required`: send it again to `/auth/staff-password`
    with a new one."""
    config = runtime().config
    return auth.staff_login(
        db(),
        username=body["username"],
        password=body["password"],
        ip=client_ip(),
        now=now(),
        ttl=config.staff_token_ttl,
        policy=auth.LoginPolicy.from_config(config),
    )


@blp.route("/auth/staff-password", methods=["POST"])
@blp.arguments(StaffPasswordChangeSchema)
@blp.response(200, TokenSchema)
@public
def change_staff_password(body: dict[str, Any]) -> auth.IssuedToken:
    """Set a new staff password with the current one (checked like a login), and log in."""
    config = runtime().config
    return auth.change_staff_password(
        db(),
        username=body["username"],
        password=body["password"],
        new_password=body["new_password"],
        ip=client_ip(),
        now=now(),
        ttl=config.staff_token_ttl,
        policy=auth.LoginPolicy.from_config(config),
    )


@blp.route("/auth/logout", methods=["POST"])
@requires()
@blp.response(200, OkSchema)
def logout() -> dict[str, bool]:
    """Revoke the token used for this request."""
    auth.revoke_token(db(), token=bearer_token() or "", now=now())
    return {"ok": True}


@blp.route("/me")
@requires()
@blp.response(200, MeSchema)
def me() -> Any:
    """Who I am, my role and my jurisdiction."""
    return current_user()
