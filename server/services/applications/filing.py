"""Applications: filing (own or on behalf, idempotent), reading one's own, withdrawing.

Every application feeds the applicant's one open lead through `leads.record_signal` in the same
transaction; every state change writes a timeline event and an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import (
    UNDECIDED,
    Application,
    ApplicationEvent,
    ApplicationPhoto,
    ApplicationStatus,
    ApplicationType,
    Channel,
    Lead,
    LeadEvidence,
    LeadStatus,
    Role,
    Town,
    Village,
)
from server.services.applications.photos import owned_photo_ids
from server.services.households.members import absorb_application
from server.services.kernel import idnumber, text
from server.services.kernel.access import Actor, require_role, scope_by_area
from server.services.kernel.audit import record
from server.services.kernel.idempotency import create_once
from server.services.kernel.pii import PersonalData
from server.services.leads import Signal, record_signal, set_lead_status
from server.services.notifications.messages import (
    notify_application_event,
    notify_papers_requested,
)
from server.services.outcomes import TYPE_LABELS, outcome_text

#: Lead categories each type of application suggests.
_CATEGORIES: dict[ApplicationType, list[str]] = {
    ApplicationType.DIBAO: ["dibao"],
    ApplicationType.TEKUN: ["tekun"],
    ApplicationType.TEMPORARY: ["temporary"],
    ApplicationType.MEDICAL: ["illness"],
}
STEP_TITLES: dict[ApplicationStatus, str] = {
    ApplicationStatus.SUBMITTED: "已提交申请，等待镇街受理",
    ApplicationStatus.ACCEPTED: "镇街已受理您的申请",
    ApplicationStatus.INVESTIGATING: "工作人员正在入户调查核实",
    ApplicationStatus.DECIDED: "审核已有结果",
    ApplicationStatus.WITHDRAWN: "申请已撤回",
}


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = "该请求编号已用于另一份不同的申请，请刷新后重新提交"


@dataclass(frozen=True, slots=True)
class Filed:
    application: Application
    #: False when this is a replay of an earlier request with the same key.
    created: bool


def _invalid(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, errors={field: [message]})


def _checked_id(raw: str, field: str, *, today: date) -> str:
    result = idnumber.check(raw, today=today)
    if not result.ok:
        raise _invalid(field, result.message, result.code)
    return result.value


def _checked_phone(raw: str, field: str, *, landline: bool = False) -> str:
    """A mobile number; with `landline`, a fixed line with its area code too (a household at
    the window or on the phone may have no mobile)."""
    value, kind = idnumber.phone_kind(raw)
    if kind == "mobile" or (landline and kind == "landline"):
        return value
    if landline:
        message = "电话号码应为11位手机号，或带区号的固定电话（如 0533-4181234）"
        raise _invalid(field, message, "phone_format")
    raise _invalid(field, "手机号码应为以1开头的11位数字", "phone_format")


def _checked_text(raw: str, field: str) -> str:
    return text.check_text(raw, field=field).strip()


def file_application(
    db: Session,
    *,
    body: dict[str, Any],
    idempotency_key: str,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> Filed:
    """File an application once per `idempotency_key`: a repeat returns the first one."""
    assert actor.user_id is not None
    application_id, created = create_once(
        db,
        user_id=actor.user_id,
        key=idempotency_key,
        scope=None,
        body=body,
        now=now,
        create=lambda: _create(db, body=body, pii=pii, actor=actor, now=now).id,
        conflict=IdempotencyConflict,
    )
    return Filed(db.get(Application, application_id), created=created)


def _create(
    db: Session, *, body: dict[str, Any], pii: PersonalData, actor: Actor, now: datetime
) -> Application:
    today = now.date()
    kind = ApplicationType(body["type"])
    applicant = body["applicant"]
    by_staff = actor.role in STAFF_FILERS
    id_number = _checked_id(applicant["id_number"], "applicant.id_number", today=today)
    # Staff at the window or on the phone, and helpers filing on behalf, file for households
    # that may have no mobile: a landline with its area code will do there.
    phone = _checked_phone(
        applicant["phone"], "applicant.phone", landline=by_staff or actor.role is Role.HELPER
    )
    reason = _checked_text(body["reason"], "reason")
    village = db.scalar(select(Village).where(Village.code == applicant["village"]))
    town = db.scalar(select(Town).where(Town.code == applicant["town"]))
    if town is None:
        raise _invalid("applicant.town", "未找到该镇（街道）", "town_not_found")
    if village is None or village.town_id != town.id:
        raise _invalid("applicant.village", "该村（社区）不属于所选镇（街道）", "village_not_found")
    members = []
    for i, member in enumerate(body.get("household", [])):
        sealed = None
        if member.get("id_number"):
            value = _checked_id(member["id_number"], f"household.{i}.id_number", today=today)
            sealed = pii.seal(value)
        members.append(
            {"name": member["name"], "relation": member["relation"], "id_number_enc": sealed}
        )
    photo_ids = list(dict.fromkeys(body["photo_ids"]))
    if owned_photo_ids(db, photo_ids, actor=actor) != set(photo_ids):
        raise _invalid("photo_ids", "只能使用您本人上传的照片", "photo_not_owned")
    details = _details(kind, body)
    on_behalf = _on_behalf(db, body.get("on_behalf"), village=village, pii=pii, actor=actor)
    intake = _intake(db, body.get("intake"), town=town, actor=actor)
    if intake is not None:
        channel = Channel(intake["channel"])
    else:
        channel = Channel.ON_BEHALF if on_behalf is not None else Channel.MINIPROGRAM
    id_hash = pii.hash(id_number)
    _refuse_second_open(db, id_hash, kind)
    application = Application(
        filed_by_id=actor.user_id,
        type=kind,
        status=ApplicationStatus.SUBMITTED,
        channel=channel,
        name=applicant["name"].strip(),
        id_number_enc=pii.seal(id_number),
        id_hash=id_hash,
        phone_enc=pii.seal(phone),
        town_id=town.id,
        village_id=village.id,
        address=_checked_text(applicant["address"], "applicant.address"),
        household=members,
        monthly_income=body["monthly_income"],
        reason=reason,
        photo_ids=photo_ids,
        details=details,
        on_behalf=on_behalf,
        intake=intake,
        submitted_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        with savepoint(db):
            db.add(application)
            db.flush()
    except IntegrityError:  # the same person's same kind, filed at the same moment
        _refuse_second_open(db, id_hash, kind)
        raise
    linked = {*photo_ids}
    for block in (on_behalf, intake):
        if block and block.get("consent_photo_id"):
            linked.add(block["consent_photo_id"])
    db.add_all(ApplicationPhoto(application_id=application.id, photo_id=p) for p in linked)
    outcome = record_signal(
        db,
        Signal(
            channel=channel,
            name=application.name,
            summary=f"{TYPE_LABELS[kind]}申请",
            dedup_key=f"application:{application.id}",
            person_hash=application.id_hash,
            id_number_enc=application.id_number_enc,
            phone_enc=application.phone_enc,
            phone_hash=pii.hash(phone),
            town_id=town.id,
            village_id=village.id,
            address=application.address,
            categories=_CATEGORIES[kind],
            facts={"type": kind.value, "monthly_income": str(body["monthly_income"])},
            event_date=today,
            source_type="application",
            source_id=application.id,
        ),
        actor=actor,
        now=now,
    )
    application.lead_id = outcome.lead.id
    _step(db, application, ApplicationStatus.SUBMITTED, actor=actor, now=now)
    db.flush()
    absorb_application(db, application, pii=pii, now=now)
    return application


class ApplicationOpen(Conflict):
    code = "application_open"


def _refuse_second_open(db: Session, id_hash: str, kind: ApplicationType) -> None:
    """409 naming the person's undecided application of this kind, if there is one: papers
    are added to it (POST /applications/<id>/photos) instead of filing a second."""
    open_one = db.scalar(
        select(Application).where(
            Application.id_hash == id_hash,
            Application.type == kind,
            Application.status.in_(UNDECIDED),
        )
    )
    if open_one is None:
        return
    number = application_number(open_one)
    message = (
        f"该申请人已有一份正在办理的{TYPE_LABELS[kind]}申请（{number}），"
        "请在该申请中补充材料，无需重复申请"
    )
    raise ApplicationOpen(message, errors={"type": [message], "open_application": [number]})


#: Staff who file for a person at the window or on the phone (窗口办, 电话办).
STAFF_FILERS = frozenset({Role.TOWN_STAFF, Role.CENTER_STAFF})
_STAFF_CHANNELS = frozenset({Channel.WINDOW.value, Channel.PHONE.value})


def _intake(
    db: Session, block: dict[str, Any] | None, *, town: Town, actor: Actor
) -> dict[str, Any] | None:
    """For staff filing at the window or on the phone: the channel and how the person
    consented (a signed form's photo, a witness to verbal consent, or the recorded call)."""
    if actor.role not in STAFF_FILERS:
        if block is not None:
            raise _invalid("intake", "只有镇街或中心工作人员可以窗口、电话代办")
        return None
    if block is None or block.get("channel") not in _STAFF_CHANNELS:
        raise _invalid("intake", "请填写受理渠道（窗口或电话）和同意方式", "intake_required")
    if actor.role is Role.TOWN_STAFF and actor.town_id != town.id:
        raise Forbidden("只能为本镇（街道）的群众办理", code="not_your_town")
    method = block["consent_method"]
    result: dict[str, Any] = {
        "channel": block["channel"],
        "consent_method": method,
        "staff_id": actor.user_id,
    }
    if method == "signed_form":
        photo_id = block.get("consent_photo_id")
        if photo_id is None or owned_photo_ids(db, [photo_id], actor=actor) != {photo_id}:
            raise _invalid("intake.consent_photo_id", "请上传申请人签字的同意书照片")
        result["consent_photo_id"] = photo_id
    elif method == "recorded_call":
        if block["channel"] != Channel.PHONE.value:
            raise _invalid("intake.consent_method", "电话录音只适用于电话受理")
        record_no = (block.get("call_record") or "").strip()
        if not record_no:
            raise _invalid("intake.call_record", "请填写通话录音编号")
        result["call_record"] = _checked_text(record_no, "intake.call_record")
    else:
        witness = (block.get("witness_name") or "").strip()
        if not witness:
            raise _invalid("intake.witness_name", "口头同意需填写见证人姓名")
        result["witness_name"] = _checked_text(witness, "intake.witness_name")
    return result


def _details(kind: ApplicationType, body: dict[str, Any]) -> dict[str, Any]:
    if kind is ApplicationType.MEDICAL:
        medical = body.get("medical")
        if not medical:
            raise _invalid("medical", "申请医疗救助请填写住院信息", "medical_required")
        if medical["discharge_date"] < medical["admission_date"]:
            raise _invalid("medical.discharge_date", "出院日期不能早于入院日期")
        if medical["out_of_pocket"] > medical["total_cost"]:
            raise _invalid("medical.out_of_pocket", "自付费用不能超过总费用")
        return {
            "hospital": _checked_text(medical["hospital"], "medical.hospital"),
            "admission_date": medical["admission_date"].isoformat(),
            "discharge_date": medical["discharge_date"].isoformat(),
            "total_cost": str(medical["total_cost"]),
            "out_of_pocket": str(medical["out_of_pocket"]),
        }
    if kind is ApplicationType.TEMPORARY:
        temporary = body.get("temporary")
        if not temporary:
            raise _invalid("temporary", "申请临时救助请说明遇到的困难", "temporary_required")
        return {
            "what_happened": _checked_text(temporary["what_happened"], "temporary.what_happened"),
            "happened_on": temporary["happened_on"].isoformat(),
        }
    return {}


def _on_behalf(
    db: Session,
    block: dict[str, Any] | None,
    *,
    village: Village,
    pii: PersonalData,
    actor: Actor,
) -> dict[str, Any] | None:
    if actor.role is Role.HELPER:
        if block is None:
            raise _invalid(
                "on_behalf", "代为申请请填写与申请人的关系和同意方式", "on_behalf_required"
            )
        if actor.village_id != village.id:
            raise Forbidden("只能为本村（社区）的群众代为申请", code="not_your_village")
    elif block is not None:
        raise _invalid("on_behalf", "只有村居协理员可以代为申请")
    if block is None:
        return None
    method = block["consent_method"]
    result: dict[str, Any] = {
        "relationship": _checked_text(block["relationship"], "on_behalf.relationship"),
        "consent_method": method,
        "applicant_phone_enc": pii.seal(
            _checked_phone(block["applicant_phone"], "on_behalf.applicant_phone")
        ),
        "helper_id": actor.user_id,
    }
    if method == "signed_form":
        photo_id = block.get("consent_photo_id")
        if photo_id is None or owned_photo_ids(db, [photo_id], actor=actor) != {photo_id}:
            raise _invalid("on_behalf.consent_photo_id", "请上传申请人签字的同意书照片")
        result["consent_photo_id"] = photo_id
    else:
        witness = (block.get("witness_name") or "").strip()
        if not witness:
            raise _invalid("on_behalf.witness_name", "口头同意需填写见证人姓名")
        result["witness_name"] = _checked_text(witness, "on_behalf.witness_name")
    return result


def _step(
    db: Session,
    application: Application,
    status: ApplicationStatus,
    *,
    actor: Actor,
    now: datetime,
    title: str | None = None,
) -> None:
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


def withdraw(db: Session, application_id: int, *, actor: Actor, now: datetime) -> Application:
    """The filer withdraws their application while nothing has been decided."""
    application = access_application_by_id(db, application_id, actor=actor)
    if application.filed_by_id != actor.user_id:
        raise NotFound("未找到该申请")
    if application.status not in UNDECIDED:
        raise Conflict("申请已有结果或已撤回，不能再撤回", code="not_withdrawable")
    _step(db, application, ApplicationStatus.WITHDRAWN, actor=actor, now=now)
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
#: The most photos an application carries.
MAX_PHOTOS = 9


def add_photos(
    db: Session, application_id: int, photo_ids: list[int], *, actor: Actor, now: datetime
) -> Application:
    """The filer adds photos of documents to their undecided application (instead of filing a
    second one); the timeline shows it and staff of the area can open them."""
    application = access_application_by_id(db, application_id, actor=actor)
    if application.filed_by_id != actor.user_id:
        raise NotFound("未找到该申请")
    if application.status not in UNDECIDED:
        raise ApplicationStateError(
            "申请已办结或已撤回，不能再补充材料", errors={"status": ["申请已办结或已撤回"]}
        )
    new = [p for p in dict.fromkeys(photo_ids) if p not in application.photo_ids]
    if owned_photo_ids(db, new, actor=actor) != set(new):
        raise _invalid("photo_ids", "只能使用您本人上传的照片", "photo_not_owned")
    if len(application.photo_ids) + len(new) > MAX_PHOTOS:
        left = MAX_PHOTOS - len(application.photo_ids)
        raise _invalid("photo_ids", f"每份申请最多 {MAX_PHOTOS} 张照片，还可补充 {left} 张")
    if not new:
        return application
    application.photo_ids = [*application.photo_ids, *new]
    application.updated_at = now
    db.add_all(ApplicationPhoto(application_id=application.id, photo_id=p) for p in new)
    _note(db, application, "papers_added", f"已补充材料（{len(new)} 张照片）", actor=actor, now=now)
    db.flush()
    return application


def request_papers(
    db: Session, application_id: int, what: str, *, actor: Actor, now: datetime
) -> Application:
    """Town or center staff ask the filer for more documents while the application is
    undecided: a timeline entry and a message to the filer."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF)
    application = access_application_by_id(db, application_id, actor=actor)
    if application.status not in UNDECIDED:
        raise ApplicationStateError(
            "申请已办结或已撤回，无需补充材料", errors={"status": ["申请已办结或已撤回"]}
        )
    what = _checked_text(what, "what")
    if not what:
        raise _invalid("what", "请说明需要补充的材料")
    # The version moves, so two staff asking at the same moment do not both send a message.
    application.updated_at = now
    event = _note(db, application, "papers_requested", f"请补充材料：{what}", actor=actor, now=now)
    db.flush()
    notify_papers_requested(db, application, what, event_id=event.id, now=now)
    return application


def _note(
    db: Session, application: Application, kind: str, title: str, *, actor: Actor, now: datetime
) -> ApplicationEvent:
    """A timeline entry that is not a step (papers asked for or added), with its audit row."""
    event = ApplicationEvent(
        application=application,
        at=now,
        status=application.status,
        title=title,
        actor_id=actor.user_id,
        kind=kind,
    )
    db.add(event)
    record(
        db,
        actor=actor,
        action=f"application.{kind}",
        target_type="application",
        target_id=application.id,
        now=now,
        detail={"title": title},
    )
    db.flush()
    return event


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


def application_number(application: Application) -> str:
    """The number residents read in every message about the application, e.g. SQ00000012."""
    return f"SQ{application.id:08d}"


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
    _step(db, application, status, actor=actor, now=now, title=title)


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
                _step(db, application, step, actor=actor, now=now)
                walked = True
            if step is status:
                break
        if walked:
            moved.append(application)
    db.flush()
    return moved


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
