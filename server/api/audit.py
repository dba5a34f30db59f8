"""The audit trail for the audit administrator (三员分立): read-only, filterable, newest first;
every read is itself audited.

There is deliberately no route that writes, edits or deletes an entry (PUT/PATCH/DELETE → 405).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from server.api.deps import current_actor, db, now, requires
from server.fields import INT32_MAX, bounded_int
from server.models import Role
from server.services.kernel import audit

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="Audit trail (read-only)")

_DAY_RANGE = validate.Range(
    min=date(2000, 1, 1), max=date(2100, 12, 31), error="日期应在 2000 年到 2100 年之间"
)


class AuditArgsSchema(Schema):
    actor_id = bounded_int(high=INT32_MAX)
    actor_role = fields.String(validate=validate.OneOf([r.value for r in Role]))
    action = fields.String(
        validate=validate.Length(min=1, max=60),
        metadata={"description": "exact action, or a prefix ending in '.' (e.g. `lead.`)"},
    )
    target_type = fields.String(validate=validate.Length(min=1, max=40))
    target_id = bounded_int(low=-INT32_MAX - 1, high=INT32_MAX)
    start = fields.Date(
        data_key="from", validate=_DAY_RANGE, metadata={"description": "first day, inclusive"}
    )
    end = fields.Date(
        data_key="to", validate=_DAY_RANGE, metadata={"description": "last day, inclusive"}
    )
    ip = fields.String(validate=validate.Length(min=1, max=64))
    unmasked = fields.Boolean(
        load_default=False,
        metadata={"description": "only views/exports that showed personal data unmasked"},
    )
    limit = fields.Integer(
        load_default=50, validate=validate.Range(min=1, max=200, error="每页 1 到 200 条")
    )
    before = fields.Integer(
        validate=validate.Range(min=1, max=2**62),
        metadata={"description": "cursor: `next_before` of the previous page"},
    )

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("开始日期不能晚于结束日期", field_name="from")


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor_id = fields.Integer(allow_none=True, metadata={"description": "null for the system"})
    actor_name = fields.String(allow_none=True)
    actor_role = fields.String(required=True)
    action = fields.String(required=True)
    target_type = fields.String(required=True)
    target_id = fields.Integer(allow_none=True)
    detail = fields.Dict(required=True)
    ip = fields.String(allow_none=True)
    seq = fields.Integer(
        allow_none=True, metadata={"description": "place in the chain (null: before it)"}
    )
    hash = fields.String(allow_none=True, metadata={"description": "the entry's chain hash"})


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next_before = fields.Integer(
        allow_none=True, metadata={"description": "pass as `before` for the next page"}
    )


@blp.route("/audit")
@requires(Role.AUDIT_ADMIN)
@blp.arguments(AuditArgsSchema, location="query")
@blp.response(200, AuditPageSchema)
def list_audit(args: dict[str, Any]) -> Any:
    """Audit entries, newest first, filtered by who, what, which record, when and from where."""
    limit, before = args.pop("limit"), args.pop("before", None)
    if "actor_role" in args:
        args["actor_role"] = Role(args["actor_role"])
    return audit.list_entries(
        db(),
        audit.AuditFilter(**args),
        actor=current_actor(),
        limit=limit,
        before=before,
        now=now(),
    )


@blp.route("/audit/<int:entry_id>")
@requires(Role.AUDIT_ADMIN)
@blp.response(200, AuditEntrySchema)
def get_audit(entry_id: int) -> Any:
    """One audit entry."""
    return audit.get_entry(db(), entry_id, actor=current_actor(), now=now())
