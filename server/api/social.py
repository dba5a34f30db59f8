"""The social forces: organisations (center), volunteers' invitations, their reports."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
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
from server.api.helpers import QrArgsSchema, RedeemSchema
from server.api.paging import NumberedPageSchema, PageArgsSchema
from server.models import OrgKind, Role, User
from server.services.kernel.qr import qr_data_uri
from server.services.leads.core import CATEGORIES
from server.services.places import launch
from server.services.social import orgs, reports

blp = Blueprint("social", __name__, url_prefix="/api/v1", description="Social forces")


def _text(max_len: int, *, min_len: int = 0, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=min_len, max=max_len), **kwargs)


class SocialAreaSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class OrgSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": [k.value for k in OrgKind]})
    kind_label = fields.String(required=True)
    contact_name = fields.String(required=True)
    contact_phone = fields.String(allow_none=True, metadata={"description": "masked"})
    towns = fields.List(fields.Nested(SocialAreaSchema), required=True)
    is_active = fields.Boolean(required=True)
    members = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class OrgCreateSchema(Schema):
    name = _text(100, min_len=1, required=True)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in OrgKind]))
    contact_name = _text(50, min_len=1, required=True)
    contact_phone = _text(30, load_default=None, allow_none=True)
    towns = fields.List(
        _text(32, min_len=1), required=True, validate=validate.Length(min=1, max=20)
    )


class OrgEditSchema(Schema):
    contact_name = _text(50, min_len=1)
    contact_phone = _text(30, allow_none=True)
    towns = fields.List(_text(32, min_len=1), validate=validate.Length(min=1, max=20))
    is_active = fields.Boolean()


class OrgFilterSchema(Schema):
    kind = fields.String(validate=validate.OneOf([k.value for k in OrgKind]))


class OrgInvitationSchema(Schema):
    id = fields.Integer(required=True)
    org_id = fields.Integer(required=True)
    expires_at = fields.DateTime(required=True)
    code = fields.String(required=True, metadata={"description": "shown once, never again"})
    page = fields.String(required=True)
    link = fields.String(required=True)
    qr_png = fields.String(required=True, metadata={"description": "data:image/png;base64,..."})
    qr_url = fields.String(required=True)


class VolunteerSchema(Schema):
    user_id = fields.Integer(required=True)
    display_name = fields.String(allow_none=True)
    org_id = fields.Integer(required=True)
    org_name = fields.String(required=True)
    joined_at = fields.DateTime(required=True)
    role = fields.String(required=True)


class VolunteerReportCreateSchema(Schema):
    name = _text(50, min_len=1, required=True, metadata={"description": "the person in hardship"})
    phone = _text(30, load_default=None, allow_none=True, metadata={"description": "theirs"})
    id_number = _text(40, load_default=None, allow_none=True)
    village = _text(32, min_len=1, required=True, metadata={"description": "village code"})
    address = _text(200, load_default=None, allow_none=True)
    summary = _text(500, min_len=1, required=True, metadata={"description": "what you saw"})
    categories = fields.List(
        fields.String(validate=validate.OneOf(list(CATEGORIES))),
        load_default=list,
        validate=validate.Length(max=len(CATEGORIES)),
    )
    urgent = fields.Boolean(load_default=False)
    photo_ids = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=2**53)),
        load_default=list,
        validate=validate.Length(max=reports.MAX_PHOTOS),
    )
    reporter_name = _text(50, load_default=None, allow_none=True)


class VolunteerReportSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True, metadata={"description": "masked"})
    village = fields.Nested(SocialAreaSchema, allow_none=True)
    summary = fields.String(required=True)
    photo_ids = fields.List(fields.Integer(), required=True)
    status = fields.String(required=True)
    status_text = fields.String(required=True, metadata={"description": "in plain words"})
    created_at = fields.DateTime(required=True)


class VolunteerReportPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(VolunteerReportSchema), required=True)


def _org(org: Any) -> dict[str, Any]:
    return orgs.org_view(db(), org, pii=runtime().pii)


@blp.route("/social-orgs", methods=["POST"])
@requires(Role.CENTER_STAFF)
@blp.arguments(OrgCreateSchema)
@blp.response(201, OrgSchema)
def register_org(body: dict[str, Any]) -> Any:
    """Register a volunteer team (志愿服务队), social organisation (社会组织) or enterprise
    (企事业单位) with its contact and the towns it serves. Audited."""
    org = orgs.register_org(db(), body=body, pii=runtime().pii, actor=current_actor(), now=now())
    return _org(org)


@blp.route("/social-orgs", methods=["GET"])
@requires(*orgs.READERS)
@blp.arguments(OrgFilterSchema, location="query")
@blp.response(200, OrgSchema(many=True))
def list_orgs(args: dict[str, Any]) -> Any:
    """Registered organisations (contact phones masked)."""
    return [_org(o) for o in orgs.list_orgs(db(), actor=current_actor(), kind=args.get("kind"))]


@blp.route("/social-orgs/<int:org_id>", methods=["GET"])
@requires(*orgs.READERS)
@blp.response(200, OrgSchema)
def get_org(org_id: int) -> Any:
    return _org(orgs.access_org_by_id(db(), org_id, actor=current_actor()))


@blp.route("/social-orgs/<int:org_id>", methods=["PATCH"])
@requires(Role.CENTER_STAFF)
@blp.arguments(OrgEditSchema)
@blp.response(200, OrgSchema)
def edit_org(body: dict[str, Any], org_id: int) -> Any:
    """Change the contact or the towns served, or deactivate (`is_active: false`). Audited."""
    org = orgs.edit_org(
        db(), org_id, body=body, pii=runtime().pii, actor=current_actor(), now=now()
    )
    return _org(org)


@blp.route("/social-orgs/<int:org_id>/invitations", methods=["POST"])
@requires(Role.CENTER_STAFF)
@blp.response(201, OrgInvitationSchema)
def invite_volunteer(org_id: int) -> Any:
    """Invite a member: a one-time code (7 days; shown in this answer only) and its QR code of
    the mini-program's volunteer redeem page."""
    new = orgs.create_invitation(db(), org_id, actor=current_actor(), now=now())
    link = launch.link(
        launch.volunteer_invitation_target(new.code),
        base=runtime().config.miniprogram_link_base,
    )
    return {
        "id": new.invitation.id,
        "org_id": new.invitation.org_id,
        "expires_at": new.invitation.expires_at,
        "code": new.code,
        "page": new.page,
        "link": link,
        "qr_png": qr_data_uri(link),
        "qr_url": url_for("social.invitation_qr", invitation_id=new.invitation.id, code=new.code),
    }


