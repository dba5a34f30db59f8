"""The towns' monthly summaries (月度小结): each town reviews its month's figures and submits
them with remarks by the 5th of the following month; the figures are stored as submitted. After
the 5th, towns that have not submitted are listed as late.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.clock import TZ
from server.db import savepoint
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import (
    Role,
    Town,
    TownMonthlySummary,
    User,
)
from server.services.kernel.access import Actor
from server.services.kernel.audit import record
from server.services.reports.statistics import CENTER_ROLES, Period, monthly_statistics

SUMMARY_STATUS_LABELS = {
    "submitted": "已按时提交",
    "submitted_late": "逾期提交",
    "pending": "待提交",
    "late": "逾期未提交",
}


def summary_status(summary: TownMonthlySummary | None, *, period: Period, today: date) -> str:
    if summary is not None:
        return "submitted_late" if summary.late else "submitted"
    return "late" if today > period.due_date else "pending"


def list_summaries(db: Session, *, period: Period, actor: Actor, now: datetime) -> dict[str, Any]:
    """Each town's summary state for the month (town staff: their own town only)."""
    query = (
        select(Town, TownMonthlySummary, User)
        .outerjoin(
            TownMonthlySummary,
            and_(TownMonthlySummary.town_id == Town.id, TownMonthlySummary.month == period.month),
        )
        .outerjoin(User, User.id == TownMonthlySummary.submitted_by_id)
        .order_by(Town.sort_order, Town.code)
    )
    if actor.role is Role.TOWN_STAFF:
        query = query.where(Town.id == (actor.town_id or 0))
    elif actor.role not in CENTER_ROLES:
        raise Forbidden()
    today = now.astimezone(TZ).date()
    items = [
        _summary_view(town, summary, user, period=period, today=today)
        for town, summary, user in db.execute(query).all()
    ]
    return {
        "month": period.month,
        "due_date": period.due_date,
        "items": items,
        "late_towns": [
            {"code": i["town"]["code"], "name": i["town"]["name"], "status": i["status"]}
            for i in items
            if i["status"] in ("late", "submitted_late")
        ],
    }


def submit_summary(
    db: Session, *, period: Period, remarks: str, actor: Actor, now: datetime
) -> dict[str, Any]:
    """A town's staff submit the month's summary once the month is over (once per month)."""
    if actor.role is not Role.TOWN_STAFF or actor.town_id is None:
        raise Forbidden("只有镇街平台工作人员可以提交本镇街的月度小结")
    if not remarks.strip():
        raise ValidationFailed("请填写本月小结的备注", errors={"remarks": ["不能为空"]})
    if now < period.end:
        raise ValidationFailed(
            f"{period.month} 尚未结束，月度小结须在次月提交",
            code="month_not_over",
            errors={"month": ["月份尚未结束"]},
        )
    town = db.get(Town, actor.town_id)
    if town is None:
        raise NotFound("未找到该镇街")
    exists = db.scalar(
        select(literal(1)).where(
            TownMonthlySummary.town_id == town.id, TownMonthlySummary.month == period.month
        )
    )
    if exists:
        raise Conflict(f"{town.name} {period.month} 的月度小结已提交", code="summary_submitted")
    summary = TownMonthlySummary(
        town_id=town.id,
        month=period.month,
        figures=monthly_statistics(db, period=period, town=town, now=now),
        remarks=remarks.strip(),
        due_date=period.due_date,
        submitted_by_id=actor.user_id,
        submitted_at=now,
        late=now.astimezone(TZ).date() > period.due_date,
    )
    try:
        with savepoint(db):
            db.add(summary)
            db.flush()
    except IntegrityError as exc:  # another submission won the race
        raise Conflict(
            f"{town.name} {period.month} 的月度小结已提交", code="summary_submitted"
        ) from exc
    record(
        db,
        actor=actor,
        action="town_summary.submitted",
        target_type="town_monthly_summary",
        target_id=summary.id,
        now=now,
        detail={"town": town.code, "month": period.month, "late": summary.late},
    )
    user = db.get(User, actor.user_id) if actor.user_id else None
    return _summary_view(town, summary, user, period=period, today=now.astimezone(TZ).date())


def _summary_view(
    town: Town,
    summary: TownMonthlySummary | None,
    user: User | None,
    *,
    period: Period,
    today: date,
) -> dict[str, Any]:
    status = summary_status(summary, period=period, today=today)
    return {
        "town": {"code": town.code, "name": town.name},
        "month": period.month,
        "due_date": period.due_date,
        "status": status,
        "status_label": SUMMARY_STATUS_LABELS[status],
        "submitted_at": summary.submitted_at if summary else None,
        "submitted_by": (user.display_name or user.username) if summary and user else None,
        "remarks": summary.remarks if summary else None,
        "figures": summary.figures if summary else None,
    }
