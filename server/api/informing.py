"""主动告知: the inform-the-person worklist and recording that a person was told."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, requires
from server.api.paging import NumberedPageSchema, PageArgsSchema
from server.models import InformMethod, Role
from server.services.notifications import informing

blp = Blueprint(
    "informing",
    __name__,
    url_prefix="/api/v1",
    description="Inform tasks: telling people without WeChat what was decided (主动告知)",
)

#: Who works the tasks: the town (its own), the helper who filed (their own), the center (all).
WORKERS = (Role.TOWN_STAFF, Role.CENTER_STAFF, Role.HELPER)


class TaskFilterSchema(PageArgsSchema):
    state = fields.String(
        validate=validate.OneOf(["open", "overdue", "done"]),
        metadata={"description": "open: not told yet; overdue: not told, past its due date"},
    )


class InformTaskSchema(Schema):
    id = fields.Integer(required=True)
    lead_id = fields.Integer(required=True)
    name = fields.String(required=True, metadata={"description": "the person to tell"})
    town = fields.String(allow_none=True)
    helper_id = fields.Integer(allow_none=True)
    what = fields.String(required=True, metadata={"description": "what to tell, in Chinese"})
    created_at = fields.DateTime(required=True)
    due_date = fields.Date(
        required=True, metadata={"description": "3 working days after the decision"}
    )
    overdue = fields.Boolean(required=True)
    method = fields.String(allow_none=True, metadata={"enum": [m.value for m in InformMethod]})
    method_label = fields.String(allow_none=True)
    informed_at = fields.DateTime(allow_none=True)
    informed_by = fields.String(allow_none=True)
    on_time = fields.Boolean(allow_none=True)
    note = fields.String(allow_none=True)


class InformTaskPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(InformTaskSchema), required=True)


class InformedSchema(Schema):
    method = fields.String(
        required=True,
        validate=validate.OneOf([m.value for m in InformMethod]),
        metadata={"description": "phone (电话), visit (上门) or letter (书面)"},
    )
    informed_at = fields.AwareDateTime(
        required=True, metadata={"description": "when the person was told (with its offset)"}
    )
    note = fields.String(load_default=None, validate=validate.Length(max=500))


@blp.route("/inform-tasks")
@requires(*WORKERS, Role.LEADER)
@blp.arguments(TaskFilterSchema, location="query")
@blp.response(200, InformTaskPageSchema)
def list_tasks(args: dict[str, Any]) -> Any:
    """The worklist: a town's tasks (its own), a helper's (those they filed for), the center's
    and leaders' (all). Open ones by due date; `state=overdue` for those past it."""
    today = now().date()
    rows, total = informing.list_tasks(
        db(),
        actor=current_actor(),
        today=today,
        state=args.get("state"),
        page=args["page"],
        per_page=args["per_page"],
    )
    return {
        "items": [informing.task_view(db(), t, today=today) for t in rows],
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route("/inform-tasks/<int:task_id>/informed", methods=["POST"])
@requires(*WORKERS)
@blp.arguments(InformedSchema)
@blp.response(200, InformTaskSchema)
def record_informed(body: dict[str, Any], task_id: int) -> Any:
    """Record how and when the person was told (the caller is who told them). Once only."""
    task = informing.record_informed(
        db(),
        task_id,
        method=InformMethod(body["method"]),
        informed_at=body["informed_at"],
        note=body.get("note"),
        actor=current_actor(),
        now=now(),
    )
    return informing.task_view(db(), task, today=now().date())