@blp.route("/social-orgs/invitations/<int:invitation_id>/qr.png", methods=["GET"])
@requires(Role.CENTER_STAFF)
@blp.arguments(QrArgsSchema, location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
def invitation_qr(args: dict[str, Any], invitation_id: int) -> Response:
    """An open invitation's code as a PNG: the link's QR code, or `kind=wxacode` WeChat's
    小程序码 (`X-Code-Kind` says which)."""
    code = orgs.open_invitation_code(
        db(), invitation_id, code=args["code"], actor=current_actor(), now=now()
    )
    config = runtime().config
    png, kind = launch.code_png(
        launch.volunteer_invitation_target(code),
        kind=launch.CodeKind(args["kind"]),
        gateway=runtime().gateway,
        link_base=config.miniprogram_link_base,
        miniprogram_state=config.wechat_miniprogram_state,
    )
    response = Response(png, mimetype="image/png")
    response.headers["X-Code-Kind"] = kind.value
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _volunteer(member: Any, user: Any) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "display_name": user.display_name,
        "org_id": member.org_id,
        "org_name": member.org.name,
        "joined_at": member.joined_at,
        "role": user.role.value,
    }


@blp.route("/social-orgs/<int:org_id>/members", methods=["GET"])
@requires(Role.CENTER_STAFF, Role.LEADER)
@blp.response(200, VolunteerSchema(many=True))
def list_members(org_id: int) -> Any:
    return [_volunteer(m, u) for m, u in orgs.list_members(db(), org_id, actor=current_actor())]


@blp.route("/social-orgs/<int:org_id>/members/<int:user_id>/revoke", methods=["POST"])
@requires(Role.CENTER_STAFF)
@blp.response(200, VolunteerSchema)
def revoke_member(org_id: int, user_id: int) -> Any:
    """End a membership: the volunteer is a resident again (their reports stay). Audited."""
    member = orgs.revoke_member(db(), org_id, user_id, actor=current_actor(), now=now())
    return _volunteer(member, db().get(User, user_id))


@blp.route("/volunteer/redeem", methods=["POST"])
@requires(Role.RESIDENT, Role.VOLUNTEER)
@blp.arguments(RedeemSchema)
@blp.response(200, VolunteerSchema)
def redeem(body: dict[str, Any]) -> Any:
    """Join the invitation's organisation as its volunteer (a WeChat user, once per code)."""
    member = orgs.redeem(db(), code=body["code"], actor=current_actor(), now=now())
    return _volunteer(member, db().get(User, member.user_id))


@blp.route("/volunteer/reports", methods=["POST"])
@requires(Role.VOLUNTEER)
@blp.arguments(VolunteerReportCreateSchema)
@blp.response(201, VolunteerReportSchema)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def report_lead(body: dict[str, Any]) -> Any:
    """Report someone in hardship in a town my organisation serves (photos uploaded first).
    It goes through the same intake as every report; the channel is my organisation's kind."""
    pii = runtime().pii
    report = reports.report_lead(
        db(),
        body=body,
        pii=pii,
        actor=current_actor(),
        now=now(),
        idempotency_key=idempotency_key(),
    )
    return reports.report_view(db(), report, pii=pii)


@blp.route("/volunteer/reports", methods=["GET"])
@requires(Role.VOLUNTEER)
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, VolunteerReportPageSchema)
def list_my_reports(args: dict[str, Any]) -> Any:
    """My reports, newest first, each with its state in plain words."""
    pii = runtime().pii
    rows, total = reports.list_my_reports(db(), actor=current_actor(), **args)
    return {"items": [reports.report_view(db(), r, pii=pii) for r in rows], "total": total, **args}


@blp.route("/volunteer/reports/<int:report_id>", methods=["GET"])
@requires(Role.VOLUNTEER)
@blp.response(200, VolunteerReportSchema)
def my_report(report_id: int) -> Any:
    """One of my reports (anyone else's is 404)."""
    report = reports.my_report(db(), report_id, actor=current_actor())
    return reports.report_view(db(), report, pii=runtime().pii)
