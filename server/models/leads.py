"""The lead queue: one open lead per person, and the evidence that each signal adds to it."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, desc, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, enum_column, intpk, key_string


class Channel(enum.StrEnum):
    """How a signal of hardship reached us."""

    MINIPROGRAM = "miniprogram"  # 掌上办: a resident's own application
    ON_BEHALF = "on_behalf"  # 帮办代办: a helper filing for someone
    VISIT = "visit"  # 摸排巡查
    FEED = "feed"  # 部门信息共享
    HOTLINE = "hotline"  # district assistance hotline
    POLICE_110 = "police_110"
    ELDERLY_12349 = "elderly_12349"
    VOLUNTEER = "volunteer"
    SOCIAL_ORG = "social_org"
    ENTERPRISE = "enterprise"
    ONLINE = "online"
    WINDOW = "window"  # 窗口办: staff file for a person at the town's or the center's window
    PHONE = "phone"  # 电话办: staff file for a person who phoned in


class LeadStatus(enum.StrEnum):
    NEW = "new"  # in the queue, not yet triaged
    TRIAGED = "triaged"  # compared and judged real, waiting for a slip
    DISPATCHED = "dispatched"  # at least one transfer slip is open
    AWAITING_REVISIT = "awaiting_revisit"  # every slip answered; the center revisits
    CLOSED = "closed"
    MERGED = "merged"  # folded into another lead (hotline reports without an ID)
    DISMISSED = "dismissed"  # triaged out with a reason (不予处理); may be reopened for 30 days
    COVERED = "covered"  # the person is already covered (已纳入保障); may be reopened for 30 days


OPEN_STATUSES = frozenset(
    {LeadStatus.NEW, LeadStatus.TRIAGED, LeadStatus.DISPATCHED, LeadStatus.AWAITING_REVISIT}
)


class DismissalReason(enum.StrEnum):
    """Why staff dismissed a lead at triage."""

    OUT_OF_SCOPE = "out_of_scope"  # 不属于救助范围
    ALREADY_AIDED = "already_aided"  # 已享受相应救助
    DUPLICATE = "duplicate"  # 重复线索
    UNREACHABLE = "unreachable"  # 无法联系
    OTHER = "other"  # 其他 (the text says what)


class LeadEventKind(enum.StrEnum):
    """One step of a lead's own life, as its timeline shows it."""

    DISMISSED = "dismissed"
    COVERED = "covered"
    REOPENED = "reopened"
    ASSIGNED = "assigned"  # a handler given to a lead that had none
    CLAIMED = "claimed"  # "assign to me"
    REASSIGNED = "reassigned"  # from one handler to another
    UNASSIGNED = "unassigned"
    NOTE = "note"  # an internal note (staff only)


def _in_queue_order(name: str, *leading: str, **options: Any) -> Index:
    """An index of leads in the queue's keyset order (open first, then priority desc, then
    arrival) after the `leading` columns: an equality filter on them reads a range in order."""
    return Index(name, *leading, "is_open", desc("priority"), "id", **options)


def _only_where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both engines."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


