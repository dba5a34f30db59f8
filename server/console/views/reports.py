"""统计: the monthly statistics as charts beside their tables (and xlsx), and the towns'
monthly summaries (月度小结: due by the 5th, submitted / late / missing, submitting one).

The figures come from `services/reports/statistics.py`, the functions `GET /api/v1/reports/monthly`
calls, with the same scope rule (`report_scope`: a town sees only itself)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from flask import Response, abort, flash, redirect, render_template, request, url_for

from server.clock import TZ
from server.console import forms
from server.console.deps import actor, connection, db, now
from server.console.report_charts import TREND_MONTHS, chart_by_key, month_label, report_charts
from server.console.security import page
from server.console.views import blp
from server.models import Role
from server.services.calendar.workdays import WorkCalendar
from server.services.kernel import workbooks
from server.services.places import areas
from server.services.reports import statistics, town_summaries

READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF)
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _period(month: str | None) -> statistics.Period:
    text = month or now().astimezone(TZ).strftime("%Y-%m")
    return statistics.parse_month(text, calendar=WorkCalendar.load(db()))


def _trend(args: dict[str, Any]) -> tuple[statistics.Period, Any, list[dict[str, Any]]]:
    period = _period(args.get("month"))
    town = statistics.report_scope(db(), actor=actor(), town_code=args.get("town"))
    periods = statistics.months_back(period, TREND_MONTHS, calendar=WorkCalendar.load(db()))
    trend = statistics.monthly_trend(db(), periods=periods, town=town, now=now())
    return period, town, trend


@blp.route("/reports")
@page(*READERS)
def reports_page() -> Any:
    """The chosen month's figures (default: this month) and six months of leads."""
    args = forms.parse(forms.ReportArgs(), request.args)
    period, town, trend = _trend(args)
    query = {"month": period.month, **({"town": town.code} if town else {})}
    return render_template(
        "console/reports.html",
        stats=trend[-1],
        charts=report_charts(trend),
        period=period,
        town=town,
        query=query,
        month_label=month_label(period.month),
        towns=areas.list_towns(connection()) if actor().role is not Role.TOWN_STAFF else [],
    )


@blp.route("/reports/<key>.xlsx")
@page(*READERS)
def report_chart_export(key: str) -> Response:
    """One chart's table as a workbook (aggregates only)."""
    args = forms.parse(forms.ReportArgs(), request.args)
    period, town, trend = _trend(args)
    chart = chart_by_key(trend, key)
    if chart is None:
        abort(404)
    header, rows = chart.table()
    scope = town.name if town else "全区"
    title = f"{chart.title}（{scope}）"
    content = workbooks.table_workbook(title, header, rows)
    return _xlsx(content, f"{chart.title}-{scope}-{period.month}.xlsx", f"{key}.xlsx")


@blp.route("/reports.xlsx")
@page(*READERS)
def report_export() -> Response:
    """The month's whole report, the workbook `GET /api/v1/reports/monthly.xlsx` gives."""
    args = forms.parse(forms.ReportArgs(), request.args)
    period = _period(args.get("month"))
    town = statistics.report_scope(db(), actor=actor(), town_code=args.get("town"))
    figures = statistics.monthly_statistics(db(), period=period, town=town, now=now())
    summaries = _summaries(period, town)
    content = statistics.monthly_workbook(figures, summaries)
    scope = town.name if town else "全区"
    return _xlsx(content, f"月度统计-{scope}-{period.month}.xlsx", f"monthly-{period.month}.xlsx")


def _summaries(period: statistics.Period, town: Any) -> dict[str, Any]:
    """As the API's report: the towns' summaries, only the town's own for one town."""
    found = town_summaries.list_summaries(db(), period=period, actor=actor(), now=now())
    if town is not None:
        found["items"] = [i for i in found["items"] if i["town"]["code"] == town.code]
        found["late_towns"] = [t for t in found["late_towns"] if t["code"] == town.code]
    return found


def _xlsx(content: bytes, filename: str, ascii_name: str) -> Response:
    response = Response(content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- the towns' monthly summaries ------------------------------------------------------------


def _summary_month() -> str:
    """The month whose summary is due next: last month."""
    first = now().astimezone(TZ).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


@blp.route("/summaries")
@page(*READERS)
def summaries() -> Any:
    """Each town's summary of the month (default: last month, the one due by the 5th)."""
    args = forms.parse(forms.MonthArgs(), request.args)
    period = _period(args.get("month") or _summary_month())
    found = town_summaries.list_summaries(db(), period=period, actor=actor(), now=now())
    counts = {
        status: sum(1 for i in found["items"] if i["status"] == status)
        for status in town_summaries.SUMMARY_STATUS_LABELS
    }
    return render_template(
        "console/summaries.html",
        found=found,
        period=period,
        counts=counts,
        labels=town_summaries.SUMMARY_STATUS_LABELS,
        month_label=month_label(period.month),
        month_over=now() >= period.end,
        can_submit=actor().role is Role.TOWN_STAFF,
    )


@blp.route("/summaries/<month>/submit", methods=["POST"])
@page(Role.TOWN_STAFF)
def submit_summary(month: str) -> Any:
    """Submit the town's summary of `month`: the figures as they stand, with the remarks."""
    body = forms.parse(forms.SummaryForm(), request.form)
    period = _period(month)
    done = town_summaries.submit_summary(
        db(), period=period, remarks=body["remarks"], actor=actor(), now=now()
    )
    late = "（逾期提交）" if done["status"] == "submitted_late" else ""
    flash(f"{done['town']['name']} {month_label(period.month)}月度小结已提交{late}", "success")
    return redirect(url_for("console.summaries", month=period.month), 303)
