"""Transfer slips (线索转办单): issue, sign (签收), return (退回), feedback (反馈), revisit (回访).

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
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment
from sqlalchemy import Select, and_, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.clock import TZ
from server.db import savepoint
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import (
    OPEN_DISPATCH_STATES,
    Application,
    ApplicationStatus,
    Department,
    Dispatch,
    DispatchAlert,
    DispatchCounter,
    DispatchState,
    Lead,
    LeadStatus,
    Photo,
    Revisit,
    RevisitSource,
    Role,
    Town,
    UnitKind,
    User,
)
from server.services.accounts.helpers import qr_data_uri
from server.services.applications.decisions import (
    Decision,
    amount_text,
    checked_decision,
    decided_line,
    decided_text,
    lock_lead,
    record_decision,
    settle_lead,
)
from server.services.applications.handling import STATUS_LABELS, advance_for_lead, require_step
from server.services.applications.photos import owned_photo_ids
from server.services.applications.reading import (
    access_application_by_id,
    application_number,
    lead_applications,
    undecided_on_lead,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record, record_unmasked_view
from server.services.kernel.idempotency import create_once
from server.services.kernel.outcomes import TYPE_LABELS, outcome_text
from server.services.kernel.pii import PersonalData
from server.services.leads.access import access_lead_by_id
from server.services.leads.core import CATEGORIES as CATEGORY_LABELS
from server.services.leads.core import set_lead_status
from server.services.notifications.informing import open_inform_task

#: Printed before the year and serial of every slip number: 博山救助 → BSJZ.
NUMBER_PREFIX = "BSJZ"
#: Working days a receiving unit has to answer a slip.
DUE_WORKING_DAYS = 5
#: Lead states a slip may be issued from (a new slip reopens a lead waiting for its revisit).
ISSUABLE_LEAD_STATES = frozenset(
    {LeadStatus.NEW, LeadStatus.TRIAGED, LeadStatus.DISPATCHED, LeadStatus.AWAITING_REVISIT}
)

STATE_LABELS: dict[DispatchState, str] = {
    DispatchState.ISSUED: "已转办",
    DispatchState.SIGNED: "已签收",
    DispatchState.RETURNED: "已退回",
    DispatchState.ANSWERED: "已反馈",
}

DEADLINE_LABELS: dict[str, str] = {
    "on_time": "正常办理",
    "due_soon": "即将到期",
    "overdue": "已超期",
    "answered_on_time": "按时反馈",
    "answered_late": "超期反馈",
    "returned": "已退回",
}


# --- Numbers -----------------------------------------------------------------------------------


def slip_number(year: int, serial: int) -> str:
    """`BSJZ-2026-000123`: prefix, year of issue, serial within the year."""
    return f"{NUMBER_PREFIX}-{year}-{serial:06d}"


def next_serial(db: Session, year: int) -> int:
    """The next serial of `year`, safe under concurrency.

    The counter row is created if missing (INSERT ... ON CONFLICT DO NOTHING) and incremented
    with one UPDATE ... RETURNING: the row lock it takes is held until the transaction ends, so
    two issuers never read the same number, and a rolled-back issue gives its number back.
    """
    dialect = db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.execute(
        insert(DispatchCounter)
        .values(year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    return db.execute(
        update(DispatchCounter)
        .where(DispatchCounter.year == year)
        .values(last_number=DispatchCounter.last_number + 1)
        .returning(DispatchCounter.last_number),
        execution_options={"synchronize_session": False},
    ).scalar_one()


# --- Who sees and who acts ---------------------------------------------------------------------


def scope_dispatches(query: Select, actor: Actor) -> Select:
    """Limit a query over slips to what `actor` may see, in the query itself.

    Center staff and leaders: every slip. Town staff: slips sent to their town, and slips about
    leads of their town (which their platform may have issued). Department staff: slips sent to
    their department. Anyone else: none.
    """
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF and actor.town_id is not None:
        return query.where(
            or_(
                and_(Dispatch.unit_kind == UnitKind.TOWN, Dispatch.town_id == actor.town_id),
                Dispatch.lead_town_id == actor.town_id,
            )
        )
    if actor.role is Role.DEPARTMENT_STAFF and actor.department_id is not None:
        return query.where(
            Dispatch.unit_kind == UnitKind.DEPARTMENT,
            Dispatch.department_id == actor.department_id,
        )
    return query.where(false())


def access_dispatch_by_id(db: Session, dispatch_id: int, *, actor: Actor) -> Dispatch:
    """The slip if `actor` may see it; 404 otherwise (out of scope looks like absent)."""
    if not 0 < dispatch_id < 2**63:
        raise NotFound("未找到该转办单", code="dispatch_not_found")
    dispatch = db.scalar(
        scope_dispatches(select(Dispatch).where(Dispatch.id == dispatch_id), actor)
    )
    if dispatch is None:
        raise NotFound("未找到该转办单", code="dispatch_not_found")
    return dispatch


def is_receiver(dispatch: Dispatch, actor: Actor) -> bool:
    """Whether `actor` works for the unit the slip was sent to."""
    if dispatch.unit_kind is UnitKind.TOWN:
        return actor.role is Role.TOWN_STAFF and actor.town_id == dispatch.town_id
    return actor.role is Role.DEPARTMENT_STAFF and actor.department_id == dispatch.department_id


def _require_receiver(dispatch: Dispatch, actor: Actor, what: str) -> None:
    if not is_receiver(dispatch, actor):
        raise Forbidden(f"只有接收单位可以{what}", code="not_receiving_unit")


def _require_state(dispatch: Dispatch, allowed: set[DispatchState], what: str) -> None:
    if dispatch.state not in allowed:
        raise Conflict(
            f"转办单当前状态为“{STATE_LABELS[dispatch.state]}”，不能{what}",
            code="dispatch_state",
        )


# --- Receiving units ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    kind: UnitKind
    department_id: int | None
    town_id: int | None
    name: str


def resolve_unit(db: Session, kind: UnitKind, code: str) -> Unit:
    """The department or town with `code`; 422 when there is none."""
    if kind is UnitKind.DEPARTMENT:
        dept = db.scalar(select(Department).where(Department.code == code))
        if dept is None:
            raise _invalid("unit_code", "未找到该部门", "department_not_found")
        return Unit(kind, dept.id, None, dept.name)
    town = db.scalar(select(Town).where(Town.code == code))
    if town is None:
        raise _invalid("unit_code", "未找到该镇街", "town_not_found")
    return Unit(kind, None, town.id, town.name)


def unit_name(db: Session, dispatch: Dispatch) -> str:
    if dispatch.unit_kind is UnitKind.DEPARTMENT:
        dept = db.get(Department, dispatch.department_id)
        return dept.name if dept else ""
    town = db.get(Town, dispatch.town_id)
    return town.name if town else ""


def unit_staff_ids(db: Session, dispatch: Dispatch) -> list[int]:
    """Active staff accounts of the slip's receiving unit."""
    query = select(User.id).where(User.is_active.is_(True))
    if dispatch.unit_kind is UnitKind.DEPARTMENT:
        query = query.where(
            User.role == Role.DEPARTMENT_STAFF, User.department_id == dispatch.department_id
        )
    else:
        query = query.where(User.role == Role.TOWN_STAFF, User.town_id == dispatch.town_id)
    return list(db.scalars(query.order_by(User.id)))


