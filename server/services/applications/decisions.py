"""Decisions (办结): one per application, from a slip's feedback or directly by the town.

`record_decision` is the one place an application is decided, whichever way the decision
arrives; whatever must follow a decision (aid granted to a household, telling the person) hooks
there or right after it. `settle_lead` is the one rule for how a lead moves on once its slips are
answered and its applications decided.

Concurrency: applications, slips and leads carry a version column, so of two staff deciding the
same application at once the second flush finds the version changed (StaleDataError → 409)
and the whole transaction, its timeline event and message included, rolls back. Deciding locks
the lead row first (PostgreSQL), so two decisions on one lead are serialised and the second
settles the lead seeing the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.errors import ValidationFailed
from server.models import (
    OPEN_DISPATCH_STATES,
    UNDECIDED,
    Application,
    ApplicationStatus,
    ApplicationType,
    Dispatch,
    DispatchState,
    Lead,
    LeadStatus,
    Role,
)
from server.services.applications.handling import take_step
from server.services.applications.reading import access_application_by_id, application_number
from server.services.households import aid
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.outcomes import (
    AMOUNT_ALLOWED,
    FITTING,
    HAS_AMOUNT,
    NEEDS_REASON,
    OUTCOMES,
    TYPE_LABELS,
    outcome_text,
)
from server.services.leads.core import set_lead_status
from server.services.notifications.informing import open_inform_task


@dataclass(frozen=True)
class Decision:
    """What was decided about one application."""

    outcome: str
    reason: str | None = None
    amount: Decimal | None = None
    #: For aid granted (救助台账): from when it is paid, and when it is reviewed (复核);
    #: defaults: the decision's day, and a year on for monthly aid.
    aid_start_on: date | None = None
    aid_review_on: date | None = None

    @property
    def text(self) -> str:
        """ "纳入低保", "给予临时救助 5000 元" or "不符合条件（收入高于标准）"."""
        return outcome_text(self.outcome, self.reason, amount_text(self.amount))


def amount_text(amount: Decimal | None) -> str | None:
    return f"{amount.normalize():f}" if amount is not None else None


def checked_decision(
    decision: Decision, *, field: str = "", kind: ApplicationType | None = None
) -> Decision:
    """The decision with its reason trimmed, or 422 naming the field (`field` prefixes it).
    For an application of `kind`, the outcome must be one that answers that kind (`FITTING`):
    422 `outcome_not_for_kind` on the outcome."""

    def invalid(name: str, message: str, code: str = "validation_error") -> ValidationFailed:
        return ValidationFailed(message, code=code, errors={f"{field}{name}": [message]})

    if decision.outcome not in OUTCOMES:
        raise invalid("outcome", "请选择办理结果")
    if kind is not None and decision.outcome not in FITTING[kind]:
        allowed = "、".join(OUTCOMES[o] for o in OUTCOMES if o in FITTING[kind])
        message = (
            f"“{OUTCOMES[decision.outcome]}”不是{TYPE_LABELS[kind]}申请的办理结果，"
            f"请选择：{allowed}"
        )
        raise invalid("outcome", message, "outcome_not_for_kind")
    reason = (decision.reason or "").strip() or None
    if decision.outcome in NEEDS_REASON and reason is None:
        raise invalid("reason", "该结果需要填写原因")
    amount = decision.amount
    if decision.outcome in HAS_AMOUNT and amount is None:
        raise invalid("amount", "该结果需要填写救助金额")
    if amount is not None:
        if decision.outcome not in AMOUNT_ALLOWED:
            raise invalid("amount", "该结果不涉及救助金额")
        if amount <= 0:
            raise invalid("amount", "救助金额应大于0")
    start_on, review_on = aid.checked_dates(
        decision.outcome, decision.aid_start_on, decision.aid_review_on, field=field
    )
    return Decision(decision.outcome, reason, amount, start_on, review_on)


def record_decision(
    db: Session,
    application: Application,
    decision: Decision,
    *,
    actor: Actor,
    now: datetime,
    dispatch_id: int | None = None,
) -> Application:
    """Decide `application` (办结) from 调查核实: its outcome, reason and amount, a timeline step
    and a message naming the application, and an audit row; an outcome that grants aid records
    the grant against the applicant's household (救助台账). `decision` must be checked
    (`checked_decision`). 409 `application_state` from any other step."""
    application.outcome = decision.outcome
    application.outcome_reason = decision.reason
    application.amount = decision.amount
    application.decided_by_id = actor.user_id
    application.decision_dispatch_id = dispatch_id
    take_step(
        db,
        application,
        ApplicationStatus.DECIDED,
        actor=actor,
        now=now,
        title=f"办结：{decision.text}",
    )
    record(
        db,
        actor=actor,
        action="application.decision",
        target_type="application",
        target_id=application.id,
        now=now,
        detail={
            "outcome": decision.outcome,
            "reason": decision.reason,
            "amount": amount_text(decision.amount),
            "dispatch_id": dispatch_id,
        },
    )
    aid.grant_aid(
        db,
        application,
        start_on=decision.aid_start_on,
        review_on=decision.aid_review_on,
        actor=actor,
        now=now,
    )
    return application


def decided_text(application: Application) -> str:
    """The decision of a decided application in words, e.g. "给予临时救助 5000 元"."""
    return Decision(application.outcome or "", application.outcome_reason, application.amount).text


def decided_line(application: Application) -> str:
    """The decision naming its application: "临时救助申请（SQ00000012）：给予临时救助 5000 元"."""
    number = application_number(application)
    return f"{TYPE_LABELS[application.type]}申请（{number}）：{decided_text(application)}"


def decide_directly(
    db: Session, application_id: int, decision: Decision, *, actor: Actor, now: datetime
) -> Application:
    """Town or center staff decide an application in their area themselves (no slip). The lead
    moves on as after a slip's feedback; a person without WeChat gets an inform task."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF)
    application = access_application_by_id(db, application_id, actor=actor)
    checked = checked_decision(decision, kind=application.type)
    lead = lock_lead(db, application.lead_id) if application.lead_id is not None else None
    record_decision(db, application, checked, actor=actor, now=now)
    db.flush()
    if lead is not None:
        open_inform_task(
            db,
            lead,
            source_key=f"application:{application.id}",
            what=decided_line(application),
            now=now,
        )
        settle_lead(db, lead, actor=actor, now=now)
    return application


