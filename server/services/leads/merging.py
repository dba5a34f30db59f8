"""Candidates, merging and keeping apart: open leads that may be the same person (by
`matching`), merging two into one (its evidence replayed through the signal rule), undoing a
merge, and recording that two leads are different people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    exists,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from server.errors import Conflict
from server.models import (
    OPEN_STATUSES,
    Lead,
    LeadEvidence,
    LeadMerge,
    LeadPairDismissal,
    LeadStatus,
    Role,
)
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.leads import matching, signal_rule
from server.services.leads.access import access_lead_by_id, scope_leads
from server.services.leads.core import set_lead_status


@dataclass
class Candidate:
    """An open lead that may be the same person, with the score and reasons staff see."""

    lead_id: int
    name: str
    score: int
    reasons: list[str]
    status: str
    priority: int
    has_id_number: bool
    town_id: int | None
    village_id: int | None
    created_at: datetime


#: How many rows a candidate search reads at most before scoring them.
_CANDIDATE_SCAN = 200


def find_candidates(db: Session, lead: Lead, *, actor: Actor, limit: int = 10) -> list[Candidate]:
    """Open leads that may be the same person as `lead`, best first, within `actor`'s scope.

    Fetched by exact name, sound key, look-alike key, phone hash and village (indexed columns),
    then scored by services/leads/matching.py. Pairs staff kept apart are never offered again, and a
    lead with an ID number is never offered another lead with a different one.
    """
    conditions = [Lead.name == lead.name]
    if lead.name_key:
        conditions.append(Lead.name_key == lead.name_key)
    if lead.name_shape:
        conditions.append(Lead.name_shape == lead.name_shape)
    if lead.phone_hash:
        conditions.append(Lead.phone_hash == lead.phone_hash)
    if lead.village_id:
        conditions.append(Lead.village_id == lead.village_id)
    query = scope_leads(
        select(
            Lead.id,
            Lead.name,
            Lead.person_hash,
            Lead.phone_hash,
            Lead.town_id,
            Lead.village_id,
            Lead.status,
            Lead.priority,
            Lead.created_at,
        ),
        actor,
    ).where(Lead.is_open == true(), Lead.id != lead.id, or_(*conditions))
    if lead.person_hash is not None:
        query = query.where(Lead.person_hash.is_(None))
    low, high = LeadPairDismissal.lead_low_id, LeadPairDismissal.lead_high_id
    query = query.where(
        ~exists().where(
            or_(
                and_(low == lead.id, high == Lead.id),
                and_(low == Lead.id, high == lead.id),
            )
        )
    )
    me = _person(lead)
    found: list[Candidate] = []
    for row in db.execute(query.order_by(Lead.id.desc()).limit(_CANDIDATE_SCAN)):
        match = matching.compare(
            me,
            matching.Person(row.name, row.person_hash, row.phone_hash, row.town_id, row.village_id),
        )
        if match.is_candidate:
            found.append(
                Candidate(
                    lead_id=row.id,
                    name=row.name,
                    score=match.score,
                    reasons=list(match.reasons),
                    status=row.status.value,
                    priority=row.priority,
                    has_id_number=row.person_hash is not None,
                    town_id=row.town_id,
                    village_id=row.village_id,
                    created_at=row.created_at,
                )
            )
    found.sort(key=lambda c: (-c.score, -c.has_id_number, c.lead_id))
    return found[:limit]


def _person(lead: Lead) -> matching.Person:
    return matching.Person(
        lead.name, lead.person_hash, lead.phone_hash, lead.town_id, lead.village_id
    )


_MERGERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)


#: Lead fields a merge fills on the target when the target does not know them yet.
_FILLABLE = ("phone_enc", "phone_hash", "town_id", "village_id", "address")


def merge_leads(db: Session, source_id: int, *, into_id: int, actor: Actor, now: datetime) -> Lead:
    """Fold lead `source_id` (a report without an ID number) into lead `into_id`.

    The source's evidence moves to the target, the target gains the source's categories, priority
    reasons and any contact details it lacked; the source becomes MERGED with `merged_into_id`.
    Everything the merge changed is kept in a LeadMerge row, so `unmerge_lead` can undo it.
    """
    require_role(actor, *_MERGERS)
    if source_id == into_id:
        raise Conflict("不能把线索合并到它自己", code="merge_same_lead")
    source = access_lead_by_id(db, source_id, actor=actor, for_update=True)
    target = access_lead_by_id(db, into_id, actor=actor, for_update=True)
    if not source.is_open or not target.is_open:
        raise Conflict("只能合并尚未办结的线索", code="merge_closed_lead")
    if source.person_hash is not None:
        if target.person_hash is not None:
            raise Conflict("两条线索的身份证号不同，不是同一人", code="merge_different_people")
        raise Conflict(
            "有身份证号的线索不能并入无身份证号的线索，请反向合并", code="merge_direction"
        )
    match = matching.compare(_person(source), _person(target))
    target_keys = frozenset(
        db.scalars(select(LeadEvidence.dedup_key).where(LeadEvidence.lead_id == target.id))
    )
    rows = db.execute(
        select(
            LeadEvidence.id,
            LeadEvidence.dedup_key,
            LeadEvidence.priority_reason,
            LeadEvidence.priority_points,
        )
        .where(LeadEvidence.lead_id == source.id)
        .order_by(LeadEvidence.id)
    ).all()
    # The one rule, replaying the source's signals on the target: a reason the target has
    # already counts nothing again (before: the source's whole priority was added once).
    change = signal_rule.apply_signals(
        signal_rule.LeadState(
            categories=target.categories,
            priority=target.priority,
            reasons=target.priority_reasons,
            evidence_keys=target_keys,
        ),
        [
            signal_rule.Gain("merge:categories", tuple(source.categories)),
            *(
                signal_rule.Gain(r.dedup_key, (), r.priority_points or 0, r.priority_reason)
                for r in rows
            ),
            *_legacy_gains(source, rows),
        ],
    )
    fresh_keys = {g.dedup_key for g in change.fresh}
    moved = [r.id for r in rows if r.dedup_key in fresh_keys]
    if moved:
        db.execute(
            update(LeadEvidence)
            .where(LeadEvidence.id.in_(moved))
            .values(lead_id=target.id)
            .execution_options(synchronize_session=False)
        )
    added_categories, added_reasons = change.added_categories, change.added_reasons
    added_priority = change.added_points
    filled = {
        name: getattr(source, name)
        for name in _FILLABLE
        if getattr(target, name) is None and getattr(source, name) is not None
    }
    target.categories = change.categories
    target.priority_reasons = change.reasons
    target.priority = change.priority
    for name, value in filled.items():
        setattr(target, name, value)
    target.updated_at = now
    merge = LeadMerge(
        source_lead_id=source.id,
        target_lead_id=target.id,
        source_status=source.status,
        evidence_ids=moved,
        added={
            "categories": added_categories,
            "priority_reasons": added_reasons,
            "priority": added_priority,
            "filled": filled,
        },
        score=match.score,
        merged_by_id=actor.user_id,
        merged_at=now,
    )
    db.add(merge)
    source.merged_into_id = target.id
    set_lead_status(db, source, LeadStatus.MERGED, actor=actor, now=now)
    db.flush()
    record(
        db,
        actor=actor,
        action="lead.merge",
        target_type="lead",
        target_id=source.id,
        now=now,
        detail={
            "into": target.id,
            "merge_id": merge.id,
            "evidence": moved,
            "score": match.score,
            "reasons": list(match.reasons),
        },
    )
    db.expire(source, ["evidence"])
    db.expire(target, ["evidence"])
    return target


def _legacy_gains(source: Lead, rows: Any) -> list[signal_rule.Gain]:
    """The source's reasons that no evidence row carries (evidence from before each row kept
    its own reason, migration 0021), with the points its priority holds beyond its rows'."""
    carried: dict[str, int] = {}
    for r in rows:
        if r.priority_reason and r.priority_reason not in carried:
            carried[r.priority_reason] = r.priority_points or 0
    left = max(source.priority - sum(carried.values()), 0)
    gains = []
    for i, reason in enumerate(r for r in source.priority_reasons if r not in carried):
        gains.append(signal_rule.Gain(f"merge:legacy:{i}", (), left if i == 0 else 0, reason))
    return gains