# --- State changes -----------------------------------------------------------------------------


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
        raise _invalid("instructions", "请填写转办要求")
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
    _require_receiver(dispatch, actor, "签收")
    _require_state(dispatch, {DispatchState.ISSUED}, "签收")
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
    _require_receiver(dispatch, actor, "退回")
    _require_state(dispatch, set(OPEN_DISPATCH_STATES), "退回")
    reason = reason.strip()
    if not reason:
        raise _invalid("reason", "请填写退回原因")
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
    _require_receiver(dispatch, actor, "反馈")
    hint = "反馈（请先签收）" if dispatch.state is DispatchState.ISSUED else "反馈"
    _require_state(dispatch, {DispatchState.SIGNED}, hint)
    findings, photo_ids = _checked_findings(db, feedback, actor=actor)
    lead = lock_lead(db, dispatch.lead_id)
    # Read after the lock, so an answer or decision committed meanwhile is seen (409, not 422).
    db.refresh(dispatch)
    _require_state(dispatch, {DispatchState.SIGNED}, "反馈")
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
        raise _invalid("findings", "请填写调查核实情况")
    photo_ids = tuple(dict.fromkeys(feedback.photo_ids))
    if photo_ids:
        owned = owned_photo_ids(db, list(photo_ids), actor=actor)
        if set(photo_ids) - owned:
            raise _invalid("photo_ids", "附件照片无效，请重新上传")
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
            raise _invalid("decisions", message, "decisions_required")
        return None
    if feedback.outcome is not None:
        message = "已逐项填写申请的办理结果，请勿再填写整体结果"
        raise _invalid("outcome", message)
    seen: set[int] = set()
    checked = []
    for i, answer in enumerate(feedback.answers):
        field = f"decisions.{i}."
        application = undecided.get(answer.application_id)
        if application is None or answer.application_id in seen:
            message = "该申请不属于此线索、已办结或已撤回，或重复填写"
            raise _invalid(f"{field}application_id", message, "application_not_on_lead")
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
        raise _invalid("outcome", "请选择办理结果")
    return checked_decision(Decision(feedback.outcome, feedback.reason, feedback.amount))


