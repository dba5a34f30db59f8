"""Monthly statistics for the center and the towns (the towns' summaries: `town_summaries`).

Counting rules (a month is a calendar month in Asia/Shanghai):
- **Leads**: leads created in the month, except those later merged into another lead (they are
  duplicates of it). By channel (of the first signal), by town, by category (a lead with two
  categories counts once in each). **By feed**: distinct leads that received evidence from a
  department feed during the month (new or already open), so one lead may count in two feeds.
- **Slips**: issued in the month; answered in the month on time / late (on time = by the end of
  the due date); returned in the month; still open at the end of the month (issued before it
  ended, neither answered nor returned by then). For a town: slips about the town's leads.
- **Outcomes**: feedback given in the month, by outcome, with the sum of amounts granted.
- **Satisfaction**: revisits recorded in the month; the average of their 1–5 scores.

Everything is computed with SQL aggregates (a few GROUP BY queries per report), never by loading
rows into Python.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import (
    Application,
    Channel,
    Department,
    Dispatch,
    Lead,
    LeadEvidence,
    LeadStatus,
    Revisit,
    Role,
    Town,
    UnitKind,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.feeds.registry import BY_CODE as FEEDS_BY_CODE
from server.services.kernel.access import Actor
from server.services.kernel.outcomes import OUTCOMES
from server.services.leads.core import CATEGORIES
from server.services.leads.intake import REPORT_CHANNELS
from server.services.notifications import informing
from server.services.reports.figures import help_figures

CHANNEL_LABELS: dict[str, str] = {
    Channel.MINIPROGRAM.value: "掌上办（小程序申请）",
    Channel.ON_BEHALF.value: "帮办代办",
    Channel.VISIT.value: "摸排巡查",
    Channel.FEED.value: "部门信息共享",
    **{c.value: label for c, label in REPORT_CHANNELS.items()},
}

#: Towns submit the month's summary by this day of the following month.
SUMMARY_DUE_DAY = 5


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
#: Who reads every town's figures.
CENTER_ROLES = (Role.CENTER_STAFF, Role.LEADER)


@dataclass(frozen=True)
class Period:
    month: str
    first_day: date
    #: First day of the following month.
    next_first: date
    #: The last day for the towns' summaries (the 5th of the following month).
    due_date: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.next_first, time(), TZ)


def parse_month(text: str, *, calendar: WorkCalendar | None = None) -> Period:
    """The month written YYYY-MM. Its towns' summaries are due on the 5th of the next month;
    with a `calendar`, a 5th that is a day off moves to the next working day, as the feeds'
    monthly due dates do (the policy says 每月5日前 for both)."""
    match = _MONTH.match(text or "")
    if not match or not 2000 <= int(match[1]) <= 2100:
        raise ValidationFailed(
            "月份格式应为 YYYY-MM，如 2026-11",
            code="invalid_month",
            errors={"month": ["月份格式应为 YYYY-MM"]},
        )
    year, month = int(match[1]), int(match[2])
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    due = following.replace(day=SUMMARY_DUE_DAY)
    while calendar is not None and not calendar.is_workday(due)[0]:
        due += timedelta(days=1)
    return Period(text, first, following, due)


def months_back(
    period: Period, count: int, *, calendar: WorkCalendar | None = None
) -> list[Period]:
    """`count` months ending with `period`, oldest first (for trends over the months)."""
    months = [period]
    while len(months) < count:
        first = months[0].first_day
        earlier = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
        months.insert(0, parse_month(earlier.strftime("%Y-%m"), calendar=calendar))
    return months


def monthly_trend(
    db: Session, *, periods: list[Period], town: Town | None, now: datetime
) -> list[dict[str, Any]]:
    """The statistics of each month in `periods`, the same figures as `monthly_statistics`
    (and so as `GET /api/v1/reports/monthly`) for each."""
    return [monthly_statistics(db, period=p, town=town, now=now) for p in periods]


# --- scope ------------------------------------------------------------------------------------


def report_scope(db: Session, *, actor: Actor, town_code: str | None) -> Town | None:
    """The town a report covers (None: the whole district), within what `actor` may see.

    Center staff and leaders see the district or any town; town staff only their own town (any
    other town is 404, as if it did not exist); everyone else is refused.
    """
    if actor.role in CENTER_ROLES:
        if town_code is None:
            return None
        town = db.scalar(select(Town).where(Town.code == town_code))
        if town is None:
            raise NotFound("未找到该镇街")
        return town
    if actor.role is Role.TOWN_STAFF:
        town = db.get(Town, actor.town_id) if actor.town_id else None
        if town is None or (town_code is not None and town_code != town.code):
            raise NotFound("未找到该镇街")
        return town
    raise Forbidden()


# --- the statistics ---------------------------------------------------------------------------


def monthly_statistics(
    db: Session, *, period: Period, town: Town | None, now: datetime
) -> dict[str, Any]:
    """The month's figures for the district, or for one town. JSON-ready plain values."""
    return {
        "month": period.month,
        "town": _town_ref(town),
        "period": {
            "first_day": period.first_day.isoformat(),
            "last_day": date.fromordinal(period.next_first.toordinal() - 1).isoformat(),
            "complete": now >= period.end,
        },
        "leads": _lead_figures(db, period, town),
        "slips": _slip_figures(db, period, town),
        "outcomes": _outcome_figures(db, period, town),
        "satisfaction": _satisfaction(db, period, town),
        "informed": informing.monthly_figures(
            db, start=period.start, end=period.end, town_id=town.id if town else None
        ),
        "help": help_figures(
            db,
            first_day=period.first_day,
            next_first=period.next_first,
            town_id=town.id if town else None,
        ),
    }


