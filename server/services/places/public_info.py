"""Public information: the kinds of aid (who qualifies, what to photograph, how long it takes)
and the phone numbers to call, shown to anyone without login and maintained by the center.

`seed_public_info` writes sensible defaults once (it never overwrites what the center edited).
Town platform numbers the policy does not publish are seeded as demo placeholders and flagged
`is_demo` until the center confirms them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server.errors import Conflict, NotFound, invalid
from server.models import ContactKind, PolicyInfo, PublicContact, Role, Town
from server.services.kernel import text
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record

#: The district's one published assistance line (policy: 设立并公开全区社会救助联系电话). The
#: policy gives no number: this is a placeholder, flagged as a demo number until replaced.
DISTRICT_HOTLINE = ("博山区社会救助服务热线", "0533-4180000")
#: How each kind of aid reads to the public. Eligibility follows the national rules the
#: district applies; the timelines include the district's 5-working-day feedback rule.
POLICIES: tuple[dict[str, Any], ...] = (
    {
        "code": "dibao",
        "title": "最低生活保障（低保）",
        "summary": "共同生活的家庭成员人均收入低于当地低保标准、家庭财产符合规定的城乡居民，"
        "可以申请低保，按月领取低保金。",
        "eligibility": [
            "本区户籍，共同生活的家庭成员月人均收入低于当地城乡低保标准",
            "家庭存款、房产、车辆等财产状况符合当地规定",
            "重病、重度残疾等特殊困难人员，可按规定单独提出申请",
        ],
        "documents": [
            "申请人身份证（正面、反面）",
            "户口簿（户主页和申请人本人页）",
            "共同生活家庭成员的收入情况说明",
            "患病或残疾的，拍摄诊断证明、病历或残疾证",
        ],
        "duration": "镇（街道）受理后入户调查核实，一般自受理之日起30个工作日内作出审核确认，"
        "情况复杂的可适当延长；办理进度可在“我的申请”中查看。",
        "how_to_apply": "在“博山e救助”小程序选择“低保”提交申请并上传照片；也可到所在镇（街道）"
        "社会救助“一门受理、协同办理”窗口申请，或请村（社区）救助协理员帮办代办。",
    },
    {
        "code": "tekun",
        "title": "特困人员救助供养",
        "summary": "无劳动能力、无生活来源、无法定赡养抚养扶养义务人（或义务人无履行能力）的"
        "老年人、残疾人和未成年人，可以申请特困供养。",
        "eligibility": [
            "年满60周岁的老年人、残疾人或未满18周岁的未成年人",
            "无劳动能力、无生活来源",
            "无法定赡养、抚养、扶养义务人，或其义务人无履行义务能力",
        ],
        "documents": [
            "申请人身份证（正面、反面）",
            "户口簿（户主页和申请人本人页）",
            "残疾证或疾病诊断证明（如有）",
            "法定义务人情况的说明（如有）",
        ],
        "duration": "镇（街道）受理后调查核实，一般自受理之日起30个工作日内作出认定；"
        "可选择在家分散供养或到供养服务机构集中供养。",
        "how_to_apply": "在“博山e救助”小程序选择“特困供养”提交申请；行动不便的，"
        "可请村（社区）救助协理员上门帮办代办。",
    },
    {
        "code": "temporary",
        "title": "临时救助",
        "summary": "因火灾、交通事故、人身伤害等意外事件，或家庭成员突发重大疾病等原因，"
        "基本生活暂时出现严重困难的家庭或个人，可以申请临时救助。",
        "eligibility": [
            "因火灾、交通事故、人身伤害等意外事件导致基本生活严重困难",
            "家庭成员突发重大疾病，导致基本生活严重困难",
            "遭遇其他特殊困难，基本生活暂时陷入困境",
        ],
        "documents": [
            "申请人身份证（正面、反面）",
            "户口簿（户主页和申请人本人页）",
            "困难情况的证明：事故认定书、火灾证明、医院诊断证明或费用票据等",
            "受灾或事故现场照片（如有）",
        ],
        "duration": "情况紧急的可先行救助、事后补办手续；困难线索转给镇（街道）或相关部门后，"
        "5个工作日内反馈调查处理情况。",
        "how_to_apply": "在“博山e救助”小程序选择“临时救助”说明遇到的困难并上传照片；"
        "紧急情况请直接拨打社会救助服务热线或所在镇（街道）平台电话。",
    },
    {
        "code": "medical",
        "title": "医疗救助",
        "summary": "低保、特困等救助对象，以及因病住院个人负担医疗费用较高、家庭生活困难的人员，"
        "可以申请医疗救助。",
        "eligibility": [
            "低保对象、特困人员等社会救助对象",
            "住院个人负担合规医疗费用单次2万元以上，或年度累计4万元以上，家庭生活困难",
            "因病导致基本生活出现严重困难的其他人员",
        ],
        "documents": [
            "申请人身份证（正面、反面）",
            "住院病历首页或出院记录、诊断证明",
            "住院费用发票和医保结算单",
            "户口簿（户主页和申请人本人页）",
        ],
        "duration": "材料齐全后由镇（街道）和医保部门审核，一般在受理后30个工作日内办结，"
        "结果通过小程序消息告知。",
        "how_to_apply": "出院后在“博山e救助”小程序选择“医疗救助”，填写住院信息并上传票据照片。",
    },
)
_PHONE = re.compile(r"^[0-9()（）\- ]{3,30}$")
_CODE = re.compile(r"^[a-z0-9_]{1,32}$")
_DEMO_NOTE = "演示号码，正式号码以区民政局公布为准"


def seed_public_info(db: Session) -> None:
    """Write the default policies and contacts that are missing. Safe to run any number of times;
    never overwrites what the center has edited."""
    existing = set(db.scalars(select(PolicyInfo.code)))
    for order, policy in enumerate(POLICIES):
        if policy["code"] not in existing:
            db.add(PolicyInfo(**policy, sort_order=order))
    contacts = list(db.scalars(select(PublicContact)))
    if not any(c.kind is ContactKind.DISTRICT_HOTLINE for c in contacts):
        name, phone = DISTRICT_HOTLINE
        db.add(
            PublicContact(
                kind=ContactKind.DISTRICT_HOTLINE,
                name=name,
                phone=phone,
                note=f"工作日 8:30-17:30。{_DEMO_NOTE}",
                is_demo=True,
                sort_order=0,
            )
        )
    if not contacts:  # extra lines only on the first seed: the center may remove them
        db.add(
            PublicContact(
                kind=ContactKind.OTHER,
                name="12349养老服务热线",
                phone="12349",
                note="老年人生活困难可拨打求助",
                is_demo=False,
                sort_order=1,
            )
        )
    covered = {c.town_id for c in contacts if c.town_id is not None}
    for town in db.scalars(select(Town).order_by(Town.sort_order)):
        if town.id in covered:
            continue
        db.add(
            PublicContact(
                kind=ContactKind.TOWN_PLATFORM,
                town_id=town.id,
                name=f"{town.name}社会救助“一门受理、协同办理”平台",
                phone=town.phone or "0533-4181000",
                note=_DEMO_NOTE,
                is_demo=True,
                sort_order=100 + town.sort_order,
            )
        )
    db.flush()


# --- reading ------------------------------------------------------------------------------


def list_policies(db: Session) -> list[PolicyInfo]:
    return list(db.scalars(select(PolicyInfo).order_by(PolicyInfo.sort_order, PolicyInfo.id)))


def list_contacts(db: Session) -> list[PublicContact]:
    """The district hotline first, then other lines, then each town's platform."""
    return list(
        db.scalars(
            select(PublicContact)
            .options(selectinload(PublicContact.town))
            .order_by(PublicContact.sort_order, PublicContact.id)
        )
    )


