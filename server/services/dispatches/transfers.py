"""Transfer slips (线索转办单): issue, sign (签收), return (退回), feedback (反馈); the revisit
(回访) that closes the lead is `revisits`.

Each state change is a named function with keyword-only `actor` and `now`; it checks the states it
may start from, writes an audit row, and only flushes (the request or command commits once).

How the lead and its applications follow the slips:

* issuing a slip moves the lead to DISPATCHED and its undecided applications to ACCEPTED (受理);
* signing moves the applications to INVESTIGATING (调查核实);
* feedback with an outcome decides the applications (办结) with that outcome and reason;
* when every slip of the lead that was not returned is answered, the lead waits for the revisit
  (AWAITING_REVISIT); a revisit by center staff (or the resident's own rating) closes it.

Deadlines: a slip is due at the end of the 5th working day after the day it was issued; the day
of issue never counts, whatever the hour (see services/calendar/workdays.py for the calendar).

Concurrency: slips and leads carry a version column. Two staff acting on the same slip, or
issuing or revisiting the same lead at once: the second flush finds the version changed,
SQLAlchemy raises StaleDataError, and the API answers 409 with the whole transaction rolled
back. Answers and returns lock the lead row first, so two units answering two slips of one lead
at once are serialised and the second sees the first's answer when it settles the lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import Conflict, NotFound, invalid
from server.models import (
    OPEN_DISPATCH_STATES,
    Application,
    ApplicationStatus,
    Dispatch,
    DispatchState,
    LeadStatus,
    Photo,
    Role,
    UnitKind,
)
from server.services.applications.decisions import (
    Decision,
    amount_text,
    checked_decision,
    decided_line,
    lock_lead,
    record_decision,
    settle_lead,
)
from server.services.applications.handling import advance_for_lead, require_step
from server.services.applications.photos import owned_photo_ids
from server.services.applications.reading import (
    application_number,
    undecided_on_lead,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches.access import (
    access_dispatch_by_id,
    require_receiver,
    require_state,
    resolve_unit,
)
from server.services.dispatches.numbering import next_serial, slip_number
from server.services.households import aid
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.idempotency import create_once
from server.services.leads.access import access_lead_by_id
from server.services.leads.core import set_lead_status
from server.services.notifications.informing import open_inform_task

#: Working days a receiving unit has to answer a slip.
DUE_WORKING_DAYS = 5
#: Lead states a slip may be issued from (a new slip reopens a lead waiting for its revisit).
ISSUABLE_LEAD_STATES = frozenset(
    {LeadStatus.NEW, LeadStatus.TRIAGED, LeadStatus.DISPATCHED, LeadStatus.AWAITING_REVISIT}
)


def issue(
    db: Session,
    lead_id: int,
    *,
    unit_kind: UnitKind,
    unit_code: str,
    instructions: str,
    calendar: WorkCalendar,
    actor: Actor,
    now: datetime,
    idempotency_key: str | None = None,
) -> Dispatch:
    """Send the lead to a department or town with instructions, due in 5 working days.

    Center staff for any lead; town staff for leads of their own town (others are 404). A retry
    with the same `idempotency_key` returns the first slip instead of issuing a second.
    """
    require_role(actor, Role.CENTER_STAFF, Role.TOWN_STAFF)
    assert actor.user_id is not None
    dispatch_id, _ = create_once(
        db,
        user_id=actor.user_id,
        key=idempotency_key,
        scope="dispatch",
        body={
            "lead_id": lead_id,
            "unit_kind": unit_kind.value,
            "unit_code": unit_code,
            "instructions": instructions,
        },
        now=now,
        create=lambda: (
            _issue(
                db,
                lead_id,
                unit_kind=unit_kind,
                unit_code=unit_code,
                instructions=instructions,
                calendar=calendar,
                actor=actor,
                now=now,
            ).id
        ),
    )
    dispatch = db.get(Dispatch, dispatch_id)
    assert dispatch is not None
    return dispatch


def _issue(
    db: Session,
    lead_id: int,
    *,
    unit_kind: UnitKind,
    unit_code: str,
    instructions: str,
    calendar: WorkCalendar,
    actor: Actor,
    now: datetime,
) -> Dispatch:
    lead = access_lead_by_id(db, lead_id, actor=actor)
    if lead.status not in ISSUABLE_LEAD_STATES:
        raise Conflict("该线索已办结或已合并，不能转办", code="lead_not_open")
    instructions = instructions.strip()
    if not instructions:
        raise invalid("instructions", "请填写转办要求")
    unit = resolve_unit(db, unit_kind, unit_code)
    now = now.astimezone(TZ)
    # The lead changes first: if someone else acted on it since we read it, this flush raises
    # StaleDataError (→ 409) before anything else is written.
    if lead.status is LeadStatus.DISPATCHED:
        lead.updated_at = now
    else:
        set_lead_status(db, lead, LeadStatus.DISPATCHED, actor=actor, now=now)
    db.flush()
    due = calendar.due_date(now, DUE_WORKING_DAYS)
    serial = next_serial(db, now.year)
    dispatch = Dispatch(
        number=slip_number(now.year, serial),
        year=now.year,
        serial=serial,
        lead_id=lead.id,
        unit_kind=unit.kind,
        department_id=unit.department_id,
        town_id=unit.town_id,
        lead_town_id=lead.town_id,
        instructions=instructions,
        state=DispatchState.ISSUED,
        due_date=due.value,
        due_certain=due.certain,
        issued_at=now,
        issued_by_id=actor.user_id,
        updated_at=now,
    )
    db.add(dispatch)
    db.flush()
    _audit(
        db,
        dispatch,
        "issued",
        actor=actor,
        now=now,
        detail={
            "lead_id": lead.id,
            "number": dispatch.number,
            "unit": unit.name,
            "due_date": due.value.isoformat(),
            "due_certain": due.certain,
        },
    )
    advance_for_lead(db, lead_id=lead.id, status=ApplicationStatus.ACCEPTED, actor=actor, now=now)
    return dispatch


def sign(db: Session, dispatch_id: int, *, actor: Actor, now: datetime) -> Dispatch:
    """The receiving unit signs for the slip (签收) and starts investigating."""
    dispatch = access_dispatch_by_id(db, dispatch_id, actor=actor)
    require_receiver(dispatch, actor, "签收")
    require_state(dispatch, {DispatchState.ISSUED}, "签收")
    dispatch.state = DispatchState.SIGNED
    dispatch.signed_at = now
    dispatch.signed_by_id = actor.user_id
    dispatch.updated_at = now
    db.flush()
    _audit(db, dispatch, "signed", actor=actor, now=now, detail={"old": "issued", "new": "signed"})
    advance_for_lead(
        db, lead_id=dispatch.lead_id, status=ApplicationStatus.INVESTIGATING, actor=actor, now=now
    )
    return dispatch


def return_to_center(
    db: Session, dispatch_id: int, *, reason: str, actor: Actor, now: datetime
) -> Dispatch:
    """The receiving unit sends the slip back (退回) with a reason; the center may issue anew."""
    dispatch = access_dispatch_by_id(db, dispatch_id, actor=actor)
    require_receiver(dispatch, actor, "退回")
    require_state(dispatch, set(OPEN_DISPATCH_STATES), "退回")
    reason = reason.strip()
    if not reason:
        raise invalid("reason", "请填写退回原因")
    lead = lock_lead(db, dispatch.lead_id)
    old = dispatch.state
    dispatch.state = DispatchState.RETURNED
    dispatch.returned_at = now
    dispatch.returned_by_id = actor.user_id
    dispatch.return_reason = reason
    dispatch.updated_at = now
    db.flush()
    _audit(
        db,
        dispatch,
        "returned",
        actor=actor,
        now=now,
        detail={"old": old.value, "new": "returned", "reason": reason},
    )
    settle_lead(db, lead, actor=actor, now=now)
    return dispatch


@dataclass(frozen=True)
class Answer:
    """The unit's decision on one application of the slip's lead."""

    application_id: int
    decision: Decision


@dataclass(frozen=True)
class Feedback:
    """What a receiving unit reports back: its findings and either one decision per application
    of the lead (`answers`), or — for a lead without undecided applications (a department
    file's lead, a hotline report) — one outcome for the slip."""

    findings: str
    outcome: str | None = None
    reason: str | None = None
    amount: Decimal | None = None
    photo_ids: tuple[int, ...] = ()
    answers: tuple[Answer, ...] | None = None


def give_feedback(
    db: Session, dispatch_id: int, feedback: Feedback, *, actor: Actor, now: datetime
) -> Dispatch:
    """The receiving unit reports what it found (反馈), with attachments, and decides each
    application it investigated. Applications it leaves unanswered stay undecided, and the lead
    stays open for them."""
    dispatch = access_dispatch_by_id(db, dispatch_id, actor=actor)
    require_receiver(dispatch, actor, "反馈")
    hint = "反馈（请先签收）" if dispatch.state is DispatchState.ISSUED else "反馈"
    require_state(dispatch, {DispatchState.SIGNED}, hint)
    findings, photo_ids = _checked_findings(db, feedback, actor=actor)
    lead = lock_lead(db, dispatch.lead_id)
    # Read after the lock, so an answer or decision committed meanwhile is seen (409, not 422).
    db.refresh(dispatch)
    require_state(dispatch, {DispatchState.SIGNED}, "反馈")
    undecided = {a.id: a for a in undecided_on_lead(db, lead.id)}
    answers = _checked_answers(feedback, undecided)
    slip_outcome = None if answers is not None else _checked_slip_outcome(feedback)
    dispatch.state = DispatchState.ANSWERED
    dispatch.answered_at = now
    dispatch.answered_by_id = actor.user_id
    dispatch.answered_on_time = now.astimezone(TZ).date() <= dispatch.due_date
    dispatch.findings = findings
    if slip_outcome is not None:
        dispatch.outcome = slip_outcome.outcome
        dispatch.outcome_reason = slip_outcome.reason
        dispatch.amount = slip_outcome.amount
    dispatch.photo_ids = list(photo_ids)
    dispatch.updated_at = now
    db.flush()
    _audit(
        db,
        dispatch,
        "answered",
        actor=actor,
        now=now,
        detail={
            "old": "signed",
            "new": "answered",
            "outcome": slip_outcome.outcome if slip_outcome else None,
            "reason": slip_outcome.reason if slip_outcome else None,
            "amount": amount_text(slip_outcome.amount) if slip_outcome else None,
            "applications": {str(a.application_id): a.decision.outcome for a in answers or ()},
            "on_time": dispatch.answered_on_time,
            "photos": len(photo_ids),
        },
    )
    decided = [
        record_decision(
            db,
            undecided[a.application_id],
            a.decision,
            actor=actor,
            now=now,
            dispatch_id=dispatch.id,
        )
        for a in answers or ()
    ]
    if slip_outcome is not None:
        aid.grant_aid_by_slip(
            db,
            dispatch,
            lead,
            start_on=slip_outcome.aid_start_on,
            review_on=slip_outcome.aid_review_on,
            actor=actor,
            now=now,
        )
    db.flush()
    what = "；".join(decided_line(a) for a in decided) or (
        slip_outcome.text if slip_outcome else ""
    )
    if what:
        open_inform_task(db, lead, source_key=f"dispatch:{dispatch.id}", what=what, now=now)
    settle_lead(db, lead, actor=actor, now=now)
    return dispatch


def _checked_findings(
    db: Session, feedback: Feedback, *, actor: Actor
) -> tuple[str, tuple[int, ...]]:
    findings = feedback.findings.strip()
    if not findings:
        raise invalid("findings", "请填写调查核实情况")
    photo_ids = tuple(dict.fromkeys(feedback.photo_ids))
    if photo_ids:
        owned = owned_photo_ids(db, list(photo_ids), actor=actor)
        if set(photo_ids) - owned:
            raise invalid("photo_ids", "附件照片无效，请重新上传")
    return findings, photo_ids


def _checked_answers(
    feedback: Feedback, undecided: dict[int, Application]
) -> tuple[Answer, ...] | None:
    """The per-application decisions, checked; None when the slip answers with one outcome.

    A lead with undecided applications is answered application by application (one outcome
    for all of them would decide what nobody investigated)."""
    if feedback.answers is None:
        if undecided:
            numbers = "、".join(application_number(a) for a in undecided.values())
            message = f"该线索有未办结的申请（{numbers}），请逐项填写每份申请的办理结果"
            raise invalid("decisions", message, "decisions_required")
        return None
    if feedback.outcome is not None:
        message = "已逐项填写申请的办理结果，请勿再填写整体结果"
        raise invalid("outcome", message)
    seen: set[int] = set()
    checked = []
    for i, answer in enumerate(feedback.answers):
        field = f"decisions.{i}."
        application = undecided.get(answer.application_id)
        if application is None or answer.application_id in seen:
            message = "该申请不属于此线索、已办结或已撤回，或重复填写"
            raise invalid(f"{field}application_id", message, "application_not_on_lead")
        seen.add(answer.application_id)
        require_step(application, ApplicationStatus.DECIDED)
        checked.append(
            Answer(
                answer.application_id,
                checked_decision(answer.decision, field=field, kind=application.type),
            )
        )
    return tuple(checked)


def _checked_slip_outcome(feedback: Feedback) -> Decision:
    if feedback.outcome is None:
        raise invalid("outcome", "请选择办理结果")
    return checked_decision(Decision(feedback.outcome, feedback.reason, feedback.amount))


def require_can_attach(dispatch: Dispatch, *, actor: Actor) -> None:
    """Photos for the feedback are uploaded by the receiving unit while the slip is open."""
    require_receiver(dispatch, actor, "上传附件")
    require_state(dispatch, set(OPEN_DISPATCH_STATES), "上传附件")


def access_attachment(db: Session, dispatch_id: int, photo_id: int, *, actor: Actor) -> Photo:
    """A photo attached to the slip's feedback, for whoever may see the slip; else 404."""
    dispatch = access_dispatch_by_id(db, dispatch_id, actor=actor)
    photo = db.get(Photo, photo_id) if photo_id in dispatch.photo_ids else None
    if photo is None:
        raise NotFound("未找到该附件", code="attachment_not_found")
    return photo


def _audit(
    db: Session,
    dispatch: Dispatch,
    verb: str,
    *,
    actor: Actor,
    now: datetime,
    detail: dict[str, Any],
) -> None:
    record(
        db,
        actor=actor,
        action=f"dispatch.{verb}",
        target_type="dispatch",
        target_id=dispatch.id,
        now=now,
        detail=detail,
    )
