"""How the console writes dates, working days, labels and badges (Jinja filters)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from flask import Flask, request, url_for
from markupsafe import Markup, escape

from server.clock import TZ
from server.models import ApplicationStatus, LeadStatus, Role
from server.services.dispatches.access import STATE_LABELS as DISPATCH_STATE_LABELS
from server.services.kernel.outcomes import OUTCOMES, TYPE_LABELS
from server.services.leads.core import CATEGORIES
from server.services.reports.statistics import CHANNEL_LABELS

LEAD_STATUS_LABELS = {
    LeadStatus.NEW.value: "待研判",
    LeadStatus.TRIAGED.value: "已研判",
    LeadStatus.DISPATCHED.value: "已转办",
    LeadStatus.AWAITING_REVISIT.value: "待回访",
    LeadStatus.CLOSED.value: "已办结",
    LeadStatus.MERGED.value: "已合并",
    LeadStatus.DISMISSED.value: "已排除",
    LeadStatus.COVERED.value: "已纳入保障",
}
APPLICATION_STATUS_LABELS = {
    ApplicationStatus.SUBMITTED.value: "待受理",
    ApplicationStatus.ACCEPTED.value: "已受理",
    ApplicationStatus.INVESTIGATING.value: "调查核实",
    ApplicationStatus.DECIDED.value: "已办结",
    ApplicationStatus.WITHDRAWN.value: "已撤回",
}
ROLE_LABELS = {
    Role.RESIDENT.value: "群众",
    Role.HELPER.value: "协理员",
    Role.TOWN_STAFF.value: "镇街工作人员",
    Role.DEPARTMENT_STAFF.value: "部门工作人员",
    Role.CENTER_STAFF.value: "中心工作人员",
    Role.LEADER.value: "领导",
    Role.SYSTEM_ADMIN.value: "系统管理员",
    Role.SECURITY_ADMIN.value: "安全管理员",
    Role.AUDIT_ADMIN.value: "审计管理员",
    "system": "系统",
}
DISPATCH_LABELS = {s.value: label for s, label in DISPATCH_STATE_LABELS.items()}
#: The short badge text of each channel (the full label is its title).
CHANNEL_BADGES = {
    "miniprogram": "掌上办",
    "on_behalf": "帮办代办",
    "visit": "摸排",
    "feed": "部门数据",
    "hotline": "热线",
    "police_110": "110",
    "elderly_12349": "12349",
    "volunteer": "志愿者",
    "social_org": "社会组织",
    "enterprise": "企业",
    "online": "网络",
}
assert set(CHANNEL_BADGES) >= set(CHANNEL_LABELS)


def cn_date(value: date | datetime | None) -> str:
    """2026年12月2日 (a datetime is read in Asia/Shanghai)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(TZ).date()
    return f"{value.year}年{value.month}月{value.day}日"


def cn_datetime(value: datetime | None) -> str:
    """2026年12月2日 15:01"""
    if value is None:
        return ""
    local = value.astimezone(TZ)
    return f"{cn_date(local)} {local:%H:%M}"


def workdays(deadline: dict[str, Any]) -> str:
    """A slip's deadline as staff say it: 剩N个工作日, 今日到期, 逾期N个工作日, or its answer."""
    state = deadline["state"]
    if state == "overdue":
        return f"逾期{deadline['overdue_days']}个工作日"
    if state in ("on_time", "due_soon"):
        left = deadline["working_days_left"]
        return "今日到期" if left == 0 else f"剩{left}个工作日"
    return {"answered_on_time": "按时反馈", "answered_late": "超期反馈", "returned": "已退回"}[
        state
    ]


def deadline_class(deadline: dict[str, Any]) -> str:
    return {
        "overdue": "badge-danger",
        "due_soon": "badge-warn",
        "answered_late": "badge-warn",
        "returned": "badge-muted",
    }.get(deadline["state"], "badge-ok")


def from_json(text: str | None) -> Any:
    """A JSON column the queue passes through as text (see services/leads/queue.QueueItem)."""
    return json.loads(text) if text else []


def options(items: Iterable[Any]) -> Markup:
    """`<option>`s of a select: choices (value, label, selected) or units (value, name, group,
    in `<optgroup>`s). The same lists come back on every page (statuses, towns, units), so their
    HTML is built once per distinct list: escaping ~200 values per queue page was a fifth of
    its server time."""
    return _options_html(
        tuple(
            (i["value"], i["name"], i["group"]) if isinstance(i, dict) else tuple(i) for i in items
        )
    )


@lru_cache(maxsize=512)
def _options_html(items: tuple[tuple[Any, ...], ...]) -> Markup:
    out: list[str] = []
    group = None
    for value, label, third in items:
        if isinstance(third, bool):
            selected = " selected" if third else ""
            out.append(f'<option value="{escape(value)}"{selected}>{escape(label)}</option>')
            continue
        if third != group:
            if group is not None:
                out.append("</optgroup>")
            out.append(f'<optgroup label="{escape(third)}">')
            group = third
        out.append(f'<option value="{escape(value)}">{escape(label)}</option>')
    if group is not None:
        out.append("</optgroup>")
    return Markup("".join(out))


def fixed_url(endpoint: str, **values: Any) -> str:
    """`url_for` of a link that is the same on every page (the menu, static files), built once
    per mount point (about 30 per page, a tenth of a queue page's time)."""
    return _fixed_url(request.script_root, endpoint, tuple(sorted(values.items())))


@lru_cache(maxsize=256)
def _fixed_url(script_root: str, endpoint: str, values: tuple[tuple[str, Any], ...]) -> str:
    return url_for(endpoint, **dict(values))


def register_filters(app: Flask) -> None:
    app.add_template_filter(options, "options")
    app.add_template_global(fixed_url, "fixed_url")
    app.add_template_filter(from_json, "fromjson")
    app.add_template_filter(cn_date, "cn_date")
    app.add_template_filter(cn_datetime, "cn_datetime")
    app.add_template_filter(workdays, "workdays")
    app.add_template_filter(deadline_class, "deadline_class")
    app.add_template_global(
        {
            "lead_status": LEAD_STATUS_LABELS,
            "application_status": APPLICATION_STATUS_LABELS,
            "dispatch_state": DISPATCH_LABELS,
            "channel": CHANNEL_LABELS,
            "role": ROLE_LABELS,
            "channel_badge": CHANNEL_BADGES,
            "category": CATEGORIES,
            "outcome": OUTCOMES,
            "application_type": {t.value: label for t, label in TYPE_LABELS.items()},
        },
        "labels",
    )
