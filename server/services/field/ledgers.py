"""Ledgers (分类台帐): each household's latest assessment and last visit, overdue visits first.

Read by town, village and category of people sought, scoped like visits (helpers their village,
towns their town, the center all), and exported as the xlsx a town keeps on paper: a title, one
summary sheet, then one sheet per category.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import xlsxwriter
from sqlalchemy import Select, case, exists, func, select
from sqlalchemy.orm import Session, selectinload

from server.errors import NotFound, ValidationFailed
from server.models import Cause, Hardship, Household, HouseholdCategory, Role, Town, Village
from server.services.field.visit_form import (
    CAUSE_LABELS,
    HARDSHIP_LABELS,
    HEALTH_LABELS,
    LABOUR_LABELS,
)
from server.services.kernel import idnumber, workbooks
from server.services.kernel.access import Actor, require_role, scope_by_area
from server.services.kernel.audit import record
from server.services.kernel.pii import PersonalData
from server.services.leads.core import CATEGORIES

#: Who reads ledgers: the people who keep them.
READERS = (Role.HELPER, Role.TOWN_STAFF, Role.CENTER_STAFF)
#: Largest export; a town has a few thousand ledger households at most.
MAX_EXPORT_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    town: str | None = None
    village: str | None = None
    category: str | None = None
    hardship: str | None = None
    overdue_only: bool = False
    #: Part of the head of household's name (a helper looking someone up).
    name: str | None = None
    #: Households whose next visit is due by this date (overdue ones included).
    due_by: date | None = None


@dataclass(frozen=True, slots=True)
class LedgerPage:
    rows: list[dict[str, Any]]
    total: int
    overdue: int


def _query(db: Session, where: LedgerFilter, *, actor: Actor, today: date) -> Select:
    """Households `actor` may see that match `where`; unknown or foreign areas are 404."""
    require_role(actor, *READERS)
    query = scope_by_area(
        select(Household), actor, town_col=Household.town_id, village_col=Household.village_id
    )
    if where.town:
        town = db.scalar(select(Town).where(Town.code == where.town))
        if town is None or (actor.role is Role.TOWN_STAFF and town.id != actor.town_id):
            raise NotFound("未找到该镇街", code="town_not_found")
        query = query.where(Household.town_id == town.id)
    if where.village:
        village = db.scalar(
            scope_by_area(
                select(Village), actor, town_col=Village.town_id, village_col=Village.id
            ).where(Village.code == where.village)
        )
        if village is None:
            raise NotFound("未找到该村（社区）", code="village_not_found")
        query = query.where(Household.village_id == village.id)
    if where.category:
        if where.category not in CATEGORIES:
            raise ValidationFailed(
                "无法识别的人员类别", errors={"category": ["无法识别的人员类别"]}
            )
        query = query.where(
            exists().where(
                HouseholdCategory.household_id == Household.id,
                HouseholdCategory.category == where.category,
            )
        )
    if where.hardship:
        query = query.where(Household.hardship == Hardship(where.hardship))
    if where.overdue_only:
        query = query.where(Household.next_visit_on < today)
    if where.due_by is not None:
        query = query.where(Household.next_visit_on <= where.due_by)
    if where.name:
        query = query.where(Household.head_name.contains(where.name.strip(), autoescape=True))
    return query


def _ordered(query: Select, *, today: date) -> Select:
    """Overdue households first (the longest overdue at the top), then by next visit date."""
    overdue_first = case((Household.next_visit_on < today, 0), else_=1)
    return query.order_by(overdue_first, Household.next_visit_on, Household.id)


def ledger(
    db: Session,
    where: LedgerFilter,
    *,
    page: int,
    per_page: int,
    pii: PersonalData,
    actor: Actor,
    today: date,
) -> LedgerPage:
    """One page of the ledger, with the count of households overdue for a visit."""
    query = _query(db, where, actor=actor, today=today)
    counted = query.subquery()
    total = db.scalar(select(func.count()).select_from(counted)) or 0
    overdue = (
        db.scalar(select(func.count()).select_from(counted).where(counted.c.next_visit_on < today))
        or 0
    )
    rows = db.scalars(
        _ordered(query, today=today)
        .options(
            selectinload(Household.categories),
            selectinload(Household.village),
            selectinload(Household.town),
        )
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return LedgerPage([row_view(h, pii=pii, today=today) for h in rows], total, overdue)


def row_view(household: Household, *, pii: PersonalData, today: date) -> dict[str, Any]:
    """A ledger row: the household's latest assessment, ID number and phone masked."""
    codes = [c.category for c in household.categories]
    days_overdue = (today - household.next_visit_on).days
    return {
        "household_id": household.id,
        "town": household.town.code,
        "town_name": household.town.name,
        "village": household.village.code,
        "village_name": household.village.name,
        "head_name": household.head_name,
        "id_number": idnumber.mask(pii.open(household.head_id_enc)),
        "phone": idnumber.mask_phone(pii.open(household.phone_enc)),
        "address": household.address,
        "members": len(household.members) + 1,
        "categories": codes,
        "category_labels": [CATEGORIES[c] for c in codes if c in CATEGORIES],
        "health": household.health.value,
        "health_label": HEALTH_LABELS[household.health],
        "labour_capacity": household.labour_capacity.value,
        "labour_capacity_label": LABOUR_LABELS[household.labour_capacity],
        "hardship": household.hardship.value,
        "hardship_label": HARDSHIP_LABELS[household.hardship],
        "causes": list(household.causes),
        "cause_labels": [CAUSE_LABELS[c] for c in _causes(household)],
        "needs": household.needs,
        "last_visit_id": household.last_visit_id,
        "last_visited_on": household.last_visited_on,
        "next_visit_on": household.next_visit_on,
        "overdue": days_overdue > 0,
        "days_overdue": max(days_overdue, 0),
        "lead_id": household.lead_id,
    }


