"""领导驾驶舱: read-only KPI cards that open their lists, and the months' trend."""

from __future__ import annotations

from typing import Any

from flask import render_template

from server.console.deps import actor, db, now
from server.console.report_charts import TREND_MONTHS, dashboard_charts, month_label
from server.console.security import page
from server.console.views import blp
from server.services.calendar.workdays import WorkCalendar
from server.services.reports import dashboard as dashboards
from server.services.reports import statistics


@blp.route("/dashboard")
@page(*dashboards.READERS)
def dashboard() -> Any:
    calendar = WorkCalendar.load(db())
    found = dashboards.leader_dashboard(db(), actor=actor(), now=now(), calendar=calendar)
    period = statistics.parse_month(found.month, calendar=calendar)
    periods = statistics.months_back(period, TREND_MONTHS, calendar=calendar)
    trend = statistics.monthly_trend(db(), periods=periods[:-1], town=None, now=now())
    trend.append(found.statistics)
    return render_template(
        "console/dashboard.html",
        board=found,
        charts=dashboard_charts(trend),
        month_label=month_label(found.month),
        query={"month": found.month},
    )
