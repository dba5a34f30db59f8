"""Visits (摸排巡查) and ledgers (分类台帐): helpers record, towns and the center read."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import (
    IDEMPOTENCY_HEADER,
    current_actor,
    db,
    idempotency_key,
    now,
    requires,
    runtime,
)
from server.api.paging import NumberedPageSchema, PageArgsSchema
from server.fields import INT32_MAX
from server.models import Cause, Hardship, Health, LabourCapacity, Role, VisitKind
from server.services.field import ledgers, visits
from server.services.leads.core import CATEGORIES

#: Record ids in URLs: larger numbers are not ids (and would overflow SQLite).
_ID = "int(max=9007199254740991)"

blp = Blueprint(
    "visits", __name__, url_prefix="/api/v1", description="Household visits and ledgers"
)

_RECORDERS = (Role.HELPER, Role.TOWN_STAFF, Role.CENTER_STAFF)


#: Town and village codes: up to 32 characters, no control characters.
_CODE = validate.Regexp(r"^[^\x00-\x1f\x7f]{1,32}$", error="编码格式不正确")


def _values(enum_cls: Any) -> list[str]:
    return [m.value for m in enum_cls]


class HeadSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    id_number = fields.String(required=True, validate=validate.Length(max=40))


class VisitMemberSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    relation = fields.String(required=True, validate=validate.Length(min=1, max=20))
    id_number = fields.String(load_default=None, validate=validate.Length(max=40))


class VisitFieldsSchema(Schema):
    """What a visit records; shared by recording (POST) and correcting (PATCH)."""

    kind = fields.String(
        validate=validate.OneOf(_values(VisitKind)),
        metadata={"description": "visit 入户走访 / phone 电话询问"},
    )
    phone = fields.String(allow_none=True, validate=validate.Length(max=30))
    address = fields.String(allow_none=True, validate=validate.Length(max=200))
    members = fields.List(
        fields.Nested(VisitMemberSchema),
        validate=validate.Length(max=20),
        metadata={"description": "household members other than the head"},
    )
    health = fields.String(validate=validate.OneOf(_values(Health)))
    labour_capacity = fields.String(validate=validate.OneOf(_values(LabourCapacity)))
    hardship = fields.String(
        validate=validate.OneOf(_values(Hardship)),
        metadata={"description": "severe and urgent are reported to the town's lead queue"},
    )
    causes = fields.List(
        fields.String(validate=validate.OneOf(_values(Cause))), validate=validate.Length(max=8)
    )
    categories = fields.List(
        fields.String(validate=validate.OneOf(list(CATEGORIES))),
        validate=validate.Length(max=len(CATEGORIES)),
        metadata={"description": "categories of people sought"},
    )
    needs = fields.String(allow_none=True, validate=validate.Length(max=500))
    note = fields.String(allow_none=True, validate=validate.Length(max=500))
    photo_ids = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=2**53)), validate=validate.Length(max=9)
    )
    visited_on = fields.Date(metadata={"description": "default: today"})
    next_visit_on = fields.Date(
        allow_none=True,
        metadata={"description": "default: 7 days (severe/urgent), 30 (general), 90 (none)"},
    )


class VisitCreateSchema(VisitFieldsSchema):
    village = fields.String(required=True, validate=_CODE, metadata={"description": "code"})
    head = fields.Nested(HeadSchema, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(_values(VisitKind)))
    health = fields.String(required=True, validate=validate.OneOf(_values(Health)))
    labour_capacity = fields.String(required=True, validate=validate.OneOf(_values(LabourCapacity)))
    hardship = fields.String(required=True, validate=validate.OneOf(_values(Hardship)))


class VisitPatchSchema(VisitFieldsSchema):
    version = fields.Integer(
        validate=validate.Range(min=1, max=INT32_MAX),
        metadata={"description": "the version read; a stale one is refused with 409"},
    )


class MaskedPersonSchema(Schema):
    name = fields.String(required=True)
    id_number = fields.String(allow_none=True, metadata={"description": "masked"})


class VisitMemberViewSchema(Schema):
    name = fields.String(required=True)
    relation = fields.String(required=True)
    id_number = fields.String(allow_none=True, metadata={"description": "masked"})


class VisitSchema(Schema):
    id = fields.Integer(required=True)
    household_id = fields.Integer(required=True)
    village = fields.String(required=True)
    village_name = fields.String(required=True)
    town_id = fields.Integer(required=True)
    village_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    kind_label = fields.String(required=True)
    head = fields.Nested(MaskedPersonSchema, required=True)
    phone = fields.String(allow_none=True, metadata={"description": "masked"})
    address = fields.String(allow_none=True)
    members = fields.List(fields.Nested(VisitMemberViewSchema), required=True)
    health = fields.String(required=True)
    health_label = fields.String(required=True)
    labour_capacity = fields.String(required=True)
    labour_capacity_label = fields.String(required=True)
    hardship = fields.String(required=True)
    hardship_label = fields.String(required=True)
    causes = fields.List(fields.String(), required=True)
    cause_labels = fields.List(fields.String(), required=True)
    categories = fields.List(fields.String(), required=True)
    category_labels = fields.List(fields.String(), required=True)
    needs = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    photo_ids = fields.List(fields.Integer(), required=True)
    visited_on = fields.Date(required=True)
    next_visit_on = fields.Date(required=True)
    lead_id = fields.Integer(
        allow_none=True, metadata={"description": "the lead a severe/urgent finding went to"}
    )
    reported_at = fields.DateTime(allow_none=True)
    recorded_by_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)


class VisitPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(VisitSchema), required=True)


class VisitFilterSchema(PageArgsSchema):
    village = fields.String(validate=_CODE, metadata={"description": "code"})
    household_id = fields.Integer(validate=validate.Range(min=1, max=2**53))
    hardship = fields.String(validate=validate.OneOf(_values(Hardship)))


class LedgerFilterSchema(Schema):
    town = fields.String(validate=_CODE, metadata={"description": "town code"})
    village = fields.String(validate=_CODE, metadata={"description": "code"})
    category = fields.String(validate=validate.OneOf(list(CATEGORIES)))
    hardship = fields.String(validate=validate.OneOf(_values(Hardship)))
    overdue = fields.Boolean(load_default=False, metadata={"description": "overdue only"})
    name = fields.String(
        validate=validate.Length(min=1, max=50),
        metadata={"description": "part of the head of household's name"},
    )


class LedgerArgsSchema(LedgerFilterSchema, PageArgsSchema):
    pass


class LedgerRowSchema(Schema):
    household_id = fields.Integer(required=True)
    town = fields.String(required=True)
    town_name = fields.String(required=True)
    village = fields.String(required=True)
    village_name = fields.String(required=True)
    head_name = fields.String(required=True)
    id_number = fields.String(required=True, metadata={"description": "masked"})
    phone = fields.String(allow_none=True, metadata={"description": "masked"})
    address = fields.String(allow_none=True)
    members = fields.Integer(required=True, metadata={"description": "people in the household"})
    categories = fields.List(fields.String(), required=True)
    category_labels = fields.List(fields.String(), required=True)
    health = fields.String(required=True)
    health_label = fields.String(required=True)
    labour_capacity = fields.String(required=True)
    labour_capacity_label = fields.String(required=True)
    hardship = fields.String(required=True)
    hardship_label = fields.String(required=True)
    causes = fields.List(fields.String(), required=True)
    cause_labels = fields.List(fields.String(), required=True)
    needs = fields.String(allow_none=True)
    last_visit_id = fields.Integer(allow_none=True)
    last_visited_on = fields.Date(required=True)
    next_visit_on = fields.Date(required=True)
    overdue = fields.Boolean(required=True)
    days_overdue = fields.Integer(required=True)
    lead_id = fields.Integer(allow_none=True)


class LedgerPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(LedgerRowSchema), required=True)
    overdue = fields.Integer(required=True, metadata={"description": "households overdue"})


def _filter(args: dict[str, Any]) -> ledgers.LedgerFilter:
    return ledgers.LedgerFilter(
        town=args.get("town"),
        village=args.get("village"),
        category=args.get("category"),
        hardship=args.get("hardship"),
        overdue_only=args.get("overdue", False),
        name=args.get("name"),
    )


@blp.route("/visits", methods=["POST"])
@requires(*_RECORDERS)
@blp.arguments(VisitCreateSchema)
@blp.response(201, VisitSchema)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def record_visit(body: dict[str, Any]) -> Any:
    """Record a household visit or phone call in my village (towns: their villages). Severe or
    urgent hardship goes to the person's lead at once, in the town's queue the same day. A retry
    with the same Idempotency-Key returns the first visit."""
    pii = runtime().pii
    recorded = visits.record_visit(
        db(),
        body=body,
        pii=pii,
        actor=current_actor(),
        now=now(),
        idempotency_key=idempotency_key(),
    )
    return visits.masked_view(recorded.visit, pii=pii)


@blp.route("/visits", methods=["GET"])
@requires(*_RECORDERS)
@blp.arguments(VisitFilterSchema, location="query")
@blp.response(200, VisitPageSchema)
def list_visits(args: dict[str, Any]) -> Any:
    """Visits in my village (towns: their villages; the center: all), latest first."""
    pii = runtime().pii
    rows, total = visits.list_visits(db(), actor=current_actor(), **args)
    return {
        "items": [visits.masked_view(v, pii=pii) for v in rows],
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route(f"/visits/<{_ID}:visit_id>", methods=["GET"])
@requires(*_RECORDERS)
@blp.response(200, VisitSchema)
def get_visit(visit_id: int) -> Any:
    """One visit in my area; others are 404."""
    visit = visits.access_visit_by_id(db(), visit_id, actor=current_actor())
    return visits.masked_view(visit, pii=runtime().pii)


@blp.route(f"/visits/<{_ID}:visit_id>", methods=["PATCH"])
@requires(*_RECORDERS)
@blp.arguments(VisitPatchSchema)
@blp.response(200, VisitSchema)
def edit_visit(body: dict[str, Any], visit_id: int) -> Any:
    """Correct or complete a visit in my area. Raising it to severe or urgent reports it then."""
    pii = runtime().pii
    recorded = visits.edit_visit(
        db(), visit_id, changes=body, pii=pii, actor=current_actor(), now=now()
    )
    return visits.masked_view(recorded.visit, pii=pii)


@blp.route("/ledgers", methods=["GET"])
@requires(*_RECORDERS)
@blp.arguments(LedgerArgsSchema, location="query")
@blp.response(200, LedgerPageSchema)
def get_ledger(args: dict[str, Any]) -> Any:
    """The ledger of my area by town, village and category: each household's latest assessment
    and last visit, households overdue for a visit first."""
    result = ledgers.ledger(
        db(),
        _filter(args),
        page=args["page"],
        per_page=args["per_page"],
        pii=runtime().pii,
        actor=current_actor(),
        today=now().date(),
    )
    return {
        "items": result.rows,
        "total": result.total,
        "overdue": result.overdue,
        "page": args["page"],
        "per_page": args["per_page"],
    }


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@blp.route("/ledgers.xlsx", methods=["GET"])
@requires(*_RECORDERS)
@blp.arguments(LedgerFilterSchema, location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type=_XLSX)
def export_ledger(args: dict[str, Any]) -> Response:
    """The same ledger as the workbook a town keeps on paper (汇总 and one sheet per category;
    ID numbers and phones masked)."""
    export = ledgers.export_xlsx(
        db(), _filter(args), pii=runtime().pii, actor=current_actor(), now=now()
    )
    response = Response(export.content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{export.ascii_filename}"; '
        f"filename*=UTF-8''{quote(export.filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
