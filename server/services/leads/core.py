"""The lead queue's core rule: every signal about a person lands in their one open lead.

Other services (applications, visits, feeds, hotline reports) call `record_signal`; the queue's
comparison, priority and merge rules build on it.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from server.clock import TZ
from server.db import Precompiled, savepoint
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import (
    OPEN_STATUSES,
    Channel,
    Department,
    Lead,
    LeadEvidence,
    LeadMerge,
    LeadPairDismissal,
    LeadStatus,
    Role,
    Town,
    Village,
)
from server.services.feeds import registry as feed_registry
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record, record_unmasked_view
from server.services.kernel.idempotency import create_once
from server.services.kernel.pii import PersonalData
from server.services.leads import matching, signal_rule

#: Categories of people sought (主动发现对象), code → Chinese label.
CATEGORIES: dict[str, str] = {
    "dibao": "低保对象",
    "tekun": "特困人员",
    "disabled": "残疾人",
    "orphan": "孤困儿童",
    "vagrant": "流浪乞讨人员",
    "left_behind": "农村三留守",
    "special_family": "特殊困难家庭",
    "poverty_relapse": "脱贫享受政策人员",
    "illness": "因病",
    "disaster": "因灾",
    "accident": "因意外",
    "temporary": "临时困难",
    "education": "教育",
}


@dataclass
class Signal:
    """One piece of evidence about a person, as any channel reports it."""

    channel: Channel
    name: str
    summary: str
    dedup_key: str
    #: Keyed hash of the normalised ID number; None when the reporter did not know it.
    person_hash: str | None = None
    id_number_enc: str | None = None
    phone_enc: str | None = None
    phone_hash: str | None = None
    town_id: int | None = None
    village_id: int | None = None
    address: str | None = None
    categories: list[str] = field(default_factory=list)
    priority: int = 0
    priority_reason: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    event_date: date | None = None
    feed_code: str | None = None
    batch_id: int | None = None
    row_number: int | None = None
    source_type: str | None = None
    source_id: int | None = None
    #: The department whose file or report this is (department staff see such leads).
    department_id: int | None = None
    #: Who passed the report on (hotline caller, volunteer...); phone sealed with PersonalData.
    reporter_name: str | None = None
    reporter_org: str | None = None
    reporter_phone_enc: str | None = None
    #: The staff member who registered a report by hand.
    recorded_by_id: int | None = None


@dataclass
class SignalOutcome:
    lead: Lead
    lead_created: bool
    evidence_added: bool


def record_signal(db: Session, signal: Signal, *, actor: Actor, now: datetime) -> SignalOutcome:
    """Attach `signal` to the person's open lead, opening one (linked to a closed one) if needed.

    The partial unique index on open leads settles races: if another transaction opened the
    lead first, we retry once and attach to theirs.
    """
    for attempt in (1, 2):
        lead = _open_lead_for(db, signal.person_hash)
        created = lead is None
        try:
            with savepoint(db):
                if lead is None:
                    lead = _open_lead(db, signal, now=now)
                change = _signal_change(db, lead, signal)
                added = bool(change.fresh)
                if added:
                    _add_evidence(db, lead, signal, now=now)
        except IntegrityError:
            if attempt == 2 or signal.person_hash is None:
                raise
            continue
        _apply_signal(lead, signal, change, now=now)
        db.flush()
        if created:
            record(
                db,
                actor=actor,
                action="lead.created",
                target_type="lead",
                target_id=lead.id,
                now=now,
                detail={"channel": signal.channel.value},
            )
        return SignalOutcome(lead=lead, lead_created=created, evidence_added=added)
    raise AssertionError("unreachable")


def _open_lead_for(db: Session, person_hash: str | None) -> Lead | None:
    if person_hash is None:
        return None
    return db.scalar(select(Lead).where(Lead.person_hash == person_hash, Lead.is_open.is_(True)))


def _open_lead(db: Session, signal: Signal, *, now: datetime) -> Lead:
    previous = None
    if signal.person_hash is not None:
        previous = db.scalar(
            select(Lead.id)
            # Written as ix_leads_closed_person's predicate: SQLAlchemy would say `is_open = 0`
            # on SQLite, which cannot use that partial index.
            .where(Lead.person_hash == signal.person_hash, text("NOT leads.is_open"))
            .order_by(Lead.id.desc())
            .limit(1)
        )
    lead = Lead(
        person_hash=signal.person_hash,
        name=signal.name,
        name_key=matching.name_key(signal.name)[:120] or None,
        name_shape=matching.shape_key(signal.name)[:50] or None,
        status=LeadStatus.NEW,
        is_open=True,
        channel=signal.channel,
        categories=[],
        priority=0,
        priority_reasons=[],
        previous_lead_id=previous,
        created_at=now,
        updated_at=now,
    )
    db.add(lead)
    db.flush()
    return lead


def signal_gain(signal: Signal) -> signal_rule.Gain:
    """What `signal` brings to a lead, in the terms of the one rule."""
    return signal_rule.Gain(
        dedup_key=signal.dedup_key,
        categories=tuple(signal.categories),
        points=signal.priority,
        reason=signal.priority_reason,
    )


def _signal_change(db: Session, lead: Lead, signal: Signal) -> signal_rule.Change:
    """The one rule applied to `lead` and `signal` (nothing, when the lead holds it already)."""
    held = db.scalar(
        select(LeadEvidence.id).where(
            LeadEvidence.lead_id == lead.id, LeadEvidence.dedup_key == signal.dedup_key
        )
    )
    state = signal_rule.LeadState(
        categories=lead.categories,
        priority=lead.priority,
        reasons=lead.priority_reasons,
        evidence_keys=frozenset({signal.dedup_key}) if held is not None else frozenset(),
    )
    return signal_rule.apply_signals(state, [signal_gain(signal)])


def _add_evidence(db: Session, lead: Lead, signal: Signal, *, now: datetime) -> None:
    db.add(
        LeadEvidence(
            lead_id=lead.id,
            channel=signal.channel,
            feed_code=signal.feed_code,
            batch_id=signal.batch_id,
            row_number=signal.row_number,
            source_type=signal.source_type,
            source_id=signal.source_id,
            summary=signal.summary[:200],
            facts=signal.facts,
            event_date=signal.event_date,
            dedup_key=signal.dedup_key,
            department_id=signal.department_id,
            reporter_name=signal.reporter_name,
            reporter_org=signal.reporter_org,
            reporter_phone_enc=signal.reporter_phone_enc,
            recorded_by_id=signal.recorded_by_id,
            priority_reason=signal.priority_reason,
            priority_points=signal.priority,
            created_at=now,
        )
    )
    db.flush()


def _apply_signal(lead: Lead, signal: Signal, change: signal_rule.Change, *, now: datetime) -> None:
    """Fill what the lead does not know yet and store what the one rule decided."""
    lead.id_number_enc = lead.id_number_enc or signal.id_number_enc
    lead.phone_enc = lead.phone_enc or signal.phone_enc
    lead.phone_hash = lead.phone_hash or signal.phone_hash
    lead.town_id = lead.town_id or signal.town_id
    lead.village_id = lead.village_id or signal.village_id
    lead.address = lead.address or signal.address
    if change.added_categories:
        lead.categories = change.categories
    if change.added_reasons:
        lead.priority_reasons = change.reasons
        lead.priority = change.priority
    lead.updated_at = now


#: The timestamp column each status sets when a lead enters it.
_STATUS_STAMPS: dict[LeadStatus, str] = {
    LeadStatus.TRIAGED: "triaged_at",
    LeadStatus.DISPATCHED: "dispatched_at",
    LeadStatus.CLOSED: "closed_at",
    LeadStatus.MERGED: "closed_at",
    LeadStatus.DISMISSED: "dismissed_at",
    LeadStatus.COVERED: "covered_at",
}


def set_lead_status(
    db: Session,
    lead: Lead,
    status: LeadStatus,
    *,
    actor: Actor,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Move `lead` to `status`, keeping `is_open` in step and writing an audit row (with
    `detail` beside the old and new status)."""
    old = lead.status
    lead.status = status
    lead.is_open = status in OPEN_STATUSES
    lead.updated_at = now
    stamp = _STATUS_STAMPS.get(status)
    if stamp is not None:
        setattr(lead, stamp, now)
    record(
        db,
        actor=actor,
        action=f"lead.{status.value}",
        target_type="lead",
        target_id=lead.id,
        now=now,
        detail={"old": old.value, "new": status.value, **(detail or {})},
    )


