"""Transfer slips (线索转办单), supervision notices (通报), revisits and residents' ratings."""

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
    work_calendar,
)
from server.api.households import aid_dates, aid_field
from server.api.paging import NumberedPageSchema
from server.api.uploads import send_photo, store_upload
from server.fields import Money, Text
from server.models import DispatchState, Role, UnitKind
from server.services.applications.decisions import Decision
from server.services.dispatches import access, listing, printing, revisits, supervision, transfers
from server.services.kernel.outcomes import OUTCOMES

blp = Blueprint(
    "dispatches", __name__, url_prefix="/api/v1", description="Transfer slips and supervision"
)

#: Who issues slips: the center for any lead, a town platform for leads of its town.
ISSUERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)
#: Who reads slips, each within their scope (services/dispatches/access.scope_dispatches).
READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)
#: Who acts on a slip as its receiving unit (checked against the slip's unit in the service).
RECEIVERS = (Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)

_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _id_field(**kwargs: Any) -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=1, max=2**63 - 1), **kwargs)


# --- Schemas -----------------------------------------------------------------------------------


class DispatchCreateSchema(Schema):
    unit_kind = fields.String(
        required=True,
        validate=validate.OneOf([k.value for k in UnitKind]),
        metadata={"description": "department or town"},
    )
    unit_code = Text(
        32, min_len=1, required=True, metadata={"description": "department or town code"}
    )
    instructions = Text(
        1000, multi_line=True, min_len=1, required=True, metadata={"description": "转办要求"}
    )


class UnitSchema(Schema):
    kind = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class DeadlineSchema(Schema):
    state = fields.String(
        required=True,
        metadata={
            "description": "on_time / due_soon / overdue (open slips); answered_on_time / "
            "answered_late / returned"
        },
    )
    label = fields.String(required=True)
    working_days_left = fields.Integer(allow_none=True)
    overdue_days = fields.Integer(required=True)
    certain = fields.Boolean(
        required=True, metadata={"description": "false: computed over a year with no calendar"}
    )


class AlertSchema(Schema):
    kind = fields.String(required=True)
    recipient = fields.String(required=True)
    message = fields.String(required=True)
    overdue_days = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class SlipApplicationSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "SQ…"})
    type = fields.String(required=True)
    type_label = fields.String(required=True)
    status = fields.String(required=True)
    status_label = fields.String(required=True)
    outcome = fields.String(allow_none=True)
    outcome_label = fields.String(allow_none=True)
    amount = Money(allow_none=True)
    decided_by_this_slip = fields.Boolean(required=True)


class DispatchSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "e.g. BSJZ-2026-000123"})
    lead_id = fields.Integer(required=True)
    lead_name = fields.String(required=True)
    unit = fields.Nested(UnitSchema, required=True)
    instructions = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": [s.value for s in DispatchState]})
    state_label = fields.String(required=True)
    due_date = fields.Date(required=True)
    due_date_certain = fields.Boolean(required=True)
    deadline = fields.Nested(DeadlineSchema, required=True)
    issued_at = fields.DateTime(required=True)
    signed_at = fields.DateTime(allow_none=True)
    returned_at = fields.DateTime(allow_none=True)
    return_reason = fields.String(allow_none=True)
    answered_at = fields.DateTime(allow_none=True)
    answered_on_time = fields.Boolean(allow_none=True)
    findings = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    outcome_label = fields.String(allow_none=True)
    outcome_reason = fields.String(allow_none=True)
    amount = Money(allow_none=True)
    photo_ids = fields.List(fields.Integer(), required=True)
    escalation_level = fields.Integer(required=True)
    can_act = fields.Boolean(
        required=True, metadata={"description": "the caller works for the receiving unit"}
    )
    applications = fields.List(
        fields.Nested(SlipApplicationSchema),
        required=True,
        metadata={
            "description": "the lead's applications: what is left to decide, and what "
            "was decided (by this slip or otherwise)"
        },
    )
    alerts = fields.List(fields.Nested(AlertSchema))


