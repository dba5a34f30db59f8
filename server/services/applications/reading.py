"""Reading applications: who may see which (`access_application_by_id`, one condition per
role), the lists, a lead's applications, and the masked view every answer is made of.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import (
    UNDECIDED,
    Application,
    ApplicationStatus,
    ApplicationType,
    Role,
    Town,
)
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, scope_by_area
from server.services.kernel.outcomes import TYPE_LABELS, outcome_text
from server.services.kernel.pii import PersonalData


def access_application_by_id(db: Session, application_id: int, *, actor: Actor) -> Application:
    """The application if `actor` may see it, else 404 (never 403: its existence is private).

    Residents and helpers see what they filed; staff see applications in their jurisdiction.
    """
    if not 0 < application_id < 2**63:
        raise NotFound("未找到该申请")
    query = _visible(select(Application), actor).where(Application.id == application_id)
    application = db.scalar(query)
    if application is None:
        raise NotFound("未找到该申请")
    return application


def _visible(query: Select, actor: Actor) -> Select:
    """Limit `query` over applications to those `actor` may see, in the query itself."""
    if actor.role in (Role.RESIDENT, Role.HELPER):
        return query.where(Application.filed_by_id == actor.user_id)
    return scope_by_area(
        query, actor, town_col=Application.town_id, village_col=Application.village_id
    )


def list_applications(
    db: Session,
    *,
    actor: Actor,
    page: int,
    per_page: int,
    status: str | None = None,
    type: str | None = None,  # noqa: A002 - the API's field name
    town: str | None = None,
) -> tuple[list[Application], int]:
    """Applications `actor` may see, newest first: one's own, or the jurisdiction's for staff."""
    query = _visible(select(Application), actor)
    if status:
        query = query.where(Application.status == ApplicationStatus(status))
    if type:
        query = query.where(Application.type == ApplicationType(type))
    if town:
        query = query.join(Town, Town.id == Application.town_id).where(Town.code == town)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(Application.created_at.desc(), Application.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def list_my_applications(
    db: Session, *, actor: Actor, page: int, per_page: int
) -> tuple[list[Application], int]:
    """What `actor` filed, newest first (residents and helpers)."""
    return list_applications(db, actor=actor, page=page, per_page=per_page)


def application_number(application: Application) -> str:
    """The number residents read in every message about the application, e.g. SQ00000012."""
    return f"SQ{application.id:08d}"


def lead_applications(db: Session, lead_id: int) -> list[Application]:
    """Every application feeding a lead, oldest first."""
    return list(
        db.scalars(
            select(Application).where(Application.lead_id == lead_id).order_by(Application.id)
        )
    )


def undecided_on_lead(db: Session, lead_id: int) -> list[Application]:
    """The applications of a lead still waiting for a decision, oldest first."""
    return list(
        db.scalars(
            select(Application)
            .where(Application.lead_id == lead_id, Application.status.in_(UNDECIDED))
            .order_by(Application.id)
        )
    )


def masked_view(
    application: Application, *, pii: PersonalData, notices: dict[str, str] | None = None
) -> dict[str, Any]:
    """The application as its filer and staff see it: ID numbers and phone masked.

    `notices` (step status → what became of its WeChat message) annotates the timeline.
    """
    notices = notices or {}
    return {
        "id": application.id,
        "number": application_number(application),
        "type": application.type.value,
        "type_label": TYPE_LABELS[application.type],
        "status": application.status.value,
        "channel": application.channel.value,
        "name": application.name,
        "id_number": idnumber.mask(pii.open(application.id_number_enc)),
        "phone": idnumber.mask_phone(pii.open(application.phone_enc)),
        "address": application.address,
        "monthly_income": application.monthly_income,
        "reason": application.reason,
        "photo_ids": application.photo_ids,
        "details": application.details,
        "submitted_at": application.submitted_at,
        "withdrawn_at": application.withdrawn_at,
        "decided_at": application.decided_at,
        "outcome": application.outcome,
        "outcome_reason": application.outcome_reason,
        "amount": application.amount,
        "outcome_label": (
            outcome_text(application.outcome, amount=_amount(application))
            if application.outcome
            else None
        ),
        "town_id": application.town_id,
        "village_id": application.village_id,
        "lead_id": application.lead_id,
        "household": [
            {
                "name": m["name"],
                "relation": m["relation"],
                "id_number": idnumber.mask(pii.open(m["id_number_enc"]))
                if m.get("id_number_enc")
                else None,
            }
            for m in application.household
        ],
        "on_behalf": _on_behalf_view(application.on_behalf),
        "intake": _intake_view(application.intake),
        "created_at": application.created_at,
        "timeline": [
            {
                "status": e.status.value,
                "kind": e.kind,
                "title": e.title,
                "at": e.at,
                "notice": notices.get(e.status.value) if e.kind == "step" else None,
            }
            for e in application.events
        ],
    }


def _amount(application: Application) -> str | None:
    return f"{application.amount.normalize():f}" if application.amount is not None else None


def _intake_view(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """How staff took the application (窗口办 / 电话办) and how the person consented."""
    if block is None:
        return None
    return {
        "channel": block.get("channel"),
        "consent_method": block.get("consent_method"),
        "consent_photo_id": block.get("consent_photo_id"),
        "witness_name": block.get("witness_name"),
        "call_record": block.get("call_record"),
        "staff_id": block.get("staff_id"),
    }


def _on_behalf_view(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """How a filing on behalf was consented to; the applicant's phone stays sealed."""
    if block is None:
        return None
    return {
        "relationship": block.get("relationship"),
        "consent_method": block.get("consent_method"),
        "consent_photo_id": block.get("consent_photo_id"),
        "witness_name": block.get("witness_name"),
    }