# --- Reports from other channels -------------------------------------------------------------

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
class Candidate:
    """An open lead that may be the same person, with the score and reasons staff see."""

    lead_id: int
    name: str
    score: int
    reasons: list[str]
    status: str
    priority: int
    has_id_number: bool
    town_id: int | None
    village_id: int | None
    created_at: datetime


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
        raise _invalid("channel", "该渠道的线索不能手工登记", "channel_not_reportable")
    name = report.name.strip()
    if not name:
        raise _invalid("name", "请填写姓名")
    town_id, village_id = _report_area(db, report, actor)
    id_number = _checked_id(report.id_number, today=now.date())
    phone = _checked_phone(report.phone, "phone")
    reporter_phone = _checked_phone(report.reporter_phone, "reporter.phone")
    unknown = [c for c in report.categories if c not in CATEGORIES]
    if unknown:
        raise _invalid("categories", f"未知的对象类别：{'、'.join(unknown)}")
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
            raise _invalid("town", "未找到该镇街", "town_not_found")
    if report.village_code:
        village = db.scalar(select(Village).where(Village.code == report.village_code))
        if village is None:
            raise _invalid("village", "未找到该村居", "village_not_found")
        if town is not None and village.town_id != town.id:
            raise _invalid("village", "该村居不属于所选镇街", "village_not_in_town")
    town_id = village.town_id if village is not None else (town.id if town else None)
    if actor.role is Role.TOWN_STAFF:
        if town_id is not None and town_id != actor.town_id:
            raise Forbidden("只能登记本镇街的线索", code="other_town")
        town_id = actor.town_id
    return town_id, village.id if village is not None else None


def _checked_id(raw: str | None, *, today: date) -> str | None:
    if raw is None or not raw.strip():
        return None
    checked = idnumber.check(raw, today=today)
    if not checked.ok:
        raise _invalid("id_number", checked.message, checked.code)
    return checked.value


