"""The lead queue's core rule: every signal about a person lands in their one open lead.

Other services (applications, visits, feeds, hotline reports) call `record_signal`; the queue's
comparison, priority and merge rules build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import OPEN_STATUSES, Channel, Lead, LeadEvidence, LeadStatus
from server.services.access import Actor
from server.services.audit import record

#: Categories of people sought (主动发现对象), code → Chinese label.
CATEGORIES: dict[str, str] = {
    "dibao": "低保对象",
    "tekun": "特困人员",
    "disabled": "残疾人",
    "orphan": "孤困儿童",
    "vagrant": "流浪乞讨人员",
    "left_behind": "农村三留守",
    "special_family": "特殊困难家庭",
    "poverty_relapse": "脱贫享受政策人员",
    "illness": "因病",
    "disaster": "因灾",
    "accident": "因意外",
    "temporary": "临时困难",
    "education": "教育",
}


@dataclass
class Signal:
    """One piece of evidence about a person, as any channel reports it."""

    channel: Channel
    name: str
    summary: str
    dedup_key: str
    #: Keyed hash of the normalised ID number; None when the reporter did not know it.
    person_hash: str | None = None
    id_number_enc: str | None = None
    phone_enc: str | None = None
    phone_hash: str | None = None
    town_id: int | None = None
    village_id: int | None = None
    address: str | None = None
    categories: list[str] = field(default_factory=list)
    priority: int = 0
    priority_reason: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    event_date: date | None = None
    feed_code: str | None = None
    batch_id: int | None = None
    row_number: int | None = None
    source_type: str | None = None
    source_id: int | None = None


@dataclass
class SignalOutcome:
    lead: Lead
    lead_created: bool
    evidence_added: bool


def record_signal(db: Session, signal: Signal, *, actor: Actor, now: datetime) -> SignalOutcome:
    """Attach `signal` to the person's open lead, opening one (linked to a closed one) if needed.

    The partial unique index on open leads settles races: if another transaction opened the
    lead first, we retry once and attach to theirs.
    """
    for attempt in (1, 2):
        lead = _open_lead_for(db, signal.person_hash)
        created = lead is None
        try:
            with db.begin_nested():
                if lead is None:
                    lead = _open_lead(db, signal, now=now)
                added = _add_evidence(db, lead, signal, now=now)
        except IntegrityError:
            if attempt == 2 or signal.person_hash is None:
                raise
            continue
        _apply_signal(lead, signal, now=now)
        db.flush()
        if created:
            record(
                db,
                actor=actor,
                action="lead.created",
                target_type="lead",
                target_id=lead.id,
                now=now,
                detail={"channel": signal.channel.value},
            )
        return SignalOutcome(lead=lead, lead_created=created, evidence_added=added)
    raise AssertionError("unreachable")


def _open_lead_for(db: Session, person_hash: str | None) -> Lead | None:
    if person_hash is None:
        return None
    return db.scalar(select(Lead).where(Lead.person_hash == person_hash, Lead.is_open.is_(True)))


def _open_lead(db: Session, signal: Signal, *, now: datetime) -> Lead:
    previous = None
    if signal.person_hash is not None:
        previous = db.scalar(
            select(Lead.id)
            .where(Lead.person_hash == signal.person_hash, Lead.is_open.is_(False))
            .order_by(Lead.id.desc())
            .limit(1)
        )
    lead = Lead(
        person_hash=signal.person_hash,
        name=signal.name,
        status=LeadStatus.NEW,
        is_open=True,
        channel=signal.channel,
        categories=[],
        priority=0,
        priority_reasons=[],
        previous_lead_id=previous,
        created_at=now,
        updated_at=now,
    )
    db.add(lead)
    db.flush()
    return lead


def _add_evidence(db: Session, lead: Lead, signal: Signal, *, now: datetime) -> bool:
    exists = db.scalar(
        select(LeadEvidence.id).where(
            LeadEvidence.lead_id == lead.id, LeadEvidence.dedup_key == signal.dedup_key
        )
    )
    if exists is not None:
        return False
    db.add(
        LeadEvidence(
            lead_id=lead.id,
            channel=signal.channel,
            feed_code=signal.feed_code,
            batch_id=signal.batch_id,
            row_number=signal.row_number,
            source_type=signal.source_type,
            source_id=signal.source_id,
            summary=signal.summary[:200],
            facts=signal.facts,
            event_date=signal.event_date,
            dedup_key=signal.dedup_key,
            created_at=now,
        )
    )
    db.flush()
    return True


def _apply_signal(lead: Lead, signal: Signal, *, now: datetime) -> None:
    """Fill what the lead does not know yet and raise its priority with an explained reason."""
    lead.id_number_enc = lead.id_number_enc or signal.id_number_enc
    lead.phone_enc = lead.phone_enc or signal.phone_enc
    lead.phone_hash = lead.phone_hash or signal.phone_hash
    lead.town_id = lead.town_id or signal.town_id
    lead.village_id = lead.village_id or signal.village_id
    lead.address = lead.address or signal.address
    new_categories = [c for c in signal.categories if c not in lead.categories]
    if new_categories:
        lead.categories = [*lead.categories, *new_categories]
    if signal.priority_reason and signal.priority_reason not in lead.priority_reasons:
        lead.priority_reasons = [*lead.priority_reasons, signal.priority_reason]
        lead.priority = lead.priority + signal.priority
    lead.updated_at = now


#: The timestamp column each status sets when a lead enters it.
_STATUS_STAMPS: dict[LeadStatus, str] = {
    LeadStatus.TRIAGED: "triaged_at",
    LeadStatus.DISPATCHED: "dispatched_at",
    LeadStatus.CLOSED: "closed_at",
    LeadStatus.MERGED: "closed_at",
}


def set_lead_status(
    db: Session, lead: Lead, status: LeadStatus, *, actor: Actor, now: datetime
) -> None:
    """Move `lead` to `status`, keeping `is_open` in step and writing an audit row."""
    old = lead.status
    lead.status = status
    lead.is_open = status in OPEN_STATUSES
    lead.updated_at = now
    stamp = _STATUS_STAMPS.get(status)
    if stamp is not None:
        setattr(lead, stamp, now)
    record(
        db,
        actor=actor,
        action=f"lead.{status.value}",
        target_type="lead",
        target_id=lead.id,
        now=now,
        detail={"old": old.value, "new": status.value},
    )
