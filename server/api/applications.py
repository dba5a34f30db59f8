"""Applications for assistance: file (idempotent), read, withdraw; staff accept and decide."""

from __future__ import annotations

from typing import Any

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
from server.api.households import aid_dates, aid_field
from server.api.paging import NumberedPageSchema, PageArgsSchema
from server.fields import Money, bounded_int
from server.models import ApplicationStatus, ApplicationType, Role
from server.services.applications import decisions, filing, handling, reading
from server.services.kernel.outcomes import OUTCOMES
from server.services.notifications import messages

blp = Blueprint(
    "applications", __name__, url_prefix="/api/v1", description="Applications for assistance"
)


_MONEY = {
    "places": 2,
    "validate": validate.Range(min=0, max=100_000_000, error="金额应在 0 到 1亿 元之间"),
    # apispec renders Decimal bounds as strings ("0.00"); document them as numbers.
    "metadata": {"minimum": 0, "maximum": 100_000_000},
}


class ApplicantSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    id_number = fields.String(required=True, validate=validate.Length(max=40))
    phone = fields.String(required=True, validate=validate.Length(max=30))
    town = fields.String(required=True, validate=validate.Length(min=1, max=32))
    village = fields.String(required=True, validate=validate.Length(min=1, max=32))
    address = fields.String(required=True, validate=validate.Length(min=1, max=200))


class MemberSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    relation = fields.String(required=True, validate=validate.Length(min=1, max=20))
    id_number = fields.String(load_default=None, validate=validate.Length(max=40))


class MedicalSchema(Schema):
    hospital = fields.String(required=True, validate=validate.Length(min=1, max=100))
    admission_date = fields.Date(required=True)
    discharge_date = fields.Date(required=True)
    total_cost = fields.Decimal(required=True, **_MONEY)
    out_of_pocket = fields.Decimal(required=True, **_MONEY)


class TemporarySchema(Schema):
    what_happened = fields.String(required=True, validate=validate.Length(min=1, max=500))
    happened_on = fields.Date(required=True)


class OnBehalfSchema(Schema):
    relationship = fields.String(required=True, validate=validate.Length(min=1, max=50))
    consent_method = fields.String(
        required=True, validate=validate.OneOf(["signed_form", "verbal"])
    )
    consent_photo_id = bounded_int(load_default=None)
    witness_name = fields.String(load_default=None, validate=validate.Length(max=50))
    applicant_phone = fields.String(required=True, validate=validate.Length(max=30))


def _photo_id(**kwargs: Any) -> fields.Integer:
    return bounded_int(**kwargs)


#: "请上传 1 到 9 张照片": counted in photos, not in characters.
_PHOTO_COUNT = validate.Length(min=1, max=9, error="请上传 1 到 9 张照片")


class IntakeSchema(Schema):
    channel = fields.String(
        required=True,
        validate=validate.OneOf(["window", "phone"]),
        metadata={"description": "window (窗口办) or phone (电话办)"},
    )
    consent_method = fields.String(
        required=True,
        validate=validate.OneOf(["signed_form", "verbal", "recorded_call"]),
        metadata={
            "description": "signed_form (photo of the signed form), verbal (with a witness), "
            "recorded_call (phone only, the call's record number)"
        },
    )
    consent_photo_id = _photo_id(load_default=None)
    witness_name = fields.String(load_default=None, validate=validate.Length(max=50))
    call_record = fields.String(load_default=None, validate=validate.Length(max=50))


class _ApplicationFields(Schema):
    type = fields.String(required=True, validate=validate.OneOf([t.value for t in ApplicationType]))
    applicant = fields.Nested(ApplicantSchema, required=True)
    household = fields.List(
        fields.Nested(MemberSchema), load_default=list, validate=validate.Length(max=20)
    )
    monthly_income = fields.Decimal(required=True, **_MONEY)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    medical = fields.Nested(MedicalSchema, load_default=None)
    temporary = fields.Nested(TemporarySchema, load_default=None)


class ApplicationCreateSchema(_ApplicationFields):
    photo_ids = fields.List(bounded_int(), required=True, validate=_PHOTO_COUNT)
    on_behalf = fields.Nested(OnBehalfSchema, load_default=None)


class IntakeCreateSchema(_ApplicationFields):
    """An application staff file at the window or on the phone: photos of papers if there are
    any (none on the phone), and how the person consented."""

    photo_ids = fields.List(
        _photo_id(),
        load_default=list,
        validate=validate.Length(max=9, error="最多上传 9 张照片"),
    )
    intake = fields.Nested(IntakeSchema, required=True)