def _checked_phone(raw: str | None, field_name: str) -> str | None:
    """Keep the digits of a phone number (mobile or landline with area code)."""
    if raw is None or not raw.strip():
        return None
    folded = raw.translate(_FULL_WIDTH_DIGITS)
    digits = "".join(ch for ch in folded if ch.isdigit())
    if not (7 <= len(digits) <= 15) or any(
        not (ch.isdigit() or ch in " -+()（）") for ch in folded.strip()
    ):
        raise _invalid(field_name, "电话号码格式不正确", "phone_format")
    return idnumber.phone_digits(digits)


#: The one rule for a phone number staff type (reports, search).
checked_phone = _checked_phone

_FULL_WIDTH_DIGITS = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)})


def _invalid(field_name: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, errors={field_name: [message]})


# --- Who sees which lead ---------------------------------------------------------------------


def scope_leads(query: Select, actor: Actor) -> Select:
    """Limit a query over leads to what `actor` may see, in the query itself.

    center staff and leaders: every lead; town staff: their town's; helpers: their village's;
    department staff: leads carrying evidence from their department (a file row or a report
    the department passed on) — none when the account has no department; residents: none.
    The rule itself is `_scope_shape` + `_scope_condition`, shared with the queue's cached
    statements.
    """
    shape, params = _scope_shape(actor)
    condition = _scope_condition(shape)
    if condition is None:
        return query
    return query.where(condition).params(**params)


def access_lead_by_id(db: Session, lead_id: int, *, actor: Actor, for_update: bool = False) -> Lead:
    """The lead if `actor` may see it; 404 otherwise (out of scope looks like absent)."""
    if not 0 < lead_id < 2**63:
        raise NotFound("未找到该线索", code="lead_not_found")
    query = scope_leads(select(Lead).where(Lead.id == lead_id), actor)
    if for_update:
        query = query.with_for_update()
    lead = db.scalar(query)
    if lead is None:
        raise NotFound("未找到该线索", code="lead_not_found")
    return lead


# --- The queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    status: LeadStatus | None = None
    channel: Channel | None = None
    feed: str | None = None
    town_code: str | None = None
    village_code: str | None = None
    category: str | None = None
    min_priority: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    name: str | None = None
    #: Leads one staff member handles; or (`unassigned`) leads nobody handles yet.
    handler_id: int | None = None
    unassigned: bool | None = None


class QueueItem(NamedTuple):
    """One row of the queue page, in the column order of `_QUEUE_COLUMNS`."""

    id: int
    name: str
    status: str
    channel: str
    priority: int
    #: JSON text as stored: the page writes it out without a parse and a re-dump.
    priority_reasons_json: str
    categories_json: str
    town_id: int | None
    village_id: int | None
    has_id_number: bool
    created_at: datetime
    handler_id: int | None


@dataclass
class QueuePage:
    items: list[QueueItem]
    next_cursor: str | None


_QUEUE_COLUMNS = (
    Lead.id,
    Lead.name,
    type_coerce(Lead.status, String).label("status"),
    type_coerce(Lead.channel, String).label("channel"),
    Lead.priority,
    # JSON columns come back as their text: the page passes them through without a parse and
    # a re-dump (the largest per-row cost of the page otherwise).
    cast(Lead.priority_reasons, Text).label("priority_reasons"),
    cast(Lead.categories, Text).label("categories"),
    Lead.town_id,
    Lead.village_id,
    Lead.person_hash.is_not(None).label("has_id_number"),
    Lead.created_at,
    Lead.handler_id,
)


def list_queue(
    conn: Connection, *, actor: Actor, filters: QueueFilter, cursor: str | None, limit: int
) -> QueuePage:
    """One page of the queue: most urgent first, then oldest first (arrival order).

    Keyset pagination on (priority desc, id asc), which `ix_leads_queue` holds in order: a page
    is one or two index range scans, whatever the page's depth and the queue's size. The page is
    the hot path of the console, so the statement for each shape of request (role scope, which
    filters, which cursor step, page size) is compiled once and run as driver SQL with bound
    values (`db.Precompiled`), and rows stay tuples (no ORM objects, no schema dump).
    """
    scope, scope_params = _scope_shape(actor)
    if _asks_for_anothers_category(conn, scope, scope_params, filters):
        return QueuePage(items=[], next_cursor=None)
    conditions, params = _filter_shape(filters)
    params.update(scope_params)
    if cursor is None:
        rows = _queue_statement(scope, conditions, "first", limit + 1).rows(conn, params)
    else:
        params["cur_priority"], params["cur_id"] = decode_cursor(cursor)
        rows = _queue_statement(scope, conditions, "same", limit + 1).rows(conn, params)
        if len(rows) <= limit:
            lower = _queue_statement(scope, conditions, "lower", limit + 1 - len(rows))
            rows += lower.rows(conn, params)
    more = len(rows) > limit
    items = list(map(QueueItem._make, rows[:limit]))
    if scope == "department" and items:
        items = _own_department_reasons(conn, items, scope_params["scope_id"])
    next_cursor = encode_cursor(items[-1].priority, items[-1].id) if more and items else None
    return QueuePage(items=items, next_cursor=next_cursor)


