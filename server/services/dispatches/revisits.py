"""Revisits (回访) after a slip's feedback, and the applicant's own rating: each with a 1–5
satisfaction score that the monthly statistics average.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.errors import Conflict, invalid
from server.models import (
    ApplicationStatus,
    Lead,
    LeadStatus,
    Revisit,
    RevisitSource,
    Role,
)
from server.services.applications.reading import (
    access_application_by_id,
)
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.leads.access import access_lead_by_id
from server.services.leads.core import set_lead_status


@dataclass(frozen=True)
class RevisitInput:
    satisfaction: int
    informed: bool = True
    comment: str | None = None


def record_revisit(
    db: Session, lead_id: int, revisit: RevisitInput, *, actor: Actor, now: datetime
) -> Revisit:
    """Center staff record the revisit (回访测评): the resident was told the result and how
    satisfied they are (1–5). The lead closes."""
    require_role(actor, Role.CENTER_STAFF)
    lead = access_lead_by_id(db, lead_id, actor=actor)
    if lead.status is not LeadStatus.AWAITING_REVISIT:
        raise Conflict("该线索还有未反馈的转办单，或已回访办结", code="lead_not_awaiting_revisit")
    _check_satisfaction(revisit.satisfaction)
    # Closing the lead first: a second revisit of the same lead at once is stale here (409).
    set_lead_status(db, lead, LeadStatus.CLOSED, actor=actor, now=now)
    db.flush()
    row = Revisit(
        lead_id=lead.id,
        source=RevisitSource.CENTER,
        informed=revisit.informed,
        satisfaction=revisit.satisfaction,
        comment=(revisit.comment or "").strip() or None,
        recorded_by_id=actor.user_id,
        created_at=now,
    )
    db.add(row)
    db.flush()
    record(
        db,
        actor=actor,
        action="lead.revisited",
        target_type="lead",
        target_id=lead.id,
        now=now,
        detail={"satisfaction": revisit.satisfaction, "informed": revisit.informed},
    )
    return row


def rate_application(
    db: Session, application_id: int, revisit: RevisitInput, *, actor: Actor, now: datetime
) -> Revisit:
    """A resident rates the handling of their own decided application (1–5), once. A lead
    waiting for its revisit closes."""
    require_role(actor, Role.RESIDENT)
    application = access_application_by_id(db, application_id, actor=actor)
    if application.status is not ApplicationStatus.DECIDED:
        raise Conflict("申请办结后才能评价", code="application_not_decided")
    if application.lead_id is None:
        raise Conflict("该申请暂无办理记录，无法评价", code="application_without_lead")
    _check_satisfaction(revisit.satisfaction)
    row = Revisit(
        lead_id=application.lead_id,
        application_id=application.id,
        source=RevisitSource.RESIDENT,
        informed=True,
        satisfaction=revisit.satisfaction,
        comment=(revisit.comment or "").strip() or None,
        recorded_by_id=actor.user_id,
        created_at=now,
    )
    try:
        with savepoint(db):
            db.add(row)
            db.flush()
    except IntegrityError as exc:
        raise Conflict("您已经评价过这件申请", code="already_rated") from exc
    record(
        db,
        actor=actor,
        action="application.rated",
        target_type="application",
        target_id=application.id,
        now=now,
        detail={"satisfaction": revisit.satisfaction},
    )
    lead = db.get(Lead, application.lead_id)
    if lead is not None and lead.status is LeadStatus.AWAITING_REVISIT:
        set_lead_status(db, lead, LeadStatus.CLOSED, actor=actor, now=now)
        db.flush()
    return row


def revisit_view(revisit: Revisit) -> dict[str, Any]:
    return {
        "id": revisit.id,
        "lead_id": revisit.lead_id,
        "application_id": revisit.application_id,
        "source": revisit.source.value,
        "informed": revisit.informed,
        "satisfaction": revisit.satisfaction,
        "comment": revisit.comment,
        "created_at": revisit.created_at,
    }


def _check_satisfaction(value: int) -> None:
    if not 1 <= value <= 5:
        raise invalid("satisfaction", "满意度应为1至5分")
