"""Deadlines and supervision of transfer slips (督办): remind, mark overdue, escalate, notify.

`check_deadlines(db, calendar, now)` is run by `e-rescue check-deadlines` (cron) or by the worker
(job kind `supervision.check_deadlines`, which queues its own next run). On each open slip:

* due soon (one working day left, or due today): remind the receiving unit's staff, once;
* overdue (the due date has passed): mark it, once, and record it in the unit's supervision
  notice (通报) of this month;
* still overdue after ESCALATE_HEAD_AFTER working days: escalate to the unit's head, once;
  after ESCALATE_GROUP_AFTER working days: to the leading group (领导小组), once.

Every reminder and escalation is a DispatchAlert row, unique per slip and kind, and every notice
is unique per unit and month and lists each slip once: running the check twice (or on two
workers at once) changes nothing the second time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.clock import TZ
from server.db import savepoint
from server.models import (
    OPEN_DISPATCH_STATES,
    AlertKind,
    Department,
    Dispatch,
    DispatchAlert,
    InboxMessage,
    Role,
    SupervisionNotice,
    Town,
    UnitKind,
    User,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches.access import unit_name, unit_staff_ids
from server.services.dispatches.listing import deadline
from server.services.kernel import jobs, workbooks
from server.services.kernel.access import SYSTEM, Actor, require_role
from server.services.kernel.audit import record

#: Working days overdue after which a slip is escalated to the receiving unit's head.
ESCALATE_HEAD_AFTER = 2
#: Working days overdue after which it goes to the district's leading group (领导小组).
ESCALATE_GROUP_AFTER = 5
#: Job kind the worker runs (when: server/worker/schedule.py).
JOB_KIND = "supervision.check_deadlines"

ALERT_LABELS: dict[AlertKind, str] = {
    AlertKind.REMINDER: "到期提醒",
    AlertKind.OVERDUE: "超期督办",
    AlertKind.ESCALATE_HEAD: "提级督办（单位负责人）",
    AlertKind.ESCALATE_GROUP: "提级督办（领导小组）",
}


@dataclass
class CheckResult:
    checked: int = 0
    reminded: int = 0
    marked_overdue: int = 0
    escalated_head: int = 0
    escalated_group: int = 0
    notices_created: int = 0
    notices_updated: int = 0
    #: Slips skipped because someone changed them while the check ran (next run picks them up).
    skipped: int = 0
    overdue: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "reminded": self.reminded,
            "marked_overdue": self.marked_overdue,
            "escalated_head": self.escalated_head,
            "escalated_group": self.escalated_group,
            "notices_created": self.notices_created,
            "notices_updated": self.notices_updated,
            "skipped": self.skipped,
        }


def check_deadlines(db: Session, calendar: WorkCalendar, now: datetime) -> CheckResult:
    """Remind, mark, escalate and record notices for every open slip; idempotent."""
    now = now.astimezone(TZ)
    today = now.date()
    soon_until = calendar.add_working_days(today, 1).value
    result = CheckResult()
    slips = db.scalars(
        select(Dispatch)
        .where(
            Dispatch.state.in_(list(OPEN_DISPATCH_STATES)),
            Dispatch.due_date <= soon_until,
        )
        .order_by(Dispatch.due_date, Dispatch.id)
    ).all()
    for dispatch in slips:
        result.checked += 1
        try:
            with savepoint(db):
                _check_one(db, dispatch, calendar=calendar, now=now, result=result)
        except (StaleDataError, IntegrityError):
            # A unit answered the slip, or another run recorded the same alert, meanwhile.
            result.skipped += 1
            db.expire(dispatch)
    db.flush()
    return result


def _check_one(
    db: Session, dispatch: Dispatch, *, calendar: WorkCalendar, now: datetime, result: CheckResult
) -> None:
    state = deadline(dispatch, calendar, now.date())
    unit = unit_name(db, dispatch)
    if state.state == "due_soon":
        when = "今日" if state.working_days_left == 0 else f"{dispatch.due_date:%m月%d日}"
        message = f"转办单{dispatch.number}将于{when}到期，请及时调查核实并反馈。"
        if _alert(db, dispatch, AlertKind.REMINDER, f"{unit}经办人员", message, 0, now=now):
            _inbox(db, dispatch, AlertKind.REMINDER, unit_staff_ids(db, dispatch), message, now)
            result.reminded += 1
        return
    if state.state != "overdue":
        return
    days = state.overdue_days
    changed = False
    if dispatch.overdue_at is None:
        dispatch.overdue_at = now
        changed = True
        due = f"{dispatch.due_date:%Y年%m月%d日}"
        message = f"转办单{dispatch.number}已超过办理期限（{due}），请立即反馈。"
        if _alert(db, dispatch, AlertKind.OVERDUE, f"{unit}经办人员", message, days, now=now):
            _inbox(db, dispatch, AlertKind.OVERDUE, unit_staff_ids(db, dispatch), message, now)
        result.marked_overdue += 1
        result.overdue.append(dispatch.number)
    if dispatch.overdue_days != days:
        dispatch.overdue_days = days
        changed = True
    if days >= ESCALATE_HEAD_AFTER and dispatch.escalation_level < 1:
        dispatch.escalation_level = 1
        changed = True
        message = f"转办单{dispatch.number}已超期{days}个工作日，提请{unit}主要负责人督促办理。"
        if _alert(
            db, dispatch, AlertKind.ESCALATE_HEAD, f"{unit}主要负责人", message, days, now=now
        ):
            recipients = unit_staff_ids(db, dispatch) + _role_ids(db, Role.CENTER_STAFF)
            _inbox(db, dispatch, AlertKind.ESCALATE_HEAD, recipients, message, now)
        result.escalated_head += 1
    if days >= ESCALATE_GROUP_AFTER and dispatch.escalation_level < 2:
        dispatch.escalation_level = 2
        changed = True
        message = f"{unit}办理的转办单{dispatch.number}已超期{days}个工作日，报领导小组督办。"
        if _alert(
            db, dispatch, AlertKind.ESCALATE_GROUP, "社会救助领导小组", message, days, now=now
        ):
            recipients = _role_ids(db, Role.LEADER) + _role_ids(db, Role.CENTER_STAFF)
            _inbox(db, dispatch, AlertKind.ESCALATE_GROUP, recipients, message, now)
        result.escalated_group += 1
    if changed:
        dispatch.updated_at = now
        db.flush()
    _note(db, dispatch, days=days, now=now, result=result)


def _alert(
    db: Session,
    dispatch: Dispatch,
    kind: AlertKind,
    recipient: str,
    message: str,
    overdue_days: int,
    *,
    now: datetime,
) -> bool:
    """Record one alert of `kind` for the slip; False when it was recorded before."""
    exists = db.scalar(
        select(DispatchAlert.id).where(
            DispatchAlert.dispatch_id == dispatch.id, DispatchAlert.kind == kind
        )
    )
    if exists is not None:
        return False
    db.add(
        DispatchAlert(
            dispatch_id=dispatch.id,
            kind=kind,
            recipient=recipient,
            message=message,
            overdue_days=overdue_days,
            created_at=now,
        )
    )
    db.flush()
    record(
        db,
        actor=SYSTEM,
        action=f"dispatch.{kind.value}",
        target_type="dispatch",
        target_id=dispatch.id,
        now=now,
        detail={"recipient": recipient, "overdue_days": overdue_days},
    )
    return True


def _inbox(
    db: Session,
    dispatch: Dispatch,
    kind: AlertKind,
    user_ids: list[int],
    message: str,
    now: datetime,
) -> None:
    """The alert in each recipient's in-app inbox (GET /api/v1/messages)."""
    for user_id in dict.fromkeys(user_ids):
        db.add(
            InboxMessage(
                dedup_key=f"dispatch:{dispatch.id}:{kind.value}:{user_id}",
                user_id=user_id,
                title=f"{ALERT_LABELS[kind]}：{dispatch.number}",
                body=message,
                created_at=now,
            )
        )
    db.flush()