def _causes(household: Household) -> list[Cause]:
    return [Cause(c) for c in household.causes]


# --- xlsx export --------------------------------------------------------------------------

#: (header, width, key of row_view) — the columns of the paper ledger.
_COLUMNS: tuple[tuple[str, int, str], ...] = (
    ("序号", 6, ""),
    ("镇（街道）", 11, "town_name"),
    ("村（社区）", 14, "village_name"),
    ("户主姓名", 10, "head_name"),
    ("身份证号码", 21, "id_number"),
    ("联系电话", 14, "phone"),
    ("家庭住址", 24, "address"),
    ("家庭人口", 8, "members"),
    ("人员类别", 18, "category_labels"),
    ("健康状况", 10, "health_label"),
    ("劳动能力", 14, "labour_capacity_label"),
    ("困难程度", 10, "hardship_label"),
    ("致困原因", 16, "cause_labels"),
    ("主要诉求", 28, "needs"),
    ("最近走访日期", 13, "last_visited_on"),
    ("下次走访日期", 13, "next_visit_on"),
    ("逾期天数", 9, "days_overdue"),
)


@dataclass(frozen=True, slots=True)
class Export:
    content: bytes
    #: 分类台帐-<area>-<date>.xlsx, and a plain-ASCII fallback for old clients.
    filename: str
    ascii_filename: str
    rows: int


