"""申请审核: the town's review queue and one application with its photos and timeline."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server.console import forms
from server.console.deps import actor, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.console.views.dispatches import _send_photo
from server.models import ApplicationStatus, Role
from server.services.applications import decisions, filing, handling, photos, reading
from server.services.notifications import messages

READERS = (Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
HANDLERS = (Role.TOWN_STAFF, Role.CENTER_STAFF)
PER_PAGE = 20


@blp.route("/applications", endpoint="applications")
@page(*READERS)
def applications_list() -> Any:
    args = forms.parse(forms.ApplicationListArgs(), request.args)
    rows, total = reading.list_applications(
        db(),
        actor=actor(),
        page=args["page"],
        per_page=PER_PAGE,
        status=args.get("status"),
        type=args.get("type"),
    )
    pii = runtime().pii
    return render_template(
        "console/applications.html",
        items=[reading.masked_view(a, pii=pii) for a in rows],
        total=total,
        args=args,
        page_no=args["page"],
        pages=max(1, -(-total // PER_PAGE)),
        filter_args={k: v for k, v in request.args.items() if k != "page" and v},
    )


@blp.route("/applications/<int:application_id>")
@page(*READERS)
def application(application_id: int) -> Any:
    found = reading.access_application_by_id(db(), application_id, actor=actor())
    view = reading.masked_view(
        found, pii=runtime().pii, notices=messages.notices_for(db(), found.id)
    )
    return render_template(
        "console/application.html", app=view, can_handle=actor().role in HANDLERS
    )


_STEPS = {
    "accept": ApplicationStatus.ACCEPTED,
    "investigate": ApplicationStatus.INVESTIGATING,
    "decide": ApplicationStatus.DECIDED,
}


@blp.route(
    "/applications/<int:application_id>/<any(accept, investigate, decide):step>", methods=["POST"]
)
@page(*HANDLERS)
def handle_application(application_id: int, step: str) -> Any:
    """受理 / 调查核实 / 办结, through the API's own service."""
    if step == "decide":
        body = forms.parse(forms.AnswerForm(), request.form)
        decision = decisions.Decision(body["outcome"], body["reason"], body["amount"])
        decisions.decide_directly(db(), application_id, decision, actor=actor(), now=now())
    else:
        handling.handle(db(), application_id, _STEPS[step], actor=actor(), now=now())
    flash("已保存，申请人将收到通知", "success")
    return redirect(url_for("console.application", application_id=application_id), 303)


@blp.route("/applications/<int:application_id>/request-papers", methods=["POST"])
@page(*HANDLERS)
def request_papers(application_id: int) -> Any:
    """请补充材料: a timeline entry and a message to the filer, as the API's."""
    body = forms.parse(forms.PapersForm(), request.form)
    filing.request_papers(db(), application_id, body["what"], actor=actor(), now=now())
    flash("已请申请人补充材料，申请人将收到通知", "success")
    return redirect(url_for("console.application", application_id=application_id), 303)


@blp.route("/photos/<int:photo_id>")
@page(*READERS)
def photo(photo_id: int) -> Any:
    """A photo of an application: the thumbnail, or at full size (audited as `pii.viewed`)."""
    if request.args.get("size") == "thumb":
        found = photos.access_photo_by_id(db(), photo_id, actor=actor())
        return _send_photo(found, thumbnail=True)
    found = photos.open_full_photo(db(), photo_id, actor=actor(), now=now())
    return _send_photo(found, thumbnail=False)