# --- maintenance (center staff) -----------------------------------------------------------


def _checked_phone(raw: str) -> str:
    value = raw.strip()
    if not _PHONE.match(value) or sum(ch.isdigit() for ch in value) < 3:
        raise invalid("phone", "电话号码只能包含数字、短横线、括号和空格")
    return value


def _clean(value: str, field: str) -> str:
    return text.check_text(value, field=field).strip()


def _required(value: str, field: str) -> str:
    value = _clean(value, field)
    if not value:
        raise invalid(field, "请填写此项")
    return value


def _lines(values: list[str], field: str) -> list[str]:
    lines = [_clean(v, field) for v in values if v.strip()]
    if not lines:
        raise invalid(field, "请至少填写一项")
    return lines


def save_policy(
    db: Session, code: str, *, body: dict[str, Any], actor: Actor, now: datetime
) -> PolicyInfo:
    """Create or replace one kind of aid's public text (center staff)."""
    require_role(actor, Role.CENTER_STAFF)
    if not _CODE.match(code):
        raise invalid("code", "编码只能由小写字母、数字和下划线组成（不超过32个字符）")
    policy = db.scalar(select(PolicyInfo).where(PolicyInfo.code == code))
    created = policy is None
    if policy is None:
        policy = PolicyInfo(code=code)
        db.add(policy)
    old = None if created else _policy_fields(policy)
    policy.title = _required(body["title"], "title")
    policy.summary = _required(body["summary"], "summary")
    policy.eligibility = _lines(body["eligibility"], "eligibility")
    policy.documents = _lines(body["documents"], "documents")
    policy.duration = _required(body["duration"], "duration")
    policy.how_to_apply = _required(body["how_to_apply"], "how_to_apply")
    if body.get("sort_order") is not None:
        policy.sort_order = body["sort_order"]
    elif created:  # a new kind of aid goes last
        policy.sort_order = (db.scalar(select(func.max(PolicyInfo.sort_order))) or 0) + 1
    policy.updated_at, policy.updated_by_id = now, actor.user_id
    db.flush()
    record(
        db,
        actor=actor,
        action="public_policy.saved",
        target_type="public_policy",
        target_id=policy.id,
        now=now,
        detail={"code": code, "old": old, "new": _policy_fields(policy)},
    )
    return policy


