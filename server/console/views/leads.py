"""线索库: the queue (filters, keyset paging, bulk actions, export) and one lead in full."""

from __future__ import annotations

import uuid
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import Response, flash, g, redirect, render_template, request, url_for

from server.console import forms, present
from server.console.deps import actor, connection, db, now, runtime
from server.console.format import LEAD_STATUS_LABELS
from server.console.security import page, safe_next
from server.console.views import blp
from server.console.views.households import READERS as HOUSEHOLD_READERS
from server.errors import NotFound, ValidationFailed
from server.models import DismissalReason, Role
from server.services.applications import reading
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches import listing, transfers
from server.services.households import members as household_members
from server.services.leads import access, detail, life, merging, queue_export
from server.services.leads import queue as lead_queue
from server.services.leads.core import CATEGORIES
from server.services.places import areas
from server.services.reports.statistics import CHANNEL_LABELS

READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)
HANDLERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def read_only(view: Any) -> Any:
    """As the API's `read_only`: the page's statements run without a transaction."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.read_only = True
        return view(*args, **kwargs)

    return wrapper


@blp.route("/leads")
@read_only
@page(*READERS)
def queue() -> Any:
    """Most urgent first; filters as `GET /api/v1/leads`; 20 a page with a keyset cursor."""
    args = forms.parse(forms.QUEUE_ARGS, request.args)
    who = actor()
    filters = forms.queue_filter(args, me=who.user_id)
    result = lead_queue.list_queue(
        connection(), actor=who, filters=filters, cursor=args.get("cursor"), limit=20
    )
    total = None
    if "cursor" not in args:
        total = lead_queue.count_queue(connection(), actor=who, filters=filters)
    all_towns = areas.list_towns(connection())
    villages = areas.village_names(
        connection(), {i.village_id for i in result.items if i.village_id}
    )
    context = {
        "rows": present.queue_rows(result.items, {t.id: t.name for t in all_towns}, villages),
        "next_cursor": result.next_cursor,
        "total": total,
        "args": args,
        "queue_url": url_for("console.queue"),
        "filter_args": {k: v for k, v in request.args.items() if k != "cursor" and v},
        "can_bulk": who.role in HANDLERS,
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "queue-results":
        return render_template("console/_queue_results.html", **context)
    return render_template(
        "console/queue.html",
        status_choices=present.choices(LEAD_STATUS_LABELS, args.get("status")),
        channel_choices=present.choices(CHANNEL_LABELS, args.get("channel")),
        category_choices=present.choices(CATEGORIES, args.get("category")),
        town_choices=present.choices({t.code: t.name for t in all_towns}, args.get("town")),
        units=_units(all_towns) if who.role in HANDLERS else [],
        dismissal_reasons=life.DISMISSAL_LABELS,
        **context,
    )


@blp.route("/leads/export.xlsx")
@page(*READERS)
def export_queue() -> Response:
    """The filtered queue as a workbook, masked; the export is audited."""
    args = forms.parse(forms.QUEUE_ARGS, request.args)
    content, filename, _rows = queue_export.export_queue(
        db(), actor=actor(), filters=forms.queue_filter(args, me=actor().user_id), now=now()
    )
    response = Response(content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"leads.xlsx\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/leads/bulk", methods=["POST"])
@page(*HANDLERS)
def bulk() -> Any:
    """Act on the selected leads at once: all of them or none (one refusal rolls back all)."""
    body = forms.parse(forms.BulkForm(), request.form, lists=("lead_ids",))
    ids = list(dict.fromkeys(body["lead_ids"]))
    if body["action"] == "dispatch":
        if body["unit"] is None:
            raise ValidationFailed("请选择接收单位", errors={"unit": ["请选择接收单位"]})
        kind, code = body["unit"]
        calendar = WorkCalendar.load(db())
        for lead_id in ids:
            transfers.issue(
                db(),
                lead_id,
                unit_kind=kind,
                unit_code=code,
                instructions=body["instructions"] or "请核实该线索反映的困难情况并反馈",
                calendar=calendar,
                actor=actor(),
                now=now(),
            )
        flash(f"已将{len(ids)}条线索转办", "success")
    elif body["action"] == "claim":
        for lead_id in ids:
            life.claim_lead(db(), lead_id, actor=actor(), now=now())
        flash(f"已认领{len(ids)}条线索", "success")
    elif body["action"] == "dismiss":
        if body["reason"] is None:
            raise ValidationFailed("请选择排除原因", errors={"reason": ["请选择排除原因"]})
        for lead_id in ids:
            life.dismiss_lead(
                db(),
                lead_id,
                reason=DismissalReason(body["reason"]),
                note=body["note"],
                actor=actor(),
                now=now(),
            )
        flash(f"已排除{len(ids)}条线索", "success")
    return redirect(safe_next(request.form.get("back") or url_for("console.queue")), code=303)


def _units(towns: list[areas.AreaRef] | None = None) -> list[dict[str, str]]:
    """The unit picker: departments, then towns."""
    units = [
        {"value": f"department:{d.code}", "name": d.name, "group": "部门"}
        for d in areas.list_departments(connection())
    ]
    units += [
        {"value": f"town:{t.code}", "name": t.name, "group": "镇街"}
        for t in (towns if towns is not None else areas.list_towns(connection()))
    ]
    return units


# --- One lead ----------------------------------------------------------------------------


@blp.route("/leads/<int:lead_id>")
@page(*READERS)
def lead(lead_id: int) -> Any:
    return render_template("console/lead.html", **_lead_context(lead_id))


def _lead_context(lead_id: int, *, revealed: dict[str, Any] | None = None) -> dict[str, Any]:
    who = actor()
    session = db()
    found = access.access_lead_by_id(session, lead_id, actor=who)
    view = life.full_view(session, found, pii=runtime().pii, actor=who)
    calendar = WorkCalendar.load(session)
    today = now().date()
    slips = []
    if who.role is not Role.HELPER:
        rows, _total = listing.list_dispatches(
            session,
            listing.DispatchFilter(lead_id=found.id),
            calendar=calendar,
            actor=who,
            today=today,
            page=1,
            per_page=50,
        )
        slips = listing.dispatch_views(session, rows, calendar=calendar, today=today, actor=who)
    apps = _lead_applications(view, who)
    candidates = (
        merging.find_candidates(session, found, actor=who)
        if who.role in HANDLERS and found.is_open
        else []
    )
    can_issue = who.role in HANDLERS and found.status in transfers.ISSUABLE_LEAD_STATES
    can_triage = who.role in life.TRIAGERS
    return {
        "lead": view,
        "slips": slips,
        "applications": apps,
        "candidates": candidates,
        "can_issue": can_issue,
        "can_merge": who.role in HANDLERS,
        "can_reveal": who.role is Role.CENTER_STAFF,
        "can_triage": can_triage and found.status in life.TRIAGE_FROM,
        "can_assign": can_triage and found.is_open,
        "can_reopen": can_triage
        and view["reopen_until"] is not None
        and now() <= view["reopen_until"],
        "can_note": who.role in life.NOTE_WRITERS,
        "handlers": life.eligible_handlers(session, found) if can_triage else [],
        "dismissal_reasons": life.DISMISSAL_LABELS,
        "my_id": who.user_id,
        "household": household_members.lead_household(session, found, actor=who, pii=runtime().pii),
        "can_open_household": who.role in HOUSEHOLD_READERS,
        "revealed": revealed,
        "timeline": _timeline(view, slips, apps),
    }


def _lead_applications(view: dict[str, Any], who: Any) -> list[dict[str, Any]]:
    """The applications behind the lead's evidence that `who` may see."""
    found = []
    for e in view["evidence"]:
        if e["source_type"] == "application" and e["source_id"]:
            try:
                app = reading.access_application_by_id(db(), e["source_id"], actor=who)
            except NotFound:
                continue
            found.append(reading.masked_view(app, pii=runtime().pii))
    return found