class AddPhotosSchema(Schema):
    photo_ids = fields.List(_photo_id(), required=True, validate=_PHOTO_COUNT)


class PapersRequestSchema(Schema):
    what = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "which documents, in words the filer understands"},
    )


class TimelineStepSchema(Schema):
    status = fields.String(required=True)
    kind = fields.String(
        required=True,
        metadata={"description": "step, papers_requested (staff asked) or papers_added"},
    )
    title = fields.String(required=True, metadata={"description": "plain Chinese"})
    at = fields.DateTime(required=True)
    notice = fields.String(
        allow_none=True, metadata={"description": "what became of the WeChat message"}
    )


class MemberViewSchema(Schema):
    name = fields.String(required=True)
    relation = fields.String(required=True)
    id_number = fields.String(allow_none=True, metadata={"description": "masked"})


class IntakeViewSchema(Schema):
    channel = fields.String(allow_none=True)
    consent_method = fields.String(allow_none=True)
    consent_photo_id = fields.Integer(allow_none=True)
    witness_name = fields.String(allow_none=True)
    call_record = fields.String(allow_none=True)
    staff_id = fields.Integer(allow_none=True)


class OnBehalfViewSchema(Schema):
    relationship = fields.String(allow_none=True)
    consent_method = fields.String(allow_none=True)
    consent_photo_id = fields.Integer(allow_none=True)
    witness_name = fields.String(allow_none=True)


class ApplicationSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(
        required=True, metadata={"description": "SQ… number, as every message quotes it"}
    )
    type = fields.String(required=True)
    type_label = fields.String(required=True)
    status = fields.String(required=True)
    channel = fields.String(required=True)
    name = fields.String(required=True)
    id_number = fields.String(required=True, metadata={"description": "masked"})
    phone = fields.String(required=True, metadata={"description": "masked"})
    address = fields.String(required=True)
    monthly_income = Money(required=True, places=None)
    reason = fields.String(required=True)
    photo_ids = fields.List(fields.Integer(), required=True)
    details = fields.Dict(required=True)
    submitted_at = fields.DateTime(required=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True)
    outcome_reason = fields.String(allow_none=True)
    amount = Money(allow_none=True)
    outcome_label = fields.String(allow_none=True, metadata={"description": "plain Chinese"})
    town_id = fields.Integer(required=True)
    village_id = fields.Integer(required=True)
    lead_id = fields.Integer(allow_none=True)
    household = fields.List(fields.Nested(MemberViewSchema), required=True)
    on_behalf = fields.Nested(OnBehalfViewSchema, allow_none=True)
    intake = fields.Nested(IntakeViewSchema, allow_none=True)
    created_at = fields.DateTime(required=True)
    timeline = fields.List(fields.Nested(TimelineStepSchema), required=True)


class ApplicationFilterSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in ApplicationStatus]))
    type = fields.String(validate=validate.OneOf([t.value for t in ApplicationType]))
    town = fields.String(validate=validate.Length(max=32), metadata={"description": "town code"})


class DecisionSchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(list(OUTCOMES)))
    reason = fields.String(load_default=None, validate=validate.Length(max=500))
    amount = fields.Decimal(load_default=None, allow_none=True, **_MONEY)
    aid = aid_field()


class ApplicationPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(ApplicationSchema), required=True)


@blp.route("/applications", methods=["POST"])
@requires(Role.RESIDENT, Role.HELPER)
@blp.arguments(ApplicationCreateSchema)
@blp.response(201, ApplicationSchema)
@blp.doc(parameters=[{**IDEMPOTENCY_HEADER, "required": True}])
def file_application(body: dict[str, Any]) -> Any:
    """File an application. Repeating the request with the same Idempotency-Key returns the
    first answer; the same key with a different body is refused (409). A second application
    of the same kind for the same person while one is undecided is 409 `application_open`,
    naming the open one."""
    return _file(body)


def _file(body: dict[str, Any]) -> Any:
    pii = runtime().pii
    filed = filing.file_application(
        db(),
        body=body,
        idempotency_key=idempotency_key(required=True),
        pii=pii,
        actor=current_actor(),
        now=now(),
    )
    return reading.masked_view(filed.application, pii=pii)


