"""Staff's edits of households: create one, edit it, add, edit, move and remove members, each
audited. Town staff edit their town's households, helpers their village's; a move ends one
membership and opens another.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, NotFound, invalid
from server.models import (
    Family,
    FamilyMember,
    FamilySource,
    Role,
    Village,
)
from server.services.households.building import Person, join
from server.services.households.members import (
    EDITORS,
    HEAD,
    MemberElsewhere,
    access_family_by_id,
    current_members,
    current_membership,
)
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.pii import PersonalData


def _sealed_id(
    pii: PersonalData, raw: str | None, field: str, *, today: date
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(sealed ID, its hash, its hashes under every listed key) of a typed ID number, or
    (None, None, ()) when none was given."""
    value = idnumber.checked_id(raw, field=field, today=today, required=False)
    if value is None:
        return None, None, ()
    return pii.seal(value), pii.hash(value), pii.hashes(value)


def _text(raw: str | None, field: str, *, required: bool = False, limit: int = 50) -> str | None:
    value = (raw or "").strip()
    if required and not value:
        raise invalid(field, "请填写此项")
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
    enc, id_hash, lookup = _sealed_id(
        pii, head.get("id_number"), "head.id_number", today=now.date()
    )
    if current_membership(db, lookup) is not None:
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
    join(
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
        raise invalid(f"{field}relation", "一户只有一位户主，请先修改现有户主")
    enc, id_hash, lookup = _sealed_id(
        pii, body.get("id_number"), f"{field}id_number", today=now.date()
    )
    elsewhere = current_membership(db, lookup)
    if elsewhere is not None:
        if elsewhere.family_id == family.id:
            raise Conflict("该居民已是本户成员", code="member_present")
        raise MemberElsewhere(errors={f"{field}id_number": [MemberElsewhere.message]})
    member = join(
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
            raise invalid("relation", "设为户主请使用“设为户主”")
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
        raise invalid("to_household_id", "请选择另一户")
    target = access_family_by_id(db, to_family_id, actor=actor, for_update=True)
    relation = _text(relation, "relation", required=True, limit=20) or ""
    if relation == HEAD and any(m.is_head for m in current_members(target)):
        raise invalid("relation", "目标户已有户主")
    member.left_at = now
    member.moved_to_family_id = target.id
    member.left_reason = _text(reason, "reason", limit=200)
    family.updated_at = now
    db.flush()
    moved = join(
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