def require_can_attach(dispatch: Dispatch, *, actor: Actor) -> None:
    """Photos for the feedback are uploaded by the receiving unit while the slip is open."""
    _require_receiver(dispatch, actor, "上传附件")
    _require_state(dispatch, set(OPEN_DISPATCH_STATES), "上传附件")


def access_attachment(db: Session, dispatch_id: int, photo_id: int, *, actor: Actor) -> Photo:
    """A photo attached to the slip's feedback, for whoever may see the slip; else 404."""
    dispatch = access_dispatch_by_id(db, dispatch_id, actor=actor)
    photo = db.get(Photo, photo_id) if photo_id in dispatch.photo_ids else None
    if photo is None:
        raise NotFound("未找到该附件", code="attachment_not_found")
    return photo


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
        raise _invalid("satisfaction", "满意度应为1至5分")


# --- Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """Where an open slip stands against its due date, on `today`."""

    #: on_time / due_soon / overdue, or answered_on_time / answered_late / returned.
    state: str
    #: Working days left after today up to the due date (0 on the due date itself).
    working_days_left: int | None
    #: Working days after the due date up to today, at least 1 once the due date has passed.
    overdue_days: int
    certain: bool


def deadline(dispatch: Dispatch, calendar: WorkCalendar, today: date) -> Deadline:
    """The deadline state of a slip on `today`.

    * on time: two working days or more left;
    * due soon: one working day left, or the due date is today;
    * overdue by N working days: the due date has passed; N counts the working days after it up
      to today, and is at least 1 (a slip due on Friday is 1 day late on Saturday and Monday).
    """
    if dispatch.state is DispatchState.RETURNED:
        return Deadline("returned", None, 0, dispatch.due_certain)
    if dispatch.state is DispatchState.ANSWERED:
        state = "answered_on_time" if dispatch.answered_on_time else "answered_late"
        return Deadline(state, None, 0, dispatch.due_certain)
    if today > dispatch.due_date:
        late = calendar.working_days_between(dispatch.due_date, today)
        return Deadline("overdue", None, max(1, late.days), dispatch.due_certain and late.certain)
    left = calendar.working_days_between(today, dispatch.due_date)
    state = "due_soon" if left.days <= 1 else "on_time"
    return Deadline(state, left.days, 0, dispatch.due_certain and left.certain)


