"""One lead in full: its view (evidence, reasons, what a department may read) and revealing its
personal data, recorded as an unmasked view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    or_,
    select,
)
from sqlalchemy.orm import Session

from server.models import (
    Lead,
    LeadEvidence,
    LeadMerge,
    Role,
    Town,
    Village,
)
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record_unmasked_view
from server.services.kernel.pii import PersonalData
from server.services.leads.access import access_lead_by_id, among, categories_brought
from server.services.leads.core import CATEGORIES


def lead_view(
    db: Session, lead: Lead, *, pii: PersonalData, actor: Actor | None = None
) -> dict[str, Any]:
    """A lead with its evidence timeline; ID and phone numbers masked. Department staff see
    only their own department's evidence and the priority reasons it brought (a lead that
    several departments' files touch: 医保 staff never read 残联's disability facts)."""
    own = own_department(actor)
    shown = [e for e in lead.evidence if own is None or e.department_id == own]
    evidence = sorted(
        shown, key=lambda e: (e.event_date or e.created_at.date(), e.created_at, e.id)
    )
    reasons = lead.priority_reasons if own is None else _own_reasons(shown)
    categories = lead.categories
    if own is not None:
        brought = set().union(*(categories_brought(e.feed_code, e.facts) for e in shown))
        categories = among(lead.categories, brought)
    town = db.get(Town, lead.town_id) if lead.town_id else None
    village = db.get(Village, lead.village_id) if lead.village_id else None
    merges = db.scalars(
        select(LeadMerge)
        .where(or_(LeadMerge.source_lead_id == lead.id, LeadMerge.target_lead_id == lead.id))
        .order_by(LeadMerge.id)
    )
    return {
        "id": lead.id,
        "name": lead.name,
        "status": lead.status.value,
        "channel": lead.channel.value,
        "priority": lead.priority,
        "priority_reasons": reasons,
        "categories": categories,
        "category_labels": [CATEGORIES.get(c, c) for c in categories],
        "id_number": idnumber.mask(pii.open(lead.id_number_enc)),
        "phone": idnumber.mask_phone(pii.open(lead.phone_enc)),
        "town": {"code": town.code, "name": town.name} if town else None,
        "village": {"code": village.code, "name": village.name} if village else None,
        "address": lead.address,
        "previous_lead_id": lead.previous_lead_id,
        "merged_into_id": lead.merged_into_id,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "triaged_at": lead.triaged_at,
        "dispatched_at": lead.dispatched_at,
        "closed_at": lead.closed_at,
        "evidence": [_evidence_view(e, pii=pii) for e in evidence],
        "merges": [
            {
                "id": m.id,
                "source_lead_id": m.source_lead_id,
                "target_lead_id": m.target_lead_id,
                "merged_at": m.merged_at,
                "undone_at": m.undone_at,
            }
            for m in merges
        ],
    }


def own_department(actor: Actor | None) -> int | None:
    """The department whose evidence alone `actor` may read on a lead (department staff), or
    None: everything the lead holds."""
    if actor is not None and actor.role is Role.DEPARTMENT_STAFF:
        return actor.department_id if actor.department_id is not None else -1
    return None


def _own_reasons(evidence: list[LeadEvidence]) -> list[str]:
    return list(dict.fromkeys(e.priority_reason for e in evidence if e.priority_reason))


def _evidence_view(e: LeadEvidence, *, pii: PersonalData) -> dict[str, Any]:
    reporter = None
    if e.reporter_name or e.reporter_org or e.reporter_phone_enc:
        reporter = {
            "name": e.reporter_name,
            "organisation": e.reporter_org,
            "phone": idnumber.mask_phone(pii.open(e.reporter_phone_enc)),
        }
    return {
        "id": e.id,
        "channel": e.channel.value,
        "feed_code": e.feed_code,
        "batch_id": e.batch_id,
        "row_number": e.row_number,
        "source_type": e.source_type,
        "source_id": e.source_id,
        "department_id": e.department_id,
        "summary": e.summary,
        "facts": e.facts,
        "event_date": e.event_date,
        "reporter": reporter,
        "created_at": e.created_at,
    }


def reveal_personal_data(
    db: Session, lead_id: int, *, pii: PersonalData, actor: Actor, now: datetime
) -> dict[str, Any]:
    """The whole ID and phone numbers, for the center only; every look is an audit row."""
    require_role(actor, Role.CENTER_STAFF)
    lead = access_lead_by_id(db, lead_id, actor=actor)
    record_unmasked_view(
        db,
        actor=actor,
        target_type="lead",
        target_id=lead.id,
        fields=["id_number", "phone"],
        now=now,
    )
    db.flush()
    return {
        "lead_id": lead.id,
        "id_number": pii.open(lead.id_number_enc),
        "phone": pii.open(lead.phone_enc),
    }