def _lead_figures(db: Session, period: Period, town: Town | None) -> dict[str, Any]:
    created = [
        Lead.created_at >= period.start,
        Lead.created_at < period.end,
        Lead.status != LeadStatus.MERGED,
    ]
    if town is not None:
        created.append(Lead.town_id == town.id)
    total = db.scalar(select(func.count()).select_from(Lead).where(*created)) or 0

    by_channel = dict(
        db.execute(select(Lead.channel, func.count()).where(*created).group_by(Lead.channel)).all()
    )
    by_town_rows = db.execute(
        select(Town.code, Town.name, func.count(Lead.id))
        .select_from(Lead)
        .outerjoin(Town, Town.id == Lead.town_id)
        .where(*created)
        .group_by(Town.code, Town.name, Town.sort_order)
        .order_by(Town.sort_order, Town.code)
    ).all()

    categories = _json_elements(db, Lead.categories)
    by_category = dict(
        db.execute(
            select(categories.c.value, func.count())
            .select_from(Lead)
            .join(categories, true())
            .where(*created)
            .group_by(categories.c.value)
        ).all()
    )

    evidence = [
        LeadEvidence.feed_code.is_not(None),
        LeadEvidence.created_at >= period.start,
        LeadEvidence.created_at < period.end,
        Lead.status != LeadStatus.MERGED,
    ]
    if town is not None:
        evidence.append(Lead.town_id == town.id)
    by_feed = dict(
        db.execute(
            select(LeadEvidence.feed_code, func.count(func.distinct(LeadEvidence.lead_id)))
            .join(Lead, Lead.id == LeadEvidence.lead_id)
            .where(*evidence)
            .group_by(LeadEvidence.feed_code)
        ).all()
    )
    return {
        "total": total,
        "by_channel": [
            {"code": c.value, "label": CHANNEL_LABELS.get(c.value, c.value), "count": by_channel[c]}
            for c in Channel
            if by_channel.get(c)
        ],
        "by_feed": [
            {"code": code, "label": _feed_label(code), "count": n}
            for code, n in sorted(by_feed.items(), key=_feed_order)
        ],
        "by_town": [
            {"code": code, "label": name or "未明确镇街", "count": n}
            for code, name, n in by_town_rows
        ],
        "by_category": [
            {"code": code, "label": CATEGORIES.get(code, code), "count": by_category[code]}
            for code in [*CATEGORIES, *sorted(set(by_category) - set(CATEGORIES))]
            if by_category.get(code)
        ],
    }


