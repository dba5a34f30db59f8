"""Towns and villages for the mini-program's pickers; village loading for staff."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, requires
from server.fields import Text
from server.models import Role
from server.services.kernel.audit import record
from server.services.places import areas

blp = Blueprint("areas", __name__, url_prefix="/api/v1", description="Towns and villages")


class VillageSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class TownSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    phone = fields.String(allow_none=True)
    villages = fields.List(fields.Nested(VillageSchema), required=True)


class VillageCreateSchema(Schema):
    town = fields.String(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "town code"},
    )
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$"))
    name = Text(50, min_len=1, required=True)


class UploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class RowErrorSchema(Schema):
    row = fields.Integer()
    column = fields.String()
    code = fields.String()
    message = fields.String()


class VillageLoadSchema(Schema):
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    errors = fields.List(fields.Nested(RowErrorSchema), required=True)


@blp.route("/areas")
@requires()
@blp.response(200, TownSchema(many=True))
def list_areas() -> Any:
    """The eleven divisions with their villages (any logged-in user)."""
    return areas.list_towns_with_villages(db())


@blp.route("/villages", methods=["POST"])
@requires(Role.SYSTEM_ADMIN, Role.TOWN_STAFF)
@blp.arguments(VillageCreateSchema)
@blp.response(201, VillageSchema)
def create_village(body: dict[str, Any]) -> Any:
    """Add or rename one village (system administrator; town staff only in their own
    town)."""
    actor = current_actor()
    village = areas.save_village(
        db(), actor=actor, town_code=body["town"], code=body["code"], name=body["name"]
    )
    record(
        db(),
        actor=actor,
        action="village.saved",
        target_type="village",
        target_id=village.id,
        now=now(),
        detail={"code": village.code, "name": village.name},
    )
    return village


@blp.route("/villages/import", methods=["POST"])
@requires(Role.SYSTEM_ADMIN)
@blp.arguments(UploadSchema, location="files")
@blp.response(200, VillageLoadSchema)
def import_villages(files: dict[str, Any]) -> Any:
    """Load villages from a CSV or xlsx file with columns 镇街, 村居, 编码 (system
    administrator)."""
    upload = files["file"]
    result = areas.import_villages(
        db(),
        content=upload.read(),
        filename=upload.filename or "",
        actor=current_actor(),
        now=now(),
    )
    return result
