"""Handling an application: its steps (受理, 调查, 办结) in order, each with a timeline event, an
audit row and a message to the filer in the same transaction; the steps a lead's handling
moves it through; and withdrawing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, NotFound
from server.models import (
    UNDECIDED,
    Application,
    ApplicationEvent,
    ApplicationStatus,
    Lead,
    LeadEvidence,
    LeadStatus,
    Role,
)
from server.services.applications.reading import access_application_by_id, application_number
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.leads.core import set_lead_status
from server.services.notifications.messages import (
    notify_application_event,
)

STEP_TITLES: dict[ApplicationStatus, str] = {
    ApplicationStatus.SUBMITTED: "已提交申请，等待镇街受理",
    ApplicationStatus.ACCEPTED: "镇街已受理您的申请",
    ApplicationStatus.INVESTIGATING: "工作人员正在入户调查核实",
    ApplicationStatus.DECIDED: "审核已有结果",
    ApplicationStatus.WITHDRAWN: "申请已撤回",
}


def record_step(
    db: Session,
    application: Application,
    status: ApplicationStatus,
    *,
    actor: Actor,
    now: datetime,
    title: str | None = None,
) -> None:
    """Move `application` to `status`: its timestamp, a timeline event, an audit row and the
    filer's message, all in the caller's transaction (filing uses it for the first step)."""
    old = application.status
    application.status = status
    application.updated_at = now
    setattr(application, f"{status.value}_at", now)
    db.add(
        ApplicationEvent(
            application=application,
            at=now,
            status=status,
            title=title or STEP_TITLES[status],
            actor_id=actor.user_id,
            kind="step",
        )
    )
    record(
        db,
        actor=actor,
        action=f"application.{status.value}",
        target_type="application",
        target_id=application.id,
        now=now,
        detail={"old": None if status is old else old.value, "new": status.value},
    )
    # The filer hears of it through WeChat and the inbox, written in this same transaction.
    notify_application_event(db, application, status, now=now)


def withdraw(db: Session, application_id: int, *, actor: Actor, now: datetime) -> Application:
    """The filer withdraws their application while nothing has been decided."""
    application = access_application_by_id(db, application_id, actor=actor)
    if application.filed_by_id != actor.user_id:
        raise NotFound("未找到该申请")
    if application.status not in UNDECIDED:
        raise Conflict("申请已有结果或已撤回，不能再撤回", code="not_withdrawable")
    record_step(db, application, ApplicationStatus.WITHDRAWN, actor=actor, now=now)
    _mark_evidence_withdrawn(db, application, now=now)
    db.flush()
    return application


def _mark_evidence_withdrawn(db: Session, application: Application, *, now: datetime) -> None:
    """The lead keeps the application's evidence (what was said stays on record) but shows it
    as withdrawn."""
    evidence = db.scalar(
        select(LeadEvidence).where(
            LeadEvidence.source_type == "application", LeadEvidence.source_id == application.id
        )
    )
    if evidence is None:
        return
    evidence.facts = {**evidence.facts, "withdrawn": True, "withdrawn_at": now.isoformat()}
    if not evidence.summary.endswith(WITHDRAWN_MARK):
        evidence.summary = f"{evidence.summary}{WITHDRAWN_MARK}"


#: Added to the summary of an application's evidence on its lead when it is withdrawn.
WITHDRAWN_MARK = "（申请已撤回）"


#: The step each step follows: 提交 → 受理 → 调查核实 → 办结, one at a time.
PREVIOUS_STEP: dict[ApplicationStatus, ApplicationStatus] = {
    ApplicationStatus.ACCEPTED: ApplicationStatus.SUBMITTED,
    ApplicationStatus.INVESTIGATING: ApplicationStatus.ACCEPTED,
    ApplicationStatus.DECIDED: ApplicationStatus.INVESTIGATING,
}


STATUS_LABELS: dict[ApplicationStatus, str] = {
    ApplicationStatus.SUBMITTED: "已提交",
    ApplicationStatus.ACCEPTED: "已受理",
    ApplicationStatus.INVESTIGATING: "调查核实中",
    ApplicationStatus.DECIDED: "已办结",
    ApplicationStatus.WITHDRAWN: "已撤回",
}


_STEP_VERBS: dict[ApplicationStatus, str] = {
    ApplicationStatus.ACCEPTED: "受理",
    ApplicationStatus.INVESTIGATING: "调查核实",
    ApplicationStatus.DECIDED: "办结",
}


class ApplicationStateError(Conflict):
    code = "application_state"


def require_step(application: Application, status: ApplicationStatus) -> None:
    """409 `application_state` unless `application` stands exactly one step before `status`."""
    needed = PREVIOUS_STEP[status]
    if application.status is needed:
        return
    message = (
        f"申请{application_number(application)}当前{STATUS_LABELS[application.status]}，"
        f"不能{_STEP_VERBS[status]}（应在{STATUS_LABELS[needed]}之后）"
    )
    raise ApplicationStateError(message, errors={"status": [message]})


def take_step(
    db: Session,
    application: Application,
    status: ApplicationStatus,
    *,
    actor: Actor,
    now: datetime,
    title: str | None = None,
) -> None:
    """Move `application` one step forward (受理, 调查核实 or 办结), or 409 `application_state`."""
    require_step(application, status)
    record_step(db, application, status, actor=actor, now=now, title=title)


def handle(
    db: Session,
    application_id: int,
    status: ApplicationStatus,
    *,
    actor: Actor,
    now: datetime,
) -> Application:
    """Town or center staff accept (受理) or investigate (调查核实) an application in their
    area. Accepting a lead's application takes its lead out of the untriaged queue."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF)
    application = access_application_by_id(db, application_id, actor=actor)
    take_step(db, application, status, actor=actor, now=now)
    if status is ApplicationStatus.ACCEPTED and application.lead_id is not None:
        lead = db.get(Lead, application.lead_id)
        if lead is not None and lead.status is LeadStatus.NEW:
            set_lead_status(db, lead, LeadStatus.TRIAGED, actor=actor, now=now)
    db.flush()
    return application


def advance_for_lead(
    db: Session, *, lead_id: int, status: ApplicationStatus, actor: Actor, now: datetime
) -> list[Application]:
    """Take every undecided application feeding `lead_id` up to `status` (受理 or 调查核实),
    step by step; returns those that moved.

    Called when a transfer slip is issued (受理) or signed for (调查核实): an application filed
    after the slip was issued is accepted and investigated when the slip is signed.
    """
    rows = db.scalars(
        select(Application)
        .where(Application.lead_id == lead_id, Application.status.in_(UNDECIDED))
        .order_by(Application.id)
    )
    moved = []
    for application in rows:
        walked = False
        for step in (ApplicationStatus.ACCEPTED, ApplicationStatus.INVESTIGATING):
            if PREVIOUS_STEP[step] is application.status:
                record_step(db, application, step, actor=actor, now=now)
                walked = True
            if step is status:
                break
        if walked:
            moved.append(application)
    db.flush()
    return moved