def _slip_counts(period: Period) -> list[Any]:
    """The five slip figures as SUM(CASE ...) columns over the dispatches table."""

    def within(column: Any) -> Any:
        return and_(column >= period.start, column < period.end)

    def still_open_at_end() -> Any:
        return and_(
            Dispatch.issued_at < period.end,
            or_(Dispatch.answered_at.is_(None), Dispatch.answered_at >= period.end),
            or_(Dispatch.returned_at.is_(None), Dispatch.returned_at >= period.end),
        )

    def count_if(condition: Any, name: str) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(name)

    return [
        count_if(within(Dispatch.issued_at), "issued"),
        count_if(
            and_(within(Dispatch.answered_at), Dispatch.answered_on_time.is_(True)),
            "answered_on_time",
        ),
        count_if(
            and_(within(Dispatch.answered_at), Dispatch.answered_on_time.is_(False)),
            "answered_late",
        ),
        count_if(within(Dispatch.returned_at), "returned"),
        count_if(still_open_at_end(), "still_open"),
    ]


_SLIP_FIGURES = ("issued", "answered_on_time", "answered_late", "returned", "still_open")


def _slip_figures(db: Session, period: Period, town: Town | None) -> dict[str, Any]:
    # Only slips that could count: issued before the month ended and not closed before it began.
    relevant = [
        Dispatch.issued_at < period.end,
        or_(Dispatch.answered_at.is_(None), Dispatch.answered_at >= period.start),
        or_(Dispatch.returned_at.is_(None), Dispatch.returned_at >= period.start),
    ]
    if town is not None:
        relevant.append(Dispatch.lead_town_id == town.id)
    totals = db.execute(select(*_slip_counts(period)).where(*relevant)).one()
    figures: dict[str, Any] = {name: int(getattr(totals, name)) for name in _SLIP_FIGURES}
    answered = figures["answered_on_time"] + figures["answered_late"]
    figures["on_time_rate"] = round(figures["answered_on_time"] / answered, 4) if answered else None

    unit_rows = db.execute(
        select(
            Dispatch.unit_kind,
            Dispatch.department_id,
            Dispatch.town_id,
            Department.name,
            Town.name,
            *_slip_counts(period),
        )
        .outerjoin(Department, Department.id == Dispatch.department_id)
        .outerjoin(Town, Town.id == Dispatch.town_id)
        .where(*relevant)
        .group_by(
            Dispatch.unit_kind,
            Dispatch.department_id,
            Dispatch.town_id,
            Department.name,
            Town.name,
        )
    ).all()
    by_unit = []
    for row in unit_rows:
        counts = {name: int(getattr(row, name)) for name in _SLIP_FIGURES}
        if not any(counts.values()):
            continue
        is_town = row.unit_kind == UnitKind.TOWN
        by_unit.append(
            {
                "kind": row.unit_kind.value,
                "id": row.town_id if is_town else row.department_id,
                "label": (row[4] if is_town else row[3]) or "",
                **counts,
            }
        )
    by_unit.sort(key=lambda u: (u["kind"], u["label"]))
    figures["by_unit"] = by_unit
    return figures


def _outcome_figures(db: Session, period: Period, town: Town | None) -> list[dict[str, Any]]:
    """Decisions of the month: each application's own, and the one outcome of slips whose lead
    had no application to decide (a department file's lead, a report)."""
    slip_conditions = [
        Dispatch.answered_at >= period.start,
        Dispatch.answered_at < period.end,
        Dispatch.outcome.is_not(None),
    ]
    decided = [
        Application.decided_at >= period.start,
        Application.decided_at < period.end,
        Application.outcome.is_not(None),
    ]
    if town is not None:
        slip_conditions.append(Dispatch.lead_town_id == town.id)
        decided.append(Application.town_id == town.id)
    rows: dict[str, tuple[int, Decimal]] = {}
    for code, n, amount in [
        *db.execute(
            select(Dispatch.outcome, func.count(), func.sum(Dispatch.amount))
            .where(*slip_conditions)
            .group_by(Dispatch.outcome)
        ).all(),
        *db.execute(
            select(Application.outcome, func.count(), func.sum(Application.amount))
            .where(*decided)
            .group_by(Application.outcome)
        ).all(),
    ]:
        count, total = rows.get(code, (0, Decimal(0)))
        rows[code] = (count + n, total + Decimal(amount or 0))
    return [
        {
            "code": code,
            "label": OUTCOMES.get(code, code),
            "count": rows[code][0],
            "amount": _money(rows[code][1]),
        }
        for code in [*OUTCOMES, *sorted(set(rows) - set(OUTCOMES))]
        if code in rows
    ]


