"""主动告知: after a decision, a person without WeChat is told by their town (or helper).

The policy asks the center to tell every person what became of their lead. A resident who filed
in the mini-program hears of each decision there; anyone else (found through a feed, a hotline,
the window, or filed for by a helper) gets an inform task on the town's worklist, due 3 working
days after the decision, done when staff record how, when and by whom the person was told.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import Conflict, NotFound, ValidationFailed
from server.models import (
    Application,
    Channel,
    InformMethod,
    InformTask,
    Lead,
    Role,
    Town,
    User,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record

#: Working days the town has to tell the person (the day of the decision not counted).
INFORM_WORKING_DAYS = 3
METHOD_LABELS: dict[InformMethod, str] = {
    InformMethod.PHONE: "电话告知",
    InformMethod.VISIT: "上门告知",
    InformMethod.LETTER: "书面告知",
}


def _reach(db: Session, lead: Lead) -> tuple[bool, int | None]:
    """(the person hears through WeChat themself, the helper who filed for them if any)."""
    rows = db.execute(
        select(Application.channel, Application.filed_by_id, User.openid)
        .join(User, User.id == Application.filed_by_id)
        .where(Application.lead_id == lead.id)
        .order_by(Application.id)
    ).all()
    if any(channel is Channel.MINIPROGRAM and openid for channel, _, openid in rows):
        return True, None
    helper = next((filer for channel, filer, _ in rows if channel is Channel.ON_BEHALF), None)
    return False, helper


def open_inform_task(
    db: Session, lead: Lead, *, source_key: str, what: str, now: datetime
) -> InformTask | None:
    """After a decision on `lead`: the task of telling the person, unless they hear through
    WeChat. One task per decision (`source_key`); a repeat returns None."""
    reachable, helper_id = _reach(db, lead)
    if reachable:
        return None
    if db.scalar(select(InformTask.id).where(InformTask.source_key == source_key)):
        return None
    due = WorkCalendar.load(db).add_working_days(now.astimezone(TZ).date(), INFORM_WORKING_DAYS)
    task = InformTask(
        lead_id=lead.id,
        source_key=source_key,
        town_id=lead.town_id,
        village_id=lead.village_id,
        helper_id=helper_id,
        what=what,
        created_at=now,
        due_date=due.value,
    )
    db.add(task)
    db.flush()
    return task


def _visible(query: Select, actor: Actor) -> Select:
    """Center staff and leaders see every task; town staff their town's; a helper their own."""
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF:
        return query.where(InformTask.town_id == actor.town_id)
    if actor.role is Role.HELPER:
        return query.where(InformTask.helper_id == actor.user_id)
    return query.where(InformTask.id.is_(None))


def access_task_by_id(db: Session, task_id: int, *, actor: Actor) -> InformTask:
    if not 0 < task_id < 2**63:
        raise NotFound("未找到该告知任务")
    task = db.scalar(_visible(select(InformTask), actor).where(InformTask.id == task_id))
    if task is None:
        raise NotFound("未找到该告知任务")
    return task


def list_tasks(
    db: Session, *, actor: Actor, today: date, state: str | None, page: int, per_page: int
) -> tuple[list[InformTask], int]:
    """The worklist: tasks `actor` may see, oldest due first (done ones newest first).
    `state`: "open" (not yet told), "overdue" (not told, past its due date) or "done"."""
    query = _visible(select(InformTask), actor)
    if state == "open":
        query = query.where(InformTask.informed_at.is_(None))
    elif state == "overdue":
        query = query.where(InformTask.informed_at.is_(None), InformTask.due_date < today)
    elif state == "done":
        query = query.where(InformTask.informed_at.is_not(None))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        (InformTask.recorded_at.desc(), InformTask.id.desc())
        if state == "done"
        else (InformTask.due_date, InformTask.id)
    )
    rows = db.scalars(query.order_by(*order).limit(per_page).offset((page - 1) * per_page))
    return list(rows), total


def record_informed(
    db: Session,
    task_id: int,
    *,
    method: InformMethod,
    informed_at: datetime,
    note: str | None,
    actor: Actor,
    now: datetime,
) -> InformTask:
    """Record that the person was told: how, when (not in the future, not before the
    decision) and by whom (the actor). Once only; a second record is 409."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF, Role.HELPER)
    task = access_task_by_id(db, task_id, actor=actor)
    if task.informed_at is not None:
        raise Conflict("该告知任务已完成", code="already_informed")
    if informed_at > now or informed_at < task.created_at:
        message = "告知时间应在作出决定之后、当前时间之前"
        raise ValidationFailed(message, errors={"informed_at": [message]})
    task.method = method
    task.informed_at = informed_at
    task.informed_by_id = actor.user_id
    task.note = (note or "").strip() or None
    task.recorded_at = now
    db.flush()
    record(
        db,
        actor=actor,
        action="lead.informed",
        target_type="lead",
        target_id=task.lead_id,
        now=now,
        detail={"task_id": task.id, "method": method.value, "on_time": on_time(task)},
    )
    return task


def on_time(task: InformTask) -> bool | None:
    """Whether the person was told by the end of the due date; None while not told."""
    if task.informed_at is None:
        return None
    return task.informed_at.astimezone(TZ).date() <= task.due_date


def task_view(db: Session, task: InformTask, *, today: date) -> dict[str, Any]:
    lead = db.get(Lead, task.lead_id)
    town = db.get(Town, task.town_id) if task.town_id else None
    informer = db.get(User, task.informed_by_id) if task.informed_by_id else None
    return {
        "id": task.id,
        "lead_id": task.lead_id,
        "name": lead.name if lead else "",
        "town": town.name if town else None,
        "helper_id": task.helper_id,
        "what": task.what,
        "created_at": task.created_at,
        "due_date": task.due_date,
        "overdue": task.informed_at is None and task.due_date < today,
        "method": task.method.value if task.method else None,
        "method_label": METHOD_LABELS[task.method] if task.method else None,
        "informed_at": task.informed_at,
        "informed_by": (informer.display_name or informer.username) if informer else None,
        "on_time": on_time(task),
        "note": task.note,
    }


def monthly_figures(
    db: Session, *, start: datetime, end: datetime, town_id: int | None
) -> dict[str, int]:
    """Of the inform tasks due in [start, end): how many were told on time, late, or not yet,
    and how many leads were told on time (each of their tasks due that month)."""
    due_in = [InformTask.due_date >= start.date(), InformTask.due_date < end.date()]
    if town_id is not None:
        due_in.append(InformTask.town_id == town_id)
    rows = db.scalars(select(InformTask).where(*due_in)).all()
    informed_on_time = sum(1 for t in rows if on_time(t))
    late = sum(1 for t in rows if on_time(t) is False)
    leads = {t.lead_id for t in rows}
    late_leads = {t.lead_id for t in rows if not on_time(t)}
    return {
        "due": len(rows),
        "leads_informed_on_time": len(leads - late_leads),
        "informed_on_time": informed_on_time,
        "informed_late": late,
        "not_informed": len(rows) - informed_on_time - late,
    }
