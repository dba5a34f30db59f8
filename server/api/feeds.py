"""Department feeds: punctuality, settings, batch upload, progress and rejected rows."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, requires, runtime
from server.errors import ValidationFailed
from server.fields import Money
from server.models import Role
from server.services.feeds import batches, settings

blp = Blueprint("feeds", __name__, url_prefix="/api/v1", description="Department data feeds")

_READERS = (Role.DEPARTMENT_STAFF, Role.CENTER_STAFF, Role.LEADER)


class LastBatchSchema(Schema):
    id = fields.Integer(required=True)
    filename = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    rows_total = fields.Integer(allow_none=True)


class FeedSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    department = fields.String(required=True)
    department_name = fields.String(required=True)
    cadence = fields.String(
        required=True, metadata={"enum": ["event", "weekly", "monthly", "yearly"]}
    )
    due_rule = fields.String(required=True)
    threshold_field = fields.String(allow_none=True)
    last_batch = fields.Nested(LastBatchSchema, allow_none=True)
    next_due = fields.Date(allow_none=True)
    state = fields.String(
        required=True, metadata={"enum": ["on_time", "due_soon", "late", "never_sent"]}
    )
    state_label = fields.String(required=True, metadata={"description": "plain Chinese"})
    late_by_working_days = fields.Integer(required=True)
    calendar_certain = fields.Boolean(required=True)


class FeedListSchema(Schema):
    items = fields.List(fields.Nested(FeedSchema), required=True)


class ColumnSettingSchema(Schema):
    field = fields.String(required=True)
    label = fields.String(required=True)
    kind = fields.String(required=True)
    required = fields.Boolean(required=True)
    aliases = fields.List(fields.String(), required=True)
    extra_aliases = fields.List(fields.String(), required=True)


class FeedSettingsSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    columns = fields.List(fields.Nested(ColumnSettingSchema), required=True)
    threshold_field = fields.String(allow_none=True)
    default_threshold = Money(allow_none=True, places=None)
    threshold = Money(allow_none=True, places=None)
    updated_at = fields.DateTime(allow_none=True)


class FeedSettingsPatchSchema(Schema):
    column_aliases = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=40)),
        values=fields.List(
            fields.String(validate=validate.Length(min=1, max=50)),
            validate=validate.Length(max=30),
        ),
        metadata={"description": "field → extra header names (replaces the previous extras)"},
    )
    threshold = fields.Decimal(
        allow_none=True,
        places=2,
        validate=validate.Range(min=0, max=100_000_000, error="门槛应在 0 到 1亿 元之间"),
        metadata={"minimum": 0, "maximum": 100_000_000, "description": "null: back to default"},
    )


class BatchUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class RejectedRowSchema(Schema):
    row = fields.Integer(required=True)
    column = fields.String(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)


class BatchResultSchema(Schema):
    read = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    below_threshold = fields.Integer(required=True)
    leads_created = fields.Integer(required=True)
    leads_updated = fields.Integer(required=True)
    already_covered = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    roster_added = fields.Integer(required=True)
    roster_updated = fields.Integer(required=True)
    without_id = fields.Integer(
        metadata={"description": "rows accepted without an ID number (a lead each)"}
    )
    with_candidates = fields.Integer(
        metadata={"description": "of those, leads with candidate leads to merge"}
    )
    totals_skipped = fields.Integer(metadata={"description": "合计/小计/总计 rows, skipped"})


class BatchSchema(Schema):
    id = fields.Integer(required=True)
    feed_code = fields.String(required=True)
    filename = fields.String(required=True)
    status = fields.String(
        required=True, metadata={"enum": ["queued", "running", "done", "failed"]}
    )
    rows_total = fields.Integer(allow_none=True)
    rows_done = fields.Integer(required=True)
    progress = fields.Float(required=True, metadata={"description": "0 to 1"})
    result = fields.Nested(BatchResultSchema, required=True)
    rejected = fields.List(
        fields.Nested(RejectedRowSchema),
        required=True,
        metadata={"description": "the first 200; errors.xlsx has them all"},
    )
    failure_code = fields.String(allow_none=True)
    failure = fields.String(allow_none=True)
    header_row = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class BatchListSchema(Schema):
    items = fields.List(fields.Nested(BatchSchema), required=True)


@blp.route("/feeds")
@requires(*_READERS)
@blp.response(200, FeedListSchema)
def list_feeds() -> Any:
    """The twelve feeds (department staff: their own) with last batch, next due date and state:
    on time, due soon, late by N working days, or never sent."""
    return {"items": batches.list_feeds(db(), actor=current_actor(), today=now().date())}


@blp.route("/feeds/<code>/settings")
@requires(*_READERS, Role.SYSTEM_ADMIN)
@blp.response(200, FeedSettingsSchema)
def get_settings(code: str) -> Any:
    """A feed's expected columns with the header names accepted for each, and its threshold."""
    settings.access_feed(db(), code, actor=current_actor())
    return settings.settings_view(db(), code)