def _policy_fields(policy: PolicyInfo) -> dict[str, Any]:
    return {
        "title": policy.title,
        "summary": policy.summary,
        "eligibility": policy.eligibility,
        "documents": policy.documents,
        "duration": policy.duration,
        "how_to_apply": policy.how_to_apply,
        "sort_order": policy.sort_order,
    }


def add_contact(db: Session, *, body: dict[str, Any], actor: Actor, now: datetime) -> PublicContact:
    """Add a phone number (center staff). A town's platform number exists once per town."""
    require_role(actor, Role.CENTER_STAFF)
    kind = ContactKind(body["kind"])
    town_id = None
    if kind is ContactKind.TOWN_PLATFORM:
        if not body.get("town"):
            raise invalid("town", "镇街平台电话需选择镇（街道）")
        town = db.scalar(select(Town).where(Town.code == body["town"]))
        if town is None:
            raise NotFound("未找到该镇街", code="town_not_found")
        if db.scalar(select(PublicContact.id).where(PublicContact.town_id == town.id)):
            raise Conflict("该镇（街道）的平台电话已存在，请直接修改", code="contact_exists")
        town_id = town.id
    contact = PublicContact(
        kind=kind,
        town_id=town_id,
        name=_required(body["name"], "name"),
        phone=_checked_phone(body["phone"]),
        note=_clean(body.get("note") or "", "note") or None,
        address=_clean(body.get("address") or "", "address") or None,
        is_demo=bool(body.get("is_demo", False)),
        sort_order=body.get("sort_order") or 50,
        updated_at=now,
        updated_by_id=actor.user_id,
    )
    _set_place(contact, body)
    db.add(contact)
    db.flush()
    _sync_town_phone(db, contact)
    record(
        db,
        actor=actor,
        action="public_contact.added",
        target_type="public_contact",
        target_id=contact.id,
        now=now,
        detail={"kind": kind.value, "name": contact.name, "phone": contact.phone},
    )
    return contact