@blp.route("/applications/intake", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.arguments(IntakeCreateSchema)
@blp.response(201, ApplicationSchema)
@blp.doc(parameters=[{**IDEMPOTENCY_HEADER, "required": True}])
def file_at_window_or_phone(body: dict[str, Any]) -> Any:
    """窗口办 / 电话办: town staff (for their town) or center staff file an application for a
    person at the window or on the phone, with how the person consented. Same checks and
    Idempotency-Key rules as the mini-program; a landline number is accepted."""
    return _file(body)


@blp.route("/applications")
@requires(Role.RESIDENT, Role.HELPER, Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
@blp.arguments(ApplicationFilterSchema, location="query")
@blp.response(200, ApplicationPageSchema)
def list_applications(args: dict[str, Any]) -> Any:
    """Residents and helpers: what I filed. Staff: the applications of my area. Newest first."""
    pii = runtime().pii
    rows, total = reading.list_applications(db(), actor=current_actor(), **args)
    return {
        "items": [reading.masked_view(a, pii=pii) for a in rows],
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route("/applications/<int:application_id>")
@requires(Role.RESIDENT, Role.HELPER, Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
@blp.response(200, ApplicationSchema)
def get_application(application_id: int) -> Any:
    """One application with its timeline: my own, or one in my area; otherwise 404."""
    application = reading.access_application_by_id(db(), application_id, actor=current_actor())
    return _view(application)


@blp.route("/applications/<int:application_id>/accept", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.response(200, ApplicationSchema)
def accept_application(application_id: int) -> Any:
    """受理 from 提交 (else 409 `application_state`): the town (or the center) takes the
    application up; its lead leaves the untriaged queue."""
    return _handle(application_id, ApplicationStatus.ACCEPTED)


@blp.route("/applications/<int:application_id>/investigate", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.response(200, ApplicationSchema)
def investigate_application(application_id: int) -> Any:
    """调查核实 from 受理 (else 409 `application_state`): staff start the household
    investigation."""
    return _handle(application_id, ApplicationStatus.INVESTIGATING)


@blp.route("/applications/<int:application_id>/decide", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.arguments(DecisionSchema)
@blp.response(200, ApplicationSchema)
def decide_application(body: dict[str, Any], application_id: int) -> Any:
    """办结 from 调查核实 (else 409 `application_state`): the outcome, a reason for 不符合条件 and
    转介, the amount for 临时救助 and 医疗救助. The lead moves on as after a slip's feedback."""
    application = decisions.decide_directly(
        db(),
        application_id,
        decisions.Decision(
            body["outcome"], body.get("reason"), body.get("amount"), **aid_dates(body)
        ),
        actor=current_actor(),
        now=now(),
    )
    return _view(application)


def _handle(application_id: int, status: ApplicationStatus) -> Any:
    application = handling.handle(db(), application_id, status, actor=current_actor(), now=now())
    return _view(application)


def _view(application: Any) -> dict[str, Any]:
    """One application with each timeline step's WeChat notice."""
    notices = messages.notices_for(db(), application.id)
    return reading.masked_view(application, pii=runtime().pii, notices=notices)


@blp.route("/applications/<int:application_id>/photos", methods=["POST"])
@requires(Role.RESIDENT, Role.HELPER)
@blp.arguments(AddPhotosSchema)
@blp.response(200, ApplicationSchema)
def add_photos(body: dict[str, Any], application_id: int) -> Any:
    """Add photos of documents (uploaded first) to my application while it is undecided;
    at most 9 in all."""
    application = filing.add_photos(
        db(), application_id, body["photo_ids"], actor=current_actor(), now=now()
    )
    return _view(application)


@blp.route("/applications/<int:application_id>/request-papers", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.arguments(PapersRequestSchema)
@blp.response(200, ApplicationSchema)
def request_papers(body: dict[str, Any], application_id: int) -> Any:
    """Ask the filer for more documents while the application is undecided: the timeline
    shows it and the filer gets a message."""
    application = filing.request_papers(
        db(), application_id, body["what"], actor=current_actor(), now=now()
    )
    return _view(application)


@blp.route("/applications/<int:application_id>/withdraw", methods=["POST"])
@requires(Role.RESIDENT, Role.HELPER)
@blp.response(200, ApplicationSchema)
def withdraw_application(application_id: int) -> Any:
    """Withdraw my application while nothing has been decided."""
    application = handling.withdraw(db(), application_id, actor=current_actor(), now=now())
    return _view(application)
