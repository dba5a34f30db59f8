"""转办单: the slip list with deadline badges, one slip with its history, the printable slip,
and a receiving unit's inbox (sign, return, answer)."""

from __future__ import annotations

import io
from typing import Any

from flask import Response, flash, redirect, render_template, request, send_file, url_for
from werkzeug.datastructures import MultiDict

from server.console import forms
from server.console.deps import actor, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.models import DispatchState, Role, UnitKind
from server.services.applications import photos
from server.services.applications.decisions import Decision
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches import access, listing, printing, transfers, worklist

READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)
RECEIVERS = (Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)
PER_PAGE = 20


def _view(slip: Any, *, alerts: bool = False) -> dict[str, Any]:
    return listing.dispatch_view(
        db(),
        slip,
        calendar=WorkCalendar.load(db()),
        today=now().date(),
        actor=actor(),
        alerts=alerts,
    )


@blp.route("/dispatches", endpoint="dispatches")
@page(*READERS)
def dispatches_list() -> Any:
    args = forms.parse(forms.DispatchListArgs(), request.args)
    calendar = WorkCalendar.load(db())
    rows, total = listing.list_dispatches(
        db(),
        listing.DispatchFilter(
            state=DispatchState(args["state"]) if "state" in args else None,
            deadline=args.get("deadline"),
            lead_id=args.get("lead_id"),
            unit_kind=UnitKind(args["unit_kind"]) if "unit_kind" in args else None,
            unit_code=args.get("unit_code"),
        ),
        calendar=calendar,
        actor=actor(),
        today=now().date(),
        page=args["page"],
        per_page=PER_PAGE,
    )
    items = listing.dispatch_views(db(), rows, calendar=calendar, today=now().date(), actor=actor())
    pages = max(1, -(-total // PER_PAGE))
    filter_args = {k: v for k, v in request.args.items() if k != "page" and v}
    template = (
        "console/_dispatch_results.html"
        if request.headers.get("HX-Target") == "dispatch-results"
        else "console/dispatches.html"
    )
    return render_template(
        template,
        items=items,
        total=total,
        args=args,
        page_no=args["page"],
        pages=pages,
        filter_args=filter_args,
        inbox=worklist.unit_of(db(), actor()),
    )


@blp.route("/inbox")
@page(*RECEIVERS)
def inbox() -> Any:
    """The receiving unit's slips: the list filtered to slips sent to my unit."""
    unit = worklist.unit_of(db(), actor())
    if unit is None:
        return redirect(url_for("console.dispatches"))
    return redirect(url_for("console.dispatches", unit_kind=unit[0].value, unit_code=unit[1]))


@blp.route("/dispatches/<int:dispatch_id>")
@page(*READERS)
def dispatch(dispatch_id: int) -> Any:
    slip = access.access_dispatch_by_id(db(), dispatch_id, actor=actor())
    view = _view(slip, alerts=True)
    return render_template("console/dispatch.html", slip=view, history=_history(view))


def _history(slip: dict[str, Any]) -> list[dict[str, Any]]:
    events = [{"at": slip["issued_at"], "text": f"签发，转{slip['unit']['name']}办理"}]
    if slip["signed_at"]:
        events.append({"at": slip["signed_at"], "text": "接收单位签收"})
    if slip["returned_at"]:
        events.append({"at": slip["returned_at"], "text": f"退回：{slip['return_reason']}"})
    if slip["answered_at"]:
        events.append({"at": slip["answered_at"], "text": f"反馈：{slip['outcome_label']}"})
    for alert in slip.get("alerts", []):
        events.append({"at": alert["created_at"], "text": alert["message"]})
    events.sort(key=lambda e: e["at"])
    return events


@blp.route("/dispatches/<int:dispatch_id>/slip")
@page(*READERS)
def print_slip(dispatch_id: int) -> Any:
    """The printable A4 slip, whole ID and phone numbers included: each print is audited by
    the service (`pii.viewed`, purpose print_slip), as the API's slip.html."""
    slip = access.access_dispatch_by_id(db(), dispatch_id, actor=actor())
    context = printing.slip_context(db(), slip, pii=runtime().pii, actor=actor(), now=now())
    response = Response(render_template("console/slip_print.html", slip=context, id=slip.id))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/dispatches/<int:dispatch_id>/sign", methods=["POST"])
@page(*RECEIVERS)
def sign(dispatch_id: int) -> Any:
    slip = transfers.sign(db(), dispatch_id, actor=actor(), now=now())
    flash(f"已签收 {slip.number}", "success")
    return redirect(url_for("console.dispatch", dispatch_id=slip.id), 303)


@blp.route("/dispatches/<int:dispatch_id>/return", methods=["POST"])
@page(*RECEIVERS)
def return_slip(dispatch_id: int) -> Any:
    body = forms.parse(forms.ReturnForm(), request.form)
    slip = transfers.return_to_center(
        db(), dispatch_id, reason=body["reason"], actor=actor(), now=now()
    )
    flash(f"已退回 {slip.number}", "success")
    return redirect(url_for("console.dispatch", dispatch_id=slip.id), 303)


@blp.route("/dispatches/<int:dispatch_id>/feedback", methods=["POST"])
@page(*RECEIVERS)
def feedback(dispatch_id: int) -> Any:
    """反馈: findings, outcome, reason, amount, and a photo of the decision (optional)."""
    body = forms.parse(forms.FeedbackForm(), request.form)
    photo_ids: tuple[int, ...] = ()
    upload = request.files.get("photo")
    if upload is not None and upload.filename:
        slip = access.access_dispatch_by_id(db(), dispatch_id, actor=actor())
        transfers.require_can_attach(slip, actor=actor())
        config = runtime().config
        photo = photos.upload_photo(
            db(),
            content=upload.read(config.max_upload_bytes + 1),
            storage=runtime().storage,
            max_bytes=config.max_upload_bytes,
            actor=actor(),
            now=now(),
        )
        photo_ids = (photo.id,)
    slip = transfers.give_feedback(
        db(),
        dispatch_id,
        transfers.Feedback(
            findings=body["findings"],
            outcome=body["outcome"],
            reason=body["reason"],
            amount=body["amount"],
            photo_ids=photo_ids,
            answers=_answers(request.form),
        ),
        actor=actor(),
        now=now(),
    )
    flash(f"已反馈 {slip.number}", "success")
    return redirect(url_for("console.dispatch", dispatch_id=slip.id), 303)


def _answers(form: Any) -> tuple[transfers.Answer, ...] | None:
    """Each undecided application's decision, from its own fields; one left at 本次未调查 stays
    undecided. None when the slip's lead had no undecided application to list."""
    listed = [int(i) for i in form.getlist("application_ids") if i.isdigit()]
    if not listed:
        return None
    answers = []
    for application_id in listed:
        if not form.get(f"outcome-{application_id}"):
            continue
        fields = {
            key: form.get(f"{key}-{application_id}", "") for key in ("outcome", "reason", "amount")
        }
        body = forms.parse(forms.AnswerForm(), MultiDict({k: v for k, v in fields.items() if v}))
        decision = Decision(body["outcome"], body["reason"], body["amount"])
        answers.append(transfers.Answer(application_id, decision))
    return tuple(answers)


@blp.route("/dispatches/<int:dispatch_id>/attachments/<int:photo_id>")
@page(*READERS)
def attachment(dispatch_id: int, photo_id: int) -> Any:
    photo = transfers.access_attachment(db(), dispatch_id, photo_id, actor=actor())
    return _send_photo(photo, thumbnail=request.args.get("size") == "thumb")


def _send_photo(photo: Any, *, thumbnail: bool) -> Response:
    data = photos.read_photo(runtime().storage, photo, thumbnail=thumbnail)
    etag = f"{photo.sha256}-t" if thumbnail else photo.sha256
    response = send_file(io.BytesIO(data), mimetype="image/jpeg", max_age=0, etag=etag)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
