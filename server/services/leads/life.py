"""A lead's own life: triage (dismiss, already covered, reopen), its handler, internal notes,
and finding a lead by a whole ID or phone number.

Each change is a named function with keyword-only `actor` and `now`: it locks the lead, checks
the states it may start from, stamps the lead's own timestamp, writes one `LeadEvent` (the lead's
timeline) and one audit row, and only flushes. Of two staff changing the same lead at once the
second waits for the row lock (PostgreSQL) and finds the state changed (409), or finds the
version changed (StaleDataError → 409, SQLite): nothing of theirs is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.clock import TZ
from server.db import savepoint
from server.errors import Conflict, ValidationFailed, invalid
from server.models import (
    DismissalReason,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    Role,
    User,
)
from server.services.applications.reading import application_number, undecided_on_lead
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.pii import PersonalData
from server.services.leads.access import access_lead_by_id, scope_leads
from server.services.leads.core import set_lead_status
from server.services.leads.detail import lead_view

#: Who triages and assigns leads (town staff only their town's: `access_lead_by_id`).
TRIAGERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)
#: Who writes internal notes: every staff member who may read the lead and works cases.
NOTE_WRITERS = (Role.CENTER_STAFF, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF)
#: Who reads internal notes (never residents, never helpers).
NOTE_READERS = frozenset({*NOTE_WRITERS, Role.LEADER})
#: Who may find a lead by a whole ID or phone number.
SEARCHERS = (Role.CENTER_STAFF, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF, Role.LEADER)

DISMISSAL_LABELS: dict[DismissalReason, str] = {
    DismissalReason.OUT_OF_SCOPE: "不属于救助范围",
    DismissalReason.ALREADY_AIDED: "已享受相应救助",
    DismissalReason.DUPLICATE: "重复线索",
    DismissalReason.UNREACHABLE: "无法联系",
    DismissalReason.OTHER: "其他",
}
EVENT_LABELS: dict[LeadEventKind, str] = {
    LeadEventKind.DISMISSED: "排除",
    LeadEventKind.COVERED: "已纳入保障",
    LeadEventKind.REOPENED: "重新打开",
    LeadEventKind.ASSIGNED: "指派经办人",
    LeadEventKind.CLAIMED: "认领",
    LeadEventKind.REASSIGNED: "改派经办人",
    LeadEventKind.UNASSIGNED: "取消指派",
    LeadEventKind.NOTE: "内部备注",
}

#: Lead states triage (dismiss, already covered) may start from: not yet sent anywhere.
TRIAGE_FROM = frozenset({LeadStatus.NEW, LeadStatus.TRIAGED})
#: States a lead may be reopened from, and for how many days after entering them.
REOPENABLE = frozenset({LeadStatus.DISMISSED, LeadStatus.COVERED})
REOPEN_DAYS = 30
NOTE_MAX = 1000
TEXT_MAX = 500

_STATE_WORDS: dict[LeadStatus, str] = {
    LeadStatus.NEW: "待研判",
    LeadStatus.TRIAGED: "已研判",
    LeadStatus.DISPATCHED: "已转办",
    LeadStatus.AWAITING_REVISIT: "待回访",
    LeadStatus.CLOSED: "已办结",
    LeadStatus.MERGED: "已合并",
    LeadStatus.DISMISSED: "已排除",
    LeadStatus.COVERED: "已纳入保障",
}


def _lead_state(lead: Lead, doing: str) -> Conflict:
    return Conflict(f"线索当前{_STATE_WORDS[lead.status]}，不能{doing}", code="lead_state")


def _clean(value: str | None, *, field: str, limit: int) -> str | None:
    cleaned = (value or "").strip()
    if len(cleaned) > limit:
        raise invalid(field, f"最多{limit}个字")
    return cleaned or None


def _event(
    db: Session, lead: Lead, kind: LeadEventKind, *, actor: Actor, now: datetime, **values: Any
) -> LeadEvent:
    event = LeadEvent(lead_id=lead.id, kind=kind, actor_id=actor.user_id, at=now, **values)
    db.add(event)
    return event


# --- Triage ---------------------------------------------------------------------------------


def dismiss_lead(
    db: Session,
    lead_id: int,
    *,
    reason: DismissalReason,
    note: str | None,
    actor: Actor,
    now: datetime,
) -> Lead:
    """排除: the lead is not a case (不属于救助范围, 已享受相应救助, 重复线索, 无法联系, or 其他
    with the text saying what). Only before a slip; it can be reopened for 30 days."""
    require_role(actor, *TRIAGERS)
    note = _clean(note, field="note", limit=TEXT_MAX)
    if reason is DismissalReason.OTHER and note is None:
        raise invalid("note", "选择“其他”时请写明原因", "dismissal_text_required")
    lead = _lead_for_triage(db, lead_id, actor=actor, doing="排除")
    lead.dismissal_reason = reason
    lead.dismissal_note = note
    lead.closed_at = now
    set_lead_status(
        db, lead, LeadStatus.DISMISSED, actor=actor, now=now, detail={"reason": reason.value}
    )
    _event(db, lead, LeadEventKind.DISMISSED, actor=actor, now=now, reason=reason, text=note)
    db.flush()
    return lead


def mark_covered(
    db: Session, lead_id: int, *, note: str | None, actor: Actor, now: datetime
) -> Lead:
    """已纳入保障: the person already receives the aid they need; the lead closes (reopenable
    for 30 days)."""
    require_role(actor, *TRIAGERS)
    note = _clean(note, field="note", limit=TEXT_MAX)
    lead = _lead_for_triage(db, lead_id, actor=actor, doing="标记为已纳入保障")
    lead.closed_at = now
    set_lead_status(db, lead, LeadStatus.COVERED, actor=actor, now=now)
    _event(db, lead, LeadEventKind.COVERED, actor=actor, now=now, text=note)
    db.flush()
    return lead


def _lead_for_triage(db: Session, lead_id: int, *, actor: Actor, doing: str) -> Lead:
    lead = access_lead_by_id(db, lead_id, actor=actor, for_update=True)
    if lead.status not in TRIAGE_FROM:
        raise _lead_state(lead, doing)
    open_ones = undecided_on_lead(db, lead.id)
    if open_ones:
        numbers = "、".join(application_number(a) for a in open_ones)
        raise Conflict(
            f"该线索还有未办结的申请（{numbers}），请先办结或撤回申请，再{doing}",
            code="lead_applications_open",
        )
    return lead


def reopen_lead(
    db: Session, lead_id: int, *, note: str | None, actor: Actor, now: datetime
) -> Lead:
    """重新打开 a dismissed or covered lead, within 30 days of that triage; it returns to the
    queue as 待研判. Refused when the person has another open lead meanwhile (new signals open
    one): that lead carries on."""
    require_role(actor, *TRIAGERS)
    note = _clean(note, field="note", limit=TEXT_MAX)
    lead = access_lead_by_id(db, lead_id, actor=actor, for_update=True)
    if lead.status not in REOPENABLE:
        raise _lead_state(lead, "重新打开（只有已排除或已纳入保障的线索可以重新打开）")
    since = lead.dismissed_at if lead.status is LeadStatus.DISMISSED else lead.covered_at
    assert since is not None
    if now - since > timedelta(days=REOPEN_DAYS):
        day = since.astimezone(TZ)
        raise Conflict(
            f"该线索于{day.year}年{day.month}月{day.day}日{_STATE_WORDS[lead.status]}，"
            f"已超过{REOPEN_DAYS}天，不能重新打开；如有新情况，请登记新线索",
            code="reopen_window_passed",
        )
    # The person's newer open lead, if any, continues this one (`previous_lead_id`): found by
    # that link as well as by the unique index, so also when the two are keyed differently
    # during a re-keying window (services/kernel/rotation.py).
    successor = db.scalar(
        select(Lead.id).where(Lead.previous_lead_id == lead.id, Lead.is_open == true()).limit(1)
    )
    if successor is not None and lead.person_hash is not None:
        raise Conflict(
            f"此人已有未办结的线索（编号{successor}），请在那条线索上继续办理",
            code="person_has_open_lead",
        )
    lead.reopened_at = now
    lead.closed_at = None
    try:
        with savepoint(db):
            set_lead_status(
                db, lead, LeadStatus.NEW, actor=actor, now=now, detail={"reopened": True}
            )
            db.flush()
    except IntegrityError as exc:
        other = db.scalar(
            select(Lead.id).where(Lead.person_hash == lead.person_hash, Lead.is_open == true())
        )
        raise Conflict(
            f"此人已有未办结的线索（编号{other}），请在那条线索上继续办理",
            code="person_has_open_lead",
        ) from exc
    _event(db, lead, LeadEventKind.REOPENED, actor=actor, now=now, text=note)
    db.flush()
    return lead


# --- Handler --------------------------------------------------------------------------------


def assign_lead(
    db: Session, lead_id: int, *, handler_id: int | None, actor: Actor, now: datetime
) -> Lead:
    """Give the lead a handler (a staff member of the center or of the lead's town), hand it to
    another (改派), or take the handler away (`None`). The same handler again changes nothing."""
    require_role(actor, *TRIAGERS)
    lead = _open_lead(db, lead_id, actor=actor, doing="指派经办人")
    if handler_id is not None:
        _require_eligible(db, lead, handler_id)
    if handler_id == lead.handler_id:
        return lead
    previous = lead.handler_id
    if handler_id is None:
        kind = LeadEventKind.UNASSIGNED
    elif previous is None:
        kind = LeadEventKind.ASSIGNED
    else:
        kind = LeadEventKind.REASSIGNED
    _set_handler(db, lead, handler_id, kind, actor=actor, now=now)
    return lead


def claim_lead(db: Session, lead_id: int, *, actor: Actor, now: datetime) -> Lead:
    """认领 ("assign to me"): the caller becomes the handler of a lead nobody handles. A lead
    someone else handles is 409 (改派 is `assign_lead`); claiming one's own changes nothing."""
    require_role(actor, *TRIAGERS)
    assert actor.user_id is not None
    lead = _open_lead(db, lead_id, actor=actor, doing="认领")
    if lead.handler_id == actor.user_id:
        return lead
    if lead.handler_id is not None:
        raise Conflict(
            f"该线索已由{_user_name(db, lead.handler_id)}负责；如需更换，请使用改派",
            code="lead_has_handler",
        )
    _require_eligible(db, lead, actor.user_id)
    _set_handler(db, lead, actor.user_id, LeadEventKind.CLAIMED, actor=actor, now=now)
    return lead


def _open_lead(db: Session, lead_id: int, *, actor: Actor, doing: str) -> Lead:
    lead = access_lead_by_id(db, lead_id, actor=actor, for_update=True)
    if not lead.is_open:
        raise _lead_state(lead, doing)
    return lead


def _require_eligible(db: Session, lead: Lead, handler_id: int) -> None:
    """A handler is an active staff member of the center, or of the lead's own town."""
    user = db.get(User, handler_id)
    if user is None or not user.is_active:
        ok = False
    elif user.role is Role.CENTER_STAFF:
        ok = True
    else:
        ok = user.role is Role.TOWN_STAFF and lead.town_id is not None
        ok = ok and user.town_id == lead.town_id
    if not ok:
        raise invalid(
            "handler_id",
            "经办人只能是区救助中心或该线索所在镇街的工作人员",
            "handler_not_eligible",
        )


def _set_handler(
    db: Session,
    lead: Lead,
    handler_id: int | None,
    kind: LeadEventKind,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    previous = lead.handler_id
    lead.handler_id = handler_id
    lead.assigned_at = now if handler_id is not None else None
    lead.updated_at = now
    _event(
        db, lead, kind, actor=actor, now=now, handler_id=handler_id, previous_handler_id=previous
    )
    db.flush()
    record(
        db,
        actor=actor,
        action=f"lead.{kind.value}",
        target_type="lead",
        target_id=lead.id,
        now=now,
        detail={"handler": handler_id, "previous": previous},
    )


def _user_name(db: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = db.get(User, user_id)
    if user is None:
        return None
    return user.display_name or user.username or f"用户{user.id}"


# --- Notes ----------------------------------------------------------------------------------


def add_note(db: Session, lead_id: int, *, text_: str, actor: Actor, now: datetime) -> LeadEvent:
    """An internal note on the lead, in its timeline for staff only (never shown to residents or
    helpers). The audit row names the note, not its words."""
    require_role(actor, *NOTE_WRITERS)
    words = _clean(text_, field="text", limit=NOTE_MAX)
    if words is None:
        raise invalid("text", "请填写备注内容")
    lead = access_lead_by_id(db, lead_id, actor=actor)
    event = _event(db, lead, LeadEventKind.NOTE, actor=actor, now=now, text=words)
    db.flush()
    record(
        db,
        actor=actor,
        action="lead.note_added",
        target_type="lead",
        target_id=lead.id,
        now=now,
        detail={"event_id": event.id},
    )
    return event


# --- Reading --------------------------------------------------------------------------------


def timeline(db: Session, lead: Lead, *, actor: Actor) -> list[dict[str, Any]]:
    """The lead's own steps and notes, oldest first. Notes, and the words that came with a step,
    only for staff (`NOTE_READERS`)."""
    internal = actor.role in NOTE_READERS
    query = select(LeadEvent).where(LeadEvent.lead_id == lead.id).order_by(LeadEvent.id)
    if not internal:
        query = query.where(LeadEvent.kind != LeadEventKind.NOTE)
    events = list(db.scalars(query))
    if actor.role is not Role.DEPARTMENT_STAFF:
        return [event_view(db, e, internal=internal) for e in events]
    # Department staff read the words their own department wrote, as they read only its
    # evidence: another's note may carry that department's facts.
    own = _written_by_department(db, events, actor.department_id)
    return [
        event_view(db, e, internal=e.id in own)
        for e in events
        if e.kind is not LeadEventKind.NOTE or e.id in own
    ]


def _written_by_department(
    db: Session, events: list[LeadEvent], department_id: int | None
) -> set[int]:
    authors = {e.actor_id for e in events if e.actor_id is not None}
    if department_id is None or not authors:
        return set()
    own_staff = set(
        db.scalars(select(User.id).where(User.id.in_(authors), User.department_id == department_id))
    )
    return {e.id for e in events if e.actor_id in own_staff}


def event_view(db: Session, e: LeadEvent, *, internal: bool = True) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": e.kind.value,
        "label": EVENT_LABELS[e.kind],
        "at": e.at,
        "actor": _person_ref(db, e.actor_id),
        "handler": _person_ref(db, e.handler_id),
        "previous_handler": _person_ref(db, e.previous_handler_id),
        "reason": e.reason.value if e.reason else None,
        "reason_label": DISMISSAL_LABELS[e.reason] if e.reason else None,
        "text": e.text if internal else None,
    }


def _person_ref(db: Session, user_id: int | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    return {"id": user_id, "name": _user_name(db, user_id)}


def full_view(db: Session, lead: Lead, *, pii: PersonalData, actor: Actor) -> dict[str, Any]:
    """`leads.lead_view` with the lead's handler, triage and its own timeline."""
    view = lead_view(db, lead, pii=pii, actor=actor)
    internal = actor.role in NOTE_READERS
    view.update(
        handler=_person_ref(db, lead.handler_id),
        assigned_at=lead.assigned_at,
        dismissed_at=lead.dismissed_at,
        dismissal_reason=lead.dismissal_reason.value if lead.dismissal_reason else None,
        dismissal_reason_label=(
            DISMISSAL_LABELS[lead.dismissal_reason] if lead.dismissal_reason else None
        ),
        dismissal_note=lead.dismissal_note if internal else None,
        covered_at=lead.covered_at,
        reopened_at=lead.reopened_at,
        reopen_until=_reopen_until(lead),
        timeline=timeline(db, lead, actor=actor),
    )
    return view


def _reopen_until(lead: Lead) -> datetime | None:
    if lead.status is LeadStatus.DISMISSED and lead.dismissed_at is not None:
        return lead.dismissed_at + timedelta(days=REOPEN_DAYS)
    if lead.status is LeadStatus.COVERED and lead.covered_at is not None:
        return lead.covered_at + timedelta(days=REOPEN_DAYS)
    return None


# --- Search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadSearch:
    """Exactly one of them: a whole ID number, or a phone number (mobile or landline)."""

    id_number: str | None = None
    phone: str | None = None


#: Leads a search returns at most (newest first).
SEARCH_LIMIT = 50


def search_leads(
    db: Session, search: LeadSearch, *, pii: PersonalData, actor: Actor, now: datetime
) -> list[dict[str, Any]]:
    """Leads of one person in the caller's scope, open and closed, newest first: by the keyed
    hash of a whole ID number (exact; never a part of one), or by a phone number's. The search is
    audited (what it searched by and what it found, never the number)."""
    require_role(actor, *SEARCHERS)
    id_given = bool((search.id_number or "").strip())
    phone_given = bool((search.phone or "").strip())
    if id_given == phone_given:
        message = "请填写完整的身份证号或电话号码（二选一）"
        raise ValidationFailed(message, errors={"id_number": [message], "phone": [message]})
    if id_given:
        checked = idnumber.check(search.id_number, today=now.date())
        if not checked.ok:
            raise invalid("id_number", checked.message, checked.code)
        keys = pii.hashes(checked.value)  # under every listed key (a re-keying window)
        # Two ranges of two partial indexes (open: uq_leads_open_person, closed:
        # ix_leads_closed_person), each written as its index's predicate.
        found = [
            *db.scalars(
                scope_leads(
                    select(Lead).where(Lead.person_hash.in_(keys), text("leads.is_open")), actor
                )
            ),
            *db.scalars(
                scope_leads(
                    select(Lead).where(Lead.person_hash.in_(keys), text("NOT leads.is_open")),
                    actor,
                )
            ),
        ]
        by = "id_number"
    else:
        phone = idnumber.checked_phone(search.phone, field="phone", rule="any_number")
        assert phone is not None
        found = list(
            db.scalars(
                scope_leads(select(Lead).where(Lead.phone_hash.in_(pii.hashes(phone))), actor)
            )
        )
        by = "phone"
    found.sort(key=lambda lead: lead.id, reverse=True)
    found = found[:SEARCH_LIMIT]
    record(
        db,
        actor=actor,
        action="lead.searched",
        target_type="lead",
        target_id=None,
        now=now,
        detail={"by": by, "found": [lead.id for lead in found]},
    )
    db.flush()
    return [_hit(lead, pii=pii) for lead in found]


def _hit(lead: Lead, *, pii: PersonalData) -> dict[str, Any]:
    return {
        "id": lead.id,
        "name": lead.name,
        "status": lead.status.value,
        "channel": lead.channel.value,
        "priority": lead.priority,
        "town_id": lead.town_id,
        "village_id": lead.village_id,
        "handler_id": lead.handler_id,
        "id_number": idnumber.mask(pii.open(lead.id_number_enc)),
        "phone": idnumber.mask_phone(pii.open(lead.phone_enc)),
        "created_at": lead.created_at,
        "closed_at": lead.closed_at,
    }


def eligible_handlers(db: Session, lead: Lead) -> list[dict[str, Any]]:
    """Who may handle `lead` (the picker of the console's 指派): active center staff, and the
    active staff of the lead's own town, as `_require_eligible` checks."""
    who = User.role == Role.CENTER_STAFF
    if lead.town_id is not None:
        who = who | ((User.role == Role.TOWN_STAFF) & (User.town_id == lead.town_id))
    users = db.scalars(
        select(User).where(User.is_active.is_(True), who).order_by(User.role, User.id)
    )
    return [{"id": u.id, "name": _user_name(db, u.id)} for u in users]
