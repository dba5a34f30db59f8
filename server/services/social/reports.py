"""Leads that volunteers report, and what they may read back.

A volunteer reports someone in hardship (name, phone, village, what they saw, photos) in a town
their organisation serves. The report goes through the same intake as every report
(`leads/intake.register_report`: checks, priority, joining the person's one open lead), with
the channel of the organisation's kind (`volunteer`, `social_org`, `enterprise`). The volunteer
reads back only their own reports: what they told us and the lead's state in plain words, never
the lead itself or anything others reported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.errors import NotFound, invalid
from server.models import (
    Lead,
    LeadEvidence,
    LeadStatus,
    SocialOrg,
    SocialOrgTown,
    Village,
    VolunteerReport,
    VolunteerReportPhoto,
)
from server.services.applications.photos import owned_photo_ids
from server.services.kernel import idnumber
from server.services.kernel.access import Actor
from server.services.kernel.pii import PersonalData
from server.services.leads import intake
from server.services.social.orgs import CHANNELS, membership_of

#: What a volunteer reads about the lead their report joined.
STATUS_TEXT = {
    LeadStatus.NEW: "已收到，工作人员正在核实",
    LeadStatus.TRIAGED: "已核实，正在安排办理",
    LeadStatus.DISPATCHED: "已转交镇街或部门办理",
    LeadStatus.AWAITING_REVISIT: "已办理完毕，等待回访",
    LeadStatus.CLOSED: "已办结",
    LeadStatus.MERGED: "已与同一人的其他线索合并办理",
    LeadStatus.DISMISSED: "经核实，暂不需要救助",
    LeadStatus.COVERED: "已在社会救助保障范围内",
}
MAX_PHOTOS = 9


def report_lead(
    db: Session,
    *,
    body: dict[str, Any],
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    idempotency_key: str | None = None,
) -> VolunteerReport:
    """A volunteer reports a lead in a town their organisation serves."""
    member = membership_of(db, actor)
    org = db.get(SocialOrg, member.org_id)
    assert org is not None
    if not org.is_active:
        raise invalid("org", "您所在的组织已停用", "org_inactive")
    village = db.scalar(select(Village).where(Village.code == body["village"]))
    if village is None:
        raise invalid("village", "未找到该村（社区）", "village_not_found")
    served = db.scalar(
        select(SocialOrgTown.town_id).where(
            SocialOrgTown.org_id == org.id, SocialOrgTown.town_id == village.town_id
        )
    )
    if served is None:
        raise invalid("village", "该村（社区）不在您所在组织的服务范围内", "village_not_served")
    photo_ids = list(dict.fromkeys(body.get("photo_ids") or []))
    if len(photo_ids) > MAX_PHOTOS:
        raise invalid("photo_ids", f"最多{MAX_PHOTOS}张照片")
    if owned_photo_ids(db, photo_ids, actor=actor) != set(photo_ids):
        raise invalid("photo_ids", "只能使用您本人上传的照片", "photo_not_owned")
    outcome = intake.register_report(
        db,
        intake.Report(
            channel=CHANNELS[org.kind],
            name=body["name"],
            summary=body["summary"],
            id_number=body.get("id_number"),
            phone=body.get("phone"),
            village_code=village.code,
            address=body.get("address"),
            categories=tuple(dict.fromkeys(body.get("categories") or [])),
            urgent=bool(body.get("urgent")),
            reporter_name=body.get("reporter_name"),
            reporter_org=org.name,
        ),
        pii=pii,
        actor=actor,
        now=now,
        idempotency_key=idempotency_key,
    )
    evidence = db.scalar(
        select(LeadEvidence)
        .where(
            LeadEvidence.lead_id == outcome.lead.id, LeadEvidence.recorded_by_id == actor.user_id
        )
        .order_by(LeadEvidence.id.desc())
        .limit(1)
    )
    existing = db.scalar(
        select(VolunteerReport).where(
            VolunteerReport.user_id == actor.user_id,
            VolunteerReport.evidence_id == (evidence.id if evidence else None),
        )
    )
    if existing is not None:  # a retry with the same Idempotency-Key
        return existing
    if evidence is not None and photo_ids:
        evidence.facts = {**evidence.facts, "photo_ids": photo_ids}
    phone = (body.get("phone") or "").strip()
    report = VolunteerReport(
        org_id=org.id,
        user_id=actor.user_id,
        lead_id=outcome.lead.id,
        evidence_id=evidence.id if evidence else None,
        name=body["name"].strip(),
        phone_enc=pii.seal("".join(ch for ch in phone if ch.isdigit()) or None),
        town_id=village.town_id,
        village_id=village.id,
        summary=body["summary"].strip(),
        photo_ids=photo_ids,
        created_at=now,
    )
    db.add(report)
    db.flush()
    db.add_all(VolunteerReportPhoto(report_id=report.id, photo_id=p) for p in photo_ids)
    db.flush()
    return report


def _status(db: Session, report: VolunteerReport) -> LeadStatus:
    lead = db.get(Lead, report.lead_id)
    assert lead is not None
    while lead.status is LeadStatus.MERGED and lead.merged_into_id is not None:
        target = db.get(Lead, lead.merged_into_id)
        if target is None:
            break
        lead = target
    return lead.status


def report_view(db: Session, report: VolunteerReport, *, pii: PersonalData) -> dict[str, Any]:
    """What the volunteer told us, and the state in plain words; nothing anyone else said."""
    village = db.get(Village, report.village_id)
    status = _status(db, report)
    return {
        "id": report.id,
        "name": report.name,
        "phone": idnumber.mask_phone(pii.open(report.phone_enc)),
        "village": {"code": village.code, "name": village.name} if village else None,
        "summary": report.summary,
        "photo_ids": list(report.photo_ids),
        "status": status.value,
        "status_text": STATUS_TEXT[status],
        "created_at": report.created_at,
    }


def list_my_reports(
    db: Session, *, actor: Actor, page: int, per_page: int
) -> tuple[list[VolunteerReport], int]:
    membership_of(db, actor)
    mine = VolunteerReport.user_id == actor.user_id
    total = db.scalar(select(func.count()).select_from(VolunteerReport).where(mine)) or 0
    rows = db.scalars(
        select(VolunteerReport)
        .where(mine)
        .order_by(VolunteerReport.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def my_report(db: Session, report_id: int, *, actor: Actor) -> VolunteerReport:
    """One of the caller's own reports; anyone else's is 404."""
    membership_of(db, actor)
    report = db.get(VolunteerReport, report_id) if 0 < report_id < 2**63 else None
    if report is None or report.user_id != actor.user_id:
        raise NotFound("未找到该线索报告", code="report_not_found")
    return report