def _own_department_reasons(
    conn: Connection, items: list[QueueItem], department_id: int
) -> list[QueueItem]:
    """Department staff's page shows only the priority reasons their own department's evidence
    brought (one more indexed statement for their pages only)."""
    ids = [i.id for i in items]
    rows = conn.execute(
        select(
            LeadEvidence.lead_id,
            LeadEvidence.priority_reason,
            LeadEvidence.feed_code,
            LeadEvidence.facts,
        )
        .where(LeadEvidence.department_id == department_id, LeadEvidence.lead_id.in_(ids))
        .order_by(LeadEvidence.id)
    )
    own: dict[int, list[str]] = {}
    brought: dict[int, set[str]] = {}
    for lead_id, reason, feed_code, facts in rows:
        if reason and reason not in own.setdefault(lead_id, []):
            own[lead_id].append(reason)
        brought.setdefault(lead_id, set()).update(_categories_brought(feed_code, facts))
    return [
        i._replace(
            priority_reasons_json=json.dumps(own.get(i.id, []), ensure_ascii=False),
            categories_json=json.dumps(
                _among(json.loads(i.categories_json or "[]"), brought.get(i.id, set())),
                ensure_ascii=False,
            ),
        )
        for i in items
    ]


def _asks_for_anothers_category(
    conn: Connection, scope: str, scope_params: dict[str, Any], filters: QueueFilter
) -> bool:
    """Department staff filtering by a category their own department never brings: the answer
    is no lead, whatever other departments sent."""
    if scope != "department" or filters.category is None:
        return False
    return filters.category not in department_categories(conn, scope_params["scope_id"])


def _categories_brought(feed_code: str | None, facts: dict[str, Any] | str | None) -> set[str]:
    """The categories one piece of evidence brought to its lead: its feed's (on or off the
    roster: either may have applied), or those a report named."""
    if feed_code is not None:
        feed = feed_registry.BY_CODE.get(feed_code)
        return set(feed.categories) | set(feed.categories_off_roster) if feed else set()
    if isinstance(facts, str):  # a JSON column read through a Core statement on SQLite
        facts = json.loads(facts)
    return set((facts or {}).get("categories") or ())


def _among(categories: list[str], brought: set[str]) -> list[str]:
    return [c for c in categories if c in brought]


def department_categories(conn: Connection | Session, department_id: int) -> set[str]:
    """The categories a department's own evidence can bring: its feeds' and its reports'. Its
    staff filter the queue by these only, so a filter never tells them another department's
    facts (医保 staff asking for 残疾 leads learn nothing 残联 sent)."""
    code = conn.execute(
        select(Department.code).where(Department.id == department_id)
    ).scalar_one_or_none()
    brought = {
        c
        for feed in feed_registry.FEEDS
        if feed.department == code
        for c in (*feed.categories, *feed.categories_off_roster)
    }
    reports = conn.execute(
        select(LeadEvidence.facts).where(
            LeadEvidence.department_id == department_id, LeadEvidence.feed_code.is_(None)
        )
    )
    for (facts,) in reports:
        brought |= _categories_brought(None, facts)
    return brought


@dataclass(frozen=True)
class QueueCount:
    count: int
    #: True when counting stopped at the cap: show "1000+".
    capped: bool


#: The queue counts its leads up to this many; past it the console shows "1000+".
COUNT_CAP = 1000


def count_queue(
    conn: Connection, *, actor: Actor, filters: QueueFilter, cap: int = COUNT_CAP
) -> QueueCount:
    """How many leads the queue holds under `filters`, counted up to `cap` + 1 rows of the
    same ranges the page reads (so it costs at most `cap` index entries, whatever the size)."""
    scope, scope_params = _scope_shape(actor)
    if _asks_for_anothers_category(conn, scope, scope_params, filters):
        return QueueCount(count=0, capped=False)
    conditions, params = _filter_shape(filters)
    params.update(scope_params)
    ((count,),) = _count_statement(scope, conditions, cap + 1).rows(conn, params)
    return QueueCount(count=min(count, cap), capped=count > cap)


@lru_cache(maxsize=256)
def _count_statement(scope: str, filters: tuple[str, ...], limit: int) -> Precompiled:
    inner = select(literal_column("1").label("one"))
    scope_condition = _scope_condition(scope)
    if scope_condition is not None:
        inner = inner.where(scope_condition)
    for name in filters:
        inner = inner.where(_filter_condition(name))
    inner = inner.select_from(Lead).limit(literal_column(str(int(limit)), Integer)).subquery()
    one_plan = filters == ("open",) and scope != "department"
    return Precompiled(select(func.count()).select_from(inner), plan_per_value=not one_plan)


def _scope_shape(actor: Actor) -> tuple[str, dict[str, Any]]:
    """`scope_leads` as a named shape with its bound values (for the statement cache)."""
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return "all", {}
    if actor.role is Role.TOWN_STAFF:
        return "town", {"scope_id": actor.town_id}
    if actor.role is Role.HELPER:
        return "village", {"scope_id": actor.village_id}
    if actor.role is Role.DEPARTMENT_STAFF and actor.department_id is not None:
        return "department", {"scope_id": actor.department_id}
    return "none", {}


def _scope_condition(scope: str) -> Any:
    scope_id = bindparam("scope_id", type_=Integer)
    if scope == "all":
        return None
    if scope == "town":
        return Lead.town_id == scope_id
    if scope == "village":
        return Lead.village_id == scope_id
    if scope == "department":
        return _has_evidence(LeadEvidence.department_id == scope_id)
    return false()