class DispatchFilterSchema(Schema):
    state = fields.String(validate=validate.OneOf([s.value for s in DispatchState]))
    deadline = fields.String(validate=validate.OneOf(["on_time", "due_soon", "overdue"]))
    lead_id = _id_field()
    unit_kind = fields.String(validate=validate.OneOf([k.value for k in UnitKind]))
    unit_code = Text(32)
    issued_from = fields.Date()
    issued_to = fields.Date()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class DispatchPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(DispatchSchema), required=True)


class ReturnSchema(Schema):
    reason = Text(
        500, multi_line=True, min_len=1, required=True, metadata={"description": "退回原因"}
    )


def _amount() -> fields.Decimal:
    return fields.Decimal(
        load_default=None,
        allow_none=True,
        places=2,
        validate=validate.Range(min=0, max=100_000_000, error="金额应在 0 到 1亿 元之间"),
        metadata={"type": "number", "minimum": 0, "maximum": 100_000_000},
    )


class ApplicationDecisionSchema(Schema):
    application_id = _id_field(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(list(OUTCOMES)))
    reason = Text(500, multi_line=True, load_default=None, allow_none=True)
    amount = _amount()
    aid = aid_field()


class FeedbackSchema(Schema):
    findings = Text(
        2000, multi_line=True, min_len=1, required=True, metadata={"description": "调查核实情况"}
    )
    decisions = fields.List(
        fields.Nested(ApplicationDecisionSchema),
        load_default=None,
        validate=validate.Length(max=20),
        metadata={
            "description": "one decision per undecided application of the lead (required when "
            "it has any; applications left out stay undecided)"
        },
    )
    outcome = fields.String(
        load_default=None,
        validate=validate.OneOf(list(OUTCOMES)),
        metadata={
            "description": "the slip's one outcome: only for a lead without undecided "
            "applications (a department file's lead, a report)"
        },
    )
    reason = Text(500, multi_line=True, load_default=None, allow_none=True)
    amount = _amount()
    photo_ids = fields.List(
        _id_field(),
        load_default=list,
        validate=validate.Length(max=9),
        metadata={"description": "from POST /dispatches/<id>/attachments"},
    )


class AttachmentUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class AttachmentSchema(Schema):
    id = fields.Integer(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    bytes = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class RevisitCreateSchema(Schema):
    satisfaction = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    informed = fields.Boolean(load_default=True)
    comment = Text(500, multi_line=True, load_default=None, allow_none=True)


class RatingCreateSchema(Schema):
    satisfaction = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = Text(500, multi_line=True, load_default=None, allow_none=True)


class RevisitSchema(Schema):
    id = fields.Integer(required=True)
    lead_id = fields.Integer(required=True)
    application_id = fields.Integer(allow_none=True)
    source = fields.String(required=True)
    informed = fields.Boolean(required=True)
    satisfaction = fields.Integer(required=True)
    comment = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class SupervisionFilterSchema(Schema):
    month = fields.String(
        validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="月份格式应为 YYYY-MM"),
        metadata={"example": "2026-11"},
    )


