"""The working-day calendar: load a year's holidays, see what is known, compute a due date."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import STAFF, current_actor, db, now, requires
from server.models import Role
from server.services.calendar import holidays

blp = Blueprint(
    "calendar", __name__, url_prefix="/api/v1/calendar", description="Working-day calendar"
)


class HolidayUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class HolidaySourceSchema(Schema):
    source = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "e.g. 国办发明电〔2026〕X号; defaults to the file name"},
    )


class YearLoadedSchema(Schema):
    year = fields.Integer(required=True)
    source = fields.String(required=True)
    holidays = fields.Integer(required=True)
    workdays = fields.Integer(required=True, metadata={"description": "make-up working days"})
    replaced = fields.String(
        allow_none=True, metadata={"description": "source of the schedule this load replaced"}
    )


class HolidayLoadSchema(Schema):
    years = fields.List(fields.Nested(YearLoadedSchema), required=True)


class LibraryRangeSchema(Schema):
    first_year = fields.Integer(required=True)
    last_year = fields.Integer(required=True)


class LoadedYearSchema(Schema):
    year = fields.Integer(required=True)
    source = fields.String(required=True)
    loaded_at = fields.DateTime(required=True)
    holidays = fields.Integer(required=True)
    workdays = fields.Integer(required=True)


class YearStatusSchema(Schema):
    year = fields.Integer(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(["loaded", "library", "awaited", "missing"]),
    )
    known = fields.Boolean(required=True)
    source = fields.String(allow_none=True)
    due_by = fields.Date(allow_none=True, metadata={"description": "must be loaded by"})
    message = fields.String(required=True)


class CoverageSchema(Schema):
    library = fields.Nested(LibraryRangeSchema, required=True)
    loaded = fields.List(fields.Nested(LoadedYearSchema), required=True)
    this_year = fields.Nested(YearStatusSchema, required=True)
    next_year = fields.Nested(YearStatusSchema, required=True)


class WorkdaysArgsSchema(Schema):
    start = fields.Date(
        required=True,
        data_key="from",
        validate=validate.Range(
            min=date(2000, 1, 1), max=date(2100, 12, 31), error="日期应在 2000 年到 2100 年之间"
        ),
        metadata={"description": "day of issue (not counted)"},
    )
    days = fields.Integer(
        load_default=5, validate=validate.Range(min=1, max=60, error="天数应在 1 到 60 之间")
    )


class WorkdaysSchema(Schema):
    start = fields.Date(required=True, data_key="from")
    days = fields.Integer(required=True)
    due = fields.Date(required=True)
    certain = fields.Boolean(
        required=True, metadata={"description": "false when a year on the way is not known"}
    )
    uncertain_years = fields.List(fields.Integer(), required=True)
    counted = fields.List(fields.Date(), required=True)
    rule = fields.String(required=True)
    message = fields.String(required=True)


@blp.route("/holidays", methods=["POST"])
@requires(Role.SYSTEM_ADMIN)
@blp.arguments(HolidayUploadSchema, location="files")
@blp.arguments(HolidaySourceSchema, location="form")
@blp.response(200, HolidayLoadSchema)
def load_holidays(files: dict[str, Any], form: dict[str, Any]) -> Any:
    """The system administrator loads a holiday table (csv/xlsx: 日期, 类型 holiday/workday,
    名称). Each year in the file replaces that year; a file with any wrong row loads nothing
    (422, errors by row and column).
    """
    upload = files["file"]
    return holidays.load_holidays(
        db(),
        content=upload.read(),
        filename=upload.filename or "",
        source=form.get("source"),
        actor=current_actor(),
        now=now(),
    )


@blp.route("/years")
@requires(*STAFF, Role.SYSTEM_ADMIN)
@blp.response(200, CoverageSchema)
def calendar_years() -> Any:
    """Which years the calendar knows, and whether next year's holidays are loaded in time."""
    return holidays.coverage(db(), today=now().date())


@blp.route("/workdays")
@requires(*STAFF)
@blp.arguments(WorkdaysArgsSchema, location="query")
@blp.response(200, WorkdaysSchema)
def workdays(args: dict[str, Any]) -> Any:
    """The due date `days` working days after `from` (the day of issue never counts). Beyond
    every known year it counts Monday–Friday only and says `certain: false`."""
    return holidays.working_days_from(db(), start=args["start"], days=args["days"])
