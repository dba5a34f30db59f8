"""The lead queue's core rule: every signal about a person lands in their one open lead.

Other services (applications, visits, feeds, hotline reports through `intake`) call
`record_signal`; `signal_rule` decides what a signal changes, and the queue, detail and merge
modules build on the leads it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.models import (
    OPEN_STATUSES,
    Channel,
    Lead,
    LeadEvidence,
    LeadStatus,
)
from server.services.kernel.access import Actor
from server.services.kernel.audit import record
from server.services.leads import matching, signal_rule

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
    #: The ID number's hash under every listed key (`PersonalData.hashes`), to find the
    #: person's lead during a re-keying window; `(person_hash,)` when not given.
    person_hashes: tuple[str, ...] = ()
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
    #: The department whose file or report this is (department staff see such leads).
    department_id: int | None = None
    #: Who passed the report on (hotline caller, volunteer...); phone sealed with PersonalData.
    reporter_name: str | None = None
    reporter_org: str | None = None
    reporter_phone_enc: str | None = None
    #: The staff member who registered a report by hand.
    recorded_by_id: int | None = None


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
        lead = _open_lead_for(db, _lookup_hashes(signal))
        created = lead is None
        try:
            with savepoint(db):
                if lead is None:
                    lead = _open_lead(db, signal, now=now)
                change = _signal_change(db, lead, signal)
                added = bool(change.fresh)
                if added:
                    _add_evidence(db, lead, signal, now=now)
        except IntegrityError:
            if attempt == 2 or signal.person_hash is None:
                raise
            continue
        _apply_signal(lead, signal, change, now=now)
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


def _lookup_hashes(signal: Signal) -> tuple[str, ...]:
    if signal.person_hash is None:
        return ()
    return signal.person_hashes or (signal.person_hash,)


def _open_lead_for(db: Session, person_hashes: tuple[str, ...]) -> Lead | None:
    if not person_hashes:
        return None
    return db.scalar(
        select(Lead)
        .where(Lead.person_hash.in_(person_hashes), Lead.is_open.is_(True))
        .order_by(Lead.id)
        .limit(1)
    )


def _open_lead(db: Session, signal: Signal, *, now: datetime) -> Lead:
    previous = None
    if signal.person_hash is not None:
        previous = db.scalar(
            select(Lead.id)
            # Written as ix_leads_closed_person's predicate: SQLAlchemy would say `is_open = 0`
            # on SQLite, which cannot use that partial index.
            .where(Lead.person_hash.in_(_lookup_hashes(signal)), text("NOT leads.is_open"))
            .order_by(Lead.id.desc())
            .limit(1)
        )
    lead = Lead(
        person_hash=signal.person_hash,
        name=signal.name,
        name_key=matching.name_key(signal.name)[:120] or None,
        name_shape=matching.shape_key(signal.name)[:50] or None,
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


def signal_gain(signal: Signal) -> signal_rule.Gain:
    """What `signal` brings to a lead, in the terms of the one rule."""
    return signal_rule.Gain(
        dedup_key=signal.dedup_key,
        categories=tuple(signal.categories),
        points=signal.priority,
        reason=signal.priority_reason,
    )


def _signal_change(db: Session, lead: Lead, signal: Signal) -> signal_rule.Change:
    """The one rule applied to `lead` and `signal` (nothing, when the lead holds it already)."""
    held = db.scalar(
        select(LeadEvidence.id).where(
            LeadEvidence.lead_id == lead.id, LeadEvidence.dedup_key == signal.dedup_key
        )
    )
    state = signal_rule.LeadState(
        categories=lead.categories,
        priority=lead.priority,
        reasons=lead.priority_reasons,
        evidence_keys=frozenset({signal.dedup_key}) if held is not None else frozenset(),
    )
    return signal_rule.apply_signals(state, [signal_gain(signal)])


def _add_evidence(db: Session, lead: Lead, signal: Signal, *, now: datetime) -> None:
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
            department_id=signal.department_id,
            reporter_name=signal.reporter_name,
            reporter_org=signal.reporter_org,
            reporter_phone_enc=signal.reporter_phone_enc,
            recorded_by_id=signal.recorded_by_id,
            priority_reason=signal.priority_reason,
            priority_points=signal.priority,
            created_at=now,
        )
    )
    db.flush()


def _apply_signal(lead: Lead, signal: Signal, change: signal_rule.Change, *, now: datetime) -> None:
    """Fill what the lead does not know yet and store what the one rule decided."""
    lead.id_number_enc = lead.id_number_enc or signal.id_number_enc
    lead.phone_enc = lead.phone_enc or signal.phone_enc
    lead.phone_hash = lead.phone_hash or signal.phone_hash
    lead.town_id = lead.town_id or signal.town_id
    lead.village_id = lead.village_id or signal.village_id
    lead.address = lead.address or signal.address
    if change.added_categories:
        lead.categories = change.categories
    if change.added_reasons:
        lead.priority_reasons = change.reasons
        lead.priority = change.priority
    lead.updated_at = now


#: The timestamp column each status sets when a lead enters it.
_STATUS_STAMPS: dict[LeadStatus, str] = {
    LeadStatus.TRIAGED: "triaged_at",
    LeadStatus.DISPATCHED: "dispatched_at",
    LeadStatus.CLOSED: "closed_at",
    LeadStatus.MERGED: "closed_at",
    LeadStatus.DISMISSED: "dismissed_at",
    LeadStatus.COVERED: "covered_at",
}


def set_lead_status(
    db: Session,
    lead: Lead,
    status: LeadStatus,
    *,
    actor: Actor,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Move `lead` to `status`, keeping `is_open` in step and writing an audit row (with
    `detail` beside the old and new status)."""
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
        detail={"old": old.value, "new": status.value, **(detail or {})},
    )
