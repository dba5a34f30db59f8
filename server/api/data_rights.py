"""A resident's personal information: what we hold (`/me/data`), closing the account
(`/me/deletion-request`), and the center handling those requests (PIPL)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, requires, runtime
from server.models import DeletionStatus, Role
from server.services.accounts import data_rights

blp = Blueprint(
    "data_rights", __name__, url_prefix="/api/v1", description="Personal information (PIPL)"
)

_WECHAT_USERS = (Role.RESIDENT, Role.HELPER)


class AccountSchema(Schema):
    id = fields.Integer(required=True)
    role = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_login_at = fields.DateTime(allow_none=True)
    wechat_linked = fields.Boolean(required=True)
    village_id = fields.Integer(allow_none=True)


class MyMessageSchema(Schema):
    title = fields.String(required=True)
    body = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    read = fields.Boolean(required=True)


class MySubscriptionSchema(Schema):
    template_id = fields.String(required=True)
    status = fields.String(required=True)
    quota = fields.Integer(required=True)


class MyLeadSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    status_label = fields.String(required=True)
    channel = fields.String(required=True)
    categories = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True)


class DeletionRequestSchema(Schema):
    id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in DeletionStatus]})
    reason = fields.String(allow_none=True)
    requested_at = fields.DateTime(required=True)
    decided_at = fields.DateTime(allow_none=True)
    note = fields.String(allow_none=True)
    outcome = fields.Dict(
        allow_none=True,
        metadata={
            "description": "once carried out: wechat_unlinked, logged_out_tokens, deleted "
            "(counts), kept ([{what, reason}]: records under a legal retention duty)"
        },
    )


class MyDataSchema(Schema):
    account = fields.Nested(AccountSchema, required=True)
    applications = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "every application I filed, ID and phone numbers whole"},
    )
    messages = fields.List(fields.Nested(MyMessageSchema), required=True)
    subscriptions = fields.List(fields.Nested(MySubscriptionSchema), required=True)
    leads = fields.List(
        fields.Nested(MyLeadSchema),
        required=True,
        metadata={"description": "leads about me (from my own applications): status only"},
    )
    deletion_request = fields.Nested(DeletionRequestSchema, allow_none=True)
    generated_at = fields.DateTime(required=True)


class DeletionAskSchema(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class DeletionFilterSchema(Schema):
    status = fields.String(
        load_default=None, validate=validate.OneOf([s.value for s in DeletionStatus])
    )


class DeletionDecisionSchema(Schema):
    outcome = fields.String(
        required=True,
        validate=validate.OneOf([DeletionStatus.COMPLETED.value, DeletionStatus.REFUSED.value]),
    )
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


@blp.route("/me/data")
@requires(*_WECHAT_USERS)
@blp.response(200, MyDataSchema)
def my_data() -> Any:
    """Everything we hold about me, whole (my own ID and phone numbers unmasked): account,
    applications, messages, subscriptions, and the leads about me (status only). Audited."""
    return data_rights.my_data(db(), actor=current_actor(), pii=runtime().pii, now=now())


@blp.route("/me/deletion-request", methods=["POST"])
@requires(*_WECHAT_USERS)
@blp.arguments(DeletionAskSchema)
@blp.response(201, DeletionRequestSchema)
@blp.alt_response(200, schema=DeletionRequestSchema, description="already pending: the same")
def request_deletion(body: dict[str, Any]) -> Any:
    """Ask for my account to be closed and my data deleted. Asking again while the request is
    pending returns it (200); the center carries it out."""
    request, created = data_rights.request_deletion(
        db(), actor=current_actor(), reason=body["reason"], now=now()
    )
    return data_rights.request_view(request), 201 if created else 200


@blp.route("/deletion-requests")
@requires(Role.CENTER_STAFF)
@blp.arguments(DeletionFilterSchema, location="query")
@blp.response(200, DeletionRequestSchema(many=True))
def list_deletion_requests(args: dict[str, Any]) -> Any:
    """Residents' requests to close their accounts, oldest first (`status` filters)."""
    status = DeletionStatus(args["status"]) if args["status"] else None
    return data_rights.list_deletion_requests(db(), status=status)


@blp.route("/deletion-requests/<int:request_id>/decide", methods=["POST"])
@requires(Role.CENTER_STAFF)
@blp.arguments(DeletionDecisionSchema)
@blp.response(200, DeletionRequestSchema)
def decide_deletion(body: dict[str, Any], request_id: int) -> Any:
    """Carry out (`completed`: WeChat link removed, logged out, messages deleted; applications
    kept under the retention duty, listed in `outcome.kept`) or refuse (`refused`, a `note`)."""
    return data_rights.decide_deletion(
        db(),
        request_id,
        actor=current_actor(),
        outcome=DeletionStatus(body["outcome"]),
        note=body["note"],
        now=now(),
    )
