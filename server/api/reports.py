"""Monthly statistics (JSON and xlsx) and the towns' monthly summaries."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, requires, work_calendar
from server.fields import Money
from server.models import Role
from server.services.reports import statistics, town_summaries

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Monthly reports")

READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF)
_MONTH_FIELD = {
    "validate": validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="月份格式应为 YYYY-MM"),
    "metadata": {"description": "YYYY-MM", "example": "2026-11"},
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class MonthlyArgsSchema(Schema):
    month = fields.String(required=True, **_MONTH_FIELD)
    town = fields.String(
        validate=validate.Length(min=1, max=32),
        metadata={"description": "town code; town staff may give only their own"},
    )


class CountSchema(Schema):
    code = fields.String(allow_none=True, required=True)
    label = fields.String(required=True)
    count = fields.Integer(required=True)


class TownRefSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class PeriodSchema(Schema):
    first_day = fields.String(required=True)
    last_day = fields.String(required=True)
    complete = fields.Boolean(required=True, metadata={"description": "the month has ended"})


class LeadFiguresSchema(Schema):
    total = fields.Integer(required=True)
    by_channel = fields.List(fields.Nested(CountSchema), required=True)
    by_feed = fields.List(fields.Nested(CountSchema), required=True)
    by_town = fields.List(fields.Nested(CountSchema), required=True)
    by_category = fields.List(fields.Nested(CountSchema), required=True)


class SlipCountsSchema(Schema):
    issued = fields.Integer(required=True)
    answered_on_time = fields.Integer(required=True)
    answered_late = fields.Integer(required=True)
    returned = fields.Integer(required=True)
    still_open = fields.Integer(required=True, metadata={"description": "at the end of the month"})


class UnitSlipsSchema(SlipCountsSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["department", "town"]))
    id = fields.Integer(allow_none=True, required=True)
    label = fields.String(required=True)


class SlipFiguresSchema(SlipCountsSchema):
    on_time_rate = fields.Float(allow_none=True, required=True)
    by_unit = fields.List(fields.Nested(UnitSlipsSchema), required=True)


class OutcomeSchema(Schema):
    code = fields.String(required=True)
    label = fields.String(required=True)
    count = fields.Integer(required=True)
    amount = Money(required=True, metadata={"description": "yuan, 2 decimals"})


class ScoreSchema(Schema):
    score = fields.Integer(required=True)
    count = fields.Integer(required=True)


class SatisfactionSchema(Schema):
    count = fields.Integer(required=True)
    average = fields.Float(allow_none=True, required=True)
    by_score = fields.List(fields.Nested(ScoreSchema), required=True)


class InformedFiguresSchema(Schema):
    due = fields.Integer(required=True, metadata={"description": "inform tasks due this month"})
    leads_informed_on_time = fields.Integer(
        required=True, metadata={"description": "leads whose every task due was done on time"}
    )
    informed_on_time = fields.Integer(required=True)
    informed_late = fields.Integer(required=True)
    not_informed = fields.Integer(required=True)


class AidKindSchema(Schema):
    kind = fields.String(required=True)
    label = fields.String(required=True)
    period = fields.String(required=True, validate=validate.OneOf(["monthly", "one_off"]))
    grants = fields.Integer(required=True)
    households = fields.Integer(required=True)
    amount = fields.String(required=True, metadata={"description": "yuan, 2 decimals"})


class AidFiguresSchema(Schema):
    households = fields.Integer(required=True)
    grants = fields.Integer(required=True)
    amount = fields.String(required=True)
    by_kind = fields.List(fields.Nested(AidKindSchema), required=True)


class DonationFiguresSchema(Schema):
    received = fields.Integer(required=True, metadata={"description": "district only"})
    money_received = fields.String(required=True)
    goods_received = fields.Integer(required=True)
    allocations = fields.Integer(required=True)
    money_allocated = fields.String(required=True)
    households = fields.Integer(required=True)


class ServiceKindFiguresSchema(Schema):
    kind = fields.String(required=True)
    label = fields.String(required=True)
    services = fields.Integer(required=True)
    households = fields.Integer(required=True)


class ServiceFiguresSchema(Schema):
    services = fields.Integer(required=True)
    by_kind = fields.List(fields.Nested(ServiceKindFiguresSchema), required=True)


class HelpFiguresSchema(Schema):
    households_helped = fields.Integer(
        required=True, metadata={"description": "aid granted, donations or services"}
    )
    aid = fields.Nested(AidFiguresSchema, required=True)
    donations = fields.Nested(DonationFiguresSchema, required=True)
    services = fields.Nested(ServiceFiguresSchema, required=True)


class StatisticsSchema(Schema):
    month = fields.String(required=True)
    town = fields.Nested(TownRefSchema, allow_none=True, required=True)
    period = fields.Nested(PeriodSchema, required=True)
    leads = fields.Nested(LeadFiguresSchema, required=True)
    slips = fields.Nested(SlipFiguresSchema, required=True)
    outcomes = fields.List(fields.Nested(OutcomeSchema), required=True)
    satisfaction = fields.Nested(SatisfactionSchema, required=True)
    informed = fields.Nested(
        InformedFiguresSchema,
        required=True,
        metadata={"description": "主动告知: people without WeChat told of decisions"},
    )
    help = fields.Nested(
        HelpFiguresSchema,
        required=True,
        metadata={"description": "救助帮扶: households helped, aid granted, donations, services"},
    )


class SummarySchema(Schema):
    town = fields.Nested(TownRefSchema, required=True)
    month = fields.String(required=True)
    due_date = fields.Date(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(list(town_summaries.SUMMARY_STATUS_LABELS))
    )
    status_label = fields.String(required=True)
    submitted_at = fields.DateTime(allow_none=True, required=True)
    submitted_by = fields.String(allow_none=True, required=True)
    remarks = fields.String(allow_none=True, required=True)
    figures = fields.Dict(allow_none=True, required=True, metadata={"description": "as submitted"})


class LateTownSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)


class SummaryListSchema(Schema):
    month = fields.String(required=True)
    due_date = fields.Date(required=True)
    items = fields.List(fields.Nested(SummarySchema), required=True)
    late_towns = fields.List(fields.Nested(LateTownSchema), required=True)


class MonthlyReportSchema(StatisticsSchema):
    summaries = fields.Nested(SummaryListSchema, required=True)


class SubmitSchema(Schema):
    remarks = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000, error="备注应为 1 到 2000 字"),
    )


def _report(month: str, town_code: str | None) -> dict[str, Any]:
    period = _month(month)
    actor = current_actor()
    town = statistics.report_scope(db(), actor=actor, town_code=town_code)
    figures = statistics.monthly_statistics(db(), period=period, town=town, now=now())
    summaries = town_summaries.list_summaries(db(), period=period, actor=actor, now=now())
    if town is not None:
        summaries["items"] = [i for i in summaries["items"] if i["town"]["code"] == town.code]
        summaries["late_towns"] = [t for t in summaries["late_towns"] if t["code"] == town.code]
    return {**figures, "summaries": summaries}


@blp.route("/monthly")
@requires(*READERS)
@blp.arguments(MonthlyArgsSchema, location="query")
@blp.response(200, MonthlyReportSchema)
def monthly(args: dict[str, Any]) -> Any:
    """The month's statistics for the district or one town (town staff: their own town), with
    the state of the towns' summaries and the towns that are late."""
    return _report(args["month"], args.get("town"))


