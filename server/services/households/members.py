"""Building households from what we receive, and staff's edits and moves of their members.

Built from: an application (the applicant and the household members they listed), a visit (the
head of household and the members the helper recorded), the roster (a recipient nobody listed
yet). A person already a current member of a household is never moved by what we receive; only
staff move people (`move_member`), which ends one membership and opens another.

Who may: center staff and leaders read every household; town staff read and edit their town's;
helpers read and edit their village's; anyone else is refused (403 by role, 404 by area).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from server.db import savepoint
from server.errors import Conflict, NotFound, ValidationFailed
from server.models import (
    OPEN_STATUSES,
    Application,
    Family,
    FamilyMember,
    FamilySource,
    Lead,
    Role,
    RosterEntry,
    Town,
    Village,
    Visit,
)
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.pii import PersonalData
from server.services.leads import scope_leads

#: Who reads households (each within their area).
READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.HELPER)
#: Who edits them: town staff (their town) and helpers (their village).
EDITORS = (Role.TOWN_STAFF, Role.HELPER)
HEAD = "户主"


class MemberElsewhere(Conflict):
    code = "member_elsewhere"
    message = "该居民已是另一户的成员，请通过“迁移”将其转入本户"


def _invalid(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, errors={field: [message]})


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


def current_membership(db: Session, id_hash: str | None) -> FamilyMember | None:
    """The person's current membership (at most one), by the keyed hash of their ID number."""
    if id_hash is None:
        return None
    return db.scalar(
        select(FamilyMember).where(FamilyMember.id_hash == id_hash, FamilyMember.left_at.is_(None))
    )


def current_members(family: Family) -> list[FamilyMember]:
    return [m for m in family.members if m.left_at is None]


# --- Built from what we receive --------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Someone named in an application, a visit or the roster."""

    name: str
    relation: str
    id_number_enc: str | None = None
    id_hash: str | None = None


def _person(
    pii: PersonalData | None, name: str, relation: str, id_number_enc: str | None
) -> Person | None:
    """The person as listed; None for one with an ID number when no key is at hand to hash it
    (`rebuild` places them later)."""
    id_hash = None
    if id_number_enc:
        if pii is None:
            return None
        value = pii.open(id_number_enc)
        id_hash = pii.hash(value) if value else None
    return Person(name.strip()[:50], relation.strip()[:20] or "家庭成员", id_number_enc, id_hash)


def absorb_application(
    db: Session, application: Application, *, pii: PersonalData | None, now: datetime
) -> Family:
    """The applicant's household, opened with them as head if they belong to none, and the
    household members they listed (relation to the applicant). Without `pii` (a decision's
    hook) members listed with an ID number wait for `rebuild`."""
    anchor = Person(application.name, HEAD, application.id_number_enc, application.id_hash)
    others = _listed(pii, application.household)
    return _absorb(
        db,
        anchor,
        others,
        town_id=application.town_id,
        village_id=application.village_id,
        address=application.address,
        source=FamilySource.APPLICATION,
        now=now,
    )


def _listed(pii: PersonalData | None, members: list[Any] | None) -> list[Person]:
    listed = (
        _person(pii, m.get("name") or "", m.get("relation") or "", m.get("id_number_enc"))
        for m in members or []
        if (m.get("name") or "").strip()
    )
    return [p for p in listed if p is not None]


def absorb_visit(db: Session, visit: Visit, *, pii: PersonalData, now: datetime) -> Family:
    """The visited household: its head, and the members the helper recorded."""
    anchor = Person(visit.head_name, HEAD, visit.head_id_enc, visit.head_id_hash)
    others = _listed(pii, visit.members)
    return _absorb(
        db,
        anchor,
        others,
        town_id=visit.town_id,
        village_id=visit.village_id,
        address=visit.address,
        source=FamilySource.VISIT,
        now=now,
    )


def absorb_roster(db: Session, entry: RosterEntry, *, now: datetime) -> Family | None:
    """A roster recipient in no household yet gets one of their own (their town, no village)."""
    if entry.town_id is None:
        return None
    anchor = Person(entry.name, HEAD, entry.id_number_enc, entry.person_hash)
    return _absorb(
        db,
        anchor,
        [],
        town_id=entry.town_id,
        village_id=None,
        address=None,
        source=FamilySource.ROSTER,
        now=now,
    )