@dataclass(frozen=True)
class DispatchFilter:
    state: DispatchState | None = None
    #: on_time / due_soon / overdue (open slips only).
    deadline: str | None = None
    lead_id: int | None = None
    unit_kind: UnitKind | None = None
    unit_code: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None


def list_dispatches(
    db: Session,
    filters: DispatchFilter,
    *,
    calendar: WorkCalendar,
    actor: Actor,
    today: date,
    page: int,
    per_page: int,
) -> tuple[list[Dispatch], int]:
    """Slips `actor` may see, oldest due date first among open ones, then newest."""
    query = scope_dispatches(select(Dispatch), actor)
    query = _filtered(db, query, filters, calendar=calendar, today=today)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(
        query.order_by(
            Dispatch.state.in_(list(OPEN_DISPATCH_STATES)).desc(),
            Dispatch.due_date,
            Dispatch.id.desc(),
        )
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def _filtered(
    db: Session, query: Select, f: DispatchFilter, *, calendar: WorkCalendar, today: date
) -> Select:
    if f.state is not None:
        query = query.where(Dispatch.state == f.state)
    if f.lead_id is not None:
        query = query.where(Dispatch.lead_id == f.lead_id)
    if f.unit_kind is not None:
        query = query.where(Dispatch.unit_kind == f.unit_kind)
        if f.unit_code:
            unit = _unit_or_none(db, f.unit_kind, f.unit_code)
            if unit is None:
                return query.where(false())
            query = query.where(
                Dispatch.department_id == unit.department_id
                if unit.kind is UnitKind.DEPARTMENT
                else Dispatch.town_id == unit.town_id
            )
    if f.issued_from is not None:
        query = query.where(Dispatch.issued_at >= _day_start(f.issued_from))
    if f.issued_to is not None:
        query = query.where(Dispatch.issued_at < _day_start(f.issued_to, plus_days=1))
    if f.deadline is not None:
        # "Due soon" ends with the next working day after today (due dates are working days).
        soon_until = calendar.add_working_days(today, 1).value
        query = query.where(Dispatch.state.in_(list(OPEN_DISPATCH_STATES)))
        if f.deadline == "overdue":
            query = query.where(Dispatch.due_date < today)
        elif f.deadline == "due_soon":
            query = query.where(Dispatch.due_date >= today, Dispatch.due_date <= soon_until)
        else:
            query = query.where(Dispatch.due_date > soon_until)
    return query


def _unit_or_none(db: Session, kind: UnitKind, code: str) -> Unit | None:
    try:
        return resolve_unit(db, kind, code)
    except ValidationFailed:
        return None


def _day_start(day: date, *, plus_days: int = 0) -> datetime:
    from datetime import time, timedelta

    return datetime.combine(day + timedelta(days=plus_days), time(), TZ)


def dispatch_view(
    db: Session,
    dispatch: Dispatch,
    *,
    calendar: WorkCalendar,
    today: date,
    actor: Actor,
    alerts: bool = False,
) -> dict[str, Any]:
    """A slip as staff see it: the lead's name (no ID or phone), unit, deadline, feedback."""
    lead = db.get(Lead, dispatch.lead_id)
    state = deadline(dispatch, calendar, today)
    view: dict[str, Any] = {
        "id": dispatch.id,
        "number": dispatch.number,
        "lead_id": dispatch.lead_id,
        "lead_name": lead.name if lead else "",
        "unit": {
            "kind": dispatch.unit_kind.value,
            "code": _unit_code(db, dispatch),
            "name": unit_name(db, dispatch),
        },
        "instructions": dispatch.instructions,
        "state": dispatch.state.value,
        "state_label": STATE_LABELS[dispatch.state],
        "due_date": dispatch.due_date,
        "due_date_certain": dispatch.due_certain,
        "deadline": {
            "state": state.state,
            "label": _deadline_label(state),
            "working_days_left": state.working_days_left,
            "overdue_days": state.overdue_days,
            "certain": state.certain,
        },
        "issued_at": dispatch.issued_at,
        "signed_at": dispatch.signed_at,
        "returned_at": dispatch.returned_at,
        "return_reason": dispatch.return_reason,
        "answered_at": dispatch.answered_at,
        "answered_on_time": dispatch.answered_on_time,
        "findings": dispatch.findings,
        "outcome": dispatch.outcome,
        "outcome_label": (
            outcome_text(
                dispatch.outcome,
                dispatch.outcome_reason,
                f"{dispatch.amount.normalize():f}" if dispatch.amount is not None else None,
            )
            if dispatch.outcome
            else None
        ),
        "outcome_reason": dispatch.outcome_reason,
        "amount": dispatch.amount,
        "photo_ids": list(dispatch.photo_ids),
        "escalation_level": dispatch.escalation_level,
        "can_act": is_receiver(dispatch, actor),
        "applications": [
            _slip_application(a, dispatch) for a in lead_applications(db, dispatch.lead_id)
        ],
    }
    if alerts:
        view["alerts"] = [
            {
                "kind": a.kind.value,
                "recipient": a.recipient,
                "message": a.message,
                "overdue_days": a.overdue_days,
                "created_at": a.created_at,
            }
            for a in db.scalars(
                select(DispatchAlert)
                .where(DispatchAlert.dispatch_id == dispatch.id)
                .order_by(DispatchAlert.id)
            )
        ]
    return view


def _slip_application(application: Application, dispatch: Dispatch) -> dict[str, Any]:
    return {
        "id": application.id,
        "number": application_number(application),
        "type": application.type.value,
        "type_label": TYPE_LABELS[application.type],
        "status": application.status.value,
        "status_label": STATUS_LABELS[application.status],
        "outcome": application.outcome,
        "outcome_label": decided_text(application) if application.outcome else None,
        "amount": application.amount,
        "decided_by_this_slip": application.decision_dispatch_id == dispatch.id,
    }


def _deadline_label(state: Deadline) -> str:
    if state.state == "overdue":
        return f"已超期{state.overdue_days}个工作日"
    if state.state == "due_soon":
        return "今日到期" if state.working_days_left == 0 else "即将到期（剩1个工作日）"
    if state.state == "on_time":
        return f"正常办理（剩{state.working_days_left}个工作日）"
    return DEADLINE_LABELS[state.state]


def _unit_code(db: Session, dispatch: Dispatch) -> str:
    if dispatch.unit_kind is UnitKind.DEPARTMENT:
        dept = db.get(Department, dispatch.department_id)
        return dept.code if dept else ""
    town = db.get(Town, dispatch.town_id)
    return town.code if town else ""


# --- The printed slip --------------------------------------------------------------------------


def slip_context(
    db: Session,
    dispatch: Dispatch,
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> dict[str, Any]:
    """What the printed A4 slip shows. The receiving unit needs the whole ID and phone numbers to
    find the person, so the slip carries them, and printing it is recorded as an unmasked view."""
    lead = db.get(Lead, dispatch.lead_id)
    assert lead is not None
    town = db.get(Town, lead.town_id) if lead.town_id else None
    issuer = db.get(User, dispatch.issued_by_id) if dispatch.issued_by_id else None
    id_number = pii.open(lead.id_number_enc)
    phone = pii.open(lead.phone_enc)
    shown = [name for name, value in (("id_number", id_number), ("phone", phone)) if value]
    if shown:
        record_unmasked_view(
            db,
            actor=actor,
            target_type="dispatch",
            target_id=dispatch.id,
            fields=shown,
            now=now,
            purpose="print_slip",
        )
        db.flush()
    return {
        "number": dispatch.number,
        "unit_name": unit_name(db, dispatch),
        "issued_at": dispatch.issued_at.astimezone(TZ),
        "issuer": (issuer.display_name or issuer.username) if issuer else "",
        "due_date": dispatch.due_date,
        "due_certain": dispatch.due_certain,
        "name": lead.name,
        "id_number": id_number or "",
        "id_number_masked": idnumber.mask(id_number) or "",
        "phone": phone or "",
        "town": town.name if town else "",
        "address": lead.address or "",
        "categories": list(lead.categories),
        "instructions": dispatch.instructions,
        "state_label": STATE_LABELS[dispatch.state],
    }


# --- Helpers -----------------------------------------------------------------------------------


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


def _invalid(field_name: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, errors={field_name: [message]})


_SLIP_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>线索转办单 {{ s.number }}</title>
<style>
  @page { size: A4; margin: 18mm 16mm; }
  body { font-family: "Noto Sans SC", "Source Han Sans SC", "SimSun", serif; color: #000;
         margin: 0; font-size: 12pt; }
  .page { width: 178mm; margin: 0 auto; }
  h1 { text-align: center; font-size: 20pt; letter-spacing: 4pt; margin: 0 0 4mm; }
  .head { display: flex; justify-content: space-between; align-items: flex-end; }
  .head .no { font-size: 12pt; }
  .qr img { width: 30mm; height: 30mm; }
  .qr div { text-align: center; font-size: 9pt; }
  table { width: 100%; border-collapse: collapse; margin-top: 3mm; }
  th, td { border: 1px solid #000; padding: 2.5mm 3mm; vertical-align: top; }
  th { width: 28mm; text-align: center; font-weight: normal; background: #f2f2f2; }
  td.tall { height: 45mm; }
  .foot { margin-top: 8mm; display: flex; justify-content: space-between; }
  .note { font-size: 9pt; margin-top: 4mm; }
  @media print { .noprint { display: none; } }
</style>
</head>
<body>
<div class="page">
  <h1>博山区社会救助线索转办单</h1>
  <div class="head">
    <div class="no">编号：{{ s.number }}<br>状态：{{ s.state_label }}</div>
    <div class="qr"><img alt="{{ s.number }}" src="{{ qr }}"><div>{{ s.number }}</div></div>
  </div>
  <table>
    <tr><th>接收单位</th><td colspan="3">{{ s.unit_name }}</td></tr>
    <tr><th>转办时间</th><td>{{ s.issued_at.strftime('%Y年%m月%d日 %H:%M') }}</td>
        <th>反馈期限</th><td>{{ s.due_date.strftime('%Y年%m月%d日') }}前（5个工作日）
        {%- if not s.due_certain %}<br><small>※ 该年度节假日安排尚未公布，期限按周末推算，
        以正式安排为准</small>{% endif %}</td></tr>
    <tr><th>姓名</th><td>{{ s.name }}</td><th>身份证号</th><td>{{ s.id_number }}</td></tr>
    <tr><th>联系电话</th><td>{{ s.phone }}</td><th>所属镇街</th><td>{{ s.town }}</td></tr>
    <tr><th>住址</th><td colspan="3">{{ s.address }}</td></tr>
    <tr><th>对象类别</th><td colspan="3">{{ s.categories | join('、') }}</td></tr>
    <tr><th>转办要求</th><td colspan="3" class="tall">{{ s.instructions }}</td></tr>
    <tr><th>调查核实<br>及办理结果</th><td colspan="3" class="tall"></td></tr>
  </table>
  <div class="foot">
    <div>转办人：{{ s.issuer }}</div>
    <div>区社会救助综合服务中心（盖章）</div>
  </div>
  <div class="foot">
    <div>签收人：__________</div>
    <div>签收时间：______年____月____日</div>
  </div>
  <p class="note">请接收单位于反馈期限内调查核实并通过“博山e救助”平台反馈办理结果；
  确属非本单位职责的，请说明理由后退回。本单含个人信息，仅限办理使用，不得外传。</p>
</div>
</body>
</html>
"""


def slip_html(context: dict[str, Any]) -> str:
    """The printable A4 slip, with a QR code (inline PNG data URI) of the slip number."""
    env = Environment(autoescape=True)
    categories = [CATEGORY_LABELS.get(c, c) for c in context["categories"]]
    return env.from_string(_SLIP_TEMPLATE).render(
        s={**context, "categories": categories}, qr=qr_data_uri(context["number"])
    )
