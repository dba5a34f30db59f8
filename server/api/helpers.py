"""Village helpers: invitations (staff), redeeming (WeChat users), the helper's own filings."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.applications import ApplicationPageSchema
from server.api.deps import current_actor, db, now, requires, runtime
from server.api.paging import PageArgsSchema
from server.models import Role
from server.services.accounts import helpers
from server.services.applications import reading
from server.services.kernel.qr import qr_data_uri
from server.services.places import launch

blp = Blueprint("helpers", __name__, url_prefix="/api/v1", description="Village helpers")


class InvitationCreateSchema(Schema):
    village = fields.String(
        required=True, validate=validate.Length(min=1, max=32), metadata={"description": "code"}
    )


class InvitationSchema(Schema):
    id = fields.Integer(required=True)
    village_id = fields.Integer(required=True)
    expires_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True)
    redeemed_at = fields.DateTime(allow_none=True)


class NewInvitationSchema(InvitationSchema):
    code = fields.String(required=True, metadata={"description": "shown once, never again"})
    page = fields.String(required=True, metadata={"description": "mini-program page + code"})
    link = fields.String(
        required=True, metadata={"description": "the HTTPS link that opens the redeem page"}
    )
    qr_png = fields.String(
        required=True, metadata={"description": "data:image/png;base64,... of the link's QR code"}
    )
    qr_url = fields.String(
        required=True,
        metadata={
            "description": "the code as a PNG (staff token required; `&kind=wxacode` for "
            "WeChat's 小程序码)"
        },
    )


class QrArgsSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    kind = fields.String(
        load_default=launch.CodeKind.LINK.value,
        validate=validate.OneOf([k.value for k in launch.CodeKind]),
        metadata={
            "description": "link: a QR code of the HTTPS link; wxacode: WeChat's 小程序码 "
            "(the link's QR code when WeChat does not answer)"
        },
    )


class RedeemSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))


class HelperSchema(Schema):
    id = fields.Integer(required=True)
    display_name = fields.String(allow_none=True)
    village = fields.String(required=True)
    village_name = fields.String(required=True)
    role = fields.String(required=True)


class HelperFilterSchema(Schema):
    village = fields.String(validate=validate.Length(max=32))


def _helper_view(user: Any, village: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "display_name": user.display_name,
        "village": village.code,
        "village_name": village.name,
        "role": user.role.value,
    }


@blp.route("/helpers/invitations", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.arguments(InvitationCreateSchema)
@blp.response(201, NewInvitationSchema)
def create_invitation(body: dict[str, Any]) -> Any:
    """Invite a helper for a village (town staff: their own villages). The one-time code and
    its QR code (the mini-program's redeem page) are shown in this answer only."""
    new = helpers.create_invitation(
        db(), village_code=body["village"], actor=current_actor(), now=now()
    )
    invitation = new.invitation
    link = launch.link(
        launch.invitation_target(new.code), base=runtime().config.miniprogram_link_base
    )
    return {
        "id": invitation.id,
        "village_id": invitation.village_id,
        "expires_at": invitation.expires_at,
        "created_at": invitation.created_at,
        "revoked_at": None,
        "redeemed_at": None,
        "code": new.code,
        "page": new.page,
        "link": link,
        "qr_png": qr_data_uri(link),
        "qr_url": url_for(
            "helpers.invitation_qr", invitation_id=invitation.id, code=new.code, _external=False
        ),
    }


@blp.route("/helpers/invitations/<int:invitation_id>/qr.png", methods=["GET"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.arguments(QrArgsSchema, location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
def invitation_qr(args: dict[str, Any], invitation_id: int) -> Response:
    """The code of an open invitation as a PNG, to print or show on screen: a QR code of the
    HTTPS link, or with `kind=wxacode` WeChat's 小程序码 (`X-Code-Kind` says which was drawn).
    Only the code's hash is stored, so the code comes in the query (as in `qr_url`); the request
    log omits queries."""
    code = helpers.open_invitation_code(
        db(), invitation_id, code=args["code"], actor=current_actor(), now=now()
    )
    config = runtime().config
    png, kind = launch.code_png(
        launch.invitation_target(code),
        kind=launch.CodeKind(args["kind"]),
        gateway=runtime().gateway,
        link_base=config.miniprogram_link_base,
        miniprogram_state=config.wechat_miniprogram_state,
    )
    response = Response(png, mimetype="image/png")
    response.headers["X-Code-Kind"] = kind.value
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blp.route("/helpers/invitations", methods=["GET"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.response(200, InvitationSchema(many=True))
def list_invitations() -> Any:
    """Invitations not yet used, revoked or expired, in my villages."""
    return helpers.list_invitations(db(), actor=current_actor(), now=now())


@blp.route("/helpers/invitations/<int:invitation_id>/revoke", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.response(200, InvitationSchema)
def revoke_invitation(invitation_id: int) -> Any:
    """Withdraw an unused invitation (a lost printout)."""
    return helpers.revoke_invitation(db(), invitation_id, actor=current_actor(), now=now())


@blp.route("/helpers/redeem", methods=["POST"])
@requires(Role.RESIDENT, Role.HELPER)
@blp.arguments(RedeemSchema)
@blp.response(200, HelperSchema)
def redeem(body: dict[str, Any]) -> Any:
    """Become the helper of the invitation's village (a WeChat user, once per code; a helper
    already bound to a village is told to have that undone first)."""
    user = helpers.redeem(db(), code=body["code"], actor=current_actor(), now=now())
    return _helper_view(user, user.village)


@blp.route("/helpers", methods=["GET"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
@blp.arguments(HelperFilterSchema, location="query")
@blp.response(200, HelperSchema(many=True))
def list_helpers(args: dict[str, Any]) -> Any:
    """Helpers of my villages (the center and leaders: all)."""
    rows = helpers.list_helpers(db(), actor=current_actor(), village_code=args.get("village"))
    return [_helper_view(user, village) for user, village in rows]


@blp.route("/helpers/<int:user_id>/revoke", methods=["POST"])
@requires(Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.response(200, HelperSchema)
def revoke_helper(user_id: int) -> Any:
    """The helper goes back to being a resident."""
    user = helpers.revoke_helper(db(), user_id, actor=current_actor(), now=now())
    return {
        "id": user.id,
        "display_name": user.display_name,
        "village": "",
        "village_name": "",
        "role": user.role.value,
    }


@blp.route("/helper/filings", methods=["GET"])
@requires(Role.HELPER)
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, ApplicationPageSchema)
def list_filings(args: dict[str, Any]) -> Any:
    """What I filed on behalf of others, newest first, with each one's status."""
    pii = runtime().pii
    rows, total = helpers.list_filings(db(), actor=current_actor(), **args)
    return {
        "items": [reading.masked_view(a, pii=pii) for a in rows],
        "total": total,
        **args,
    }
