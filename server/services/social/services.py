"""Services given to households by organisations (家境调查, 人文关怀, 心理疏导, 资源链接,
能力提升, 社会融入).

The center (any lead) or a town (its own leads) assigns a service to an organisation serving
the household's town, from a lead whose person belongs to a household. The organisation's
volunteers see their organisation's assignments (the household's head, village and address,
what is needed; never an ID number) and record the service given (date, duration, notes,
photos), which completes the assignment. The household's chain shows both; the center counts
services by organisation and kind.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import Conflict, NotFound, invalid
from server.models import (
    Family,
    Role,
    ServiceAssignment,
    ServiceKind,
    ServicePhoto,
    ServiceRecord,
    SocialOrg,
    SocialOrgTown,
    Village,
)
from server.services.applications.photos import owned_photo_ids
from server.services.households.members import access_family_by_id, current_membership, head_name
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.pii import PersonalData
from server.services.leads.access import access_lead_by_id
from server.services.social.orgs import membership_of

KIND_LABELS = {
    ServiceKind.HOUSEHOLD_SURVEY: "家境调查",
    ServiceKind.HUMANISTIC_CARE: "人文关怀",
    ServiceKind.COUNSELLING: "心理疏导",
    ServiceKind.RESOURCE_LINKING: "资源链接",
    ServiceKind.CAPACITY_BUILDING: "能力提升",
    ServiceKind.SOCIAL_INTEGRATION: "社会融入",
}
ASSIGNERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)
READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.VOLUNTEER)
RECORDERS = (Role.VOLUNTEER, Role.CENTER_STAFF)
MAX_PHOTOS = 9


def _active_org_serving(db: Session, org_id: int, town_id: int) -> SocialOrg:
    org = db.get(SocialOrg, org_id) if 0 < org_id < 2**63 else None
    if org is None or not org.is_active:
        raise invalid("org_id", "未找到该组织或已停用", "org_not_found")
    serves = db.scalar(
        select(SocialOrgTown.town_id).where(
            SocialOrgTown.org_id == org.id, SocialOrgTown.town_id == town_id
        )
    )
    if serves is None:
        raise invalid("org_id", "该组织不服务该户所在镇街", "org_not_serving")
    return org


def assign_service(
    db: Session,
    *,
    body: dict[str, Any],
    actor: Actor,
    now: datetime,
    pii: PersonalData | None = None,
) -> ServiceAssignment:
    """Ask an organisation to serve the household of a lead's person. Audited."""
    require_role(actor, *ASSIGNERS)
    lead = access_lead_by_id(db, body["lead_id"], actor=actor)
    # Under every listed key when a key is at hand (a re-keying window, kernel/rotation.py).
    found = pii.hashes_of_sealed(lead.id_number_enc, lead.person_hash) if pii else None
    membership = current_membership(db, found or lead.person_hash)
    if membership is None:
        raise invalid("lead_id", "该线索的当事人尚未建立户档案", "lead_without_household")
    family = membership.family
    org = _active_org_serving(db, body["org_id"], family.town_id)
    today = now.astimezone(TZ).date()
    due_on = body.get("due_on") or today
    if due_on < today:
        raise invalid("due_on", "完成期限不能早于今天")
    instructions = (body.get("instructions") or "").strip()
    if not instructions:
        raise invalid("instructions", "请填写服务需求")
    assignment = ServiceAssignment(
        org_id=org.id,
        family_id=family.id,
        lead_id=lead.id,
        town_id=family.town_id,
        kind=ServiceKind(body["kind"]),
        instructions=instructions[:500],
        due_on=due_on,
        assigned_by_id=actor.user_id,
        assigned_at=now,
    )
    db.add(assignment)
    db.flush()
    record(
        db,
        actor=actor,
        action="service.assigned",
        target_type="household",
        target_id=family.id,
        now=now,
        detail={
            "assignment": assignment.id,
            "org": org.id,
            "kind": assignment.kind.value,
            "lead_id": lead.id,
        },
    )
    return assignment