def _role_ids(db: Session, role: Role) -> list[int]:
    return list(
        db.scalars(
            select(User.id).where(User.role == role, User.is_active.is_(True)).order_by(User.id)
        )
    )


def unit_key(dispatch: Dispatch) -> str:
    unit_id = (
        dispatch.department_id if dispatch.unit_kind is UnitKind.DEPARTMENT else dispatch.town_id
    )
    return f"{dispatch.unit_kind.value}:{unit_id}"


def _note(
    db: Session, dispatch: Dispatch, *, days: int, now: datetime, result: CheckResult
) -> None:
    """Put the slip in its unit's notice of this month (once) and keep the worst delay."""
    month = f"{now:%Y-%m}"
    key = unit_key(dispatch)
    notice = db.scalar(
        select(SupervisionNotice).where(
            SupervisionNotice.unit_key == key, SupervisionNotice.month == month
        )
    )
    if notice is None:
        notice = SupervisionNotice(
            unit_key=key,
            unit_kind=dispatch.unit_kind,
            department_id=dispatch.department_id,
            town_id=dispatch.town_id,
            month=month,
            dispatch_ids=[dispatch.id],
            overdue_count=1,
            max_overdue_days=days,
            created_at=now,
            updated_at=now,
        )
        db.add(notice)
        db.flush()
        result.notices_created += 1
        return
    ids = list(notice.dispatch_ids)
    changed = False
    if dispatch.id not in ids:
        ids.append(dispatch.id)
        notice.dispatch_ids = ids
        notice.overdue_count = len(ids)
        changed = True
    if days > notice.max_overdue_days:
        notice.max_overdue_days = days
        changed = True
    if changed:
        notice.updated_at = now
        db.flush()
        result.notices_updated += 1