def _absorb(
    db: Session,
    anchor: Person,
    others: list[Person],
    *,
    town_id: int,
    village_id: int | None,
    address: str | None,
    source: FamilySource,
    now: datetime,
) -> Family:
    for attempt in (1, 2):
        try:
            with savepoint(db):
                family = _absorb_once(
                    db,
                    anchor,
                    others,
                    town_id=town_id,
                    village_id=village_id,
                    address=address,
                    source=source,
                    now=now,
                )
                db.flush()
            return family
        except IntegrityError:  # someone else placed one of these people at the same moment
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _absorb_once(
    db: Session,
    anchor: Person,
    others: list[Person],
    *,
    town_id: int,
    village_id: int | None,
    address: str | None,
    source: FamilySource,
    now: datetime,
) -> Family:
    membership = current_membership(db, anchor.id_hash)
    if membership is not None:
        family = membership.family
        prefix = "" if membership.is_head else f"{membership.name}的"
        if family.village_id is None and village_id is not None:
            family.village_id = village_id
        if not family.address and address:
            family.address = address
    else:
        family = Family(
            town_id=town_id,
            village_id=village_id,
            address=address,
            source=source,
            created_at=now,
            updated_at=now,
        )
        db.add(family)
        db.flush()
        _join(db, family, anchor, is_head=True, source=source, now=now)
        prefix = ""
    for person in others:
        relation = f"{prefix}{person.relation}"[:20]
        _place(
            db,
            family,
            Person(person.name, relation, person.id_number_enc, person.id_hash),
            source=source,
            now=now,
        )
    return family


def _place(
    db: Session, family: Family, person: Person, *, source: FamilySource, now: datetime
) -> None:
    """Add `person` to `family` unless they are already in it (by ID, or by name when neither
    has an ID) or already a current member of another household (only staff move people)."""
    present = current_members(family)
    if person.id_hash is not None:
        if any(m.id_hash == person.id_hash for m in present):
            return
        if current_membership(db, person.id_hash) is not None:
            return
        # Someone listed by name earlier: the ID number now completes that member.
        for m in present:
            if m.id_hash is None and m.name == person.name:
                m.id_hash, m.id_number_enc = person.id_hash, person.id_number_enc
                return
    elif any(m.name == person.name for m in present):
        return
    _join(db, family, person, is_head=False, source=source, now=now)


def _join(
    db: Session,
    family: Family,
    person: Person,
    *,
    is_head: bool,
    source: FamilySource,
    now: datetime,
) -> FamilyMember:
    member = FamilyMember(
        family=family,
        name=person.name,
        id_number_enc=person.id_number_enc,
        id_hash=person.id_hash,
        relation=HEAD if is_head else person.relation,
        is_head=is_head,
        source=source,
        joined_at=now,
    )
    db.add(member)
    family.updated_at = now
    db.flush()
    return member


def rebuild(db: Session, *, pii: PersonalData, now: datetime) -> dict[str, int]:
    """Build households from every application, visit and roster entry received so far (safe to
    repeat: people already placed stay where they are). Returns how many households exist."""
    for application in db.scalars(select(Application).order_by(Application.id)):
        absorb_application(db, application, pii=pii, now=now)
    for visit in db.scalars(select(Visit).order_by(Visit.id)):
        absorb_visit(db, visit, pii=pii, now=now)
    for entry in db.scalars(select(RosterEntry).order_by(RosterEntry.id)):
        absorb_roster(db, entry, now=now)
    families = db.scalar(select(func.count()).select_from(Family)) or 0
    members = (
        db.scalar(
            select(func.count()).select_from(FamilyMember).where(FamilyMember.left_at.is_(None))
        )
        or 0
    )
    return {"households": families, "members": members}


# --- Staff's edits -----------------------------------------------------------------------------


def _checked_id(
    pii: PersonalData, raw: str | None, field: str, *, today: date
) -> tuple[str | None, str | None]:
    """(sealed ID, its hash) of a typed ID number, or (None, None) when none was given."""
    if raw is None or not raw.strip():
        return None, None
    checked = idnumber.check(raw, today=today)
    if not checked.ok:
        raise _invalid(field, checked.message, checked.code)
    return pii.seal(checked.value), pii.hash(checked.value)


def _text(raw: str | None, field: str, *, required: bool = False, limit: int = 50) -> str | None:
    value = (raw or "").strip()
    if required and not value:
        raise _invalid(field, "请填写此项")
    return value[:limit] or None


def _audit(
    db: Session, family: Family, action: str, *, actor: Actor, now: datetime, detail: dict[str, Any]
) -> None:
    record(
        db,
        actor=actor,
        action=action,
        target_type="household",
        target_id=family.id,
        now=now,
        detail=detail,
    )


def _village_for_editor(db: Session, code: str, actor: Actor) -> Village:
    village = db.scalar(select(Village).where(Village.code == code))
    if village is None:
        raise NotFound("未找到该村（社区）", code="village_not_found")
    if actor.role is Role.TOWN_STAFF and village.town_id != actor.town_id:
        raise NotFound("未找到该村（社区）", code="village_not_found")
    if actor.role is Role.HELPER and village.id != actor.village_id:
        raise NotFound("未找到该村（社区）", code="village_not_found")
    return village