class Lead(Base):
    """A person who may need help, with everything we have heard about them."""

    __tablename__ = "leads"
    __table_args__ = (
        # One open lead per person: a partial unique index, enforced by the database itself.
        Index("uq_leads_open_person", "person_hash", unique=True, **_only_where("is_open")),
        # The queue's keyset order (priority desc, then arrival) is an index range scan: a page
        # costs the same at the 1st and the 500th page, with 10,000 or 1,000,000 leads.
        _in_queue_order("ix_leads_queue"),
        # Also the index of town_id alone (its first column): one index less to extend on
        # every lead a department file opens.
        _in_queue_order("ix_leads_town_queue", "town_id"),
        # The queue filtered by status, channel or village is a range of one of these, in queue
        # order: a filter that matches few leads does not walk the whole queue to find them.
        # Each also serves lookups by its first column alone. Department files rarely name a
        # village, so their leads add no entry to the village's.
        _in_queue_order("ix_leads_status_queue", "status"),
        _in_queue_order("ix_leads_channel_queue", "channel"),
        _in_queue_order(
            "ix_leads_village_queue", "village_id", **_only_where("village_id IS NOT NULL")
        ),
        # "My leads" / one handler's leads, in queue order. Partial: a department file's leads
        # have no handler and add no entry; "unassigned" walks `ix_leads_queue`, where most
        # open leads are.
        _in_queue_order(
            "ix_leads_handler_queue", "handler_id", **_only_where("handler_id IS NOT NULL")
        ),
        # Matching by phone: only reports carry one, so feed leads add no entry.
        Index("ix_leads_phone_hash", "phone_hash", **_only_where("phone_hash IS NOT NULL")),
        # A new signal about someone whose leads are all closed links the newest of them: found
        # through closed leads only, in any number of years (queries say `NOT is_open` exactly,
        # the form SQLite needs to use a partial index).
        Index("ix_leads_closed_person", "person_hash", "id", **_only_where("NOT is_open")),
    )

    id: Mapped[intpk]
    #: HMAC of the normalised ID number; null for reports without one (matched by name/phone).
    person_hash: Mapped[str | None] = mapped_column(key_string(64))
    #: Encrypted ID number and phone (see services/kernel/crypto.py); masked in every list.
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_hash: Mapped[str | None] = mapped_column(key_string(64))
    name: Mapped[str] = mapped_column(String(50), index=True)
    #: Toneless, dialect-folded pinyin of the name (services/leads/matching.py `name_key`), for
    #: finding reports that heard a name but did not see it written.
    name_key: Mapped[str | None] = mapped_column(key_string(120), index=True)
    #: The name with look-alike characters folded (services/leads/matching.py `shape_key`).
    name_shape: Mapped[str | None] = mapped_column(String(50), index=True)
    status: Mapped[LeadStatus] = mapped_column(enum_column(LeadStatus, 20))
    #: True while status is one of OPEN_STATUSES (kept in step by services; indexed).
    is_open: Mapped[bool] = mapped_column(default=True)
    #: The channel of the first signal.
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, 20))
    #: Categories of people sought (dibao, tekun, disabled, orphan, left_behind, illness,
    #: disaster, accident, ...), codes defined in services/leads/core.py.
    categories: Mapped[list[Any]] = mapped_column(default=list)
    #: Higher is more urgent; `priority_reasons` explains it in plain Chinese.
    priority: Mapped[int] = mapped_column(default=0)
    priority_reasons: Mapped[list[Any]] = mapped_column(default=list)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    address: Mapped[str | None] = mapped_column(String(200))
    #: The closed lead this one continues, when a signal arrived after closure.
    previous_lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    triaged_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    #: The staff member (center, or the lead's town) who handles the lead; null: unassigned.
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: When the current handler was given the lead.
    assigned_at: Mapped[datetime | None]
    #: Triage: dismissed (with a reason; `other` needs the text), or already covered.
    dismissed_at: Mapped[datetime | None]
    dismissal_reason: Mapped[DismissalReason | None] = mapped_column(enum_column(DismissalReason))
    dismissal_note: Mapped[str | None] = mapped_column(String(500))
    covered_at: Mapped[datetime | None]
    #: The last time a dismissed or covered lead was reopened (within 30 days).
    reopened_at: Mapped[datetime | None]
    #: Optimistic concurrency: a stale update raises StaleDataError → 409.
    version: Mapped[int] = mapped_column(default=1)

    evidence: Mapped[list[LeadEvidence]] = relationship(
        back_populates="lead", order_by="LeadEvidence.id", foreign_keys="LeadEvidence.lead_id"
    )

    __mapper_args__ = {"version_id_col": version}