def _satisfaction(db: Session, period: Period, town: Town | None) -> dict[str, Any]:
    conditions = [Revisit.created_at >= period.start, Revisit.created_at < period.end]
    query = select(Revisit.satisfaction, func.count()).where(*conditions)
    if town is not None:
        query = query.join(Lead, Lead.id == Revisit.lead_id).where(Lead.town_id == town.id)
    by_score = dict(db.execute(query.group_by(Revisit.satisfaction)).all())
    count = sum(by_score.values())
    average_query = select(func.avg(Revisit.satisfaction)).where(*conditions)
    if town is not None:
        average_query = average_query.join(Lead, Lead.id == Revisit.lead_id).where(
            Lead.town_id == town.id
        )
    average = db.scalar(average_query)
    return {
        "count": count,
        "average": round(float(average), 2) if average is not None else None,
        "by_score": [{"score": s, "count": by_score.get(s, 0)} for s in range(1, 6)],
    }


def _json_elements(db: Session, column: Any) -> Any:
    """A table of the elements of a JSON array column, joinable row by row."""
    if db.get_bind().dialect.name == "postgresql":
        return func.jsonb_array_elements_text(column).table_valued("value").alias("category")
    return func.json_each(column).table_valued("value").alias("category")


def _feed_label(code: str) -> str:
    feed = FEEDS_BY_CODE.get(code)
    return feed.name if feed else code


def _feed_order(item: tuple[str, int]) -> tuple[int, str]:
    codes = list(FEEDS_BY_CODE)
    return (codes.index(item[0]) if item[0] in codes else len(codes), item[0])


def _money(value: Decimal | float | None) -> str:
    return f"{Decimal(value or 0).quantize(Decimal('0.01'))}"


def _town_ref(town: Town | None) -> dict[str, Any] | None:
    return {"code": town.code, "name": town.name} if town else None


# --- the xlsx export --------------------------------------------------------------------------


def _help_sheet(book: Any, bold: Any, figures: dict[str, Any]) -> None:
    """救助帮扶: households helped, aid by kind, donations, services (aggregates only)."""
    sheet = book.add_worksheet("救助帮扶")
    sheet.set_column(0, 0, 28)
    rows: list[tuple[str, Any]] = [
        ("得到帮扶的户数", figures["households_helped"]),
        ("救助发放：户数", figures["aid"]["households"]),
        ("救助发放：金额（元）", float(figures["aid"]["amount"])),
        ("捐赠：接收笔数", figures["donations"]["received"]),
        ("捐赠：接收资金（元）", float(figures["donations"]["money_received"])),
        ("捐赠：分配次数", figures["donations"]["allocations"]),
        ("捐赠：分配资金（元）", float(figures["donations"]["money_allocated"])),
        ("社会力量服务：次数", figures["services"]["services"]),
    ]
    sheet.write_row(0, 0, ["项目", "数值"], bold)
    for i, (label, value) in enumerate(rows, start=1):
        sheet.write_row(i, 0, [label, value])
    line = len(rows) + 2
    sheet.write_row(line, 0, ["救助类别", "发放方式", "笔数", "户数", "金额（元）"], bold)
    for item in figures["aid"]["by_kind"]:
        line += 1
        period = "每月" if item["period"] == "monthly" else "一次性"
        sheet.write_row(line, 0, [item["label"], period, item["grants"], item["households"]])
        sheet.write_number(line, 4, float(item["amount"]))
    line += 2
    sheet.write_row(line, 0, ["服务类别", "次数", "户数"], bold)
    for item in figures["services"]["by_kind"]:
        line += 1
        sheet.write_row(line, 0, [item["label"], item["services"], item["households"]])


