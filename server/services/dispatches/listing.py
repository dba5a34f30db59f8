"""Reading slips: their deadline state in working days, the filtered lists, and the view the
API and console answer with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import ValidationFailed
from server.models import (
    OPEN_DISPATCH_STATES,
    Application,
    Department,
    Dispatch,
    DispatchAlert,
    DispatchState,
    Lead,
    Town,
    UnitKind,
)
from server.services.applications.decisions import (
    decided_text,
)
from server.services.applications.handling import STATUS_LABELS
from server.services.applications.reading import (
    application_number,
    lead_applications,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches.access import (
    STATE_LABELS,
    Unit,
    is_receiver,
    resolve_unit,
    scope_dispatches,
    unit_name,
)
from server.services.kernel.access import Actor
from server.services.kernel.outcomes import TYPE_LABELS, outcome_text

DEADLINE_LABELS: dict[str, str] = {
    "on_time": "正常办理",
    "due_soon": "即将到期",
    "overdue": "已超期",
    "answered_on_time": "按时反馈",
    "answered_late": "超期反馈",
    "returned": "已退回",
}


@dataclass(frozen=True)
class Deadline:
    """Where an open slip stands against its due date, on `today`."""

    #: on_time / due_soon / overdue, or answered_on_time / answered_late / returned.
    state: str
    #: Working days left after today up to the due date (0 on the due date itself).
    working_days_left: int | None
    #: Working days after the due date up to today, at least 1 once the due date has passed.
    overdue_days: int
    certain: bool


def deadline(dispatch: Dispatch, calendar: WorkCalendar, today: date) -> Deadline:
    """The deadline state of a slip on `today`.

    * on time: two working days or more left;
    * due soon: one working day left, or the due date is today;
    * overdue by N working days: the due date has passed; N counts the working days after it up
      to today, and is at least 1 (a slip due on Friday is 1 day late on Saturday and Monday).
    """
    if dispatch.state is DispatchState.RETURNED:
        return Deadline("returned", None, 0, dispatch.due_certain)
    if dispatch.state is DispatchState.ANSWERED:
        state = "answered_on_time" if dispatch.answered_on_time else "answered_late"
        return Deadline(state, None, 0, dispatch.due_certain)
    if today > dispatch.due_date:
        late = calendar.working_days_between(dispatch.due_date, today)
        return Deadline("overdue", None, max(1, late.days), dispatch.due_certain and late.certain)
    left = calendar.working_days_between(today, dispatch.due_date)
    state = "due_soon" if left.days <= 1 else "on_time"
    return Deadline(state, left.days, 0, dispatch.due_certain and left.certain)


@dataclass(frozen=True)
class DispatchFilter:
    state: DispatchState | None = None
    #: on_time / due_soon / overdue (open slips only).
    deadline: str | None = None
    lead_id: int | None = None
    unit_kind: UnitKind | None = None
    unit_code: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None


def list_dispatches(
    db: Session,
    filters: DispatchFilter,
    *,
    calendar: WorkCalendar,
    actor: Actor,
    today: date,
    page: int,
    per_page: int,
) -> tuple[list[Dispatch], int]:
    """Slips `actor` may see, oldest due date first among open ones, then newest."""
    query = scope_dispatches(select(Dispatch), actor)
    query = _filtered(db, query, filters, calendar=calendar, today=today)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(
            Dispatch.state.in_(list(OPEN_DISPATCH_STATES)).desc(),
            Dispatch.due_date,
            Dispatch.id.desc(),
        )
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def _filtered(
    db: Session, query: Select, f: DispatchFilter, *, calendar: WorkCalendar, today: date
) -> Select:
    if f.state is not None:
        query = query.where(Dispatch.state == f.state)
    if f.lead_id is not None:
        query = query.where(Dispatch.lead_id == f.lead_id)
    if f.unit_kind is not None:
        query = query.where(Dispatch.unit_kind == f.unit_kind)
        if f.unit_code:
            unit = _unit_or_none(db, f.unit_kind, f.unit_code)
            if unit is None:
                return query.where(false())
            query = query.where(
                Dispatch.department_id == unit.department_id
                if unit.kind is UnitKind.DEPARTMENT
                else Dispatch.town_id == unit.town_id
            )
    if f.issued_from is not None:
        query = query.where(Dispatch.issued_at >= _day_start(f.issued_from))
    if f.issued_to is not None:
        query = query.where(Dispatch.issued_at < _day_start(f.issued_to, plus_days=1))
    if f.deadline is not None:
        # "Due soon" ends with the next working day after today (due dates are working days).
        soon_until = calendar.add_working_days(today, 1).value
        query = query.where(Dispatch.state.in_(list(OPEN_DISPATCH_STATES)))
        if f.deadline == "overdue":
            query = query.where(Dispatch.due_date < today)
        elif f.deadline == "due_soon":
            query = query.where(Dispatch.due_date >= today, Dispatch.due_date <= soon_until)
        else:
            query = query.where(Dispatch.due_date > soon_until)
    return query


def _unit_or_none(db: Session, kind: UnitKind, code: str) -> Unit | None:
    try:
        return resolve_unit(db, kind, code)
    except ValidationFailed:
        return None


def _day_start(day: date, *, plus_days: int = 0) -> datetime:
    from datetime import time, timedelta

    return datetime.combine(day + timedelta(days=plus_days), time(), TZ)


@dataclass(frozen=True)
class _PageReads:
    leads: dict[int, Lead]
    #: Each lead's applications, oldest first.
    applications: dict[int, list[Application]]
    #: The receiving towns and departments, held so the session's identity map answers
    #: `db.get` for them (it keeps only objects something else refers to).
    units: list[Town | Department]


def dispatch_views(
    db: Session, dispatches: list[Dispatch], *, calendar: WorkCalendar, today: date, actor: Actor
) -> list[dict[str, Any]]:
    """A page of slips as `dispatch_view` shows each, their leads, applications and receiving
    units read in four statements for the page instead of four a row (a 20-slip page: 80)."""
    lead_ids = {d.lead_id for d in dispatches}
    town_ids = {d.town_id for d in dispatches if d.town_id is not None}
    department_ids = {d.department_id for d in dispatches if d.department_id is not None}
    page = _PageReads(leads={}, applications={}, units=[])
    if town_ids:
        page.units.extend(db.scalars(select(Town).where(Town.id.in_(town_ids))))
    if department_ids:
        page.units.extend(db.scalars(select(Department).where(Department.id.in_(department_ids))))
    if lead_ids:
        page.leads.update(
            (lead.id, lead) for lead in db.scalars(select(Lead).where(Lead.id.in_(lead_ids)))
        )
        for application in db.scalars(
            select(Application).where(Application.lead_id.in_(lead_ids)).order_by(Application.id)
        ):
            page.applications.setdefault(application.lead_id, []).append(application)
    return [
        dispatch_view(db, d, calendar=calendar, today=today, actor=actor, page=page)
        for d in dispatches
    ]


def dispatch_view(
    db: Session,
    dispatch: Dispatch,
    *,
    calendar: WorkCalendar,
    today: date,
    actor: Actor,
    alerts: bool = False,
    page: _PageReads | None = None,
) -> dict[str, Any]:
    """A slip as staff see it: the lead's name (no ID or phone), unit, deadline, feedback.
    `page` holds what `dispatch_views` read for a whole page at once."""
    lead = page.leads.get(dispatch.lead_id) if page else db.get(Lead, dispatch.lead_id)
    applications = (
        page.applications.get(dispatch.lead_id, [])
        if page
        else lead_applications(db, dispatch.lead_id)
    )
    state = deadline(dispatch, calendar, today)
    view: dict[str, Any] = {
        "id": dispatch.id,
        "number": dispatch.number,
        "lead_id": dispatch.lead_id,
        "lead_name": lead.name if lead else "",
        "unit": {
            "kind": dispatch.unit_kind.value,
            "code": _unit_code(db, dispatch),
            "name": unit_name(db, dispatch),
        },
        "instructions": dispatch.instructions,
        "state": dispatch.state.value,
        "state_label": STATE_LABELS[dispatch.state],
        "due_date": dispatch.due_date,
        "due_date_certain": dispatch.due_certain,
        "deadline": {
            "state": state.state,
            "label": _deadline_label(state),
            "working_days_left": state.working_days_left,
            "overdue_days": state.overdue_days,
            "certain": state.certain,
        },
        "issued_at": dispatch.issued_at,
        "signed_at": dispatch.signed_at,
        "returned_at": dispatch.returned_at,
        "return_reason": dispatch.return_reason,
        "answered_at": dispatch.answered_at,
        "answered_on_time": dispatch.answered_on_time,
        "findings": dispatch.findings,
        "outcome": dispatch.outcome,
        "outcome_label": (
            outcome_text(
                dispatch.outcome,
                dispatch.outcome_reason,
                f"{dispatch.amount.normalize():f}" if dispatch.amount is not None else None,
            )
            if dispatch.outcome
            else None
        ),
        "outcome_reason": dispatch.outcome_reason,
        "amount": dispatch.amount,
        "photo_ids": list(dispatch.photo_ids),
        "escalation_level": dispatch.escalation_level,
        "can_act": is_receiver(dispatch, actor),
        "applications": [_slip_application(a, dispatch) for a in applications],
    }
    if alerts:
        view["alerts"] = [
            {
                "kind": a.kind.value,
                "recipient": a.recipient,
                "message": a.message,
                "overdue_days": a.overdue_days,
                "created_at": a.created_at,
            }
            for a in db.scalars(
                select(DispatchAlert)
                .where(DispatchAlert.dispatch_id == dispatch.id)
                .order_by(DispatchAlert.id)
            )
        ]
    return view


def _slip_application(application: Application, dispatch: Dispatch) -> dict[str, Any]:
    return {
        "id": application.id,
        "number": application_number(application),
        "type": application.type.value,
        "type_label": TYPE_LABELS[application.type],
        "status": application.status.value,
        "status_label": STATUS_LABELS[application.status],
        "outcome": application.outcome,
        "outcome_label": decided_text(application) if application.outcome else None,
        "amount": application.amount,
        "decided_by_this_slip": application.decision_dispatch_id == dispatch.id,
    }


def _deadline_label(state: Deadline) -> str:
    if state.state == "overdue":
        return f"已超期{state.overdue_days}个工作日"
    if state.state == "due_soon":
        return "今日到期" if state.working_days_left == 0 else "即将到期（剩1个工作日）"
    if state.state == "on_time":
        return f"正常办理（剩{state.working_days_left}个工作日）"
    return DEADLINE_LABELS[state.state]


def _unit_code(db: Session, dispatch: Dispatch) -> str:
    if dispatch.unit_kind is UnitKind.DEPARTMENT:
        dept = db.get(Department, dispatch.department_id)
        return dept.code if dept else ""
    town = db.get(Town, dispatch.town_id)
    return town.code if town else ""