# --- The worker --------------------------------------------------------------------------------


def run_check_job(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    """The worker's handler of `JOB_KIND`, queued each day by server/worker/schedule.py (so a
    failed run never stops the next day's)."""
    check_deadlines(ctx.db, WorkCalendar.load(ctx.db), ctx.now)


# --- Reading the notices -----------------------------------------------------------------------


def scope_notices(query: Select, actor: Actor) -> Select:
    """Center staff and leaders see every notice; a town or department its own."""
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF and actor.town_id is not None:
        return query.where(
            SupervisionNotice.unit_kind == UnitKind.TOWN, SupervisionNotice.town_id == actor.town_id
        )
    if actor.role is Role.DEPARTMENT_STAFF and actor.department_id is not None:
        return query.where(
            SupervisionNotice.unit_kind == UnitKind.DEPARTMENT,
            SupervisionNotice.department_id == actor.department_id,
        )
    return query.where(false())


#: Notices exported at most in one file.
MAX_EXPORT_ROWS = 5000


def list_notices(
    db: Session, *, actor: Actor, month: str | None = None, limit: int = MAX_EXPORT_ROWS
) -> list[dict[str, Any]]:
    """Notices newest month first, then by unit, each with its unit and slip numbers."""
    require_role(actor, Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)
    query = scope_notices(select(SupervisionNotice), actor)
    if month:
        query = query.where(SupervisionNotice.month == month)
    notices = db.scalars(
        query.order_by(SupervisionNotice.month.desc(), SupervisionNotice.unit_key).limit(limit)
    ).all()
    ids = {i for n in notices for i in n.dispatch_ids}
    numbers = (
        dict(db.execute(select(Dispatch.id, Dispatch.number).where(Dispatch.id.in_(ids))).all())
        if ids
        else {}
    )
    departments = {d.id: d for d in db.scalars(select(Department))}
    towns = {t.id: t for t in db.scalars(select(Town))}
    views = []
    for n in notices:
        if n.unit_kind is UnitKind.DEPARTMENT:
            unit = departments.get(n.department_id or 0)
        else:
            unit = towns.get(n.town_id or 0)
        views.append(
            {
                "id": n.id,
                "month": n.month,
                "unit": {
                    "kind": n.unit_kind.value,
                    "code": unit.code if unit else "",
                    "name": unit.name if unit else "",
                },
                "overdue_count": n.overdue_count,
                "max_overdue_days": n.max_overdue_days,
                "dispatch_numbers": [numbers.get(i, "") for i in n.dispatch_ids],
                "dispatch_ids": list(n.dispatch_ids),
                "created_at": n.created_at,
                "updated_at": n.updated_at,
            }
        )
    return views


def export_notices(
    db: Session, *, actor: Actor, month: str | None, now: datetime
) -> tuple[bytes, str]:
    """The notices as a workbook (月份, 单位, 超期件数, 最长超期工作日, 转办单编号); no personal
    data. Returns (content, file name)."""
    rows = list_notices(db, actor=actor, month=month)
    out = io.BytesIO()
    book = workbooks.new_workbook(out)
    book.set_properties({"title": "转办单超期通报", "author": "博山e救助"})
    sheet = book.add_worksheet("超期通报")
    bold = book.add_format({"bold": True, "border": 1, "bg_color": "#DDEBF7"})
    cell = book.add_format({"border": 1, "text_wrap": True, "valign": "top"})
    title = book.add_format({"bold": True, "font_size": 14})
    workbooks.write(sheet, 0, 0, f"转办单超期通报{'（' + month + '）' if month else ''}", title)
    headers = ["月份", "单位类型", "单位", "超期件数", "最长超期（工作日）", "转办单编号"]
    workbooks.write_row(sheet, 2, 0, headers, bold)
    for i, row in enumerate(rows, start=3):
        kind = "部门" if row["unit"]["kind"] == UnitKind.DEPARTMENT.value else "镇街"
        values = [
            row["month"],
            kind,
            row["unit"]["name"],
            row["overdue_count"],
            row["max_overdue_days"],
            "、".join(row["dispatch_numbers"]),
        ]
        workbooks.write_row(sheet, i, 0, values, cell)
    sheet.set_column(0, 1, 10)
    sheet.set_column(2, 2, 22)
    sheet.set_column(3, 4, 14)
    sheet.set_column(5, 5, 60)
    workbooks.write(sheet, len(rows) + 4, 0, f"导出时间：{now.astimezone(TZ):%Y-%m-%d %H:%M}")
    book.close()
    record(
        db,
        actor=actor,
        action="supervision.exported",
        target_type="export",
        target_id=None,
        now=now,
        detail={"month": month, "rows": len(rows)},
    )
    db.flush()
    return out.getvalue(), f"supervision-{month or 'all'}.xlsx"
