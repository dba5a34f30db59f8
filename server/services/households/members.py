"""Households and their members as read: who sees which household, its current members, the
views the API and console answer with, and a lead's household. Building is `building`, staff's
edits are `editing`.

Who may: center staff and leaders read every household; town staff read and edit their town's;
helpers read and edit their village's; anyone else is refused (403 by role, 404 by area).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Session

from server.errors import Conflict, NotFound
from server.models import (
    OPEN_STATUSES,
    Family,
    FamilyMember,
    Lead,
    Role,
    Town,
    Village,
)
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.pii import PersonalData
from server.services.leads.access import scope_leads

#: Who reads households (each within their area).
READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.HELPER)
#: Who edits them: town staff (their town) and helpers (their village).
EDITORS = (Role.TOWN_STAFF, Role.HELPER)
HEAD = "户主"


class MemberElsewhere(Conflict):
    code = "member_elsewhere"
    message = "该居民已是另一户的成员，请通过“迁移”将其转入本户"


# --- Who sees which household ----------------------------------------------------------------


def scope_families(query: Select, actor: Actor) -> Select:
    """Limit a query over families to `actor`'s area, in the query itself."""
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF:
        return query.where(Family.town_id == actor.town_id)
    if actor.role is Role.HELPER:
        return query.where(Family.village_id == actor.village_id)
    return query.where(false())


def access_family_by_id(
    db: Session, family_id: int, *, actor: Actor, for_update: bool = False
) -> Family:
    """The household if `actor` may see it; 404 otherwise (out of area looks like absent)."""
    require_role(actor, *READERS)
    if not 0 < family_id < 2**63:
        raise NotFound("未找到该户", code="household_not_found")
    query = scope_families(select(Family).where(Family.id == family_id), actor)
    if for_update:
        query = query.with_for_update()
    family = db.scalar(query)
    if family is None:
        raise NotFound("未找到该户", code="household_not_found")
    return family


def current_membership(db: Session, id_hash: str | Sequence[str] | None) -> FamilyMember | None:
    """The person's current membership (at most one), by the keyed hash of their ID number (or
    its hashes under every listed key, `PersonalData.hashes`, during a re-keying window)."""
    hashes = [id_hash] if isinstance(id_hash, str) else [h for h in id_hash or () if h]
    if not hashes:
        return None
    return db.scalar(
        select(FamilyMember)
        .where(FamilyMember.id_hash.in_(hashes), FamilyMember.left_at.is_(None))
        .order_by(FamilyMember.id)
        .limit(1)
    )


def current_members(family: Family) -> list[FamilyMember]:
    return [m for m in family.members if m.left_at is None]


# --- Views -------------------------------------------------------------------------------------


def _masked_id(member: FamilyMember, pii: PersonalData) -> str | None:
    return idnumber.mask(pii.open(member.id_number_enc)) if member.id_number_enc else None


def member_view(member: FamilyMember, *, pii: PersonalData) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "relation": member.relation,
        "is_head": member.is_head,
        "id_number": _masked_id(member, pii),
        "source": member.source.value,
        "joined_at": member.joined_at,
        "left_at": member.left_at,
        "moved_to_household_id": member.moved_to_family_id,
        "left_reason": member.left_reason,
    }


def head_name(family: Family) -> str | None:
    return next((m.name for m in current_members(family) if m.is_head), None)


def family_view(db: Session, family: Family, *, pii: PersonalData) -> dict[str, Any]:
    town = db.get(Town, family.town_id)
    village = db.get(Village, family.village_id) if family.village_id else None
    return {
        "id": family.id,
        "head_name": head_name(family),
        "town": {"code": town.code, "name": town.name} if town else None,
        "village": {"code": village.code, "name": village.name} if village else None,
        "address": family.address,
        "source": family.source.value,
        "version": family.version,
        "members": [member_view(m, pii=pii) for m in current_members(family)],
        "former_members": [
            member_view(m, pii=pii) for m in family.members if m.left_at is not None
        ],
        "created_at": family.created_at,
        "updated_at": family.updated_at,
    }


def list_families(
    db: Session,
    *,
    actor: Actor,
    town_code: str | None = None,
    village_code: str | None = None,
    name: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> tuple[list[Family], int]:
    """Households in `actor`'s area, newest first; `name` finds any current member's name."""
    require_role(actor, *READERS)
    query = scope_families(select(Family), actor)
    if town_code:
        query = query.join(Town, Town.id == Family.town_id).where(Town.code == town_code)
    if village_code:
        query = query.join(Village, Village.id == Family.village_id).where(
            Village.code == village_code
        )
    if name:
        query = query.where(
            Family.id.in_(
                select(FamilyMember.family_id).where(
                    FamilyMember.left_at.is_(None), FamilyMember.name.contains(name)
                )
            )
        )
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(Family.id.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    return list(rows), total


# --- A lead's household (shown, never scored) ----------------------------------------------


def lead_household(
    db: Session, lead: Lead, *, actor: Actor, pii: PersonalData | None = None
) -> dict[str, Any] | None:
    """The household of a lead's person, and the open leads of its other current members that
    `actor` may see. Shown beside the lead so staff see the family at once; the priority of no
    lead changes. With `pii`, people are matched under every listed key (from their sealed ID
    numbers), so a lead and a member keyed differently during a re-keying window still meet."""

    def hashes(sealed: str | None, stored: str | None) -> tuple[str, ...]:
        if pii is None:
            return () if stored is None else (stored,)
        return pii.hashes_of_sealed(sealed, stored)

    membership = current_membership(db, hashes(lead.id_number_enc, lead.person_hash))
    if membership is None:
        return None
    family = membership.family
    others = {
        h: m
        for m in current_members(family)
        if m.id_hash and m.id != membership.id
        for h in hashes(m.id_number_enc, m.id_hash)
    }
    open_leads = []
    if others:
        query = scope_leads(
            select(Lead).where(
                Lead.person_hash.in_(list(others)),
                or_(*(Lead.status == s for s in OPEN_STATUSES)),
            ),
            actor,
        )
        for other in db.scalars(query.order_by(Lead.priority.desc(), Lead.id)):
            member = others[other.person_hash]
            open_leads.append(
                {
                    "lead_id": other.id,
                    "name": other.name,
                    "relation": member.relation,
                    "status": other.status.value,
                    "priority": other.priority,
                }
            )
    return {
        "id": family.id,
        "head_name": head_name(family),
        "relation": membership.relation,
        "members": len(current_members(family)),
        "other_open_leads": open_leads,
    }
