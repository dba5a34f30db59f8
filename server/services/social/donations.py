"""Donations (捐赠): recorded, receipted, allocated to households or a fund, and published.

Money (yuan) or goods (items × quantity) from a person, an organisation or an enterprise, with
the donor's restricted purpose if any. Each gets a receipt number (`JZ` + year + serial, from a
per-year counter incremented in one UPDATE) and a printable receipt. Each allocation to a
household (it appears on the household's chain) or to a fund takes from what remains in one
conditional UPDATE, so of two allocations racing beyond the remainder one is refused (409
`donation_exhausted`) on both engines. The center sees received / allocated / left per donor
and per purpose and exports it; the public summary (by month and purpose, no names at all) needs
no login.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Any

import xlsxwriter
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import Conflict, NotFound, invalid
from server.models import (
    Donation,
    DonationAllocation,
    DonationCounter,
    DonationKind,
    DonorKind,
    Family,
    Role,
    SocialOrg,
)
from server.services.households.members import access_family_by_id, head_name
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.pii import PersonalData

#: Who records and allocates donations; who reads the books.
KEEPERS = (Role.CENTER_STAFF,)
READERS = (Role.CENTER_STAFF, Role.LEADER)
DONOR_LABELS = {
    DonorKind.PERSON: "个人",
    DonorKind.ORGANISATION: "社会组织",
    DonorKind.ENTERPRISE: "企事业单位",
}
KIND_LABELS = {DonationKind.MONEY: "资金", DonationKind.GOODS: "物资"}
GENERAL = "非定向"


class DonationExhausted(Conflict):
    code = "donation_exhausted"
    message = "该笔捐赠剩余数量不足，请刷新后重试"


def _next_number(db: Session, year: int) -> int:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(
        insert(DonationCounter)
        .values(year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    return db.execute(
        update(DonationCounter)
        .where(DonationCounter.year == year)
        .values(last_number=DonationCounter.last_number + 1)
        .returning(DonationCounter.last_number),
        execution_options={"synchronize_session": False},
    ).scalar_one()


def receive_donation(
    db: Session, *, body: dict[str, Any], pii: PersonalData, actor: Actor, now: datetime
) -> Donation:
    """Record a donation received and give it its receipt number. Audited."""
    require_role(actor, *KEEPERS)
    kind = DonationKind(body["kind"])
    donor = body["donor"]
    name = (donor.get("name") or "").strip()
    if not name:
        raise invalid("donor.name", "请填写捐赠人")
    org_id = donor.get("org_id")
    if org_id is not None and db.get(SocialOrg, org_id) is None:
        raise invalid("donor.org_id", "未找到该组织", "org_not_found")
    if kind is DonationKind.MONEY:
        total = body.get("amount")
        if total is None:
            raise invalid("amount", "请填写捐赠金额")
        items, unit = None, None
    else:
        total = body.get("quantity")
        items = (body.get("items") or "").strip()
        unit = (body.get("unit") or "").strip() or "件"
        if not items:
            raise invalid("items", "请填写捐赠物资")
        if total is None:
            raise invalid("quantity", "请填写物资数量")
    if total <= 0:
        raise invalid("amount" if kind is DonationKind.MONEY else "quantity", "应大于0")
    today = now.astimezone(TZ).date()
    received_on = body.get("received_on") or today
    if received_on > today:
        raise invalid("received_on", "接收日期不能晚于今天")
    phone = "".join(ch for ch in (donor.get("phone") or "") if ch.isdigit()) or None
    number = f"JZ{received_on.year}{_next_number(db, received_on.year):06d}"
    donation = Donation(
        number=number,
        donor_name=name[:100],
        donor_kind=DonorKind(donor.get("kind") or DonorKind.PERSON.value),
        donor_org_id=org_id,
        donor_phone_enc=pii.seal(phone),
        kind=kind,
        items=items,
        unit=unit,
        total=total,
        remaining=total,
        received_on=received_on,
        purpose=(body.get("purpose") or "").strip() or None,
        note=(body.get("note") or "").strip() or None,
        recorded_by_id=actor.user_id,
        created_at=now,
    )
    db.add(donation)
    db.flush()
    record(
        db,
        actor=actor,
        action="donation.received",
        target_type="donation",
        target_id=donation.id,
        now=now,
        detail={
            "number": number,
            "kind": kind.value,
            "total": f"{total:f}",
            "purpose": donation.purpose,
        },
    )
    return donation


def access_donation_by_id(db: Session, donation_id: int, *, actor: Actor) -> Donation:
    require_role(actor, *READERS)
    donation = db.get(Donation, donation_id) if 0 < donation_id < 2**63 else None
    if donation is None:
        raise NotFound("未找到该捐赠", code="donation_not_found")
    return donation


def allocate(
    db: Session,
    donation_id: int,
    *,
    quantity: Decimal,
    family_id: int | None,
    fund: str | None,
    note: str | None,
    actor: Actor,
    now: datetime,
) -> DonationAllocation:
    """Give part of a donation to a household or a fund. What remains falls in one conditional
    UPDATE: beyond it (also when another allocation took it a moment ago) is 409."""
    require_role(actor, *KEEPERS)
    donation = access_donation_by_id(db, donation_id, actor=actor)
    fund = (fund or "").strip() or None
    if (family_id is None) == (fund is None):
        raise invalid("household_id", "请选择受助户或资金池（二选一）")
    if family_id is not None:
        access_family_by_id(db, family_id, actor=actor)
    if quantity <= 0:
        raise invalid("quantity", "应大于0")
    taken = db.execute(
        update(Donation)
        .where(Donation.id == donation.id, Donation.remaining >= quantity)
        .values(remaining=Donation.remaining - quantity),
        execution_options={"synchronize_session": False},
    ).rowcount
    if taken != 1:
        raise DonationExhausted()
    allocation = DonationAllocation(
        donation_id=donation.id,
        family_id=family_id,
        fund=fund,
        quantity=quantity,
        allocated_on=now.astimezone(TZ).date(),
        note=(note or "").strip() or None,
        allocated_by_id=actor.user_id,
        created_at=now,
    )
    db.add(allocation)
    db.flush()
    db.refresh(donation)
    record(
        db,
        actor=actor,
        action="donation.allocated",
        target_type="donation",
        target_id=donation.id,
        now=now,
        detail={
            "allocation": allocation.id,
            "household_id": family_id,
            "fund": fund,
            "quantity": f"{quantity:f}",
            "remaining": f"{donation.remaining:f}",
        },
    )
    return allocation


def what(donation: Donation, quantity: Decimal | None = None) -> str:
    """ "资金 5000 元" or "物资 棉被 20 床"."""
    q = donation.total if quantity is None else quantity
    if donation.kind is DonationKind.MONEY:
        return f"资金 {q.normalize():f} 元"
    return f"物资 {donation.items} {q.normalize():f} {donation.unit or ''}".rstrip()


def donation_view(db: Session, donation: Donation, *, pii: PersonalData) -> dict[str, Any]:
    allocations = db.scalars(
        select(DonationAllocation)
        .where(DonationAllocation.donation_id == donation.id)
        .order_by(DonationAllocation.id)
    )
    return {
        "id": donation.id,
        "number": donation.number,
        "donor": {
            "name": donation.donor_name,
            "kind": donation.donor_kind.value,
            "kind_label": DONOR_LABELS[donation.donor_kind],
            "org_id": donation.donor_org_id,
            "phone": idnumber.mask_phone(pii.open(donation.donor_phone_enc)),
        },
        "kind": donation.kind.value,
        "items": donation.items,
        "unit": donation.unit,
        "total": donation.total,
        "allocated": donation.total - donation.remaining,
        "remaining": donation.remaining,
        "received_on": donation.received_on,
        "purpose": donation.purpose,
        "note": donation.note,
        "text": what(donation),
        "allocations": [_allocation_view(db, a) for a in allocations],
        "created_at": donation.created_at,
    }


def _allocation_view(db: Session, a: DonationAllocation) -> dict[str, Any]:
    family = db.get(Family, a.family_id) if a.family_id else None
    return {
        "id": a.id,
        "household_id": a.family_id,
        "household_head": head_name(family) if family else None,
        "fund": a.fund,
        "quantity": a.quantity,
        "allocated_on": a.allocated_on,
        "note": a.note,
    }


def list_donations(
    db: Session, *, actor: Actor, page: int, per_page: int, purpose: str | None = None
) -> tuple[list[Donation], int]:
    require_role(actor, *READERS)
    query = select(Donation)
    if purpose:
        query = query.where(Donation.purpose == purpose)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(Donation.id.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    return list(rows), total


def receipt_html(db: Session, donation_id: int, *, actor: Actor, now: datetime) -> str:
    """The printable receipt (捐赠收据): number, donor, what, purpose, date. Audited."""
    donation = access_donation_by_id(db, donation_id, actor=actor)
    record(
        db,
        actor=actor,
        action="donation.receipt_printed",
        target_type="donation",
        target_id=donation.id,
        now=now,
    )
    rows = [
        ("收据编号", donation.number),
        ("捐赠人", donation.donor_name),
        ("捐赠人类别", DONOR_LABELS[donation.donor_kind]),
        ("捐赠内容", what(donation)),
        ("定向用途", donation.purpose or GENERAL),
        ("接收日期", donation.received_on.strftime("%Y年%m月%d日")),
    ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>捐赠收据 {escape(donation.number)}</title>"
        "<style>@page{size:A5 landscape;margin:15mm}body{font-family:'Microsoft YaHei',"
        "'PingFang SC','Noto Sans CJK SC',sans-serif}h1{text-align:center;letter-spacing:.3em}"
        "table{width:100%;border-collapse:collapse}th,td{border:1px solid #333;padding:6px 10px;"
        "text-align:left}th{width:8em}.sign{margin-top:2em;text-align:right}</style></head><body>"
        "<h1>捐赠收据</h1>"
        f"<table>{body}</table>"
        "<p>感谢您对博山区社会救助事业的爱心支持！</p>"
        '<p class="sign">博山区社会救助综合服务中心（盖章）<br>'
        f"{now.astimezone(TZ):%Y年%m月%d日}</p>"
        "</body></html>"
    )


# --- The books ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookLine:
    key: str
    kind: str
    unit: str | None
    received: Decimal
    allocated: Decimal
    left: Decimal


def books(db: Session, *, actor: Actor) -> dict[str, list[BookLine]]:
    """Received, allocated and left, per donor and per purpose (money in yuan; goods per item
    and unit)."""
    require_role(actor, *READERS)
    rows = list(db.scalars(select(Donation).order_by(Donation.id)))

    def group(key_of: Any) -> list[BookLine]:
        sums: dict[tuple[str, str, str | None], list[Decimal]] = {}
        for d in rows:
            unit = "元" if d.kind is DonationKind.MONEY else f"{d.items}（{d.unit or '件'}）"
            key = (key_of(d), d.kind.value, unit)
            acc = sums.setdefault(key, [Decimal(0), Decimal(0)])
            acc[0] += d.total
            acc[1] += d.remaining
        return [
            BookLine(k, kind, unit, total, total - left, left)
            for (k, kind, unit), (total, left) in sorted(sums.items())
        ]

    return {
        "by_donor": group(lambda d: d.donor_name),
        "by_purpose": group(lambda d: d.purpose or GENERAL),
    }


def export_books(db: Session, *, actor: Actor, now: datetime) -> tuple[bytes, str]:
    """The books as a workbook: 按捐赠人 and 按用途 (no recipient's name). Audited."""
    lines = books(db, actor=actor)
    header = ["", "类别", "单位", "接收", "已分配", "结余"]
    sheets = []
    for title, key in (("按捐赠人", "by_donor"), ("按用途", "by_purpose")):
        first = "捐赠人" if key == "by_donor" else "用途"
        body = [
            [
                line.key,
                KIND_LABELS[DonationKind(line.kind)],
                line.unit,
                line.received,
                line.allocated,
                line.left,
            ]
            for line in lines[key]
        ]
        sheets.append((title, [first, *header[1:]], body))
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"title": "捐赠接收与分配", "author": "博山e救助"})
    bold = book.add_format({"bold": True, "border": 1, "bg_color": "#DDEBF7"})
    for title, head, body in sheets:
        sheet = book.add_worksheet(title)
        sheet.write_row(0, 0, head, bold)
        for r, row in enumerate(body, start=1):
            sheet.write_string(r, 0, row[0])
            sheet.write_string(r, 1, row[1])
            sheet.write_string(r, 2, row[2] or "")
            for c, value in enumerate(row[3:], start=3):
                sheet.write_number(r, c, float(value))
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, 5, 14)
    book.close()
    content = out.getvalue()
    record(
        db, actor=actor, action="donation.exported", target_type="donation", target_id=None, now=now
    )
    return content, f"donations-{now.astimezone(TZ):%Y%m%d}.xlsx"