class NoticeSchema(Schema):
    id = fields.Integer(required=True)
    month = fields.String(required=True)
    unit = fields.Nested(UnitSchema, required=True)
    overdue_count = fields.Integer(required=True)
    max_overdue_days = fields.Integer(required=True)
    dispatch_numbers = fields.List(fields.String(), required=True)
    dispatch_ids = fields.List(fields.Integer(), required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class NoticeListSchema(Schema):
    items = fields.List(fields.Nested(NoticeSchema), required=True)


# --- Slips -------------------------------------------------------------------------------------


def _view(dispatch: Any, *, alerts: bool = False) -> dict[str, Any]:
    return listing.dispatch_view(
        db(),
        dispatch,
        calendar=work_calendar(),
        today=now().date(),
        actor=current_actor(),
        alerts=alerts,
    )


@blp.route("/leads/<int:lead_id>/dispatches", methods=["POST"])
@requires(*ISSUERS)
@blp.arguments(DispatchCreateSchema)
@blp.response(201, DispatchSchema)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def issue_dispatch(body: dict[str, Any], lead_id: int) -> Any:
    """Issue a transfer slip for the lead to a department or a town, due in 5 working days
    (the day of issue never counts). Center staff for any lead; town staff for their town's.
    A retry with the same Idempotency-Key returns the first slip."""
    dispatch = transfers.issue(
        db(),
        lead_id,
        unit_kind=UnitKind(body["unit_kind"]),
        unit_code=body["unit_code"],
        instructions=body["instructions"],
        calendar=work_calendar(),
        actor=current_actor(),
        now=now(),
        idempotency_key=idempotency_key(),
    )
    return _view(dispatch)


@blp.route("/dispatches")
@requires(*READERS)
@blp.arguments(DispatchFilterSchema, location="query")
@blp.response(200, DispatchPageSchema)
def list_dispatches(args: dict[str, Any]) -> Any:
    """Slips the caller may see: a receiving department or town its own; the center all.
    Open slips first, earliest due date first; filter by state or deadline state."""
    rows, total = listing.list_dispatches(
        db(),
        listing.DispatchFilter(
            state=DispatchState(args["state"]) if "state" in args else None,
            deadline=args.get("deadline"),
            lead_id=args.get("lead_id"),
            unit_kind=UnitKind(args["unit_kind"]) if "unit_kind" in args else None,
            unit_code=args.get("unit_code"),
            issued_from=args.get("issued_from"),
            issued_to=args.get("issued_to"),
        ),
        calendar=work_calendar(),
        actor=current_actor(),
        today=now().date(),
        page=args["page"],
        per_page=args["per_page"],
    )
    return {
        "items": listing.dispatch_views(
            db(), rows, calendar=work_calendar(), today=now().date(), actor=current_actor()
        ),
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route("/dispatches/<int:dispatch_id>")
@requires(*READERS)
@blp.response(200, DispatchSchema)
def get_dispatch(dispatch_id: int) -> Any:
    """One slip with its deadline state and the reminders and escalations sent about it."""
    dispatch = access.access_dispatch_by_id(db(), dispatch_id, actor=current_actor())
    return _view(dispatch, alerts=True)


@blp.route("/dispatches/<int:dispatch_id>/sign", methods=["POST"])
@requires(*RECEIVERS)
@blp.response(200, DispatchSchema)
def sign_dispatch(dispatch_id: int) -> Any:
    """The receiving unit signs for the slip (签收)."""
    dispatch = transfers.sign(db(), dispatch_id, actor=current_actor(), now=now())
    return _view(dispatch)


@blp.route("/dispatches/<int:dispatch_id>/return", methods=["POST"])
@requires(*RECEIVERS)
@blp.arguments(ReturnSchema)
@blp.response(200, DispatchSchema)
def return_dispatch(body: dict[str, Any], dispatch_id: int) -> Any:
    """The receiving unit returns the slip to the center with a reason (退回)."""
    dispatch = transfers.return_to_center(
        db(), dispatch_id, reason=body["reason"], actor=current_actor(), now=now()
    )
    return _view(dispatch)


@blp.route("/dispatches/<int:dispatch_id>/feedback", methods=["POST"])
@requires(*RECEIVERS)
@blp.arguments(FeedbackSchema)
@blp.response(200, DispatchSchema)
def give_feedback(body: dict[str, Any], dispatch_id: int) -> Any:
    """The receiving unit reports what it found (反馈) and decides each undecided application
    of the lead (`decisions`: included in 低保 / 特困供养, 临时救助 or medical aid with the amount,
    not eligible with a reason, referred). Applications left out stay undecided and the lead
    stays open for them. A lead without undecided applications takes one `outcome`."""
    dispatch = transfers.give_feedback(
        db(),
        dispatch_id,
        transfers.Feedback(
            findings=body["findings"],
            outcome=body["outcome"],
            reason=body.get("reason"),
            amount=body.get("amount"),
            photo_ids=tuple(body["photo_ids"]),
            answers=_answers(body["decisions"]),
        ),
        actor=current_actor(),
        now=now(),
    )
    return _view(dispatch)


def _answers(decisions: list[dict[str, Any]] | None) -> tuple[transfers.Answer, ...] | None:
    if decisions is None:
        return None
    return tuple(
        transfers.Answer(
            d["application_id"],
            Decision(d["outcome"], d.get("reason"), d.get("amount"), **aid_dates(d)),
        )
        for d in decisions
    )


@blp.route("/dispatches/<int:dispatch_id>/attachments", methods=["POST"])
@requires(*RECEIVERS)
@blp.arguments(AttachmentUploadSchema, location="files")
@blp.response(201, AttachmentSchema)
def upload_attachment(files: dict[str, Any], dispatch_id: int) -> Any:
    """Upload one photo (JPG/PNG ≤ 10 MB) to attach to the slip's feedback (receiving unit)."""
    dispatch = access.access_dispatch_by_id(db(), dispatch_id, actor=current_actor())
    transfers.require_can_attach(dispatch, actor=current_actor())
    return store_upload(files["file"])


@blp.route("/dispatches/<int:dispatch_id>/attachments/<int:photo_id>")
@requires(*READERS)
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/jpeg")
def get_attachment(dispatch_id: int, photo_id: int) -> Response:
    """A photo attached to the slip's feedback, for whoever may see the slip."""
    photo = transfers.access_attachment(db(), dispatch_id, photo_id, actor=current_actor())
    return send_photo(photo, thumbnail=False)


@blp.route("/dispatches/<int:dispatch_id>/slip.html")
@requires(*READERS)
@blp.response(200, {"type": "string"}, content_type="text/html")
def print_slip(dispatch_id: int) -> Response:
    """The printable A4 slip with a QR code of its number. It carries the whole ID and phone
    numbers the unit needs to find the person; each print is written to the audit log."""
    dispatch = access.access_dispatch_by_id(db(), dispatch_id, actor=current_actor())
    context = printing.slip_context(
        db(), dispatch, pii=runtime().pii, actor=current_actor(), now=now()
    )
    response = Response(printing.slip_html(context), mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- Supervision -------------------------------------------------------------------------------


@blp.route("/supervision")
@requires(*READERS)
@blp.arguments(SupervisionFilterSchema, location="query")
@blp.response(200, NoticeListSchema)
def list_notices(args: dict[str, Any]) -> Any:
    """Supervision notices (通报): each unit's overdue slips per month. The center and leaders
    see all; a town or department its own."""
    return {"items": supervision.list_notices(db(), actor=current_actor(), month=args.get("month"))}


@blp.route("/supervision.xlsx")
@requires(*READERS)
@blp.arguments(SupervisionFilterSchema, location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type=_XLSX)
def export_notices(args: dict[str, Any]) -> Response:
    """The same notices as a workbook (no personal data in it)."""
    content, filename = supervision.export_notices(
        db(), actor=current_actor(), month=args.get("month"), now=now()
    )
    response = Response(content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- Revisits and ratings ----------------------------------------------------------------------


@blp.route("/leads/<int:lead_id>/revisit", methods=["POST"])
@requires(Role.CENTER_STAFF)
@blp.arguments(RevisitCreateSchema)
@blp.response(201, RevisitSchema)
def revisit_lead(body: dict[str, Any], lead_id: int) -> Any:
    """Center staff record the revisit (回访测评) of a lead whose slips are all answered: the
    resident was told the result and rated it 1–5. The lead closes."""
    revisit = revisits.record_revisit(
        db(),
        lead_id,
        revisits.RevisitInput(
            satisfaction=body["satisfaction"], informed=body["informed"], comment=body["comment"]
        ),
        actor=current_actor(),
        now=now(),
    )
    return revisits.revisit_view(revisit)


@blp.route("/applications/<int:application_id>/rating", methods=["POST"])
@requires(Role.RESIDENT)
@blp.arguments(RatingCreateSchema)
@blp.response(201, RevisitSchema)
def rate_application(body: dict[str, Any], application_id: int) -> Any:
    """A resident rates how their own decided application was handled (1–5), once."""
    revisit = revisits.rate_application(
        db(),
        application_id,
        revisits.RevisitInput(satisfaction=body["satisfaction"], comment=body["comment"]),
        actor=current_actor(),
        now=now(),
    )
    return revisits.revisit_view(revisit)