def _has_evidence(condition: Any) -> Any:
    """The lead has evidence that meets `condition`. `SELECT 1`, not `SELECT *`: SQLite then
    answers from an index that holds the lead and the condition's column, without reading the
    evidence row."""
    return select(literal_column("1")).where(LeadEvidence.lead_id == Lead.id, condition).exists()


def _filter_shape(f: QueueFilter) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Which filter conditions apply, and their bound values."""
    names: list[str] = []
    params: dict[str, Any] = {}

    def use(name: str, **values: Any) -> None:
        names.append(name)
        params.update(values)

    if f.status is None:
        use("open")
    else:
        use("status", is_open=f.status in OPEN_STATUSES, status=f.status)
    if f.town_code is not None:
        use("town", town_code=f.town_code)
    if f.village_code is not None:
        use("village", village_code=f.village_code)
    if f.channel is not None:
        use("channel", channel=f.channel)
    if f.feed is not None:
        use("feed", feed=f.feed)
    if f.category is not None:
        use("category", category_like=f'%"{f.category}"%')
    if f.min_priority is not None:
        use("min_priority", min_priority=f.min_priority)
    if f.handler_id is not None:
        use("handler", handler_id=f.handler_id)
    if f.unassigned:
        use("unassigned")
    if f.created_from is not None:
        use("created_from", created_from=_day_start(f.created_from))
    if f.created_to is not None:
        use("created_to", created_before=_day_start(f.created_to + timedelta(days=1)))
    name = (f.name or "").strip()
    if name:
        if name.isascii() and any(ch.isalpha() for ch in name):
            use("name_key", name_like=_like_escape(matching.query_key(name)) + "%")
        else:
            use("name", name_like="%" + _like_escape(name) + "%")
    return tuple(names), params


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_condition(name: str) -> Any:
    """The SQL of one filter, with its values left as bound parameters."""
    if name == "open":
        return Lead.is_open == true()
    if name == "status":
        return and_(
            Lead.is_open == bindparam("is_open", type_=Boolean),
            Lead.status == bindparam("status", type_=Lead.status.type),
        )
    if name == "town":
        town = select(Town.id).where(Town.code == bindparam("town_code", type_=String))
        return Lead.town_id == town.scalar_subquery()
    if name == "village":
        village = select(Village.id).where(Village.code == bindparam("village_code", type_=String))
        return Lead.village_id == village.scalar_subquery()
    if name == "channel":
        return Lead.channel == bindparam("channel", type_=Lead.channel.type)
    if name == "feed":
        return _has_evidence(LeadEvidence.feed_code == bindparam("feed", type_=String))
    if name == "category":
        return cast(Lead.categories, String).like(bindparam("category_like", type_=String))
    if name == "min_priority":
        return Lead.priority >= bindparam("min_priority", type_=Integer)
    if name == "handler":
        # `ix_leads_handler_queue` (partial: handler_id IS NOT NULL, which `=` implies).
        return Lead.handler_id == bindparam("handler_id", type_=Integer)
    if name == "unassigned":
        return Lead.handler_id.is_(None)
    if name == "created_from":
        return Lead.created_at >= bindparam("created_from", type_=Lead.created_at.type)
    if name == "created_to":
        return Lead.created_at < bindparam("created_before", type_=Lead.created_at.type)
    if name in ("name_key", "name"):
        return _named(getattr(_NAMED, name))
    raise ValueError(name)


#: The leads again, for the name filters' subquery.
_NAMED = aliased(Lead, name="named")


def _named(column: Any) -> Any:
    """Leads whose name (or pinyin key) matches, as a set drawn from that column's index.

    A name search matches a few leads among many. Tested on each row of the ordered queue
    walk, a name nobody has made the walk fetch every open lead (0.7 s at 1,000,000); the
    index of names alone holds everything the test needs and is read 15 times faster, and
    the few matches are then sorted.
    """
    return Lead.id.in_(
        select(_NAMED.id).where(column.like(bindparam("name_like", type_=String), escape="\\"))
    )


@lru_cache(maxsize=1024)
def _queue_statement(scope: str, filters: tuple[str, ...], step: str, limit: int) -> Precompiled:
    """The page statement for one shape of request, compiled once per process.

    `first`: the top of the queue; `same`: after the cursor within its priority; `lower`: the
    priorities below the cursor's. Each is a range scan of the queue index in its own order.
    """
    query = select(*_QUEUE_COLUMNS)
    scope_condition = _scope_condition(scope)
    if scope_condition is not None:
        query = query.where(scope_condition)
    for name in filters:
        query = query.where(_filter_condition(name))
    # Written into the SQL (1–101): a generic prepared plan with an unknown LIMIT may prefer a
    # full sort.
    page = literal_column(str(int(limit)), Integer)
    if step == "first":
        query = query.order_by(Lead.priority.desc(), Lead.id)
    elif step == "same":
        query = query.where(
            Lead.priority == bindparam("cur_priority", type_=Integer),
            Lead.id > bindparam("cur_id", type_=Integer),
        ).order_by(Lead.id)
    else:
        query = query.where(Lead.priority < bindparam("cur_priority", type_=Integer)).order_by(
            Lead.priority.desc(), Lead.id
        )
    # The plain queue of a town or a village has one best plan. Under a filter, or in a
    # department's scope, the best plan depends on how many leads the value matches: a channel
    # nobody used is a short range of `ix_leads_channel_queue`, the commonest is best walked in
    # `ix_leads_queue`; a department with few leads is best found from its evidence.
    one_plan = filters == ("open",) and scope != "department"
    return Precompiled(query.limit(page), plan_per_value=not one_plan)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=TZ)


def encode_cursor(priority: int, lead_id: int) -> str:
    """An opaque cursor: clients pass it back as they got it."""
    return base64.urlsafe_b64encode(f"q1:{priority}:{lead_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, priority, lead_id = raw.split(":")
        if tag != "q1":
            raise ValueError(tag)
        return int(priority), int(lead_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid("cursor", "翻页参数无效，请从第一页重新开始", "bad_cursor") from exc


# --- One lead, in full -----------------------------------------------------------------------


def lead_view(
    db: Session, lead: Lead, *, pii: PersonalData, actor: Actor | None = None
) -> dict[str, Any]:
    """A lead with its evidence timeline; ID and phone numbers masked. Department staff see
    only their own department's evidence and the priority reasons it brought (a lead that
    several departments' files touch: 医保 staff never read 残联's disability facts)."""
    own = own_department(actor)
    shown = [e for e in lead.evidence if own is None or e.department_id == own]
    evidence = sorted(
        shown, key=lambda e: (e.event_date or e.created_at.date(), e.created_at, e.id)
    )
    reasons = lead.priority_reasons if own is None else _own_reasons(shown)
    categories = lead.categories
    if own is not None:
        brought = set().union(*(_categories_brought(e.feed_code, e.facts) for e in shown))
        categories = _among(lead.categories, brought)
    town = db.get(Town, lead.town_id) if lead.town_id else None
    village = db.get(Village, lead.village_id) if lead.village_id else None
    merges = db.scalars(
        select(LeadMerge)
        .where(or_(LeadMerge.source_lead_id == lead.id, LeadMerge.target_lead_id == lead.id))
        .order_by(LeadMerge.id)
    )
    return {
        "id": lead.id,
        "name": lead.name,
        "status": lead.status.value,
        "channel": lead.channel.value,
        "priority": lead.priority,
        "priority_reasons": reasons,
        "categories": categories,
        "category_labels": [CATEGORIES.get(c, c) for c in categories],
        "id_number": idnumber.mask(pii.open(lead.id_number_enc)),
        "phone": idnumber.mask_phone(pii.open(lead.phone_enc)),
        "town": {"code": town.code, "name": town.name} if town else None,
        "village": {"code": village.code, "name": village.name} if village else None,
        "address": lead.address,
        "previous_lead_id": lead.previous_lead_id,
        "merged_into_id": lead.merged_into_id,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "triaged_at": lead.triaged_at,
        "dispatched_at": lead.dispatched_at,
        "closed_at": lead.closed_at,
        "evidence": [_evidence_view(e, pii=pii) for e in evidence],
        "merges": [
            {
                "id": m.id,
                "source_lead_id": m.source_lead_id,
                "target_lead_id": m.target_lead_id,
                "merged_at": m.merged_at,
                "undone_at": m.undone_at,
            }
            for m in merges
        ],
    }


def own_department(actor: Actor | None) -> int | None:
    """The department whose evidence alone `actor` may read on a lead (department staff), or
    None: everything the lead holds."""
    if actor is not None and actor.role is Role.DEPARTMENT_STAFF:
        return actor.department_id if actor.department_id is not None else -1
    return None


def _own_reasons(evidence: list[LeadEvidence]) -> list[str]:
    return list(dict.fromkeys(e.priority_reason for e in evidence if e.priority_reason))


def _evidence_view(e: LeadEvidence, *, pii: PersonalData) -> dict[str, Any]:
    reporter = None
    if e.reporter_name or e.reporter_org or e.reporter_phone_enc:
        reporter = {
            "name": e.reporter_name,
            "organisation": e.reporter_org,
            "phone": idnumber.mask_phone(pii.open(e.reporter_phone_enc)),
        }
    return {
        "id": e.id,
        "channel": e.channel.value,
        "feed_code": e.feed_code,
        "batch_id": e.batch_id,
        "row_number": e.row_number,
        "source_type": e.source_type,
        "source_id": e.source_id,
        "department_id": e.department_id,
        "summary": e.summary,
        "facts": e.facts,
        "event_date": e.event_date,
        "reporter": reporter,
        "created_at": e.created_at,
    }


def reveal_personal_data(
    db: Session, lead_id: int, *, pii: PersonalData, actor: Actor, now: datetime
) -> dict[str, Any]:
    """The whole ID and phone numbers, for the center only; every look is an audit row."""
    require_role(actor, Role.CENTER_STAFF)
    lead = access_lead_by_id(db, lead_id, actor=actor)
    record_unmasked_view(
        db,
        actor=actor,
        target_type="lead",
        target_id=lead.id,
        fields=["id_number", "phone"],
        now=now,
    )
    db.flush()
    return {
        "lead_id": lead.id,
        "id_number": pii.open(lead.id_number_enc),
        "phone": pii.open(lead.phone_enc),
    }


# --- Candidates, merge, keep apart -----------------------------------------------------------

#: How many rows a candidate search reads at most before scoring them.
_CANDIDATE_SCAN = 200


def find_candidates(db: Session, lead: Lead, *, actor: Actor, limit: int = 10) -> list[Candidate]:
    """Open leads that may be the same person as `lead`, best first, within `actor`'s scope.

    Fetched by exact name, sound key, look-alike key, phone hash and village (indexed columns),
    then scored by services/leads/matching.py. Pairs staff kept apart are never offered again, and a
    lead with an ID number is never offered another lead with a different one.
    """
    conditions = [Lead.name == lead.name]
    if lead.name_key:
        conditions.append(Lead.name_key == lead.name_key)
    if lead.name_shape:
        conditions.append(Lead.name_shape == lead.name_shape)
    if lead.phone_hash:
        conditions.append(Lead.phone_hash == lead.phone_hash)
    if lead.village_id:
        conditions.append(Lead.village_id == lead.village_id)
    query = scope_leads(
        select(
            Lead.id,
            Lead.name,
            Lead.person_hash,
            Lead.phone_hash,
            Lead.town_id,
            Lead.village_id,
            Lead.status,
            Lead.priority,
            Lead.created_at,
        ),
        actor,
    ).where(Lead.is_open == true(), Lead.id != lead.id, or_(*conditions))
    if lead.person_hash is not None:
        query = query.where(Lead.person_hash.is_(None))
    low, high = LeadPairDismissal.lead_low_id, LeadPairDismissal.lead_high_id
    query = query.where(
        ~exists().where(
            or_(
                and_(low == lead.id, high == Lead.id),
                and_(low == Lead.id, high == lead.id),
            )
        )
    )
    me = _person(lead)
    found: list[Candidate] = []
    for row in db.execute(query.order_by(Lead.id.desc()).limit(_CANDIDATE_SCAN)):
        match = matching.compare(
            me,
            matching.Person(row.name, row.person_hash, row.phone_hash, row.town_id, row.village_id),
        )
        if match.is_candidate:
            found.append(
                Candidate(
                    lead_id=row.id,
                    name=row.name,
                    score=match.score,
                    reasons=list(match.reasons),
                    status=row.status.value,
                    priority=row.priority,
                    has_id_number=row.person_hash is not None,
                    town_id=row.town_id,
                    village_id=row.village_id,
                    created_at=row.created_at,
                )
            )
    found.sort(key=lambda c: (-c.score, -c.has_id_number, c.lead_id))
    return found[:limit]


def _person(lead: Lead) -> matching.Person:
    return matching.Person(
        lead.name, lead.person_hash, lead.phone_hash, lead.town_id, lead.village_id
    )


_MERGERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)
#: Lead fields a merge fills on the target when the target does not know them yet.
_FILLABLE = ("phone_enc", "phone_hash", "town_id", "village_id", "address")


def merge_leads(db: Session, source_id: int, *, into_id: int, actor: Actor, now: datetime) -> Lead:
    """Fold lead `source_id` (a report without an ID number) into lead `into_id`.

    The source's evidence moves to the target, the target gains the source's categories, priority
    reasons and any contact details it lacked; the source becomes MERGED with `merged_into_id`.
    Everything the merge changed is kept in a LeadMerge row, so `unmerge_lead` can undo it.
    """
    require_role(actor, *_MERGERS)
    if source_id == into_id:
        raise Conflict("不能把线索合并到它自己", code="merge_same_lead")
    source = access_lead_by_id(db, source_id, actor=actor, for_update=True)
    target = access_lead_by_id(db, into_id, actor=actor, for_update=True)
    if not source.is_open or not target.is_open:
        raise Conflict("只能合并尚未办结的线索", code="merge_closed_lead")
    if source.person_hash is not None:
        if target.person_hash is not None:
            raise Conflict("两条线索的身份证号不同，不是同一人", code="merge_different_people")
        raise Conflict(
            "有身份证号的线索不能并入无身份证号的线索，请反向合并", code="merge_direction"
        )
    match = matching.compare(_person(source), _person(target))
    target_keys = frozenset(
        db.scalars(select(LeadEvidence.dedup_key).where(LeadEvidence.lead_id == target.id))
    )
    rows = db.execute(
        select(
            LeadEvidence.id,
            LeadEvidence.dedup_key,
            LeadEvidence.priority_reason,
            LeadEvidence.priority_points,
        )
        .where(LeadEvidence.lead_id == source.id)
        .order_by(LeadEvidence.id)
    ).all()
    # The one rule, replaying the source's signals on the target: a reason the target has
    # already counts nothing again (before: the source's whole priority was added once).
    change = signal_rule.apply_signals(
        signal_rule.LeadState(
            categories=target.categories,
            priority=target.priority,
            reasons=target.priority_reasons,
            evidence_keys=target_keys,
        ),
        [
            signal_rule.Gain("merge:categories", tuple(source.categories)),
            *(
                signal_rule.Gain(r.dedup_key, (), r.priority_points or 0, r.priority_reason)
                for r in rows
            ),
            *_legacy_gains(source, rows),
        ],
    )
    fresh_keys = {g.dedup_key for g in change.fresh}
    moved = [r.id for r in rows if r.dedup_key in fresh_keys]
    if moved:
        db.execute(
            update(LeadEvidence)
            .where(LeadEvidence.id.in_(moved))
            .values(lead_id=target.id)
            .execution_options(synchronize_session=False)
        )
    added_categories, added_reasons = change.added_categories, change.added_reasons
    added_priority = change.added_points
    filled = {
        name: getattr(source, name)
        for name in _FILLABLE
        if getattr(target, name) is None and getattr(source, name) is not None
    }
    target.categories = change.categories
    target.priority_reasons = change.reasons
    target.priority = change.priority
    for name, value in filled.items():
        setattr(target, name, value)
    target.updated_at = now
    merge = LeadMerge(
        source_lead_id=source.id,
        target_lead_id=target.id,
        source_status=source.status,
        evidence_ids=moved,
        added={
            "categories": added_categories,
            "priority_reasons": added_reasons,
            "priority": added_priority,
            "filled": filled,
        },
        score=match.score,
        merged_by_id=actor.user_id,
        merged_at=now,
    )
    db.add(merge)
    source.merged_into_id = target.id
    set_lead_status(db, source, LeadStatus.MERGED, actor=actor, now=now)
    db.flush()
    record(
        db,
        actor=actor,
        action="lead.merge",
        target_type="lead",
        target_id=source.id,
        now=now,
        detail={
            "into": target.id,
            "merge_id": merge.id,
            "evidence": moved,
            "score": match.score,
            "reasons": list(match.reasons),
        },
    )
    db.expire(source, ["evidence"])
    db.expire(target, ["evidence"])
    return target


def _legacy_gains(source: Lead, rows: Any) -> list[signal_rule.Gain]:
    """The source's reasons that no evidence row carries (evidence from before each row kept
    its own reason, migration 0021), with the points its priority holds beyond its rows'."""
    carried: dict[str, int] = {}
    for r in rows:
        if r.priority_reason and r.priority_reason not in carried:
            carried[r.priority_reason] = r.priority_points or 0
    left = max(source.priority - sum(carried.values()), 0)
    gains = []
    for i, reason in enumerate(r for r in source.priority_reasons if r not in carried):
        gains.append(signal_rule.Gain(f"merge:legacy:{i}", (), left if i == 0 else 0, reason))
    return gains


