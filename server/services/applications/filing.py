"""Filing an application (own or on behalf, once per Idempotency-Key), and adding photos and
papers to it; reading is `reading`, the steps and withdrawing are `handling`.

Every application feeds the applicant's one open lead through `leads.record_signal` in the same
transaction; every state change writes a timeline event and an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.errors import Conflict, Forbidden, NotFound, invalid
from server.models import (
    UNDECIDED,
    Application,
    ApplicationEvent,
    ApplicationPhoto,
    ApplicationStatus,
    ApplicationType,
    Channel,
    Role,
    Town,
    Village,
)
from server.services.applications.handling import ApplicationStateError, record_step
from server.services.applications.photos import owned_photo_ids
from server.services.applications.reading import access_application_by_id, application_number
from server.services.households.building import absorb_application
from server.services.kernel import idnumber, text
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.idempotency import create_once
from server.services.kernel.outcomes import TYPE_LABELS
from server.services.kernel.pii import PersonalData
from server.services.leads.core import Signal, record_signal
from server.services.notifications.messages import (
    notify_papers_requested,
)

#: Lead categories each type of application suggests.
_CATEGORIES: dict[ApplicationType, list[str]] = {
    ApplicationType.DIBAO: ["dibao"],
    ApplicationType.TEKUN: ["tekun"],
    ApplicationType.TEMPORARY: ["temporary"],
    ApplicationType.MEDICAL: ["illness"],
}


@dataclass(frozen=True, slots=True)
class Filed:
    application: Application
    #: False when this is a replay of an earlier request with the same key.
    created: bool


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
    )
    return Filed(db.get(Application, application_id), created=created)


def _create(
    db: Session, *, body: dict[str, Any], pii: PersonalData, actor: Actor, now: datetime
) -> Application:
    today = now.date()
    kind = ApplicationType(body["type"])
    applicant = body["applicant"]
    by_staff = actor.role in STAFF_FILERS
    id_number = idnumber.checked_id(
        applicant["id_number"], field="applicant.id_number", today=today
    )
    # Staff at the window or on the phone, and helpers filing on behalf, file for households
    # that may have no mobile: a landline with its area code will do there.
    phone = idnumber.checked_phone(
        applicant["phone"],
        field="applicant.phone",
        rule="mobile_or_landline" if by_staff or actor.role is Role.HELPER else "mobile",
        required=True,
    )
    reason = _checked_text(body["reason"], "reason")
    village = db.scalar(select(Village).where(Village.code == applicant["village"]))
    town = db.scalar(select(Town).where(Town.code == applicant["town"]))
    if town is None:
        raise invalid("applicant.town", "未找到该镇（街道）", "town_not_found")
    if village is None or village.town_id != town.id:
        raise invalid("applicant.village", "该村（社区）不属于所选镇（街道）", "village_not_found")
    members = []
    for i, member in enumerate(body.get("household", [])):
        sealed = None
        if member.get("id_number"):
            value = idnumber.checked_id(
                member["id_number"], field=f"household.{i}.id_number", today=today
            )
            sealed = pii.seal(value)
        members.append(
            {"name": member["name"], "relation": member["relation"], "id_number_enc": sealed}
        )
    photo_ids = list(dict.fromkeys(body["photo_ids"]))
    if owned_photo_ids(db, photo_ids, actor=actor) != set(photo_ids):
        raise invalid("photo_ids", "只能使用您本人上传的照片", "photo_not_owned")
    details = _details(kind, body)
    on_behalf = _on_behalf(db, body.get("on_behalf"), village=village, pii=pii, actor=actor)
    intake = _intake(db, body.get("intake"), town=town, actor=actor)
    if intake is not None:
        channel = Channel(intake["channel"])
    else:
        channel = Channel.ON_BEHALF if on_behalf is not None else Channel.MINIPROGRAM
    id_hash = pii.hash(id_number)
    _refuse_second_open(db, pii.hashes(id_number), kind)
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
        _refuse_second_open(db, pii.hashes(id_number), kind)
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
            person_hashes=pii.hashes(id_number),
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
    record_step(db, application, ApplicationStatus.SUBMITTED, actor=actor, now=now)
    db.flush()
    absorb_application(db, application, pii=pii, now=now)
    return application


class ApplicationOpen(Conflict):
    code = "application_open"


def _refuse_second_open(db: Session, id_hashes: tuple[str, ...], kind: ApplicationType) -> None:
    """409 naming the person's undecided application of this kind, if there is one: papers
    are added to it (POST /applications/<id>/photos) instead of filing a second. `id_hashes`:
    the ID number's hash under every listed key (a re-keying window)."""
    open_one = db.scalar(
        select(Application).where(
            Application.id_hash.in_(id_hashes),
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
            raise invalid("intake", "只有镇街或中心工作人员可以窗口、电话代办")
        return None
    if block is None or block.get("channel") not in _STAFF_CHANNELS:
        raise invalid("intake", "请填写受理渠道（窗口或电话）和同意方式", "intake_required")
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
            raise invalid("intake.consent_photo_id", "请上传申请人签字的同意书照片")
        result["consent_photo_id"] = photo_id
    elif method == "recorded_call":
        if block["channel"] != Channel.PHONE.value:
            raise invalid("intake.consent_method", "电话录音只适用于电话受理")
        record_no = (block.get("call_record") or "").strip()
        if not record_no:
            raise invalid("intake.call_record", "请填写通话录音编号")
        result["call_record"] = _checked_text(record_no, "intake.call_record")
    else:
        witness = (block.get("witness_name") or "").strip()
        if not witness:
            raise invalid("intake.witness_name", "口头同意需填写见证人姓名")
        result["witness_name"] = _checked_text(witness, "intake.witness_name")
    return result


def _details(kind: ApplicationType, body: dict[str, Any]) -> dict[str, Any]:
    if kind is ApplicationType.MEDICAL:
        medical = body.get("medical")
        if not medical:
            raise invalid("medical", "申请医疗救助请填写住院信息", "medical_required")
        if medical["discharge_date"] < medical["admission_date"]:
            raise invalid("medical.discharge_date", "出院日期不能早于入院日期")
        if medical["out_of_pocket"] > medical["total_cost"]:
            raise invalid("medical.out_of_pocket", "自付费用不能超过总费用")
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
            raise invalid("temporary", "申请临时救助请说明遇到的困难", "temporary_required")
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
            raise invalid(
                "on_behalf", "代为申请请填写与申请人的关系和同意方式", "on_behalf_required"
            )
        if actor.village_id != village.id:
            raise Forbidden("只能为本村（社区）的群众代为申请", code="not_your_village")
    elif block is not None:
        raise invalid("on_behalf", "只有村居协理员可以代为申请")
    if block is None:
        return None
    method = block["consent_method"]
    result: dict[str, Any] = {
        "relationship": _checked_text(block["relationship"], "on_behalf.relationship"),
        "consent_method": method,
        "applicant_phone_enc": pii.seal(
            idnumber.checked_phone(
                block["applicant_phone"],
                field="on_behalf.applicant_phone",
                rule="mobile",
                required=True,
            )
        ),
        "helper_id": actor.user_id,
    }
    if method == "signed_form":
        photo_id = block.get("consent_photo_id")
        if photo_id is None or owned_photo_ids(db, [photo_id], actor=actor) != {photo_id}:
            raise invalid("on_behalf.consent_photo_id", "请上传申请人签字的同意书照片")
        result["consent_photo_id"] = photo_id
    else:
        witness = (block.get("witness_name") or "").strip()
        if not witness:
            raise invalid("on_behalf.witness_name", "口头同意需填写见证人姓名")
        result["witness_name"] = _checked_text(witness, "on_behalf.witness_name")
    return result


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
        raise invalid("photo_ids", "只能使用您本人上传的照片", "photo_not_owned")
    if len(application.photo_ids) + len(new) > MAX_PHOTOS:
        left = MAX_PHOTOS - len(application.photo_ids)
        raise invalid("photo_ids", f"每份申请最多 {MAX_PHOTOS} 张照片，还可补充 {left} 张")
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
        raise invalid("what", "请说明需要补充的材料")
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
