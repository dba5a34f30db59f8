"""The 统计 screen's charts, made from the monthly statistics of `services/reports/statistics.py` —
the same dictionaries `GET /api/v1/reports/monthly` answers with, so a chart's figures are the API's
figures for the same month and town."""

from __future__ import annotations

from typing import Any

from server.console.charts import Chart, Series
from server.models import Channel

#: Months shown in the charts over time (the chosen month and the ones before it).
TREND_MONTHS = 6


def month_label(month: str) -> str:
    """2026-11 → 2026年11月"""
    year, number = month.split("-")
    return f"{year}年{int(number)}月"


def percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "—"


def report_charts(trend: list[dict[str, Any]]) -> list[Chart]:
    """Every chart of the screen; `trend` is the statistics of each month, oldest first, the
    last being the chosen month."""
    current = trend[-1]
    return [
        _over_months(
            trend,
            "leads_channel",
            "各渠道发现线索（按月）",
            "by_channel",
            "渠道",
            order=[c.value for c in Channel],
        ),
        _over_months(trend, "leads_feed", "部门信息共享发现线索（按月）", "by_feed", "部门数据"),
        _over_months(trend, "leads_town", "各镇街新增线索（按月）", "by_town", "镇街"),
        _slips_by_unit(current),
        _outcomes(current),
        _satisfaction(current),
        _informed(trend),
    ]


def chart_by_key(trend: list[dict[str, Any]], key: str) -> Chart | None:
    """A chart of the 统计 page or of the 驾驶舱 (for its xlsx)."""
    return next((c for c in report_charts(trend) + dashboard_charts(trend) if c.key == key), None)


def _over_months(
    trend: list[dict[str, Any]],
    key: str,
    title: str,
    figure: str,
    row_header: str,
    *,
    order: list[str] | None = None,
) -> Chart:
    """One series per channel (feed, town) that appears in any of the months."""
    labels: dict[str | None, str] = {}
    for stats in trend:
        for item in stats["leads"][figure]:
            labels.setdefault(item["code"], item["label"])
    codes = list(labels)
    if order is not None:
        codes.sort(key=lambda c: order.index(c) if c in order else len(order))
    counts = [{item["code"]: item["count"] for item in s["leads"][figure]} for s in trend]
    return Chart(
        key=key,
        title=title,
        categories=[month_label(s["month"]) for s in trend],
        series=[Series(labels[c], [month.get(c, 0) for month in counts]) for c in codes],
        row_header=row_header,
    )


def _slips_by_unit(stats: dict[str, Any]) -> Chart:
    units = stats["slips"]["by_unit"]
    return Chart(
        key="slips_unit",
        title=f"{month_label(stats['month'])} 各承办单位转办单反馈情况",
        categories=[u["label"] for u in units],
        series=[
            Series("按期反馈", [u["answered_on_time"] for u in units]),
            Series("逾期反馈", [u["answered_late"] for u in units]),
        ],
        layout="rows",
        table_by="category",
        row_header="承办单位",
        extra=[
            ("本月签发", [str(u["issued"]) for u in units]),
            ("退回", [str(u["returned"]) for u in units]),
            ("月末在办", [str(u["still_open"]) for u in units]),
            (
                "按期反馈率",
                [
                    percent(u["answered_on_time"], u["answered_on_time"] + u["answered_late"])
                    for u in units
                ],
            ),
        ],
        note=_rate_note(stats["slips"]),
    )


def _rate_note(slips: dict[str, Any]) -> str:
    rate = slips["on_time_rate"]
    shown = f"{rate:.1%}" if rate is not None else "—"
    return f"全部承办单位本月按期反馈率：{shown}"


def _outcomes(stats: dict[str, Any]) -> Chart:
    items = stats["outcomes"]
    return Chart(
        key="outcomes",
        title=f"{month_label(stats['month'])} 办理结果",
        categories=[i["label"] for i in items],
        series=[Series("件数", [i["count"] for i in items])],
        layout="rows",
        table_by="category",
        row_header="办理结果",
        extra=[("金额（元）", [i["amount"] for i in items])],
    )


def _satisfaction(stats: dict[str, Any]) -> Chart:
    figures = stats["satisfaction"]
    average = figures["average"] if figures["average"] is not None else "—"
    return Chart(
        key="satisfaction",
        title=f"{month_label(stats['month'])} 回访满意度",
        categories=[f"{s['score']}分" for s in figures["by_score"]],
        series=[Series("回访次数", [s["count"] for s in figures["by_score"]])],
        table_by="category",
        row_header="评分",
        note=f"回访 {figures['count']} 次，平均 {average} 分（满分5分）",
    )


def _informed(trend: list[dict[str, Any]]) -> Chart:
    figures = [s["informed"] for s in trend]
    return Chart(
        key="informed",
        title="主动告知办理结果（按月）",
        categories=[month_label(s["month"]) for s in trend],
        series=[
            Series("按时告知", [f["informed_on_time"] for f in figures]),
            Series("逾期告知", [f["informed_late"] for f in figures]),
            Series("尚未告知", [f["not_informed"] for f in figures]),
        ],
        table_by="category",
        row_header="月份",
        extra=[
            ("应告知", [str(f["due"]) for f in figures]),
            ("按时告知率", [percent(f["informed_on_time"], f["due"]) for f in figures]),
        ],
        note="没有微信的群众，须在作出决定后 3 个工作日内告知本人",
    )


def dashboard_charts(trend: list[dict[str, Any]]) -> list[Chart]:
    """The 领导驾驶舱's trend: leads found by channel and slips answered on time, by month."""
    slips = [s["slips"] for s in trend]
    return [
        _over_months(
            trend,
            "leads_channel",
            "各渠道发现线索（按月）",
            "by_channel",
            "渠道",
            order=[c.value for c in Channel],
        ),
        Chart(
            key="slips_trend",
            title="转办单反馈情况（按月）",
            categories=[month_label(s["month"]) for s in trend],
            series=[
                Series("按期反馈", [s["answered_on_time"] for s in slips]),
                Series("逾期反馈", [s["answered_late"] for s in slips]),
            ],
            table_by="category",
            row_header="月份",
            extra=[
                ("签发", [str(s["issued"]) for s in slips]),
                (
                    "按期反馈率",
                    [
                        percent(s["answered_on_time"], s["answered_on_time"] + s["answered_late"])
                        for s in slips
                    ],
                ),
            ],
        ),
    ]
