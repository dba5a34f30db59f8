"""督办: overdue and escalated slips by unit, worst delay, the monthly 通报 and its workbook."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response, render_template, request

from server.console import forms
from server.console.deps import actor, db, now
from server.console.security import page
from server.console.views import blp
from server.models import Role
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches import listing, supervision

READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@blp.route("/supervision")
@page(*READERS)
def supervision_page() -> Any:
    args = forms.parse(forms.MonthArgs(), request.args)
    month = args.get("month") or now().strftime("%Y-%m")
    calendar = WorkCalendar.load(db())
    overdue, _total = listing.list_dispatches(
        db(),
        listing.DispatchFilter(deadline="overdue"),
        calendar=calendar,
        actor=actor(),
        today=now().date(),
        page=1,
        per_page=100,
    )
    slips = listing.dispatch_views(
        db(), overdue, calendar=calendar, today=now().date(), actor=actor()
    )
    by_unit: dict[str, dict[str, Any]] = {}
    for s in slips:
        unit = by_unit.setdefault(
            s["unit"]["name"], {"name": s["unit"]["name"], "slips": [], "worst": 0, "escalated": 0}
        )
        unit["slips"].append(s)
        unit["worst"] = max(unit["worst"], s["deadline"]["overdue_days"])
        unit["escalated"] += 1 if s["escalation_level"] else 0
    units = sorted(by_unit.values(), key=lambda u: (-u["worst"], u["name"]))
    notices = supervision.list_notices(db(), actor=actor(), month=month)
    return render_template("console/supervision.html", units=units, notices=notices, month=month)


@blp.route("/supervision.xlsx")
@page(*READERS)
def supervision_export() -> Response:
    """The month's 通报 as a workbook (no personal data; the export is audited)."""
    args = forms.parse(forms.MonthArgs(), request.args)
    content, filename = supervision.export_notices(
        db(), actor=actor(), month=args.get("month"), now=now()
    )
    response = Response(content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"supervision.xlsx\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