#: Quantities are kept to two places (models: Numeric(14, 2)); a zero reads the same.
_ZERO = Decimal("0.00")


def public_summary(db: Session) -> dict[str, Any]:
    """For 公示, without login: received and allocated by month and purpose; no names at all
    (neither donors nor recipients)."""
    months: dict[tuple[str, str], dict[str, Any]] = {}

    def line(month: str, purpose: str) -> dict[str, Any]:
        return months.setdefault(
            (month, purpose),
            {
                "month": month,
                "purpose": purpose,
                "money_received": Decimal(0),
                "money_allocated": Decimal(0),
                "goods_received": 0,
                "goods_allocations": 0,
                "goods": {},
                "households_helped": set(),
            },
        )

    def goods(entry: dict[str, Any], d: Donation) -> dict[str, Any]:
        # Goods are told by what and how many (大米 40 袋), never by whose.
        key = (d.items or "物资", d.unit or "")
        return entry["goods"].setdefault(
            key,
            {"items": key[0], "unit": key[1], "received": _ZERO, "allocated": _ZERO},
        )

    for d in db.scalars(select(Donation)):
        entry = line(d.received_on.strftime("%Y-%m"), d.purpose or GENERAL)
        if d.kind is DonationKind.MONEY:
            entry["money_received"] += d.total
        else:
            entry["goods_received"] += 1
            goods(entry, d)["received"] += d.total
    allocations = db.execute(
        select(DonationAllocation, Donation).join(
            Donation, Donation.id == DonationAllocation.donation_id
        )
    )
    for a, d in allocations:
        entry = line(a.allocated_on.strftime("%Y-%m"), d.purpose or GENERAL)
        if d.kind is DonationKind.MONEY:
            entry["money_allocated"] += a.quantity
        else:
            entry["goods_allocations"] += 1
            goods(entry, d)["allocated"] += a.quantity
        if a.family_id is not None:
            entry["households_helped"].add(a.family_id)
    items = []
    for key in sorted(months, reverse=True):
        entry = months[key]
        entry["households_helped"] = len(entry["households_helped"])
        entry["goods"] = [entry["goods"][k] for k in sorted(entry["goods"])]
        items.append(entry)
    return {"items": items}