def monthly_workbook(statistics: dict[str, Any], summaries: dict[str, Any]) -> bytes:
    """The month's figures as an xlsx workbook (aggregates only: no personal data)."""
    from server.services.kernel.workbooks import new_workbook, write, write_row

    buffer = io.BytesIO()
    book = new_workbook(buffer)
    bold = book.add_format({"bold": True})
    title = book.add_format({"bold": True, "font_size": 14})
    scope = statistics["town"]["name"] if statistics["town"] else "全区"

    sheet = book.add_worksheet("概况")
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 14)
    write(sheet, 0, 0, f"博山区社会救助主动发现 {statistics['month']} 月度统计（{scope}）", title)
    slips, satisfaction = statistics["slips"], statistics["satisfaction"]
    rows: list[tuple[str, Any]] = [
        ("新增线索", statistics["leads"]["total"]),
        ("转办单：本月签发", slips["issued"]),
        ("转办单：本月按期反馈", slips["answered_on_time"]),
        ("转办单：本月逾期反馈", slips["answered_late"]),
        ("转办单：本月退回", slips["returned"]),
        ("转办单：月末仍在办理", slips["still_open"]),
        ("按期反馈率", slips["on_time_rate"] if slips["on_time_rate"] is not None else "—"),
        ("回访测评次数", satisfaction["count"]),
        ("平均满意度（1–5）", satisfaction["average"] if satisfaction["count"] else "—"),
    ]
    write_row(sheet, 2, 0, ["项目", "数值"], bold)
    for i, (label, value) in enumerate(rows, start=3):
        write_row(sheet, i, 0, [label, value])

    sheet = book.add_worksheet("线索")
    sheet.set_column(0, 0, 24)
    line = 0
    for heading, key in (
        ("按渠道", "by_channel"),
        ("按部门信息共享", "by_feed"),
        ("按镇街", "by_town"),
        ("按对象类别", "by_category"),
    ):
        write_row(sheet, line, 0, [heading, "线索数"], bold)
        line += 1
        for item in statistics["leads"][key]:
            write_row(sheet, line, 0, [item["label"], item["count"]])
            line += 1
        line += 1

    sheet = book.add_worksheet("转办单")
    sheet.set_column(0, 0, 24)
    write_row(
        sheet,
        0,
        0,
        ["承办单位", "类型", "本月签发", "按期反馈", "逾期反馈", "退回", "月末在办"],
        bold,
    )
    for i, unit in enumerate(slips["by_unit"], start=1):
        kind = "镇街" if unit["kind"] == "town" else "部门"
        write_row(sheet, i, 0, [unit["label"], kind, *(unit[n] for n in _SLIP_FIGURES)])

    sheet = book.add_worksheet("办理结果")
    sheet.set_column(0, 0, 24)
    write_row(sheet, 0, 0, ["办理结果", "件数", "金额（元）"], bold)
    for i, item in enumerate(statistics["outcomes"], start=1):
        write_row(sheet, i, 0, [item["label"], item["count"], float(item["amount"])])

    _help_sheet(book, bold, statistics["help"])

    sheet = book.add_worksheet("镇街小结")
    sheet.set_column(0, 0, 16)
    sheet.set_column(4, 4, 40)
    write_row(sheet, 0, 0, ["镇街", "状态", "截止日期", "提交时间", "备注"], bold)
    for i, item in enumerate(summaries["items"], start=1):
        submitted = item["submitted_at"]
        write_row(
            sheet,
            i,
            0,
            [
                item["town"]["name"],
                item["status_label"],
                item["due_date"].isoformat(),
                submitted.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if submitted else "",
                item["remarks"] or "",
            ],
        )
    book.close()
    return buffer.getvalue()
