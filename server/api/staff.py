"""Staff accounts, managed by the system administrator (三员分立)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.auth import MeSchema
from server.api.deps import current_actor, db, now, requires, runtime
from server.models import STAFF_ROLES, Role
from server.services.accounts import staff
from server.services.accounts.passwords import PasswordPolicy

blp = Blueprint("staff", __name__, url_prefix="/api/v1", description="Staff accounts")


class StaffCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{3,64}$"))
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "handed out once: the first login must change it"},
    )
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in STAFF_ROLES]))
    town = fields.String(validate=validate.Length(max=32), metadata={"description": "town code"})
    department = fields.String(validate=validate.Length(max=32))
    display_name = fields.String(validate=validate.Length(max=50))


class StaffSchema(MeSchema):
    username = fields.String()
    is_active = fields.Boolean()


@blp.route("/staff", methods=["GET"])
@requires(Role.SYSTEM_ADMIN)
@blp.response(200, StaffSchema(many=True))
def list_staff() -> Any:
    """Every staff account (system administrator)."""
    return staff.list_staff(db(), actor=current_actor())


@blp.route("/staff", methods=["POST"])
@requires(Role.SYSTEM_ADMIN)
@blp.arguments(StaffCreateSchema)
@blp.response(201, StaffSchema)
def create_staff(body: dict[str, Any]) -> Any:
    """Create a staff account with its jurisdiction (system administrator). The password
    follows the policy and must be changed at the first login."""
    return staff.create_staff(
        db(),
        username=body["username"],
        password=body["password"],
        role=Role(body["role"]),
        town_code=body.get("town"),
        department_code=body.get("department"),
        display_name=body.get("display_name"),
        now=now(),
        actor=current_actor(),
        policy=PasswordPolicy.from_config(runtime().config),
    )
