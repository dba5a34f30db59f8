"""主动告知: the inform-the-person tasks of a town (or the center's, all) and recording that a
person without WeChat was told what was decided, through the API's own service."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server.clock import TZ
from server.console import forms
from server.console.deps import actor, db, now
from server.console.security import page
from server.console.views import blp
from server.models import InformMethod, Role
from server.services.notifications import informing

READERS = (Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
WORKERS = (Role.TOWN_STAFF, Role.CENTER_STAFF)
PER_PAGE = 20


@blp.route("/inform-tasks", endpoint="inform_tasks")
@page(*READERS)
def inform_tasks() -> Any:
    args = forms.parse(forms.InformTaskListArgs(), request.args)
    today = now().astimezone(TZ).date()
    state = None if args["state"] == "all" else args["state"]
    rows, total = informing.list_tasks(
        db(), actor=actor(), today=today, state=state, page=args["page"], per_page=PER_PAGE
    )
    return render_template(
        "console/inform_tasks.html",
        items=[informing.task_view(db(), t, today=today) for t in rows],
        total=total,
        args=args,
        page_no=args["page"],
        pages=max(1, -(-total // PER_PAGE)),
        methods=informing.METHOD_LABELS,
        can_record=actor().role in WORKERS,
        default_time=now().astimezone(TZ).strftime("%Y-%m-%dT%H:%M"),
    )


@blp.route("/inform-tasks/<int:task_id>/informed", methods=["POST"])
@page(*WORKERS)
def record_informed(task_id: int) -> Any:
    body = forms.parse(forms.InformedForm(), request.form)
    informing.record_informed(
        db(),
        task_id,
        method=InformMethod(body["method"]),
        informed_at=_within_minute(body["informed_at"].replace(tzinfo=TZ)),
        note=body.get("note"),
        actor=actor(),
        now=now(),
    )
    flash("已记录告知情况", "success")
    return redirect(url_for("console.inform_tasks", state=request.args.get("state", "open")), 303)


def _within_minute(minute: datetime) -> datetime:
    """The form gives minutes; "10:30" means during that minute, so its last instant, but
    never later than now (a task decided at 10:30:59.5 and told at once is not refused, even
    when the form is sent at 10:31). A minute still to come stays as given, for the service
    to refuse."""
    if minute > now():
        return minute
    return min(minute + timedelta(minutes=1) - timedelta(microseconds=1), now())
