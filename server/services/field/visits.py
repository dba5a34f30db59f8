"""Visits (摸排巡查): helpers record household visits and calls; hardship reaches the town at once.

A visit finding severe or urgent hardship becomes evidence on the head of household's lead
(channel `visit`) in the same transaction, so the town's staff see it in their queue the same
day. Each household keeps one ledger row per village carrying its latest assessment.

Helpers see and edit their own village's records, town staff their town's, the center all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.errors import Conflict, NotFound, invalid
from server.models import (
    Cause,
    Channel,
    Hardship,
    Health,
    Household,
    HouseholdCategory,
    LabourCapacity,
    Role,
    Village,
    Visit,
    VisitPhoto,
)
from server.services.field.visit_form import (
    CAUSE_LABELS,
    DEFAULT_CYCLE_DAYS,
    HARDSHIP_LABELS,
    HEALTH_LABELS,
    KIND_LABELS,
    LABOUR_LABELS,
    checked_fields,
    checked_text,
)
from server.services.households.building import absorb_visit
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role, scope_by_area
from server.services.kernel.audit import record
from server.services.kernel.idempotency import create_once
from server.services.kernel.pii import PersonalData
from server.services.leads.core import CATEGORIES, Signal, record_signal

#: Who records and edits visits.
RECORDERS = (Role.HELPER, Role.TOWN_STAFF, Role.CENTER_STAFF)


#: Hardship that is reported to the town's lead queue the day it is found.
REPORTED = frozenset({Hardship.SEVERE, Hardship.URGENT})
#: Queue priority and its reason for each reported degree.
_PRIORITY: dict[Hardship, tuple[int, str]] = {
    Hardship.SEVERE: (2, "走访发现：基本生活严重困难"),
    Hardship.URGENT: (3, "走访发现：急难情况"),
}
#: Lead categories a cause suggests (the categories the lead queue knows).
_CAUSE_CATEGORIES: dict[Cause, str] = {
    Cause.ILLNESS: "illness",
    Cause.DISABILITY: "disabled",
    Cause.ACCIDENT: "accident",
    Cause.DISASTER: "disaster",
    Cause.SCHOOLING: "education",
}


@dataclass(frozen=True, slots=True)
class Recorded:
    visit: Visit
    #: True when this visit put evidence on a lead (a new one, or a newly reported degree).
    reported: bool


# --- access -------------------------------------------------------------------------------


def _visible(query: Select, actor: Actor, *, town_col: Any, village_col: Any) -> Select:
    """Visits and ledger rows: helpers their village, towns their town, the center all."""
    return scope_by_area(query, actor, town_col=town_col, village_col=village_col)


def access_visit_by_id(db: Session, visit_id: int, *, actor: Actor) -> Visit:
    """The visit if `actor` may see it, else 404 (other villages' records are not theirs)."""
    query = _visible(
        select(Visit), actor, town_col=Visit.town_id, village_col=Visit.village_id
    ).where(Visit.id == visit_id)
    visit = db.scalar(query)
    if visit is None:
        raise NotFound("未找到该走访记录", code="visit_not_found")
    return visit


def _village_in_scope(db: Session, code: str, *, actor: Actor) -> Village:
    """The village by code if it lies in `actor`'s area, else 404."""
    query = _visible(
        select(Village), actor, town_col=Village.town_id, village_col=Village.id
    ).where(Village.code == code)
    village = db.scalar(query)
    if village is None:
        raise NotFound("未找到该村（社区）", code="village_not_found")
    return village


# --- recording ----------------------------------------------------------------------------


def record_visit(
    db: Session,
    *,
    body: dict[str, Any],
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    idempotency_key: str | None = None,
) -> Recorded:
    """Record a visit or call; open or update the household's ledger row; report hardship.

    A retry with the same `idempotency_key` returns the first visit (reported=False).
    """
    require_role(actor, *RECORDERS)
    assert actor.user_id is not None
    recorded: list[Recorded] = []

    def create() -> int:
        recorded.append(_record_visit(db, body=body, pii=pii, actor=actor, now=now))
        return recorded[0].visit.id

    visit_id, created = create_once(
        db,
        user_id=actor.user_id,
        key=idempotency_key,
        scope="visit",
        body=body,
        now=now,
        create=create,
    )
    return recorded[0] if created else Recorded(db.get(Visit, visit_id), reported=False)


def _record_visit(
    db: Session, *, body: dict[str, Any], pii: PersonalData, actor: Actor, now: datetime
) -> Recorded:
    today = now.date()
    village = _village_in_scope(db, body["village"], actor=actor)
    head = body["head"]
    head_id = idnumber.checked_id(head["id_number"], field="head.id_number", today=today)
    head_name = checked_text(head["name"], "head.name")
    if not head_name:
        raise invalid("head.name", "请填写户主姓名")
    values = checked_fields(db, body, pii=pii, actor=actor, today=today)
    household = _household_for(db, village=village, head_id=head_id, pii=pii, now=now)
    household.head_name = head_name
    visit = Visit(
        recorded_by_id=actor.user_id,
        town_id=village.town_id,
        village_id=village.id,
        head_name=head_name,
        head_id_enc=household.head_id_enc or pii.seal(head_id),
        head_id_hash=pii.hash(head_id),
        created_at=now,
        updated_at=now,
        **values,
    )
    visit.household = household
    db.add(visit)
    db.flush()
    _link_photos(db, visit)
    reported = _report(db, visit, pii=pii, actor=actor, now=now)
    _refresh_household(db, household, now=now)
    absorb_visit(db, visit, pii=pii, now=now)
    record(
        db,
        actor=actor,
        action="visit.recorded",
        target_type="visit",
        target_id=visit.id,
        now=now,
        detail={"hardship": visit.hardship.value, "reported": reported},
    )
    db.flush()
    return Recorded(visit, reported)


def edit_visit(
    db: Session,
    visit_id: int,
    *,
    changes: dict[str, Any],
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> Recorded:
    """Correct or complete a visit. Raising the hardship to severe or urgent reports it then."""
    require_role(actor, *RECORDERS)
    visit = access_visit_by_id(db, visit_id, actor=actor)
    expected = changes.pop("version", None)
    if expected is not None and expected != visit.version:
        raise Conflict("走访记录已被他人修改，请刷新后重试", code="visit_stale")
    merged = {**_current(visit, pii=pii), **changes}
    if (
        "hardship" in changes
        and changes.get("next_visit_on") is None
        and DEFAULT_CYCLE_DAYS[Hardship(changes["hardship"])] < DEFAULT_CYCLE_DAYS[visit.hardship]
    ):
        # Raised hardship brings its shorter cycle (7 days for severe or urgent): the next
        # visit is worked out again unless the helper chose one. Lowered, the date stands.
        merged["next_visit_on"] = None
    values = checked_fields(db, merged, pii=pii, actor=actor, today=now.date(), previous=visit)
    old = {k: _plain(getattr(visit, k)) for k in values if k not in ("phone_enc", "members")}
    for key, value in values.items():
        setattr(visit, key, value)
    visit.edited_by_id = actor.user_id
    visit.updated_at = now
    db.flush()
    _link_photos(db, visit)
    reported = _report(db, visit, pii=pii, actor=actor, now=now)
    _refresh_household(db, visit.household, now=now)
    new = {k: _plain(getattr(visit, k)) for k in old}
    record(
        db,
        actor=actor,
        action="visit.edited",
        target_type="visit",
        target_id=visit.id,
        now=now,
        detail={
            "old": {k: v for k, v in old.items() if new[k] != v},
            "new": {k: v for k, v in new.items() if old[k] != v},
            "reported": reported,
        },
    )
    db.flush()
    return Recorded(visit, reported)


def _link_photos(db: Session, visit: Visit) -> None:
    """Keep the visit's photo links equal to its `photo_ids`."""
    linked = set(db.scalars(select(VisitPhoto.photo_id).where(VisitPhoto.visit_id == visit.id)))
    wanted = set(visit.photo_ids)
    if linked - wanted:
        db.execute(
            delete(VisitPhoto).where(
                VisitPhoto.visit_id == visit.id, VisitPhoto.photo_id.in_(linked - wanted)
            )
        )
    db.add_all(VisitPhoto(visit_id=visit.id, photo_id=p) for p in sorted(wanted - linked))
    db.flush()


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return value


def _current(visit: Visit, *, pii: PersonalData) -> dict[str, Any]:
    """The visit's editable fields in the shape the API takes them (members keep sealed IDs)."""
    return {
        "kind": visit.kind.value,
        "phone": pii.open(visit.phone_enc),
        "address": visit.address,
        "members": [
            {"name": m["name"], "relation": m["relation"], "sealed": m.get("id_number_enc")}
            for m in visit.members
        ],
        "health": visit.health.value,
        "labour_capacity": visit.labour_capacity.value,
        "hardship": visit.hardship.value,
        "causes": list(visit.causes),
        "categories": list(visit.categories),
        "needs": visit.needs,
        "note": visit.note,
        "photo_ids": list(visit.photo_ids),
        "visited_on": visit.visited_on,
        "next_visit_on": visit.next_visit_on,
    }


def _household_for(
    db: Session, *, village: Village, head_id: str, pii: PersonalData, now: datetime
) -> Household:
    """The household's ledger row in `village`, opened on its first visit.

    The unique (village, head) constraint settles two first visits at once: the loser of the
    race reads the winner's row.
    """
    id_hash = pii.hash(head_id)
    query = select(Household).where(
        Household.village_id == village.id, Household.head_id_hash.in_(pii.hashes(head_id))
    )
    household = db.scalar(query)
    if household is not None:
        return household
    try:
        with savepoint(db):
            household = Household(
                town_id=village.town_id,
                village_id=village.id,
                head_name="",
                head_id_enc=pii.seal(head_id),
                head_id_hash=id_hash,
                members=[],
                causes=[],
                created_at=now,
                updated_at=now,
                # Placeholders until the first visit is copied in by _refresh_household.
                health=Health.HEALTHY,
                labour_capacity=LabourCapacity.FULL,
                hardship=Hardship.NONE,
                last_visited_on=now.date(),
                next_visit_on=now.date(),
            )
            db.add(household)
            db.flush()
    except IntegrityError:
        household = db.scalar(query)
        if household is None:
            raise
    return household


def _report(db: Session, visit: Visit, *, pii: PersonalData, actor: Actor, now: datetime) -> bool:
    """Put a severe or urgent finding on the person's lead, once per visit and degree."""
    if visit.hardship not in REPORTED:
        return False
    priority, reason = _PRIORITY[visit.hardship]
    causes = [Cause(c) for c in visit.causes]
    categories = [*visit.categories]
    categories += [_CAUSE_CATEGORIES[c] for c in causes if c in _CAUSE_CATEGORIES]
    phone = pii.open(visit.phone_enc)
    summary = (
        f"{KIND_LABELS[visit.kind]}：{HARDSHIP_LABELS[visit.hardship]}"
        + (f"（{'、'.join(CAUSE_LABELS[c] for c in causes)}）" if causes else "")
        + (f"，{visit.needs}" if visit.needs else "")
    )
    outcome = record_signal(
        db,
        Signal(
            channel=Channel.VISIT,
            name=visit.head_name,
            summary=summary,
            dedup_key=f"visit:{visit.id}:{visit.hardship.value}",
            person_hash=visit.head_id_hash,
            person_hashes=pii.hashes_of_sealed(visit.head_id_enc, visit.head_id_hash),
            id_number_enc=visit.head_id_enc,
            phone_enc=visit.phone_enc,
            phone_hash=pii.hash(idnumber.phone_digits(phone)) if phone else None,
            town_id=visit.town_id,
            village_id=visit.village_id,
            address=visit.address,
            categories=list(dict.fromkeys(categories)),
            priority=priority,
            priority_reason=reason,
            facts={
                "hardship": visit.hardship.value,
                "causes": list(visit.causes),
                "health": visit.health.value,
                "labour_capacity": visit.labour_capacity.value,
                "kind": visit.kind.value,
                "members": len(visit.members),
            },
            event_date=visit.visited_on,
            source_type="visit",
            source_id=visit.id,
        ),
        actor=actor,
        now=now,
    )
    visit.lead_id = outcome.lead.id
    visit.reported_at = visit.reported_at or now
    visit.household.lead_id = outcome.lead.id
    return outcome.evidence_added


def _refresh_household(db: Session, household: Household, *, now: datetime) -> None:
    """Copy the household's latest visit (by visit date, then id) into its ledger row."""
    db.flush()
    latest = db.scalar(
        select(Visit)
        .where(Visit.household_id == household.id)
        .order_by(Visit.visited_on.desc(), Visit.id.desc())
        .limit(1)
    )
    assert latest is not None
    household.last_visit_id = latest.id
    household.last_visited_on = latest.visited_on
    household.next_visit_on = latest.next_visit_on
    household.phone_enc = latest.phone_enc or household.phone_enc
    household.address = latest.address or household.address
    household.members = latest.members
    household.health = latest.health
    household.labour_capacity = latest.labour_capacity
    household.hardship = latest.hardship
    household.causes = latest.causes
    household.needs = latest.needs
    household.updated_at = now
    wanted = set(latest.categories)
    household.categories = [c for c in household.categories if c.category in wanted] + [
        HouseholdCategory(category=code)
        for code in sorted(wanted - {c.category for c in household.categories})
    ]
    db.flush()


# --- reading ------------------------------------------------------------------------------


def list_visits(
    db: Session,
    *,
    actor: Actor,
    page: int,
    per_page: int,
    village: str | None = None,
    household_id: int | None = None,
    hardship: str | None = None,
    visited_from: date | None = None,
    visited_to: date | None = None,
) -> tuple[list[Visit], int]:
    """Visits `actor` may see, latest visit date first (between two visit dates, inclusive,
    when given)."""
    query = _visible(select(Visit), actor, town_col=Visit.town_id, village_col=Visit.village_id)
    if village:
        query = query.where(Visit.village_id == _village_in_scope(db, village, actor=actor).id)
    if visited_from is not None:
        query = query.where(Visit.visited_on >= visited_from)
    if visited_to is not None:
        query = query.where(Visit.visited_on <= visited_to)
    if household_id is not None:
        query = query.where(Visit.household_id == household_id)
    if hardship:
        query = query.where(Visit.hardship == Hardship(hardship))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(Visit.visited_on.desc(), Visit.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def masked_view(visit: Visit, *, pii: PersonalData) -> dict[str, Any]:
    """A visit as helpers and staff see it: ID numbers and phone masked."""
    village = visit.village
    return {
        "id": visit.id,
        "household_id": visit.household_id,
        "village": village.code,
        "village_name": village.name,
        "town_id": visit.town_id,
        "village_id": visit.village_id,
        "kind": visit.kind.value,
        "kind_label": KIND_LABELS[visit.kind],
        "head": {
            "name": visit.head_name,
            "id_number": idnumber.mask(pii.open(visit.head_id_enc)),
        },
        "phone": idnumber.mask_phone(pii.open(visit.phone_enc)),
        "address": visit.address,
        "members": [
            {
                "name": m["name"],
                "relation": m["relation"],
                "id_number": idnumber.mask(pii.open(m.get("id_number_enc"))),
            }
            for m in visit.members
        ],
        "health": visit.health.value,
        "health_label": HEALTH_LABELS[visit.health],
        "labour_capacity": visit.labour_capacity.value,
        "labour_capacity_label": LABOUR_LABELS[visit.labour_capacity],
        "hardship": visit.hardship.value,
        "hardship_label": HARDSHIP_LABELS[visit.hardship],
        "causes": list(visit.causes),
        "cause_labels": [CAUSE_LABELS[Cause(c)] for c in visit.causes],
        "categories": list(visit.categories),
        "category_labels": [CATEGORIES[c] for c in visit.categories if c in CATEGORIES],
        "needs": visit.needs,
        "note": visit.note,
        "photo_ids": list(visit.photo_ids),
        "visited_on": visit.visited_on,
        "next_visit_on": visit.next_visit_on,
        "lead_id": visit.lead_id,
        "reported_at": visit.reported_at,
        "recorded_by_id": visit.recorded_by_id,
        "created_at": visit.created_at,
        "updated_at": visit.updated_at,
        "version": visit.version,
    }
