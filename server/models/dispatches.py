"""Transfer slips (线索转办单), their deadlines and supervision, and revisits (回访测评).

A slip sends one lead to one receiving unit — a district department or a town — with a due date
5 working days out. The unit signs for it, returns it, or answers it with an outcome. Late slips
are reminded, marked, escalated and counted in supervision notices (通报) per unit and month.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, enum_column, intpk


class UnitKind(enum.StrEnum):
    """What kind of unit receives a slip."""

    DEPARTMENT = "department"
    TOWN = "town"


class DispatchState(enum.StrEnum):
    ISSUED = "issued"  # 已转办: sent, waiting for the unit to sign
    SIGNED = "signed"  # 已签收: the unit is investigating
    RETURNED = "returned"  # 已退回: the unit sent it back to the center with a reason
    ANSWERED = "answered"  # 已反馈: the unit reported what it found and the outcome


#: States in which a slip still waits for its unit (deadlines apply).
OPEN_DISPATCH_STATES = frozenset({DispatchState.ISSUED, DispatchState.SIGNED})


class DispatchCounter(Base):
    """The last slip number used in a year; incremented under a row lock (see services)."""

    __tablename__ = "dispatch_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)


class Dispatch(Base):
    """One transfer slip from the center (or a town platform) to one receiving unit."""

    __tablename__ = "dispatches"
    __table_args__ = (
        UniqueConstraint("year", "serial"),
        Index("ix_dispatches_open_due", "state", "due_date"),
        Index("ix_dispatches_unit", "unit_kind", "department_id", "town_id", "state"),
    )

    id: Mapped[intpk]
    #: Readable number printed on the slip and in its QR code, e.g. `BSJZ-2026-000123`.
    number: Mapped[str] = mapped_column(String(20), unique=True)
    #: Year of issue and the serial within that year (from DispatchCounter).
    year: Mapped[int]
    serial: Mapped[int]
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    #: The receiving unit: a department (department_id) or a town (town_id).
    unit_kind: Mapped[UnitKind] = mapped_column(enum_column(UnitKind, 12))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"), index=True)
    #: The lead's town when the slip was issued (the town platform that issued it sees it too).
    lead_town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"), index=True)
    #: What the center asks the unit to do.
    instructions: Mapped[str] = mapped_column(Text)
    state: Mapped[DispatchState] = mapped_column(enum_column(DispatchState, 12), index=True)
    #: Last day to answer (end of the 5th working day after the day of issue).
    due_date: Mapped[date] = mapped_column(index=True)
    #: False when the due date was computed over a year the calendar does not know (weekends only).
    due_certain: Mapped[bool] = mapped_column(default=True)
    issued_at: Mapped[datetime] = mapped_column(index=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime | None]
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    returned_at: Mapped[datetime | None]
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Why the unit sent the slip back (not its business, wrong person, ...).
    return_reason: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(index=True)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Whether the answer came by the end of the due date; null until answered.
    answered_on_time: Mapped[bool | None]
    #: What the investigation found (free text from the unit).
    findings: Mapped[str | None] = mapped_column(Text)
    #: Outcome code from services/kernel/outcomes.py OUTCOMES, its reason and the amount in yuan.
    outcome: Mapped[str | None] = mapped_column(String(30), index=True)
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    #: Photo ids (server/models/photos.py) attached to the feedback.
    photo_ids: Mapped[list[Any]] = mapped_column(default=list)
    #: Supervision: when check-deadlines first found the slip overdue, and by how many
    #: working days at its last run; escalation level 0 none, 1 unit head, 2 leading group.
    overdue_at: Mapped[datetime | None]
    overdue_days: Mapped[int] = mapped_column(default=0)
    escalation_level: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]
    #: Optimistic concurrency: a stale update raises StaleDataError → 409.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class AlertKind(enum.StrEnum):
    REMINDER = "reminder"  # one working day before the due date
    OVERDUE = "overdue"  # the due date has passed
    ESCALATE_HEAD = "escalate_head"  # still overdue: to the unit's head
    ESCALATE_GROUP = "escalate_group"  # still overdue: to the leading group (领导小组)


class DispatchAlert(Base):
    """One reminder or escalation sent about a slip; at most one of each kind per slip, so
    check-deadlines can run any number of times."""

    __tablename__ = "dispatch_alerts"
    __table_args__ = (UniqueConstraint("dispatch_id", "kind"),)

    id: Mapped[intpk]
    dispatch_id: Mapped[int] = mapped_column(ForeignKey("dispatches.id"), index=True)
    kind: Mapped[AlertKind] = mapped_column(enum_column(AlertKind, 20))
    #: Who is told: the unit's staff, the unit's head, or the leading group (plain Chinese).
    recipient: Mapped[str] = mapped_column(String(100))
    #: The message as sent (Chinese).
    message: Mapped[str] = mapped_column(Text)
    #: Working days overdue when the alert was made (0 for reminders).
    overdue_days: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]


class SupervisionNotice(Base):
    """A supervision notice (通报) of one receiving unit for one month: its overdue slips."""

    __tablename__ = "supervision_notices"
    __table_args__ = (UniqueConstraint("unit_key", "month"),)

    id: Mapped[intpk]
    #: "department:<id>" or "town:<id>", so one unique constraint covers both kinds of unit.
    unit_key: Mapped[str] = mapped_column(String(40))
    unit_kind: Mapped[UnitKind] = mapped_column(enum_column(UnitKind, 12))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"), index=True)
    #: The month the slips were found overdue in, "YYYY-MM" (Asia/Shanghai).
    month: Mapped[str] = mapped_column(String(7), index=True)
    #: Ids of the slips found overdue this month (each once) and the worst delay seen.
    dispatch_ids: Mapped[list[Any]] = mapped_column(default=list)
    overdue_count: Mapped[int] = mapped_column(default=0)
    max_overdue_days: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RevisitSource(enum.StrEnum):
    CENTER = "center"  # center staff phoned or visited the resident
    RESIDENT = "resident"  # the resident rated in the mini-program


class Revisit(Base):
    """A revisit (回访测评): the resident was told the result and said how satisfied they are."""

    __tablename__ = "revisits"

    id: Mapped[intpk]
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    #: The application rated, when the resident rated from the mini-program (one rating each).
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("applications.id"), unique=True, index=True
    )
    source: Mapped[RevisitSource] = mapped_column(enum_column(RevisitSource, 10))
    #: The resident was told what became of their case.
    informed: Mapped[bool] = mapped_column(default=True)
    #: 1 (very dissatisfied) … 5 (very satisfied).
    satisfaction: Mapped[int]
    comment: Mapped[str | None] = mapped_column(String(500))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)