def _scoped_assignments(db: Session, query: Select, actor: Actor) -> Select:
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF:
        return query.where(ServiceAssignment.town_id == actor.town_id)
    if actor.role is Role.VOLUNTEER:
        return query.where(ServiceAssignment.org_id == membership_of(db, actor).org_id)
    return query.where(false())


def list_assignments(
    db: Session, *, actor: Actor, open_only: bool = False
) -> list[ServiceAssignment]:
    require_role(actor, *READERS)
    query = _scoped_assignments(db, select(ServiceAssignment), actor)
    if open_only:
        query = query.where(ServiceAssignment.done_at.is_(None))
    return list(db.scalars(query.order_by(ServiceAssignment.due_on, ServiceAssignment.id)))


def assignment_view(db: Session, a: ServiceAssignment) -> dict[str, Any]:
    family = db.get(Family, a.family_id)
    org = db.get(SocialOrg, a.org_id)
    village = db.get(Village, family.village_id) if family and family.village_id else None
    return {
        "id": a.id,
        "org_id": a.org_id,
        "org_name": org.name if org else "",
        "kind": a.kind.value,
        "kind_label": KIND_LABELS[a.kind],
        "household": {
            "id": a.family_id,
            "head_name": head_name(family) if family else None,
            "village": village.name if village else None,
            "address": family.address if family else None,
        },
        "instructions": a.instructions,
        "due_on": a.due_on,
        "assigned_at": a.assigned_at,
        "done_at": a.done_at,
    }


def record_service(
    db: Session, *, body: dict[str, Any], actor: Actor, now: datetime
) -> ServiceRecord:
    """A volunteer records the service their organisation gave for an assignment; the center
    records one for an organisation and household directly. Audited."""
    require_role(actor, *RECORDERS)
    assignment = None
    if body.get("assignment_id") is not None:
        query = _scoped_assignments(
            db,
            select(ServiceAssignment).where(ServiceAssignment.id == body["assignment_id"]),
            actor,
        )
        assignment = db.scalar(query.with_for_update())
        if assignment is None:
            raise NotFound("未找到该服务任务", code="assignment_not_found")
        if assignment.done_at is not None:
            raise Conflict("该服务任务已完成", code="assignment_done")
        org_id, family_id, kind = assignment.org_id, assignment.family_id, assignment.kind
    elif actor.role is Role.CENTER_STAFF:
        if body.get("org_id") is None or body.get("household_id") is None or not body.get("kind"):
            raise invalid("assignment_id", "请选择服务任务，或填写组织、受助户和服务类别")
        family = access_family_by_id(db, body["household_id"], actor=actor)
        org_id = _active_org_serving(db, body["org_id"], family.town_id).id
        family_id, kind = family.id, ServiceKind(body["kind"])
    else:
        raise invalid("assignment_id", "请选择服务任务")
    family = db.get(Family, family_id)
    assert family is not None
    today = now.astimezone(TZ).date()
    served_on: date = body["served_on"]
    if served_on > today:
        raise invalid("served_on", "服务日期不能晚于今天")
    notes = (body.get("notes") or "").strip()
    if not notes:
        raise invalid("notes", "请填写服务情况")
    photo_ids = list(dict.fromkeys(body.get("photo_ids") or []))
    if len(photo_ids) > MAX_PHOTOS:
        raise invalid("photo_ids", f"最多{MAX_PHOTOS}张照片")
    if owned_photo_ids(db, photo_ids, actor=actor) != set(photo_ids):
        raise invalid("photo_ids", "只能使用您本人上传的照片", "photo_not_owned")
    service = ServiceRecord(
        org_id=org_id,
        family_id=family_id,
        assignment_id=assignment.id if assignment else None,
        town_id=family.town_id,
        kind=kind,
        served_on=served_on,
        duration_minutes=body["duration_minutes"],
        notes=notes[:1000],
        photo_ids=photo_ids,
        recorded_by_id=actor.user_id,
        created_at=now,
    )
    db.add(service)
    if assignment is not None:
        assignment.done_at = now
    db.flush()
    db.add_all(ServicePhoto(record_id=service.id, photo_id=p) for p in photo_ids)
    record(
        db,
        actor=actor,
        action="service.recorded",
        target_type="household",
        target_id=family_id,
        now=now,
        detail={
            "service": service.id,
            "org": org_id,
            "kind": kind.value,
            "assignment": service.assignment_id,
            "minutes": service.duration_minutes,
        },
    )
    db.flush()
    return service