def _timeline(
    view: dict[str, Any], slips: list[dict[str, Any]], apps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every event about the lead in time order: evidence, slips and their answers, merges,
    applications' steps."""
    events: list[dict[str, Any]] = []
    for e in view["evidence"]:
        events.append({"at": e["created_at"], "kind": "evidence", "item": e})
    for s in slips:
        events.append({"at": s["issued_at"], "kind": "slip_issued", "item": s})
        if s["signed_at"]:
            events.append({"at": s["signed_at"], "kind": "slip_signed", "item": s})
        if s["returned_at"]:
            events.append({"at": s["returned_at"], "kind": "slip_returned", "item": s})
        if s["answered_at"]:
            events.append({"at": s["answered_at"], "kind": "slip_answered", "item": s})
    for m in view["merges"]:
        events.append({"at": m["merged_at"], "kind": "merge", "item": m})
        if m["undone_at"]:
            events.append({"at": m["undone_at"], "kind": "unmerge", "item": m})
    for a in apps:
        for step in a["timeline"]:
            events.append({"at": step["at"], "kind": "application", "item": step, "app": a})
    for step in view["timeline"]:
        events.append({"at": step["at"], "kind": "life", "item": step})
    events.sort(key=lambda ev: ev["at"])
    return events


@blp.route("/leads/<int:lead_id>/reveal", methods=["POST"])
@page(Role.CENTER_STAFF)
def reveal(lead_id: int) -> Any:
    """显示完整: the whole ID and phone numbers, written to the audit log (`pii.viewed`) by the
    API's own service; never cached."""
    revealed = detail.reveal_personal_data(
        db(), lead_id, pii=runtime().pii, actor=actor(), now=now()
    )
    if request.headers.get("HX-Request"):
        body = render_template("console/_pii.html", lead_id=lead_id, revealed=revealed)
    else:
        body = render_template("console/lead.html", **_lead_context(lead_id, revealed=revealed))
    response = Response(body)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- Slips from a lead -------------------------------------------------------------------


@blp.route("/leads/<int:lead_id>/dispatch", methods=["GET", "POST"])
@page(*HANDLERS)
def issue_dispatch(lead_id: int) -> Any:
    """Issue a transfer slip: the unit picker, the instructions, and the due date the slip will
    carry, shown before confirming."""
    found = access.access_lead_by_id(db(), lead_id, actor=actor())
    calendar = WorkCalendar.load(db())
    due = calendar.due_date(now(), transfers.DUE_WORKING_DAYS)
    if request.method == "POST":
        body = forms.parse(forms.DispatchForm(), request.form)
        kind, code = body["unit"]
        slip = transfers.issue(
            db(),
            found.id,
            unit_kind=kind,
            unit_code=code,
            instructions=body["instructions"],
            calendar=calendar,
            actor=actor(),
            now=now(),
            idempotency_key=body["idempotency_key"],
        )
        flash(f"转办单 {slip.number} 已签发", "success")
        return redirect(url_for("console.dispatch", dispatch_id=slip.id), code=303)
    return render_template(
        "console/dispatch_new.html",
        lead=detail.lead_view(db(), found, pii=runtime().pii),
        units=_units(),
        due=due,
        working_days=transfers.DUE_WORKING_DAYS,
        idempotency_key=uuid.uuid4().hex,
        preset=request.args.get("unit", ""),
    )


# --- Merge, undo, keep apart -------------------------------------------------------------


@blp.route("/leads/<int:lead_id>/merge", methods=["POST"])
@page(*HANDLERS)
def merge(lead_id: int) -> Any:
    body = forms.parse(forms.MergeForm(), request.form)
    target = merging.merge_leads(
        db(), lead_id, into_id=body["into_lead_id"], actor=actor(), now=now()
    )
    flash(f"已合并到线索 #{target.id}；如有误可在本页撤销合并", "success")
    return redirect(url_for("console.lead", lead_id=lead_id), 303)


@blp.route("/leads/<int:lead_id>/unmerge", methods=["POST"])
@page(*HANDLERS)
def unmerge(lead_id: int) -> Any:
    source = merging.unmerge_lead(db(), lead_id, actor=actor(), now=now())
    flash(f"已撤销合并，线索 #{source.id} 已恢复", "success")
    return redirect(url_for("console.lead", lead_id=source.id), 303)


@blp.route("/leads/<int:lead_id>/keep-apart", methods=["POST"])
@page(*HANDLERS)
def keep_apart(lead_id: int) -> Any:
    body = forms.parse(forms.KeepApartForm(), request.form)
    merging.keep_apart(
        db(),
        lead_id,
        other_id=body["other_lead_id"],
        reason=body["reason"],
        actor=actor(),
        now=now(),
    )
    flash("已标记为不同的人，不再作为疑似重复提示", "success")
    return redirect(
        safe_next(request.form.get("back") or url_for("console.lead", lead_id=lead_id)), 303
    )