class LeadEvidence(Base):
    """One signal about a person: an application, a visit, a feed row, a hotline report."""

    __tablename__ = "lead_evidence"
    __table_args__ = (
        # Also the index of lead_id alone (its first column).
        UniqueConstraint("lead_id", "dedup_key"),
        # "Has this lead evidence from this feed / department?" (the queue's feed filter and
        # department staff's scope, tested on each lead the queue walks) is answered from the
        # index alone; each also serves lookups by its first column.
        Index("ix_lead_evidence_feed_lead", "feed_code", "lead_id"),
        Index("ix_lead_evidence_department_lead", "department_id", "lead_id"),
    )

    id: Mapped[intpk]
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, 20))
    #: Feed code and batch for department files; row number in that file.
    feed_code: Mapped[str | None] = mapped_column(String(40))
    batch_id: Mapped[int | None] = mapped_column(index=True)
    row_number: Mapped[int | None]
    #: The record this evidence came from, e.g. ("application", 12) or ("visit", 7).
    source_type: Mapped[str | None] = mapped_column(String(30))
    source_id: Mapped[int | None]
    #: One line a staff member reads in the timeline, e.g. "医保: 单次自付 ¥32,400".
    summary: Mapped[str] = mapped_column(String(200))
    #: The fields that mattered (amounts, dates, disability grade...). No clear-text IDs.
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_date: Mapped[date | None]
    #: Identical signals (the same feed row sent twice) share a key and are stored once.
    dedup_key: Mapped[str] = mapped_column(key_string(120))
    #: What this signal is worth on its own (services/leads/signal_rule.py): its priority reason and
    #: points. Whether they counted depends on the lead (a reason counts once); a merge replays
    #: them on the lead it folds into. Null on evidence recorded before migration 0021.
    priority_reason: Mapped[str | None] = mapped_column(String(200))
    priority_points: Mapped[int | None]
    #: The department whose file or report this is; department staff see leads it supports.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    #: Who reported it (hotline caller, volunteer, social organisation...); phone encrypted.
    reporter_name: Mapped[str | None] = mapped_column(String(50))
    reporter_org: Mapped[str | None] = mapped_column(String(100))
    reporter_phone_enc: Mapped[str | None] = mapped_column(Text)
    #: The staff member who registered a report by hand.
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]

    lead: Mapped[Lead] = relationship(back_populates="evidence", foreign_keys=[lead_id])


class LeadEvent(Base):
    """One step of a lead's own life (triage, assignment) or an internal note, in its timeline.

    Notes are for staff only: they never reach a resident or a helper."""

    __tablename__ = "lead_events"
    __table_args__ = (Index("ix_lead_events_lead", "lead_id", "id"),)

    id: Mapped[intpk]
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    kind: Mapped[LeadEventKind] = mapped_column(enum_column(LeadEventKind, 20))
    #: Who did it (null: the system).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime]
    #: Assignment: the handler before and after.
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    previous_handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Dismissal: the reason.
    reason: Mapped[DismissalReason | None] = mapped_column(enum_column(DismissalReason))
    #: The note, or the text that came with a dismissal, a cover or a reopening.
    text: Mapped[str | None] = mapped_column(Text)


class LeadMerge(Base):
    """One lead folded into another by staff, with what it changed, so it can be undone."""

    __tablename__ = "lead_merges"

    id: Mapped[intpk]
    #: The lead that was folded in (status MERGED while the merge stands).
    source_lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    #: The lead that received the evidence.
    target_lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    #: The source lead's status before the merge, restored on undo.
    source_status: Mapped[LeadStatus] = mapped_column(enum_column(LeadStatus, 20))
    #: Evidence rows moved from source to target (moved back on undo).
    evidence_ids: Mapped[list[Any]] = mapped_column(default=list)
    #: What the merge added to the target: {"categories": [...], "priority_reasons": [...],
    #: "priority": n, "filled": {"phone_hash": ..., ...}}; undo takes exactly this away.
    added: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Candidate score and reasons staff saw when merging (for the record).
    score: Mapped[int | None]
    merged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    merged_at: Mapped[datetime]
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    undone_at: Mapped[datetime | None]


class LeadPairDismissal(Base):
    """Staff judged two leads to be different people: never offer them as candidates again."""

    __tablename__ = "lead_pair_dismissals"
    __table_args__ = (UniqueConstraint("lead_low_id", "lead_high_id"),)

    id: Mapped[intpk]
    #: The pair, lower id first, so (a, b) and (b, a) are one row.
    lead_low_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    lead_high_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    dismissed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    dismissed_at: Mapped[datetime]