def create_family(
    db: Session, *, body: dict[str, Any], pii: PersonalData, actor: Actor, now: datetime
) -> Family:
    """Town staff or a helper open a household in their area with its head (and members)."""
    require_role(actor, *EDITORS)
    village = _village_for_editor(db, body["village"], actor)
    head = body["head"]
    name = _text(head.get("name"), "head.name", required=True)
    enc, id_hash = _checked_id(pii, head.get("id_number"), "head.id_number", today=now.date())
    if current_membership(db, id_hash) is not None:
        raise MemberElsewhere(errors={"head.id_number": [MemberElsewhere.message]})
    family = Family(
        town_id=village.town_id,
        village_id=village.id,
        address=_text(body.get("address"), "address", limit=200),
        source=FamilySource.STAFF,
        created_at=now,
        updated_at=now,
    )
    db.add(family)
    db.flush()
    _join(
        db,
        family,
        Person(name or "", HEAD, enc, id_hash),
        is_head=True,
        source=FamilySource.STAFF,
        now=now,
    )
    _audit(db, family, "household.created", actor=actor, now=now, detail={"village": village.code})
    for i, member in enumerate(body.get("members") or []):
        _add(db, family, member, pii=pii, actor=actor, now=now, field=f"members.{i}.")
    return family


def edit_family(
    db: Session, family_id: int, *, body: dict[str, Any], actor: Actor, now: datetime
) -> Family:
    """Change a household's address (or village within the editor's area); stale `version` 409."""
    require_role(actor, *EDITORS)
    family = access_family_by_id(db, family_id, actor=actor)
    if body.get("version") is not None and body["version"] != family.version:
        raise Conflict("该户信息已被他人修改，请刷新后重试", code="household_stale")
    old = {"address": family.address, "village_id": family.village_id}
    if "address" in body:
        family.address = _text(body["address"], "address", limit=200)
    if body.get("village"):
        village = _village_for_editor(db, body["village"], actor)
        family.village_id, family.town_id = village.id, village.town_id
    family.updated_at = now
    db.flush()
    new = {"address": family.address, "village_id": family.village_id}
    _audit(db, family, "household.edited", actor=actor, now=now, detail={"old": old, "new": new})
    return family


