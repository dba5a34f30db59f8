"""领导驾驶舱: the district's state at a glance, read-only, for leaders and the center.

Each card's figure is the total of the list it opens, counted by the same service and filters
that list uses (as the worklist's counts are), except the month's rates, which are the monthly
statistics' own (`reports.monthly_statistics`, the figures of `GET /api/v1/reports/monthly`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import Forbidden
from server.models import Channel, Dispatch, Role
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches import listing
from server.services.households import aid
from server.services.kernel.access import Actor
from server.services.leads import queue
from server.services.reports import statistics

READERS = (Role.LEADER, Role.CENTER_STAFF)


@dataclass(frozen=True)
class Card:
    """One KPI card and the console list it opens."""

    key: str
    label: str
    value: str
    endpoint: str
    args: dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    urgent: bool = False
    #: The list's fragment to scroll to (a chart on the 统计 page).
    anchor: str | None = None


@dataclass(frozen=True)
class Dashboard:
    month: str
    cards: list[Card]
    #: Leads found this month and still open, by channel (each opens the queue filtered so).
    by_channel: list[Card]
    statistics: dict[str, Any]


def leader_dashboard(
    db: Session, *, actor: Actor, now: datetime, calendar: WorkCalendar
) -> Dashboard:
    if actor.role not in READERS:
        raise Forbidden()
    today = now.astimezone(TZ).date()
    period = statistics.parse_month(today.strftime("%Y-%m"), calendar=calendar)
    stats = statistics.monthly_statistics(db, period=period, town=None, now=now)
    conn = db.connection()
    open_leads = queue.count_queue(conn, actor=actor, filters=queue.QueueFilter())
    overdue = _slip_total(db, actor, calendar, today, deadline="overdue")
    rate = stats["slips"]["on_time_rate"]
    answer = answer_working_days(db, period=period, calendar=calendar)
    cards = [
        Card(
            "open_leads",
            "在办线索",
            _count(open_leads),
            "console.queue",
            hint="尚未办结的线索",
        ),
        Card(
            "found",
            "本月新发现线索",
            str(stats["leads"]["total"]),
            "console.reports_page",
            {"month": period.month},
            hint="各渠道合计（含已办结）",
            anchor="leads_channel",
        ),
        Card(
            "overdue",
            "超期未反馈转办单",
            str(overdue),
            "console.dispatches",
            {"deadline": "overdue"},
            hint="超过5个工作日未反馈",
            urgent=overdue > 0,
        ),
        Card(
            "on_time",
            "本月按期反馈率",
            f"{rate:.1%}" if rate is not None else "—",
            "console.reports_page",
            {"month": period.month},
            hint=f"按期 {stats['slips']['answered_on_time']} 件，逾期 "
            f"{stats['slips']['answered_late']} 件",
            anchor="slips_unit",
        ),
        Card(
            "answer_days",
            "本月平均反馈用时",
            f"{answer['average']}个工作日" if answer["average"] is not None else "—",
            "console.dispatches",
            {"state": "answered"},
            hint=f"本月反馈 {answer['count']} 件，从签发到反馈",
        ),
    ]
    helped = aid.monthly_figures(db, start=period.start, end=period.end)
    cards.append(
        Card(
            "households_helped",
            "本月获得救助的家庭",
            str(helped["households"]),
            "console.households",
            hint="、".join(f"{k['label']} {k['households']} 户" for k in helped["by_kind"])
            or "本月尚无救助决定",
        )
    )
    month_start = period.first_day
    by_channel = []
    for item in stats["leads"]["by_channel"]:
        found = queue.count_queue(
            conn,
            actor=actor,
            filters=queue.QueueFilter(channel=Channel(item["code"]), created_from=month_start),
        )
        by_channel.append(
            Card(
                f"channel-{item['code']}",
                item["label"],
                _count(found),
                "console.queue",
                {"channel": item["code"], "created_from": month_start.isoformat()},
                hint=f"本月发现 {item['count']} 条",
            )
        )
    return Dashboard(period.month, cards, by_channel, stats)


def answer_working_days(
    db: Session, *, period: statistics.Period, calendar: WorkCalendar
) -> dict[str, Any]:
    """Slips answered in the month, and the average working days from issue to answer (the
    issue day not counted, the answer day counted: a slip answered the next working day took
    1). One row per answered slip of the month: a few hundred at most."""
    rows = db.execute(
        select(Dispatch.issued_at, Dispatch.answered_at).where(
            Dispatch.answered_at >= period.start, Dispatch.answered_at < period.end
        )
    ).all()
    days = [
        calendar.working_days_between(
            issued.astimezone(TZ).date(), answered.astimezone(TZ).date()
        ).days
        for issued, answered in rows
    ]
    return {
        "count": len(days),
        "average": round(sum(days) / len(days), 1) if days else None,
    }


def _slip_total(
    db: Session, actor: Actor, calendar: WorkCalendar, today: Any, *, deadline: str
) -> int:
    _rows, total = listing.list_dispatches(
        db,
        listing.DispatchFilter(deadline=deadline),
        calendar=calendar,
        actor=actor,
        today=today,
        page=1,
        per_page=1,
    )
    return total


def _count(found: queue.QueueCount) -> str:
    return f"{found.count}{'+' if found.capped else ''}"
