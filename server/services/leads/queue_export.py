"""The lead queue, filtered as on screen, as a workbook: masked (no ID or phone numbers at all;
only whether the lead has an ID number), capped, and recorded in the audit log."""

from __future__ import annotations

import io
import json
from datetime import datetime

from sqlalchemy.orm import Session

from server.clock import TZ
from server.services.kernel import workbooks
from server.services.kernel.access import Actor
from server.services.kernel.audit import record
from server.services.leads import core, queue
from server.services.places.areas import list_towns, village_names
from server.services.reports.statistics import CHANNEL_LABELS

#: Rows one export holds at most (the queue, most urgent first).
MAX_EXPORT_ROWS = 10_000
_HEADER = (
    "线索编号",
    "姓名",
    "状态",
    "来源渠道",
    "优先级",
    "优先理由",
    "类别",
    "镇街",
    "村居",
    "有身份证号",
    "登记时间",
)
_STATUS = {
    "new": "待研判",
    "triaged": "已研判",
    "dispatched": "已转办",
    "awaiting_revisit": "待回访",
    "closed": "已办结",
    "merged": "已合并",
    "dismissed": "已排除",
    "covered": "已纳入保障",
}


def export_queue(
    db: Session, *, actor: Actor, filters: queue.QueueFilter, now: datetime
) -> tuple[bytes, str, int]:
    """(content, file name, rows). Text cells are written as strings, so a name such as
    `=HYPERLINK(...)` stays text and never becomes a formula."""
    items: list[queue.QueueItem] = []
    cursor = None
    while len(items) < MAX_EXPORT_ROWS:
        page = queue.list_queue(
            db.connection(), actor=actor, filters=filters, cursor=cursor, limit=100
        )
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    items = items[:MAX_EXPORT_ROWS]
    towns = {t.id: t.name for t in list_towns(db.connection())}
    villages = village_names(db.connection(), {i.village_id for i in items if i.village_id})
    out = io.BytesIO()
    book = workbooks.new_workbook(out)
    sheet = book.add_worksheet("线索库")
    bold = book.add_format({"bold": True})
    workbooks.write_row(sheet, 0, 0, _HEADER, bold)
    for row, i in enumerate(items, start=1):
        categories = json.loads(i.categories_json or "[]")
        values = [
            i.id,
            i.name,
            _STATUS.get(i.status, i.status),
            CHANNEL_LABELS.get(i.channel, i.channel),
            i.priority,
            "；".join(json.loads(i.priority_reasons_json or "[]")),
            "、".join(core.CATEGORIES.get(c, c) for c in categories),
            towns.get(i.town_id or 0, ""),
            villages.get(i.village_id or 0, ""),
            "是" if i.has_id_number else "否",
            i.created_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M"),
        ]
        workbooks.write_row(sheet, row, 0, values)
    sheet.freeze_panes(1, 0)
    sheet.set_column(0, 0, 10)
    sheet.set_column(5, 6, 30)
    sheet.set_column(10, 10, 17)
    book.close()
    record(
        db,
        actor=actor,
        action="lead.exported",
        target_type="lead",
        target_id=None,
        now=now,
        detail={"rows": len(items), "filters": _described(filters)},
    )
    db.flush()
    stamp = now.astimezone(TZ).strftime("%Y%m%d-%H%M")
    return out.getvalue(), f"线索库-{stamp}.xlsx", len(items)


def _described(filters: queue.QueueFilter) -> dict[str, str]:
    return {k: str(v) for k, v in vars(filters).items() if v is not None}
