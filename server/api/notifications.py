"""Subscriptions to WeChat messages, the in-app inbox, outbox health, and WeChat's server push."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import ALL_ROLES, current_actor, db, now, public, requires, runtime
from server.api.paging import NumberedPageSchema, page_number
from server.errors import Forbidden
from server.models import Role, SubscriptionStatus
from server.services.notifications import messages, wechat_push
from server.wechat.callback import CallbackRejected, read_push, verify_url

blp = Blueprint(
    "notifications", __name__, url_prefix="/api/v1", description="WeChat messages and inbox"
)
callback_blp = Blueprint("wechat_callback", __name__, url_prefix="/wechat", description="WeChat")

_WECHAT_USERS = (Role.RESIDENT, Role.HELPER)


class TemplateSchema(Schema):
    event = fields.String(required=True)
    template_id = fields.String(required=True)
    title = fields.String(required=True)
    long_term = fields.Boolean(required=True)


class SubscriptionResultsSchema(Schema):
    results = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=fields.String(validate=validate.OneOf([s.value for s in SubscriptionStatus])),
        required=True,
        validate=validate.Length(min=1, max=10),
        metadata={"description": "what wx.requestSubscribeMessage answered, per template id"},
    )


class SubscriptionSchema(Schema):
    template_id = fields.String(required=True)
    status = fields.String(required=True)
    quota = fields.Integer(required=True)
    long_term = fields.Boolean(required=True)


class InboxArgsSchema(Schema):
    unread = fields.Boolean(load_default=False)
    page = page_number()
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class InboxMessageSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    page = fields.String(allow_none=True)
    application_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    read_at = fields.DateTime(allow_none=True)


class InboxPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(InboxMessageSchema), required=True)
    unread = fields.Integer(required=True)


class OutboxStatsSchema(Schema):
    pending = fields.Integer(required=True)
    sent = fields.Integer(required=True)
    skipped = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    oldest_pending_seconds = fields.Integer(allow_none=True)


class CallbackArgsSchema(Schema):
    signature = fields.String(load_default="")
    msg_signature = fields.String(load_default="")
    timestamp = fields.String(load_default="")
    nonce = fields.String(load_default="")
    echostr = fields.String(load_default="")
    encrypt_type = fields.String(load_default="")
    openid = fields.String(load_default="")


@blp.route("/subscriptions/templates")
@requires(*_WECHAT_USERS)
@blp.response(200, TemplateSchema(many=True))
def subscription_templates() -> Any:
    """The template ids the mini-program should ask for with wx.requestSubscribeMessage."""
    return messages.templates(runtime().config)


@blp.route("/subscriptions", methods=["POST"])
@requires(*_WECHAT_USERS)
@blp.arguments(SubscriptionResultsSchema)
@blp.response(200, SubscriptionSchema(many=True))
def record_subscriptions(body: dict[str, Any]) -> Any:
    """Record the user's answers; each accept of a one-time template allows one message."""
    rows = messages.record_subscriptions(
        db(), body["results"], config=runtime().config, actor=current_actor(), now=now()
    )
    return [
        {
            "template_id": r.template_id,
            "status": r.status.value,
            "quota": r.quota,
            "long_term": r.long_term,
        }
        for r in rows
    ]


@blp.route("/messages")
@requires(*ALL_ROLES)
@blp.arguments(InboxArgsSchema, location="query")
@blp.response(200, InboxPageSchema)
def inbox(args: dict[str, Any]) -> Any:
    """My messages, newest first: everything WeChat was asked to deliver, delivered or not."""
    rows, total, unread = messages.list_inbox(
        db(),
        actor=current_actor(),
        unread_only=args["unread"],
        page=args["page"],
        per_page=args["per_page"],
    )
    return {
        "items": rows,
        "total": total,
        "unread": unread,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route("/messages/<int:message_id>/read", methods=["POST"])
@requires(*ALL_ROLES)
@blp.response(200, InboxMessageSchema)
def mark_read(message_id: int) -> Any:
    """Mark one of my messages read (another user's is 404)."""
    return messages.mark_read(db(), message_id, actor=current_actor(), now=now())


@blp.route("/outbox/stats")
@requires(Role.CENTER_STAFF)
@blp.response(200, OutboxStatsSchema)
def outbox_stats() -> Any:
    """WeChat delivery health: pending, sent, skipped (未订阅), failed, oldest pending age."""
    return messages.outbox_stats(db(), now=now())


@callback_blp.route("/callback", methods=["GET"])
@public
@callback_blp.arguments(CallbackArgsSchema, location="query")
@callback_blp.response(200, {"type": "string"}, content_type="text/plain")
def verify_callback(args: dict[str, Any]) -> Response:
    """WeChat's URL check: echo `echostr` when the signature is ours (no login; signed)."""
    config = runtime().config
    if not verify_url(
        config, signature=args["signature"], timestamp=args["timestamp"], nonce=args["nonce"]
    ):
        raise Forbidden("签名校验失败", code="bad_signature")
    return Response(args["echostr"], mimetype="text/plain")


@callback_blp.route("/callback", methods=["POST"])
@public
@callback_blp.arguments(CallbackArgsSchema, location="query")
@callback_blp.response(200, {"type": "string"}, content_type="text/plain")
def receive_callback(args: dict[str, Any]) -> Response:
    """WeChat's pushes (no login; signed, and decrypted in safe mode): subscription popups and
    changes update what each user allowed. Answers "success" as WeChat expects."""
    config = runtime().config
    # Who sent it first (the query alone), then when and whether before, then the body,
    # bounded, and only then parsing: an unsigned 1.4 MB XML costs nothing.
    if not verify_url(
        config, signature=args["signature"], timestamp=args["timestamp"], nonce=args["nonce"]
    ):
        raise Forbidden("签名校验失败", code="bad_signature")
    wechat_push.accept_push(db(), timestamp=args["timestamp"], nonce=args["nonce"], now=now())
    try:
        message = read_push(config, _bounded_body(), request.args.to_dict())
    except CallbackRejected as exc:
        raise Forbidden("签名校验失败或消息无法解析", code="bad_signature") from exc
    if message.get("Event") in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
        messages.record_wechat_event(
            db(),
            openid=str(message.get("FromUserName") or ""),
            items=message["List"],
            config=config,
            now=now(),
        )
    return Response("success", mimetype="text/plain")


def _bounded_body() -> bytes:
    """The push's body, refused (413) past MAX_PUSH_BYTES without reading more than that."""
    limit = wechat_push.MAX_PUSH_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise wechat_push.PushTooLarge()
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise wechat_push.PushTooLarge()
    return body