def lock_lead(db: Session, lead_id: int) -> Lead:
    """The lead, locked until commit (PostgreSQL) and re-read (its version included)."""
    lead = db.scalar(
        select(Lead)
        .where(Lead.id == lead_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert lead is not None
    return lead


#: Lead states `settle_lead` moves a lead on from.
_SETTLED_FROM = frozenset({LeadStatus.NEW, LeadStatus.TRIAGED, LeadStatus.DISPATCHED})


def settle_lead(db: Session, lead: Lead, *, actor: Actor, now: datetime) -> None:
    """After a slip was answered or returned, or an application decided: the lead waits for
    the revisit once no slip is open, no application is undecided and something was answered or
    decided. With no slip open but applications still undecided (or every slip returned), it
    goes back to the center's triage, which sees what is left."""
    if lead.status not in _SETTLED_FROM:
        return
    slips = dict(
        db.execute(
            select(Dispatch.state, func.count())
            .where(Dispatch.lead_id == lead.id)
            .group_by(Dispatch.state)
        ).all()
    )
    if any(slips.get(s, 0) for s in OPEN_DISPATCH_STATES):
        return
    applications = dict(
        db.execute(
            select(Application.status, func.count())
            .where(Application.lead_id == lead.id)
            .group_by(Application.status)
        ).all()
    )
    undecided = sum(applications.get(s, 0) for s in UNDECIDED)
    answered = slips.get(DispatchState.ANSWERED, 0) + applications.get(ApplicationStatus.DECIDED, 0)
    if not undecided and answered:
        set_lead_status(db, lead, LeadStatus.AWAITING_REVISIT, actor=actor, now=now)
    elif lead.status is not LeadStatus.TRIAGED:
        set_lead_status(db, lead, LeadStatus.TRIAGED, actor=actor, now=now)
    db.flush()
