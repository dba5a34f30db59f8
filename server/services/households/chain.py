"""The household chain (一户一链): everything that happened to a household, in time order.

For each member (current, or former up to the day they left) the chain gathers: their leads
and each signal that fed them, their applications and decisions, the transfer slips about
their leads and the feedback, revisits and their satisfaction, visits to the households they
headed and what was found; for the household itself the aid granted and, from the social
forces (services/social), donations allocated and services received. It ends with what is due
next: a visit, a slip's deadline, a revisit, a review of the aid, an assigned service.

Each source is a small function returning `ChainItem`s; they run one query each (per source,
not per member), so a chain costs the same number of statements however large the family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.models import (
    AidGrant,
    Application,
    Dispatch,
    DispatchState,
    Family,
    FamilyMember,
    Household,
    Lead,
    LeadEvidence,
    LeadStatus,
    Revisit,
    ServiceAssignment,
    ServiceRecord,
    SocialOrg,
    Visit,
)
from server.services.households.aid import aid_text
from server.services.households.members import access_family_by_id, head_name
from server.services.kernel.access import Actor
from server.services.kernel.outcomes import OUTCOMES, TYPE_LABELS, outcome_text
from server.services.social import donations
from server.services.social import services as social_services

#: The kinds of item, in the order they are listed when two share a moment.
KINDS = (
    "lead",
    "evidence",
    "application",
    "slip",
    "feedback",
    "decision",
    "aid",
    "visit",
    "revisit",
    "donation",
    "service",
)
HARDSHIP_LABELS = {
    "none": "无明显困难",
    "general": "一般困难",
    "severe": "严重困难",
    "urgent": "急难",
}


@dataclass(frozen=True)
class ChainItem:
    at: datetime
    kind: str
    title: str
    #: The member it is about (None: the household as a whole).
    member: str | None = None
    ref_type: str | None = None
    ref_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DueItem:
    due_on: date
    kind: str
    title: str
    ref_type: str | None = None
    ref_id: int | None = None


@dataclass(frozen=True)
class Members:
    """Whose records belong to the chain: ID hash → (name, until when; None while current)."""

    family: Family
    windows: dict[str, tuple[str, datetime | None]]

    def within(self, id_hash: str | None, at: datetime) -> bool:
        if id_hash not in self.windows:
            return False
        until = self.windows[id_hash][1]
        return until is None or at < until

    def name(self, id_hash: str | None) -> str | None:
        return self.windows[id_hash][0] if id_hash in self.windows else None


def _members(family: Family) -> Members:
    windows: dict[str, tuple[str, datetime | None]] = {}
    for m in family.members:
        if m.id_hash is None:
            continue
        earlier = windows.get(m.id_hash)
        if m.left_at is None or earlier is None or (earlier[1] and m.left_at > earlier[1]):
            windows[m.id_hash] = (m.name, m.left_at)
    return Members(family, windows)


def _day(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=TZ)


# --- Sources -----------------------------------------------------------------------------------


def _leads(db: Session, ms: Members) -> list[Lead]:
    if not ms.windows:
        return []
    return list(
        db.scalars(
            select(Lead).where(
                Lead.person_hash.in_(list(ms.windows)), Lead.status != LeadStatus.MERGED
            )
        )
    )


def lead_items(db: Session, ms: Members) -> list[ChainItem]:
    items: list[ChainItem] = []
    leads = [lead for lead in _leads(db, ms) if ms.within(lead.person_hash, lead.created_at)]
    by_id = {lead.id: lead for lead in leads}
    for lead in leads:
        items.append(
            ChainItem(
                lead.created_at,
                "lead",
                f"线索登记（第{lead.id}号）",
                ms.name(lead.person_hash),
                "lead",
                lead.id,
                {"status": lead.status.value, "priority": lead.priority},
            )
        )
    if not by_id:
        return items
    for e in db.scalars(select(LeadEvidence).where(LeadEvidence.lead_id.in_(list(by_id)))):
        lead = by_id[e.lead_id]
        items.append(
            ChainItem(
                e.created_at,
                "evidence",
                e.summary,
                ms.name(lead.person_hash),
                "lead",
                lead.id,
                {
                    "channel": e.channel.value,
                    "feed_code": e.feed_code,
                    "source_type": e.source_type,
                    "source_id": e.source_id,
                },
            )
        )
    for d in db.scalars(select(Dispatch).where(Dispatch.lead_id.in_(list(by_id)))):
        name = ms.name(by_id[d.lead_id].person_hash)
        items.append(
            ChainItem(
                d.issued_at,
                "slip",
                f"转办单 {d.number} 已发出",
                name,
                "dispatch",
                d.id,
                {"number": d.number, "due_date": d.due_date.isoformat(), "state": d.state.value},
            )
        )
        if d.answered_at is not None:
            what = d.findings or ""
            if d.outcome:
                what = f"{what}；{outcome_text(d.outcome, d.outcome_reason)}".strip("；")
            items.append(
                ChainItem(
                    d.answered_at,
                    "feedback",
                    f"转办单 {d.number} 已反馈：{what}"[:200],
                    name,
                    "dispatch",
                    d.id,
                    {"on_time": d.answered_on_time, "outcome": d.outcome},
                )
            )
        elif d.returned_at is not None:
            items.append(
                ChainItem(
                    d.returned_at,
                    "feedback",
                    f"转办单 {d.number} 被退回：{d.return_reason}",
                    name,
                    "dispatch",
                    d.id,
                    {"returned": True},
                )
            )
    for r in db.scalars(select(Revisit).where(Revisit.lead_id.in_(list(by_id)))):
        items.append(
            ChainItem(
                r.created_at,
                "revisit",
                f"回访：满意度 {r.satisfaction} 分",
                ms.name(by_id[r.lead_id].person_hash),
                "lead",
                r.lead_id,
                {"satisfaction": r.satisfaction, "informed": r.informed, "source": r.source.value},
            )
        )
    return items


def application_items(db: Session, ms: Members) -> list[ChainItem]:
    items: list[ChainItem] = []
    if not ms.windows:
        return items
    query = select(Application).where(Application.id_hash.in_(list(ms.windows)))
    for a in db.scalars(query):
        if not ms.within(a.id_hash, a.submitted_at):
            continue
        label = TYPE_LABELS[a.type]
        number = f"SQ{a.id:08d}"
        items.append(
            ChainItem(
                a.submitted_at,
                "application",
                f"提交{label}申请（{number}）",
                a.name,
                "application",
                a.id,
                {"type": a.type.value, "status": a.status.value},
            )
        )
        if a.decided_at is not None and a.outcome:
            amount = f"{a.amount.normalize():f}" if a.amount is not None else None
            items.append(
                ChainItem(
                    a.decided_at,
                    "decision",
                    f"{label}申请（{number}）办结："
                    f"{outcome_text(a.outcome, a.outcome_reason, amount)}",
                    a.name,
                    "application",
                    a.id,
                    {"outcome": a.outcome},
                )
            )
    return items


def aid_items(db: Session, ms: Members) -> list[ChainItem]:
    grants = db.scalars(select(AidGrant).where(AidGrant.family_id == ms.family.id))
    return [
        ChainItem(
            g.granted_at,
            "aid",
            f"救助发放：{aid_text(g)}",
            g.name,
            "aid_grant",
            g.id,
            {
                "kind": g.kind,
                "label": OUTCOMES.get(g.kind, g.kind),
                "period": g.period.value,
                "amount": f"{g.amount:f}" if g.amount is not None else None,
                "start_on": g.start_on.isoformat(),
                "review_on": g.review_on.isoformat() if g.review_on else None,
            },
        )
        for g in grants
    ]


def visit_items(db: Session, ms: Members) -> list[ChainItem]:
    if not ms.windows:
        return []
    items = []
    for v in db.scalars(select(Visit).where(Visit.head_id_hash.in_(list(ms.windows)))):
        if not ms.within(v.head_id_hash, v.created_at):
            continue
        how = "入户走访" if v.kind.value == "visit" else "电话询问"
        found = HARDSHIP_LABELS.get(v.hardship.value, v.hardship.value)
        title = f"{how}（{v.visited_on.isoformat()}）：{found}"
        if v.needs:
            title = f"{title}；{v.needs}"
        items.append(
            ChainItem(
                v.created_at,
                "visit",
                title[:200],
                v.head_name,
                "visit",
                v.id,
                {
                    "visited_on": v.visited_on.isoformat(),
                    "hardship": v.hardship.value,
                    "health": v.health.value,
                    "labour_capacity": v.labour_capacity.value,
                    "causes": list(v.causes),
                },
            )
        )
    return items


def donation_items(db: Session, ms: Members) -> list[ChainItem]:
    return [
        ChainItem(
            a.created_at,
            "donation",
            f"获得捐赠：{donations.what(d, a.quantity)}"
            + (f"（{d.purpose}）" if d.purpose else ""),
            None,
            "donation",
            d.id,
            {
                "number": d.number,
                "kind": d.kind.value,
                "quantity": f"{a.quantity:f}",
                "purpose": d.purpose,
                "allocation_id": a.id,
            },
        )
        for a, d in donations.chain_allocations(db, ms.family.id)
    ]


def service_items(db: Session, ms: Members) -> list[ChainItem]:
    items = []
    for s in db.scalars(select(ServiceRecord).where(ServiceRecord.family_id == ms.family.id)):
        org = db.get(SocialOrg, s.org_id)
        label = social_services.KIND_LABELS[s.kind]
        items.append(
            ChainItem(
                s.created_at,
                "service",
                f"{org.name if org else ''}提供{label}服务（{s.served_on.isoformat()}，"
                f"{s.duration_minutes}分钟）：{s.notes}"[:200],
                None,
                "service",
                s.id,
                {
                    "kind": s.kind.value,
                    "org_id": s.org_id,
                    "served_on": s.served_on.isoformat(),
                    "duration_minutes": s.duration_minutes,
                },
            )
        )
    return items


#: Every source of chain items.
SOURCES: list[Callable[[Session, Members], list[ChainItem]]] = [
    lead_items,
    application_items,
    aid_items,
    visit_items,
    donation_items,
    service_items,
]
#: Every source of things due.
DUE_SOURCES: list[Callable[[Session, Members, date], list[DueItem]]] = []


# --- What is due ----------------------------------------------------------------------------


def _due_visits(db: Session, ms: Members, today: date) -> list[DueItem]:
    current = [h for h, (_n, until) in ms.windows.items() if until is None]
    if not current:
        return []
    rows = db.scalars(select(Household).where(Household.head_id_hash.in_(current)))
    return [
        DueItem(h.next_visit_on, "visit", f"下次走访：{h.head_name}", "visit_household", h.id)
        for h in rows
    ]


def _due_slips_and_revisits(db: Session, ms: Members, today: date) -> list[DueItem]:
    current = [h for h, (_n, until) in ms.windows.items() if until is None]
    if not current:
        return []
    due: list[DueItem] = []
    leads = {
        lead.id: lead for lead in db.scalars(select(Lead).where(Lead.person_hash.in_(current)))
    }
    if not leads:
        return due
    open_states = (DispatchState.ISSUED, DispatchState.SIGNED)
    for d in db.scalars(
        select(Dispatch).where(Dispatch.lead_id.in_(list(leads)), Dispatch.state.in_(open_states))
    ):
        due.append(DueItem(d.due_date, "slip", f"转办单 {d.number} 反馈期限", "dispatch", d.id))
    for lead in leads.values():
        if lead.status is LeadStatus.AWAITING_REVISIT:
            due.append(DueItem(today, "revisit", f"回访测评：{lead.name}", "lead", lead.id))
    return due


def _due_reviews(db: Session, ms: Members, today: date) -> list[DueItem]:
    grants = db.scalars(
        select(AidGrant).where(AidGrant.family_id == ms.family.id, AidGrant.review_on.is_not(None))
    )
    return [
        DueItem(
            g.review_on,
            "aid_review",
            f"救助复核：{g.name}（{OUTCOMES.get(g.kind, g.kind)}）",
            "aid_grant",
            g.id,
        )
        for g in grants
        if g.review_on is not None
    ]


def _due_services(db: Session, ms: Members, today: date) -> list[DueItem]:
    open_ = db.scalars(
        select(ServiceAssignment).where(
            ServiceAssignment.family_id == ms.family.id, ServiceAssignment.done_at.is_(None)
        )
    )
    return [
        DueItem(
            a.due_on,
            "service",
            f"待提供服务：{social_services.KIND_LABELS[a.kind]}",
            "service_assignment",
            a.id,
        )
        for a in open_
    ]


DUE_SOURCES.extend([_due_visits, _due_slips_and_revisits, _due_reviews, _due_services])


# --- The chain ----------------------------------------------------------------------------


def chain(db: Session, family_id: int, *, actor: Actor, now: datetime) -> dict[str, Any]:
    """The household's chain, oldest first, with every due item (soonest first) and the next."""
    family = access_family_by_id(db, family_id, actor=actor)
    ms = _members(family)
    today = now.astimezone(TZ).date()
    items = [item for source in SOURCES for item in source(db, ms)]
    order = {kind: i for i, kind in enumerate(KINDS)}
    items.sort(key=lambda i: (i.at, order.get(i.kind, len(order)), i.ref_id or 0))
    due = [d for source in DUE_SOURCES for d in source(db, ms, today)]
    due.sort(key=lambda d: (d.due_on, d.kind))
    return {
        "household_id": family.id,
        "head_name": head_name(family),
        "items": [_item_view(i) for i in items],
        "due": [_due_view(d, today) for d in due],
        "next_due": _due_view(due[0], today) if due else None,
    }


def _item_view(item: ChainItem) -> dict[str, Any]:
    return {
        "at": item.at,
        "kind": item.kind,
        "title": item.title,
        "member": item.member,
        "ref_type": item.ref_type,
        "ref_id": item.ref_id,
        "detail": item.detail,
    }


def _due_view(item: DueItem, today: date) -> dict[str, Any]:
    return {
        "due_on": item.due_on,
        "kind": item.kind,
        "title": item.title,
        "overdue": item.due_on < today,
        "ref_type": item.ref_type,
        "ref_id": item.ref_id,
    }


def member_hashes(db: Session, family_id: int) -> list[str]:
    """Current members' ID hashes (for other modules that join on people)."""
    return [
        h
        for h in db.scalars(
            select(FamilyMember.id_hash).where(
                FamilyMember.family_id == family_id,
                FamilyMember.left_at.is_(None),
                FamilyMember.id_hash.is_not(None),
            )
        )
        if h
    ]
