"""Reports from other channels (hotline, 12345, letters, visits, volunteers, the window): checked,
given a priority by channel and category, and joined to the person's one open lead like every
other signal (`register_report`).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from server.errors import Forbidden, invalid
from server.models import (
    Channel,
    Lead,
    Role,
    Town,
    Village,
)
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.idempotency import create_once
from server.services.kernel.pii import PersonalData
from server.services.leads.core import CATEGORIES, Signal, record_signal
from server.services.leads.merging import Candidate, find_candidates

#: Channels staff register by hand (POST /api/v1/leads), with the label used in summaries.
REPORT_CHANNELS: dict[Channel, str] = {
    Channel.HOTLINE: "救助热线",
    Channel.POLICE_110: "110转来",
    Channel.ELDERLY_12349: "12349养老热线",
    Channel.VOLUNTEER: "志愿者反映",
    Channel.SOCIAL_ORG: "社会组织反映",
    Channel.ENTERPRISE: "企业反映",
    Channel.ONLINE: "网络求助",
}


#: Priority points of a hand-registered report: the channel's weight, each category's weight,
#: and a staff member's "urgent" mark. Higher is more urgent; the reason names every part.
CHANNEL_POINTS: dict[Channel, int] = {
    Channel.POLICE_110: 2,
    Channel.HOTLINE: 1,
    Channel.ELDERLY_12349: 1,
}


CATEGORY_POINTS: dict[str, int] = {
    "disaster": 3,
    "accident": 3,
    "vagrant": 3,
    "illness": 2,
    "orphan": 2,
    "tekun": 2,
    "disabled": 1,
    "left_behind": 1,
    "dibao": 1,
    "special_family": 1,
    "poverty_relapse": 1,
    "temporary": 1,
}


URGENT_POINTS = 5


def report_priority(channel: Channel, categories: list[str], *, urgent: bool) -> tuple[int, str]:
    """Points and their explanation for a report, e.g. `110转来：因意外、情况紧急（+10）`."""
    points = CHANNEL_POINTS.get(channel, 0)
    parts = [CATEGORIES[c] for c in categories if c in CATEGORIES]
    points += sum(CATEGORY_POINTS.get(c, 0) for c in categories)
    if urgent:
        points += URGENT_POINTS
        parts.append("情况紧急")
    detail = "、".join(parts) or "待核实"
    return points, f"{REPORT_CHANNELS.get(channel, channel.value)}：{detail}（+{points}）"


@dataclass(frozen=True)
class Report:
    """A report taken by staff from a hotline, 110, 12349, a volunteer, an organisation..."""

    channel: Channel
    name: str
    summary: str
    id_number: str | None = None
    phone: str | None = None
    town_code: str | None = None
    village_code: str | None = None
    address: str | None = None
    categories: tuple[str, ...] = ()
    event_date: date | None = None
    urgent: bool = False
    reporter_name: str | None = None
    reporter_org: str | None = None
    reporter_phone: str | None = None


@dataclass
class ReportOutcome:
    lead: Lead
    lead_created: bool
    candidates: list[Candidate]


#: Who registers reports: staff by hand, and volunteers of registered organisations (through
#: services/social/reports.py, which checks their organisation, towns and channel first).
REPORTERS = (Role.CENTER_STAFF, Role.TOWN_STAFF, Role.VOLUNTEER)


def register_report(
    db: Session,
    report: Report,
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    idempotency_key: str | None = None,
) -> ReportOutcome:
    """Register a hand-taken report as a signal; find candidate leads when it may be a duplicate.

    With an ID number the report lands in that person's one open lead. Without one it opens its
    own lead, and the candidates (same or similar name, same phone, same village) are returned
    for staff to merge or keep apart. A retry with the same `idempotency_key` registers nothing
    new and answers with the first report's lead.
    """
    require_role(actor, *REPORTERS)
    assert actor.user_id is not None
    created: list[bool] = []

    def create() -> int:
        lead, lead_created = _register_report(db, report, pii=pii, actor=actor, now=now)
        created.append(lead_created)
        return lead.id

    lead_id, _ = create_once(
        db,
        user_id=actor.user_id,
        key=idempotency_key,
        scope="report",
        body=asdict(report),
        now=now,
        create=create,
    )
    lead = db.get(Lead, lead_id)
    assert lead is not None
    candidates = find_candidates(db, lead, actor=actor)
    return ReportOutcome(lead, bool(created and created[0]), candidates)


def _register_report(
    db: Session, report: Report, *, pii: PersonalData, actor: Actor, now: datetime
) -> tuple[Lead, bool]:
    if report.channel not in REPORT_CHANNELS:
        raise invalid("channel", "该渠道的线索不能手工登记", "channel_not_reportable")
    name = report.name.strip()
    if not name:
        raise invalid("name", "请填写姓名")
    town_id, village_id = _report_area(db, report, actor)
    id_number = idnumber.checked_id(
        report.id_number, field="id_number", today=now.date(), required=False
    )
    phone = idnumber.checked_phone(report.phone, field="phone", rule="any_number")
    reporter_phone = idnumber.checked_phone(
        report.reporter_phone, field="reporter.phone", rule="any_number"
    )
    unknown = [c for c in report.categories if c not in CATEGORIES]
    if unknown:
        raise invalid("categories", f"未知的对象类别：{'、'.join(unknown)}")
    points, reason = report_priority(report.channel, list(report.categories), urgent=report.urgent)
    label = REPORT_CHANNELS[report.channel]
    said = _without_label(report.summary.strip(), label)
    outcome = record_signal(
        db,
        Signal(
            channel=report.channel,
            name=name,
            summary=f"{label}：{said}",
            dedup_key=f"report:{uuid.uuid4().hex}",
            person_hash=pii.hash(id_number) if id_number else None,
            person_hashes=pii.hashes(id_number) if id_number else (),
            id_number_enc=pii.seal(id_number),
            phone_enc=pii.seal(phone),
            phone_hash=pii.hash(phone) if phone else None,
            town_id=town_id,
            village_id=village_id,
            address=(report.address or "").strip() or None,
            categories=list(report.categories),
            priority=points,
            priority_reason=reason,
            facts={
                "report": report.summary.strip(),
                "urgent": report.urgent,
                "categories": list(report.categories),
            },
            event_date=report.event_date,
            source_type="report",
            reporter_name=(report.reporter_name or "").strip() or None,
            reporter_org=(report.reporter_org or "").strip() or None,
            reporter_phone_enc=pii.seal(reporter_phone),
            recorded_by_id=actor.user_id,
        ),
        actor=actor,
        now=now,
    )
    record(
        db,
        actor=actor,
        action="lead.reported",
        target_type="lead",
        target_id=outcome.lead.id,
        now=now,
        detail={"channel": report.channel.value, "with_id_number": id_number is not None},
    )
    return outcome.lead, outcome.lead_created


def _without_label(text: str, label: str) -> str:
    """What the reporter said, without the channel's label staff may have typed themselves
    ("110转来：…"), so the summary never reads "110转来：110转来：…"."""
    for sep in ("：", ":", " ", "，", ","):
        if text.startswith(label + sep):
            return text[len(label) + len(sep) :].strip() or text
    return text


def _report_area(db: Session, report: Report, actor: Actor) -> tuple[int | None, int | None]:
    town: Town | None = None
    village: Village | None = None
    if report.town_code:
        town = db.scalar(select(Town).where(Town.code == report.town_code))
        if town is None:
            raise invalid("town", "未找到该镇街", "town_not_found")
    if report.village_code:
        village = db.scalar(select(Village).where(Village.code == report.village_code))
        if village is None:
            raise invalid("village", "未找到该村居", "village_not_found")
        if town is not None and village.town_id != town.id:
            raise invalid("village", "该村居不属于所选镇街", "village_not_in_town")
    town_id = village.town_id if village is not None else (town.id if town else None)
    if actor.role is Role.TOWN_STAFF:
        if town_id is not None and town_id != actor.town_id:
            raise Forbidden("只能登记本镇街的线索", code="other_town")
        town_id = actor.town_id
    return town_id, village.id if village is not None else None