def unmerge_lead(db: Session, source_id: int, *, actor: Actor, now: datetime) -> Lead:
    """Undo the standing merge of lead `source_id`: it reopens with its evidence back.

    Only what the merge added to the target is taken away; signals that reached the target
    since stay there. If the target has itself been merged since, that merge is undone first.
    """
    require_role(actor, *_MERGERS)
    source = access_lead_by_id(db, source_id, actor=actor, for_update=True)
    merge = db.scalar(
        select(LeadMerge).where(
            LeadMerge.source_lead_id == source.id, LeadMerge.undone_at.is_(None)
        )
    )
    if merge is None or source.status is not LeadStatus.MERGED:
        raise Conflict("这条线索没有被合并，无需撤销", code="not_merged")
    target = access_lead_by_id(db, merge.target_lead_id, actor=actor, for_update=True)
    if target.status is LeadStatus.MERGED:
        raise Conflict(
            "合并后的线索又被合并到了别的线索，请先撤销那次合并", code="unmerge_later_merge_first"
        )
    if merge.evidence_ids:
        db.execute(
            update(LeadEvidence)
            .where(LeadEvidence.id.in_(merge.evidence_ids), LeadEvidence.lead_id == target.id)
            .values(lead_id=source.id)
            .execution_options(synchronize_session=False)
        )
    added = merge.added
    target.categories = [c for c in target.categories if c not in added.get("categories", [])]
    target.priority_reasons = [
        r for r in target.priority_reasons if r not in added.get("priority_reasons", [])
    ]
    target.priority -= int(added.get("priority", 0))
    filled = added.get("filled", {})
    for name, value in filled.items():
        if name == "phone_enc":  # goes with phone_hash: re-sealing changes its text
            continue
        if getattr(target, name) == value:
            setattr(target, name, None)
            if name == "phone_hash":
                target.phone_enc = None
    target.updated_at = now
    source.status = merge.source_status
    source.is_open = merge.source_status in OPEN_STATUSES
    source.merged_into_id = None
    source.closed_at = None
    source.updated_at = now
    merge.undone_at = now
    merge.undone_by_id = actor.user_id
    record(
        db,
        actor=actor,
        action="lead.unmerge",
        target_type="lead",
        target_id=source.id,
        now=now,
        detail={"from": target.id, "merge_id": merge.id, "evidence": merge.evidence_ids},
    )
    db.flush()
    db.expire(source, ["evidence"])
    db.expire(target, ["evidence"])
    return source


def keep_apart(
    db: Session,
    lead_id: int,
    *,
    other_id: int,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> LeadPairDismissal:
    """Staff judged two leads to be different people: they stop being candidates of each other.

    Saying it twice is harmless (the first decision stands and is returned).
    """
    require_role(actor, *_MERGERS)
    if lead_id == other_id:
        raise Conflict("请选择另一条线索", code="same_lead")
    access_lead_by_id(db, lead_id, actor=actor)
    access_lead_by_id(db, other_id, actor=actor)
    low, high = sorted((lead_id, other_id))
    existing = db.scalar(
        select(LeadPairDismissal).where(
            LeadPairDismissal.lead_low_id == low, LeadPairDismissal.lead_high_id == high
        )
    )
    if existing is not None:
        return existing
    dismissal = LeadPairDismissal(
        lead_low_id=low,
        lead_high_id=high,
        reason=(reason or "").strip()[:200] or None,
        dismissed_by_id=actor.user_id,
        dismissed_at=now,
    )
    db.add(dismissal)
    db.flush()
    record(
        db,
        actor=actor,
        action="lead.kept_apart",
        target_type="lead",
        target_id=lead_id,
        now=now,
        detail={"other": other_id, "reason": dismissal.reason},
    )
    return dismissal
