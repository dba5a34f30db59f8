"""The visit form: the labels of its choices (kind, health, labour capacity, hardship, causes),
the default cycle to the next visit, which fields an edit may change, and the checks that turn a
helper's entries into sealed, validated fields (`checked_fields`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from server.errors import invalid
from server.models import (
    Cause,
    Hardship,
    Health,
    LabourCapacity,
    Visit,
    VisitKind,
)
from server.services.applications.photos import owned_photo_ids
from server.services.kernel import idnumber, text
from server.services.kernel.access import Actor
from server.services.kernel.pii import PersonalData
from server.services.leads.core import CATEGORIES

KIND_LABELS: dict[VisitKind, str] = {VisitKind.VISIT: "入户走访", VisitKind.PHONE: "电话询问"}


HEALTH_LABELS: dict[Health, str] = {
    Health.HEALTHY: "健康",
    Health.FRAIL: "年老体弱",
    Health.CHRONIC: "慢性病",
    Health.SERIOUS: "重病",
    Health.DISABLED: "残疾",
}


LABOUR_LABELS: dict[LabourCapacity, str] = {
    LabourCapacity.FULL: "有劳动能力",
    LabourCapacity.PARTIAL: "部分丧失劳动能力",
    LabourCapacity.NONE: "无劳动能力",
}


HARDSHIP_LABELS: dict[Hardship, str] = {
    Hardship.NONE: "无明显困难",
    Hardship.GENERAL: "一般困难",
    Hardship.SEVERE: "严重困难",
    Hardship.URGENT: "急难",
}


CAUSE_LABELS: dict[Cause, str] = {
    Cause.ILLNESS: "因病",
    Cause.DISABILITY: "因残",
    Cause.ACCIDENT: "因意外",
    Cause.DISASTER: "因灾",
    Cause.UNEMPLOYMENT: "失业",
    Cause.SCHOOLING: "因学",
    Cause.ELDERLY_ALONE: "独居老人",
    Cause.OTHER: "其他",
}


#: The visit cycle when the helper gives no next visit date: the harder, the sooner.
DEFAULT_CYCLE_DAYS: dict[Hardship, int] = {
    Hardship.URGENT: 7,
    Hardship.SEVERE: 7,
    Hardship.GENERAL: 30,
    Hardship.NONE: 90,
}


#: Fields a PATCH may change (the household's head and village stay as first recorded).
EDITABLE = (
    "kind",
    "phone",
    "address",
    "members",
    "health",
    "labour_capacity",
    "hardship",
    "causes",
    "categories",
    "needs",
    "note",
    "photo_ids",
    "visited_on",
    "next_visit_on",
)


def checked_text(raw: str | None, field: str) -> str | None:
    """The house's text rule for one optional field; blank is None."""
    if raw is None:
        return None
    return text.check_text(raw, field=field).strip() or None


def _checked_codes(values: list[str], allowed: Any, field: str) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise invalid(field, f"无法识别的选项：{'、'.join(unknown)}")
    return list(dict.fromkeys(values))


def checked_fields(
    db: Session,
    body: dict[str, Any],
    *,
    pii: PersonalData,
    actor: Actor,
    today: date,
    previous: Visit | None = None,
) -> dict[str, Any]:
    """Validate and seal the editable fields of a visit."""
    hardship = Hardship(body["hardship"])
    visited_on: date = body.get("visited_on") or today
    if previous is None or visited_on != previous.visited_on:
        if visited_on > today:
            raise invalid("visited_on", "走访日期不能晚于今天", "visited_in_future")
        if visited_on < today - timedelta(days=366):
            raise invalid("visited_on", "走访日期不能早于一年前", "visited_too_long_ago")
    next_visit_on: date | None = body.get("next_visit_on")
    if next_visit_on is None:
        next_visit_on = visited_on + timedelta(days=DEFAULT_CYCLE_DAYS[hardship])
    if next_visit_on <= visited_on:
        raise invalid("next_visit_on", "下次走访日期应晚于本次走访日期", "next_visit_too_early")
    if next_visit_on > visited_on + timedelta(days=366):
        raise invalid("next_visit_on", "下次走访日期应在一年以内", "next_visit_too_late")
    photo_ids = list(dict.fromkeys(body.get("photo_ids") or []))
    kept = set(previous.photo_ids) if previous is not None else set()
    new_photos = [p for p in photo_ids if p not in kept]
    if new_photos and owned_photo_ids(db, new_photos, actor=actor) != set(new_photos):
        raise invalid("photo_ids", "只能使用您本人上传的照片", "photo_not_owned")
    members = []
    for i, member in enumerate(body.get("members") or []):
        name = checked_text(member["name"], f"members.{i}.name")
        relation = checked_text(member["relation"], f"members.{i}.relation")
        if not name or not relation:
            raise invalid(f"members.{i}", "请填写家庭成员的姓名和关系")
        sealed = member.get("sealed")
        if member.get("id_number"):
            value = idnumber.checked_id(
                member["id_number"], field=f"members.{i}.id_number", today=today
            )
            sealed = pii.seal(value)
        members.append({"name": name, "relation": relation, "id_number_enc": sealed})
    return {
        "kind": VisitKind(body["kind"]),
        "phone_enc": pii.seal(
            idnumber.checked_phone(body.get("phone"), field="phone", rule="mobile_or_landline")
        ),
        "address": checked_text(body.get("address"), "address"),
        "members": members,
        "health": Health(body["health"]),
        "labour_capacity": LabourCapacity(body["labour_capacity"]),
        "hardship": hardship,
        "causes": _checked_codes(body.get("causes") or [], set(Cause), "causes"),
        "categories": _checked_codes(body.get("categories") or [], CATEGORIES, "categories"),
        "needs": checked_text(body.get("needs"), "needs"),
        "note": checked_text(body.get("note"), "note"),
        "photo_ids": photo_ids,
        "visited_on": visited_on,
        "next_visit_on": next_visit_on,
    }
