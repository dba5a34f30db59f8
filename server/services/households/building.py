"""Building households from what we receive: an application (the applicant and the household
members they listed), a visit (the head of household and the members the helper recorded), the
roster (a recipient nobody listed yet). A person already a current member of a household is never
moved by what we receive; only staff move people (`editing.move_member`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.models import (
    Application,
    Family,
    FamilyMember,
    FamilySource,
    Lead,
    RosterEntry,
    Visit,
)
from server.services.households.members import HEAD, current_members, current_membership
from server.services.kernel import jobs
from server.services.kernel.pii import PersonalData


@dataclass(frozen=True)
class Person:
    """Someone named in an application, a visit or the roster."""

    name: str
    relation: str
    id_number_enc: str | None = None
    id_hash: str | None = None
    #: The hashes to find them by (under every listed key); `(id_hash,)` when not given.
    lookup: tuple[str, ...] = ()

    @property
    def hashes(self) -> tuple[str, ...]:
        return self.lookup or (() if self.id_hash is None else (self.id_hash,))


def _lookup(pii: PersonalData | None, sealed: str | None, id_hash: str | None) -> tuple[str, ...]:
    """A row's person's hashes under every listed key (from its sealed ID number), or its
    stored hash when no key is at hand."""
    if pii is None:
        return () if id_hash is None else (id_hash,)
    return pii.hashes_of_sealed(sealed, id_hash)


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
        lookup = pii.hashes(value) if value else ()
        return Person(
            name.strip()[:50], relation.strip()[:20] or "家庭成员", id_number_enc, id_hash, lookup
        )
    return Person(name.strip()[:50], relation.strip()[:20] or "家庭成员", id_number_enc, id_hash)


def absorb_application(
    db: Session, application: Application, *, pii: PersonalData | None, now: datetime
) -> Family:
    """The applicant's household, opened with them as head if they belong to none, and the
    household members they listed (relation to the applicant). Without `pii` (a decision's
    hook) members listed with an ID number wait for `rebuild`."""
    anchor = Person(
        application.name,
        HEAD,
        application.id_number_enc,
        application.id_hash,
        _lookup(pii, application.id_number_enc, application.id_hash),
    )
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
    anchor = Person(
        visit.head_name,
        HEAD,
        visit.head_id_enc,
        visit.head_id_hash,
        _lookup(pii, visit.head_id_enc, visit.head_id_hash),
    )
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


def absorb_lead(db: Session, lead: Lead, *, now: datetime) -> Family | None:
    """A lead's person, aided by a slip's outcome, in their household (one of their own when
    they belong to none); None when the lead names no ID number or town to place them by."""
    if lead.person_hash is None or lead.town_id is None:
        return None
    anchor = Person(lead.name, HEAD, lead.id_number_enc, lead.person_hash)
    return _absorb(
        db,
        anchor,
        [],
        town_id=lead.town_id,
        village_id=lead.village_id,
        address=lead.address,
        source=FamilySource.LEAD,
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
    membership = current_membership(db, anchor.hashes)
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
        join(db, family, anchor, is_head=True, source=source, now=now)
        prefix = ""
    for person in others:
        relation = f"{prefix}{person.relation}"[:20]
        _place(
            db,
            family,
            Person(person.name, relation, person.id_number_enc, person.id_hash, person.lookup),
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
        if any(m.id_hash in person.hashes for m in present):
            return
        if current_membership(db, person.hashes) is not None:
            return
        # Someone listed by name earlier: the ID number now completes that member.
        for m in present:
            if m.id_hash is None and m.name == person.name:
                m.id_hash, m.id_number_enc = person.id_hash, person.id_number_enc
                return
    elif any(m.name == person.name for m in present):
        return
    join(db, family, person, is_head=False, source=source, now=now)


def join(
    db: Session,
    family: Family,
    person: Person,
    *,
    is_head: bool,
    source: FamilySource,
    now: datetime,
) -> FamilyMember:
    """`person` becomes a current member of `family` (building and staff's edits both use it)."""
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


#: The job that places a roster batch's recipients in households (queued by the feed import).
PLACE_ROSTER_JOB = "households.place_roster"


def queue_roster_placement(db: Session, batch_id: int, *, now: datetime) -> None:
    """After a roster file is imported: place its recipients in households in the background,
    once per batch (the import itself stays set-based and fast)."""
    jobs.enqueue(
        db,
        kind=PLACE_ROSTER_JOB,
        payload={"batch_id": batch_id},
        now=now,
        dedup_key=f"place-roster:{batch_id}",
    )


def place_roster_batch(db: Session, batch_id: int, *, now: datetime) -> int:
    """Place each recipient the roster batch added or updated in a household of their own when
    they belong to none (those without a town wait: a household needs one). Returns how many
    were looked at; safe to repeat."""
    entries = db.scalars(
        select(RosterEntry).where(RosterEntry.batch_id == batch_id).order_by(RosterEntry.id)
    )
    seen = 0
    for entry in entries:
        absorb_roster(db, entry, now=now)
        seen += 1
    return seen


def run_place_roster_job(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    """The worker's handler of `PLACE_ROSTER_JOB` (registered in server/worker/registry.py)."""
    place_roster_batch(ctx.db, int(payload["batch_id"]), now=ctx.now)


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