def add_member(
    db: Session,
    family_id: int,
    *,
    body: dict[str, Any],
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> FamilyMember:
    """Add a person to a household; one already in another household is 409 (move them)."""
    require_role(actor, *EDITORS)
    family = access_family_by_id(db, family_id, actor=actor)
    return _add(db, family, body, pii=pii, actor=actor, now=now)


def _add(
    db: Session,
    family: Family,
    body: dict[str, Any],
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    field: str = "",
) -> FamilyMember:
    name = _text(body.get("name"), f"{field}name", required=True) or ""
    relation = _text(body.get("relation"), f"{field}relation", required=True, limit=20) or ""
    if relation == HEAD:
        raise _invalid(f"{field}relation", "一户只有一位户主，请先修改现有户主")
    enc, id_hash = _checked_id(pii, body.get("id_number"), f"{field}id_number", today=now.date())
    elsewhere = current_membership(db, id_hash)
    if elsewhere is not None:
        if elsewhere.family_id == family.id:
            raise Conflict("该居民已是本户成员", code="member_present")
        raise MemberElsewhere(errors={f"{field}id_number": [MemberElsewhere.message]})
    member = _join(
        db,
        family,
        Person(name, relation, enc, id_hash),
        is_head=False,
        source=FamilySource.STAFF,
        now=now,
    )
    _audit(
        db,
        family,
        "household.member_added",
        actor=actor,
        now=now,
        detail={"member_id": member.id, "relation": relation, "with_id": id_hash is not None},
    )
    return member


def _member_of(db: Session, family: Family, member_id: int) -> FamilyMember:
    member = db.get(FamilyMember, member_id) if 0 < member_id < 2**63 else None
    if member is None or member.family_id != family.id or member.left_at is not None:
        raise NotFound("未找到该家庭成员", code="member_not_found")
    return member


def edit_member(
    db: Session,
    family_id: int,
    member_id: int,
    *,
    body: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> FamilyMember:
    """Correct a member's name or relation, or make them the head (the old head becomes a
    member with the relation given as `former_head_relation`)."""
    require_role(actor, *EDITORS)
    family = access_family_by_id(db, family_id, actor=actor)
    member = _member_of(db, family, member_id)
    old = {"name": member.name, "relation": member.relation, "is_head": member.is_head}
    if body.get("name"):
        member.name = _text(body["name"], "name", required=True) or member.name
    if body.get("is_head") and not member.is_head:
        for other in current_members(family):
            if other.is_head:
                other.is_head = False
                other.relation = (
                    _text(body.get("former_head_relation"), "former_head_relation", limit=20)
                    or "家庭成员"
                )
        member.is_head, member.relation = True, HEAD
    elif body.get("relation") and not member.is_head:
        relation = _text(body["relation"], "relation", required=True, limit=20) or ""
        if relation == HEAD:
            raise _invalid("relation", "设为户主请使用“设为户主”")
        member.relation = relation
    family.updated_at = now
    db.flush()
    new = {"name": member.name, "relation": member.relation, "is_head": member.is_head}
    _audit(
        db,
        family,
        "household.member_edited",
        actor=actor,
        now=now,
        detail={"member_id": member.id, "old": old, "new": new},
    )
    return member


def move_member(
    db: Session,
    family_id: int,
    member_id: int,
    *,
    to_family_id: int,
    relation: str,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> FamilyMember:
    """Move a person to another household in the editor's area: the old membership ends (kept,
    with where they went), a new one begins. Returns the new membership."""
    require_role(actor, *EDITORS)
    family = access_family_by_id(db, family_id, actor=actor, for_update=True)
    member = _member_of(db, family, member_id)
    if to_family_id == family_id:
        raise _invalid("to_household_id", "请选择另一户")
    target = access_family_by_id(db, to_family_id, actor=actor, for_update=True)
    relation = _text(relation, "relation", required=True, limit=20) or ""
    if relation == HEAD and any(m.is_head for m in current_members(target)):
        raise _invalid("relation", "目标户已有户主")
    member.left_at = now
    member.moved_to_family_id = target.id
    member.left_reason = _text(reason, "reason", limit=200)
    family.updated_at = now
    db.flush()
    moved = _join(
        db,
        target,
        Person(member.name, relation, member.id_number_enc, member.id_hash),
        is_head=relation == HEAD,
        source=FamilySource.STAFF,
        now=now,
    )
    moved.relation = relation
    db.flush()
    detail = {"member_id": member.id, "from": family.id, "to": target.id, "reason": reason}
    _audit(db, family, "household.member_moved_out", actor=actor, now=now, detail=detail)
    _audit(
        db,
        target,
        "household.member_moved_in",
        actor=actor,
        now=now,
        detail={**detail, "new_member_id": moved.id},
    )
    return moved


def remove_member(
    db: Session, family_id: int, member_id: int, *, reason: str, actor: Actor, now: datetime
) -> FamilyMember:
    """A member leaves (died, moved out of the district): the membership ends and is kept."""
    require_role(actor, *EDITORS)
    family = access_family_by_id(db, family_id, actor=actor)
    member = _member_of(db, family, member_id)
    member.left_at = now
    member.left_reason = _text(reason, "reason", required=True, limit=200)
    member.is_head = member.is_head  # the household keeps no head until staff name one
    family.updated_at = now
    db.flush()
    _audit(
        db,
        family,
        "household.member_left",
        actor=actor,
        now=now,
        detail={"member_id": member.id, "reason": member.left_reason},
    )
    return member


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


def lead_household(db: Session, lead: Lead, *, actor: Actor) -> dict[str, Any] | None:
    """The household of a lead's person, and the open leads of its other current members that
    `actor` may see. Shown beside the lead so staff see the family at once; the priority of no
    lead changes."""
    membership = current_membership(db, lead.person_hash)
    if membership is None:
        return None
    family = membership.family
    others = {m.id_hash: m for m in current_members(family) if m.id_hash and m.id != membership.id}
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


def queue_households(
    conn: Connection, lead_ids: list[int], *, actor: Actor
) -> dict[int, tuple[int, list[int]]]:
    """For a page of the queue: each lead's household and the other members' open leads that
    `actor` may see, as {lead id: (household id, [lead ids])}, in two statements whatever the
    page's size. Shown beside each lead; no priority changes."""
    if not lead_ids:
        return {}
    mine = aliased(FamilyMember)
    rows = conn.execute(
        select(Lead.id, mine.family_id)
        .join(mine, (mine.id_hash == Lead.person_hash) & mine.left_at.is_(None))
        .where(Lead.id.in_(lead_ids))
    ).all()
    found = {lead_id: (family_id, []) for lead_id, family_id in rows}
    if not found:
        return {}
    other = aliased(FamilyMember)
    by_family: dict[int, list[int]] = {}
    query = scope_leads(
        select(other.family_id, Lead.id)
        .join(other, (other.id_hash == Lead.person_hash) & other.left_at.is_(None))
        .where(
            other.family_id.in_({f for f, _ in found.values()}),
            or_(*(Lead.status == s for s in OPEN_STATUSES)),
        )
        .order_by(Lead.priority.desc(), Lead.id),
        actor,
    )
    for family_id, lead_id in conn.execute(query):
        by_family.setdefault(family_id, []).append(lead_id)
    for lead_id, (family_id, others) in found.items():
        others.extend(i for i in by_family.get(family_id, []) if i != lead_id)
    return found