def chain_allocations(db: Session, family_id: int) -> list[tuple[DonationAllocation, Donation]]:
    """A household's allocations with their donations (for the household chain)."""
    return [
        (a, d)
        for a, d in db.execute(
            select(DonationAllocation, Donation)
            .join(Donation, Donation.id == DonationAllocation.donation_id)
            .where(DonationAllocation.family_id == family_id)
        )
    ]


def monthly_figures(
    db: Session, *, start: date, end: date, town_id: int | None = None
) -> dict[str, Any]:
    """Donations received and allocated in [start, end) (dates, Shanghai). With `town_id`:
    only allocations to that town's households (a donation belongs to no town)."""
    received: list[Any] = []
    if town_id is None:
        received = db.execute(
            select(Donation.kind, func.count(), func.coalesce(func.sum(Donation.total), 0))
            .where(Donation.received_on >= start, Donation.received_on < end)
            .group_by(Donation.kind)
        ).all()
    query = (
        select(
            Donation.kind,
            func.count(),
            func.coalesce(func.sum(DonationAllocation.quantity), 0),
        )
        .join(Donation, Donation.id == DonationAllocation.donation_id)
        .where(DonationAllocation.allocated_on >= start, DonationAllocation.allocated_on < end)
        .group_by(Donation.kind)
    )
    households = select(func.count(DonationAllocation.family_id.distinct())).where(
        DonationAllocation.allocated_on >= start, DonationAllocation.allocated_on < end
    )
    if town_id is not None:
        query = query.join(Family, Family.id == DonationAllocation.family_id).where(
            Family.town_id == town_id
        )
        households = households.join(Family, Family.id == DonationAllocation.family_id).where(
            Family.town_id == town_id
        )
    r = {kind.value: (n, Decimal(total)) for kind, n, total in received}
    a = {kind.value: (n, Decimal(total)) for kind, n, total in db.execute(query)}
    none = (0, Decimal(0))
    return {
        "received": r.get("money", none)[0] + r.get("goods", none)[0],
        "money_received": r.get("money", none)[1],
        "goods_received": r.get("goods", none)[0],
        "allocations": a.get("money", none)[0] + a.get("goods", none)[0],
        "money_allocated": a.get("money", none)[1],
        "households": db.scalar(households) or 0,
    }
