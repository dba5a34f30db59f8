"""Services social organisations give households: assigned from a lead by the center or the
town, recorded by the organisation's volunteers (or the center), counted by the center."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, requires, runtime
from server.models import Role, ServiceKind
from server.services.social import services

blp = Blueprint("services", __name__, url_prefix="/api/v1", description="Social services")

_ID = validate.Range(min=1, max=2**53)
_KINDS = [k.value for k in ServiceKind]


class AssignmentCreateSchema(Schema):
    lead_id = fields.Integer(required=True, validate=_ID)
    org_id = fields.Integer(required=True, validate=_ID)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(_KINDS),
        metadata={"description": "家境调查, 人文关怀, 心理疏导, 资源链接, 能力提升, 社会融入"},
    )
    instructions = fields.String(required=True, validate=validate.Length(min=1, max=500))
    due_on = fields.Date(load_default=None, allow_none=True)


class AssignmentHouseholdSchema(Schema):
    id = fields.Integer(required=True)
    head_name = fields.String(allow_none=True)
    village = fields.String(allow_none=True)
    address = fields.String(allow_none=True)


class AssignmentSchema(Schema):
    id = fields.Integer(required=True)
    org_id = fields.Integer(required=True)
    org_name = fields.String(required=True)
    kind = fields.String(required=True)
    kind_label = fields.String(required=True)
    household = fields.Nested(AssignmentHouseholdSchema, required=True)
    instructions = fields.String(required=True)
    due_on = fields.Date(required=True)
    assigned_at = fields.DateTime(required=True)
    done_at = fields.DateTime(allow_none=True)


class AssignmentFilterSchema(Schema):
    open = fields.Boolean(load_default=False, metadata={"description": "not yet done only"})


class ServiceCreateSchema(Schema):
    assignment_id = fields.Integer(load_default=None, allow_none=True, validate=_ID)
    org_id = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=_ID,
        metadata={"description": "center only, without an assignment"},
    )
    household_id = fields.Integer(load_default=None, allow_none=True, validate=_ID)
    kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(_KINDS))
    served_on = fields.Date(required=True)
    duration_minutes = fields.Integer(required=True, validate=validate.Range(min=1, max=1440))
    notes = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    photo_ids = fields.List(
        fields.Integer(validate=_ID),
        load_default=list,
        validate=validate.Length(max=services.MAX_PHOTOS),
    )


class ServiceSchema(Schema):
    id = fields.Integer(required=True)
    org_id = fields.Integer(required=True)
    org_name = fields.String(required=True)
    household_id = fields.Integer(required=True)
    assignment_id = fields.Integer(allow_none=True)
    kind = fields.String(required=True)
    kind_label = fields.String(required=True)
    served_on = fields.Date(required=True)
    duration_minutes = fields.Integer(required=True)
    notes = fields.String(required=True)
    photo_ids = fields.List(fields.Integer(), required=True)
    created_at = fields.DateTime(required=True)


class ServiceCountSchema(Schema):
    org_id = fields.Integer(required=True)
    org_name = fields.String(required=True)
    kind = fields.String(required=True)
    kind_label = fields.String(required=True)
    services = fields.Integer(required=True)
    minutes = fields.Integer(required=True)
    households = fields.Integer(required=True)


class ServiceCountFilterSchema(Schema):
    served_from = fields.Date(metadata={"description": "on or after"})
    served_to = fields.Date(metadata={"description": "before"})


@blp.route("/service-assignments", methods=["POST"])
@requires(*services.ASSIGNERS)
@blp.arguments(AssignmentCreateSchema)
@blp.response(201, AssignmentSchema)
def assign(body: dict[str, Any]) -> Any:
    """Ask an organisation serving the household's town to give a service to the household of
    a lead's person (town staff: their town's leads). Audited."""
    assignment = services.assign_service(
        db(), body=body, actor=current_actor(), now=now(), pii=runtime().pii
    )
    return services.assignment_view(db(), assignment)


@blp.route("/service-assignments", methods=["GET"])
@requires(*services.READERS)
@blp.arguments(AssignmentFilterSchema, location="query")
@blp.response(200, AssignmentSchema(many=True))
def list_assignments(args: dict[str, Any]) -> Any:
    """Assignments: the center and leaders all; a town its own; a volunteer their
    organisation's (the household's head, village and address; never an ID number)."""
    rows = services.list_assignments(db(), actor=current_actor(), open_only=args["open"])
    return [services.assignment_view(db(), a) for a in rows]


@blp.route("/services", methods=["POST"])
@requires(*services.RECORDERS)
@blp.arguments(ServiceCreateSchema)
@blp.response(201, ServiceSchema)
def record_service(body: dict[str, Any]) -> Any:
    """Record a service given (date, duration, notes, photos): a volunteer for one of their
    organisation's assignments (which it completes); the center also for an organisation and
    household directly. It shows on the household's chain. Audited."""
    service = services.record_service(db(), body=body, actor=current_actor(), now=now())
    return services.service_view(db(), service)


@blp.route("/services", methods=["GET"])
@requires(*services.READERS)
@blp.response(200, ServiceSchema(many=True))
def list_services() -> Any:
    """Services recorded, newest first (a town its own, a volunteer their organisation's)."""
    return [
        services.service_view(db(), s) for s in services.list_services(db(), actor=current_actor())
    ]


@blp.route("/services/counts", methods=["GET"])
@requires(Role.CENTER_STAFF, Role.LEADER)
@blp.arguments(ServiceCountFilterSchema, location="query")
@blp.response(200, ServiceCountSchema(many=True))
def service_counts(args: dict[str, Any]) -> Any:
    """Services by organisation and kind: how many, minutes, households served."""
    return services.counts(
        db(), actor=current_actor(), start=args.get("served_from"), end=args.get("served_to")
    )