def export_xlsx(
    db: Session,
    where: LedgerFilter,
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> Export:
    """The ledger as a printable workbook: 汇总 first, then one sheet per category."""
    today = now.date()
    query = _query(db, where, actor=actor, today=today)
    households = list(
        db.scalars(
            _ordered(query, today=today)
            .options(
                selectinload(Household.categories),
                selectinload(Household.village),
                selectinload(Household.town),
            )
            .limit(MAX_EXPORT_ROWS + 1)
        )
    )
    if len(households) > MAX_EXPORT_ROWS:
        raise ValidationFailed(
            f"台帐超过{MAX_EXPORT_ROWS}户，请按镇街或村（社区）分别导出", code="export_too_large"
        )
    rows = [row_view(h, pii=pii, today=today) for h in households]
    area = _area_title(db, where, actor=actor)
    out = io.BytesIO()
    book = workbooks.new_workbook(out)
    book.set_properties({"title": f"{area}困难群众分类台帐", "author": "博山e救助"})
    styles = _styles(book)
    _sheet(book, styles, "汇总", f"{area}困难群众分类台帐", rows, today=today)
    for code, label in CATEGORIES.items():
        if where.category and code != where.category:
            continue
        subset = [r for r in rows if code in r["categories"]]
        if subset:
            _sheet(book, styles, label, f"{area}{label}台帐", subset, today=today)
    book.close()
    record(
        db,
        actor=actor,
        action="ledger.exported",
        target_type="ledger",
        target_id=None,
        now=now,
        detail={
            "rows": len(rows),
            **{
                k: v.isoformat() if isinstance(v, date) else v
                for k, v in asdict(where).items()
                if v
            },
        },
    )
    return Export(
        out.getvalue(),
        f"分类台帐-{area}-{today.isoformat()}.xlsx",
        f"ledger-{today.isoformat()}.xlsx",
        len(rows),
    )


def _area_title(db: Session, where: LedgerFilter, *, actor: Actor) -> str:
    if where.village:
        village = db.scalar(select(Village).where(Village.code == where.village))
        if village is not None:
            return f"{village.town.name}{village.name}"
    if where.town or actor.role is Role.TOWN_STAFF:
        query = (
            select(Town.name).where(Town.code == where.town)
            if where.town
            else select(Town.name).where(Town.id == actor.town_id)
        )
        return db.scalar(query) or ""
    if actor.role is Role.HELPER and actor.village_id is not None:
        village = db.get(Village, actor.village_id)
        if village is not None:
            return f"{village.town.name}{village.name}"
    return "博山区"


def _styles(book: xlsxwriter.Workbook) -> dict[str, Any]:
    base = {"font_name": "宋体", "font_size": 10, "valign": "vcenter", "border": 1}
    return {
        "title": book.add_format(
            {"font_name": "黑体", "font_size": 16, "bold": True, "align": "center"}
        ),
        "subtitle": book.add_format({"font_name": "宋体", "font_size": 10}),
        "header": book.add_format(
            {**base, "bold": True, "align": "center", "text_wrap": True, "bg_color": "#E7E6E6"}
        ),
        "cell": book.add_format({**base, "text_wrap": True}),
        "center": book.add_format({**base, "align": "center"}),
        "date": book.add_format({**base, "align": "center", "num_format": "yyyy-mm-dd"}),
        "overdue": book.add_format({**base, "align": "center", "font_color": "#C00000"}),
    }


def _sheet(
    book: xlsxwriter.Workbook,
    styles: dict[str, Any],
    name: str,
    title: str,
    rows: list[dict[str, Any]],
    *,
    today: date,
) -> None:
    sheet = book.add_worksheet(name[:31])
    last = len(_COLUMNS) - 1
    workbooks.merge(sheet, (0, 0), (0, last), title, styles["title"])
    overdue = sum(1 for r in rows if r["overdue"])
    workbooks.merge(
        sheet,
        (1, 0),
        (1, last),
        f"统计日期：{today.isoformat()}    共{len(rows)}户，其中逾期未走访{overdue}户",
        styles["subtitle"],
    )
    for col, (header, width, _key) in enumerate(_COLUMNS):
        sheet.set_column(col, col, width)
        workbooks.write(sheet, 2, col, header, styles["header"])
    sheet.set_row(0, 28)
    for i, row in enumerate(rows, start=1):
        line = i + 2
        for col, (_header, _width, key) in enumerate(_COLUMNS):
            value: Any = i if not key else row[key]
            if isinstance(value, list):
                value = "、".join(value)
            if isinstance(value, date):
                workbooks.write(sheet, line, col, value, styles["date"])
            elif isinstance(value, int):
                style = styles["overdue"] if key == "days_overdue" and value else styles["center"]
                workbooks.write(sheet, line, col, value, style)
            else:
                workbooks.write(sheet, line, col, value or "", styles["cell"])
    workbooks.merge(
        sheet,
        (len(rows) + 4, 0),
        (len(rows) + 4, last),
        f"填报人：              审核人：              填报日期：{today.isoformat()}",
        styles["subtitle"],
    )
    sheet.freeze_panes(3, 4)
    sheet.repeat_rows(2)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    sheet.set_footer("&C第 &P 页，共 &N 页")
    if rows:
        sheet.autofilter(2, 0, len(rows) + 2, last)