def service_view(db: Session, s: ServiceRecord) -> dict[str, Any]:
    org = db.get(SocialOrg, s.org_id)
    return {
        "id": s.id,
        "org_id": s.org_id,
        "org_name": org.name if org else "",
        "household_id": s.family_id,
        "assignment_id": s.assignment_id,
        "kind": s.kind.value,
        "kind_label": KIND_LABELS[s.kind],
        "served_on": s.served_on,
        "duration_minutes": s.duration_minutes,
        "notes": s.notes,
        "photo_ids": list(s.photo_ids),
        "created_at": s.created_at,
    }


def list_services(db: Session, *, actor: Actor) -> list[ServiceRecord]:
    """Services recorded: the center and leaders all; a town its own; a volunteer their
    organisation's."""
    require_role(actor, *READERS)
    query = select(ServiceRecord)
    if actor.role is Role.TOWN_STAFF:
        query = query.where(ServiceRecord.town_id == actor.town_id)
    elif actor.role is Role.VOLUNTEER:
        query = query.where(ServiceRecord.org_id == membership_of(db, actor).org_id)
    return list(db.scalars(query.order_by(ServiceRecord.id.desc()).limit(200)))


def counts(
    db: Session, *, actor: Actor, start: date | None = None, end: date | None = None
) -> list[dict[str, Any]]:
    """Services by organisation and kind (the center's count), optionally within dates."""
    require_role(actor, Role.CENTER_STAFF, Role.LEADER)
    query = (
        select(
            SocialOrg.id,
            SocialOrg.name,
            ServiceRecord.kind,
            func.count(),
            func.coalesce(func.sum(ServiceRecord.duration_minutes), 0),
            func.count(ServiceRecord.family_id.distinct()),
        )
        .join(SocialOrg, SocialOrg.id == ServiceRecord.org_id)
        .group_by(SocialOrg.id, SocialOrg.name, ServiceRecord.kind)
        .order_by(SocialOrg.id, ServiceRecord.kind)
    )
    if start is not None:
        query = query.where(ServiceRecord.served_on >= start)
    if end is not None:
        query = query.where(ServiceRecord.served_on < end)
    return [
        {
            "org_id": org_id,
            "org_name": name,
            "kind": kind.value,
            "kind_label": KIND_LABELS[kind],
            "services": n,
            "minutes": int(minutes),
            "households": households,
        }
        for org_id, name, kind, n, minutes, households in db.execute(query)
    ]


def monthly_figures(
    db: Session, *, start: date, end: date, town_id: int | None = None
) -> dict[str, Any]:
    query = (
        select(ServiceRecord.kind, func.count(), func.count(ServiceRecord.family_id.distinct()))
        .where(ServiceRecord.served_on >= start, ServiceRecord.served_on < end)
        .group_by(ServiceRecord.kind)
        .order_by(ServiceRecord.kind)
    )
    if town_id is not None:
        query = query.where(ServiceRecord.town_id == town_id)
    by_kind = [
        {"kind": kind.value, "label": KIND_LABELS[kind], "services": n, "households": h}
        for kind, n, h in db.execute(query)
    ]
    return {"services": sum(k["services"] for k in by_kind), "by_kind": by_kind}