def unmerge_lead(db: Session, source_id: int, *, actor: Actor, now: datetime) -> Lead:
    """Undo the standing merge of lead `source_id`: it reopens with its evidence back.

    Only what the merge added to the target is taken away; signals that reached the target
    since stay there. If the target has itself been merged since, that merge is undone first.
    """
    require_role(actor, *_MERGERS)
    source = access_lead_by_id(db, source_id, actor=actor, for_update=True)
    merge = db.scalar(
        select(LeadMerge).where(
            LeadMerge.source_lead_id == source.id, LeadMerge.undone_at.is_(None)
        )
    )
    if merge is None or source.status is not LeadStatus.MERGED:
        raise Conflict("这条线索没有被合并，无需撤销", code="not_merged")
    target = access_lead_by_id(db, merge.target_lead_id, actor=actor, for_update=True)
    if target.status is LeadStatus.MERGED:
        raise Conflict(
            "合并后的线索又被合并到了别的线索，请先撤销那次合并", code="unmerge_later_merge_first"
        )
    if merge.evidence_ids:
        db.execute(
            update(LeadEvidence)
            .where(LeadEvidence.id.in_(merge.evidence_ids), LeadEvidence.lead_id == target.id)
            .values(lead_id=source.id)
            .execution_options(synchronize_session=False)
        )
    added = merge.added
    target.categories = [c for c in target.categories if c not in added.get("categories", [])]
    target.priority_reasons = [
        r for r in target.priority_reasons if r not in added.get("priority_reasons", [])
    ]
    target.priority -= int(added.get("priority", 0))
    for name, value in added.get("filled", {}).items():
        if getattr(target, name) == value:
            setattr(target, name, None)
    target.updated_at = now
    source.status = merge.source_status
    source.is_open = merge.source_status in OPEN_STATUSES
    source.merged_into_id = None
    source.closed_at = None
    source.updated_at = now
    merge.undone_at = now
    merge.undone_by_id = actor.user_id
    record(
        db,
        actor=actor,
        action="lead.unmerge",
        target_type="lead",
        target_id=source.id,
        now=now,
        detail={"from": target.id, "merge_id": merge.id, "evidence": merge.evidence_ids},
    )
    db.flush()
    db.expire(source, ["evidence"])
    db.expire(target, ["evidence"])
    return source


def keep_apart(
    db: Session,
    lead_id: int,
    *,
    other_id: int,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> LeadPairDismissal:
    """Staff judged two leads to be different people: they stop being candidates of each other.

    Saying it twice is harmless (the first decision stands and is returned).
    """
    require_role(actor, *_MERGERS)
    if lead_id == other_id:
        raise Conflict("请选择另一条线索", code="same_lead")
    access_lead_by_id(db, lead_id, actor=actor)
    access_lead_by_id(db, other_id, actor=actor)
    low, high = sorted((lead_id, other_id))
    existing = db.scalar(
        select(LeadPairDismissal).where(
            LeadPairDismissal.lead_low_id == low, LeadPairDismissal.lead_high_id == high
        )
    )
    if existing is not None:
        return existing
    dismissal = LeadPairDismissal(
        lead_low_id=low,
        lead_high_id=high,
        reason=(reason or "").strip()[:200] or None,
        dismissed_by_id=actor.user_id,
        dismissed_at=now,
    )
    db.add(dismissal)
    db.flush()
    record(
        db,
        actor=actor,
        action="lead.kept_apart",
        target_type="lead",
        target_id=lead_id,
        now=now,
        detail={"other": other_id, "reason": dismissal.reason},
    )
    return dismissal