@blp.route("/feeds/<code>/settings", methods=["PATCH"])
@requires(Role.SYSTEM_ADMIN)
@blp.arguments(FeedSettingsPatchSchema)
@blp.response(200, FeedSettingsSchema)
def patch_settings(body: dict[str, Any], code: str) -> Any:
    """The system administrator adds header names for a feed's columns and/or changes its
    threshold."""
    settings.update_settings(
        db(),
        code,
        column_aliases=body.get("column_aliases"),
        threshold=body.get("threshold"),
        reset_threshold="threshold" in body and body["threshold"] is None,
        actor=current_actor(),
        now=now(),
    )
    return settings.settings_view(db(), code)


@blp.route("/feeds/<code>/batches", methods=["POST"])
@requires(Role.DEPARTMENT_STAFF, Role.CENTER_STAFF)
@blp.arguments(BatchUploadSchema, location="files")
@blp.response(201, BatchSchema, description="imported at once (small file)")
@blp.alt_response(202, schema=BatchSchema, description="queued: poll the batch for progress")
def upload_batch(files: dict[str, Any], code: str) -> Any:
    """Upload a department file (xlsx or csv). Small files are imported at once (201); larger
    ones answer 202 and continue in the worker. A file that is empty, not a spreadsheet or has
    no recognisable header is refused as a whole (422)."""
    rt = runtime()
    upload = files["file"]
    if not hasattr(upload, "read"):
        raise ValidationFailed("请上传文件", code="file_missing")
    content = upload.read(rt.config.max_upload_bytes + 1)
    if len(content) > rt.config.max_upload_bytes:
        raise ValidationFailed("文件过大，请拆分后上传", code="file_too_large")
    submitted = batches.submit_batch(
        db(),
        code,
        content=content,
        filename=upload.filename or "upload",
        pii=rt.pii,
        actor=current_actor(),
        now=now(),
        storage=rt.storage,
    )
    view = batches.batch_view(db(), submitted.batch, pii=rt.pii)
    return (view, 202) if submitted.queued else view


@blp.route("/feeds/<code>/batches")
@requires(*_READERS)
@blp.response(200, BatchListSchema)
def list_batches(code: str) -> Any:
    """The feed's latest 20 batches, newest first."""
    pii = runtime().pii
    rows = batches.list_batches(db(), code, actor=current_actor())
    return {"items": [batches.batch_view(db(), b, pii=pii) for b in rows]}


@blp.route("/feeds/<code>/batches/<int:batch_id>")
@requires(*_READERS)
@blp.response(200, BatchSchema)
def get_batch(code: str, batch_id: int) -> Any:
    """Progress (rows done of total) while importing, then the result and rejected rows."""
    batch = batches.access_batch(db(), code, batch_id, actor=current_actor())
    return batches.batch_view(db(), batch, pii=runtime().pii)


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@blp.route("/feeds/<code>/batches/<int:batch_id>/errors.xlsx")
@requires(Role.DEPARTMENT_STAFF, Role.CENTER_STAFF)
@blp.response(200, {"type": "string", "format": "binary"}, content_type=_XLSX)
def get_batch_errors(code: str, batch_id: int) -> Response:
    """The rejected rows as sent, plus 原行号 and 错误说明 columns, to fix and send again."""
    batch = batches.access_batch(db(), code, batch_id, actor=current_actor())
    content = batches.errors_workbook(
        db(), batch, pii=runtime().pii, actor=current_actor(), now=now()
    )
    response = Response(content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = f"attachment; filename=batch-{batch.id}-errors.xlsx"
    response.headers["Cache-Control"] = "private, no-store"
    return response