def edit_contact(
    db: Session, contact_id: int, *, changes: dict[str, Any], actor: Actor, now: datetime
) -> PublicContact:
    """Change a number, its name, note or order (center staff). A new phone number without an
    explicit `is_demo` is taken as confirmed."""
    require_role(actor, Role.CENTER_STAFF)
    contact = db.get(PublicContact, contact_id)
    if contact is None:
        raise NotFound("未找到该联系电话", code="contact_not_found")
    old = _contact_fields(contact)
    if "name" in changes:
        contact.name = _required(changes["name"], "name")
    if "phone" in changes:
        phone = _checked_phone(changes["phone"])
        if phone != contact.phone and "is_demo" not in changes:
            contact.is_demo = False
        contact.phone = phone
    if "note" in changes:
        contact.note = _clean(changes["note"] or "", "note") or None
    if "address" in changes:
        contact.address = _clean(changes["address"] or "", "address") or None
    _set_place(contact, changes)
    if "is_demo" in changes:
        contact.is_demo = changes["is_demo"]
    if changes.get("sort_order") is not None:
        contact.sort_order = changes["sort_order"]
    contact.updated_at, contact.updated_by_id = now, actor.user_id
    _sync_town_phone(db, contact)
    db.flush()
    record(
        db,
        actor=actor,
        action="public_contact.edited",
        target_type="public_contact",
        target_id=contact.id,
        now=now,
        detail={"old": old, "new": _contact_fields(contact)},
    )
    return contact


def remove_contact(db: Session, contact_id: int, *, actor: Actor, now: datetime) -> None:
    """Remove an extra line (center staff); the district hotline and town platforms stay."""
    require_role(actor, Role.CENTER_STAFF)
    contact = db.get(PublicContact, contact_id)
    if contact is None:
        raise NotFound("未找到该联系电话", code="contact_not_found")
    if contact.kind is not ContactKind.OTHER:
        raise Conflict("区热线和镇街平台电话不能删除，只能修改", code="contact_required")
    record(
        db,
        actor=actor,
        action="public_contact.removed",
        target_type="public_contact",
        target_id=contact.id,
        now=now,
        detail=_contact_fields(contact),
    )
    db.delete(contact)
    db.flush()


def _set_place(contact: PublicContact, body: dict[str, Any]) -> None:
    """The point's coordinates (GCJ-02, as wx.openLocation takes them): both or neither."""
    if "latitude" not in body and "longitude" not in body:
        return
    latitude, longitude = body.get("latitude"), body.get("longitude")
    if (latitude is None) != (longitude is None):
        raise invalid("latitude", "请同时填写纬度和经度，或都不填")
    contact.latitude, contact.longitude = latitude, longitude


def _contact_fields(contact: PublicContact) -> dict[str, Any]:
    return {
        "name": contact.name,
        "phone": contact.phone,
        "note": contact.note,
        "address": contact.address,
        "latitude": contact.latitude,
        "longitude": contact.longitude,
        "is_demo": contact.is_demo,
        "sort_order": contact.sort_order,
    }


def _sync_town_phone(db: Session, contact: PublicContact) -> None:
    """Keep the town's own phone (shown with the area pickers) equal to its platform contact."""
    if contact.kind is ContactKind.TOWN_PLATFORM and contact.town_id is not None:
        town = db.get(Town, contact.town_id)
        if town is not None:
            town.phone = contact.phone
