"""Public information: the kinds of aid and the numbers to call. Anyone may read; the center
maintains them."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, public, requires
from server.models import ContactKind, Role
from server.services.places import public_info

#: Record ids in URLs: larger numbers are not ids (and would overflow SQLite).
_ID = "int(max=9007199254740991)"

blp = Blueprint(
    "public", __name__, url_prefix="/api/v1/public", description="Public policy and contacts"
)

_LINES = {"validate": validate.Length(min=1, max=20)}
_LINE = validate.Length(min=1, max=200)


class PolicySchema(Schema):
    code = fields.String(required=True)
    title = fields.String(required=True)
    summary = fields.String(required=True)
    eligibility = fields.List(
        fields.String(), required=True, metadata={"description": "who qualifies"}
    )
    documents = fields.List(
        fields.String(), required=True, metadata={"description": "documents to photograph"}
    )
    duration = fields.String(required=True, metadata={"description": "how long it takes"})
    how_to_apply = fields.String(required=True)
    sort_order = fields.Integer(required=True)
    updated_at = fields.DateTime(allow_none=True)


class PolicyWriteSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=50))
    summary = fields.String(required=True, validate=validate.Length(min=1, max=500))
    eligibility = fields.List(fields.String(validate=_LINE), required=True, **_LINES)
    documents = fields.List(fields.String(validate=_LINE), required=True, **_LINES)
    duration = fields.String(required=True, validate=validate.Length(min=1, max=200))
    how_to_apply = fields.String(required=True, validate=validate.Length(min=1, max=500))
    sort_order = fields.Integer(load_default=None, validate=validate.Range(min=0, max=10_000))


class ContactSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    town = fields.String(allow_none=True, metadata={"description": "town code"})
    town_name = fields.String(allow_none=True)
    name = fields.String(required=True)
    phone = fields.String(required=True)
    note = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    latitude = fields.Float(
        allow_none=True, metadata={"description": "GCJ-02, for wx.openLocation"}
    )
    longitude = fields.Float(allow_none=True, metadata={"description": "GCJ-02"})
    is_demo = fields.Boolean(
        required=True, metadata={"description": "a placeholder number, not yet confirmed"}
    )
    sort_order = fields.Integer(required=True)
    updated_at = fields.DateTime(allow_none=True)


class ContactCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in ContactKind]))
    town = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$", error="编码格式不正确"),
        metadata={"description": "town code, for a town platform"},
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    phone = fields.String(required=True, validate=validate.Length(min=3, max=30))
    note = fields.String(load_default=None, validate=validate.Length(max=200))
    address = fields.String(load_default=None, validate=validate.Length(max=200))
    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    is_demo = fields.Boolean(load_default=False)
    sort_order = fields.Integer(load_default=None, validate=validate.Range(min=0, max=10_000))


class ContactPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=50))
    phone = fields.String(validate=validate.Length(min=3, max=30))
    note = fields.String(allow_none=True, validate=validate.Length(max=200))
    address = fields.String(allow_none=True, validate=validate.Length(max=200))
    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90))
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180))
    is_demo = fields.Boolean()
    sort_order = fields.Integer(validate=validate.Range(min=0, max=10_000))


def _contact_view(contact: Any) -> dict[str, Any]:
    return {
        "id": contact.id,
        "kind": contact.kind.value,
        "town": contact.town.code if contact.town else None,
        "town_name": contact.town.name if contact.town else None,
        "name": contact.name,
        "phone": contact.phone,
        "note": contact.note,
        "address": contact.address,
        "latitude": contact.latitude,
        "longitude": contact.longitude,
        "is_demo": contact.is_demo,
        "sort_order": contact.sort_order,
        "updated_at": contact.updated_at,
    }


@blp.route("/policies", methods=["GET"])
@public
@blp.response(200, PolicySchema(many=True))
def list_policies() -> Any:
    """Each kind of aid: who qualifies, which documents to photograph, how long it takes.
    No login needed."""
    return public_info.list_policies(db())


@blp.route("/policies/<string:code>", methods=["PUT"])
@requires(Role.CENTER_STAFF)
@blp.arguments(PolicyWriteSchema)
@blp.response(200, PolicySchema)
@blp.doc(
    parameters=[
        {
            "in": "path",
            "name": "code",
            "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,32}$"},
        }
    ]
)
def save_policy(body: dict[str, Any], code: str) -> Any:
    """Create or replace one kind of aid's public text (center staff)."""
    return public_info.save_policy(db(), code, body=body, actor=current_actor(), now=now())


@blp.route("/contacts", methods=["GET"])
@public
@blp.response(200, ContactSchema(many=True))
def list_contacts() -> Any:
    """The district hotline, other lines, and each town's platform phone. No login needed."""
    return [_contact_view(c) for c in public_info.list_contacts(db())]


@blp.route("/contacts", methods=["POST"])
@requires(Role.CENTER_STAFF)
@blp.arguments(ContactCreateSchema)
@blp.response(201, ContactSchema)
def add_contact(body: dict[str, Any]) -> Any:
    """Add a phone number (center staff)."""
    contact = public_info.add_contact(db(), body=body, actor=current_actor(), now=now())
    return _contact_view(contact)


@blp.route(f"/contacts/<{_ID}:contact_id>", methods=["PATCH"])
@requires(Role.CENTER_STAFF)
@blp.arguments(ContactPatchSchema)
@blp.response(200, ContactSchema)
def edit_contact(body: dict[str, Any], contact_id: int) -> Any:
    """Change a number (center staff). A changed number is taken as confirmed (no longer demo)
    unless `is_demo` is given."""
    contact = public_info.edit_contact(
        db(), contact_id, changes=body, actor=current_actor(), now=now()
    )
    return _contact_view(contact)


@blp.route(f"/contacts/<{_ID}:contact_id>", methods=["DELETE"])
@requires(Role.CENTER_STAFF)
@blp.response(204)
def remove_contact(contact_id: int) -> None:
    """Remove an extra line (center staff); the district hotline and town platforms stay."""
    public_info.remove_contact(db(), contact_id, actor=current_actor(), now=now())