@blp.route("/monthly.xlsx")
@requires(*READERS)
@blp.arguments(MonthlyArgsSchema, location="query")
@blp.response(200, content_type=XLSX, description="xlsx workbook (aggregates only)")
def monthly_xlsx(args: dict[str, Any]) -> Any:
    """The same report as an xlsx workbook."""
    report = _report(args["month"], args.get("town"))
    content = statistics.monthly_workbook(report, report["summaries"])
    suffix = f"-{report['town']['code']}" if report["town"] else ""
    return Response(
        content,
        mimetype=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="monthly-{args["month"]}{suffix}.xlsx"',
            "Cache-Control": "private, no-store",
        },
    )


@blp.route("/monthly/<month>/summaries")
@requires(*READERS)
@blp.response(200, SummaryListSchema)
def summaries(month: str) -> Any:
    """Each town's summary for the month: submitted, submitted late, pending, or late."""
    return town_summaries.list_summaries(
        db(), period=_month(month), actor=current_actor(), now=now()
    )


@blp.route("/monthly/<month>/submit", methods=["POST"])
@requires(Role.TOWN_STAFF)
@blp.arguments(SubmitSchema)
@blp.response(201, SummarySchema)
def submit(body: dict[str, Any], month: str) -> Any:
    """Submit the town's summary of `month` with remarks (due by the 5th of the next month);
    the figures are stored as they stand at submission."""
    return town_summaries.submit_summary(
        db(),
        period=_month(month),
        remarks=body["remarks"],
        actor=current_actor(),
        now=now(),
    )


def _month(text: str) -> statistics.Period:
    """The month, with its towns' due date moved off days off by the working calendar."""
    return statistics.parse_month(text, calendar=work_calendar())
