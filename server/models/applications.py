"""Applications filed in the mini-program (掌上办) or by a helper on someone's behalf (帮办代办)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, enum_column, intpk, key_string
from server.models.leads import Channel


class ApplicationType(enum.StrEnum):
    DIBAO = "dibao"  # 最低生活保障
    TEKUN = "tekun"  # 特困人员供养
    TEMPORARY = "temporary"  # 临时救助
    MEDICAL = "medical"  # 医疗救助


class ApplicationStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    INVESTIGATING = "investigating"
    DECIDED = "decided"
    WITHDRAWN = "withdrawn"


#: States in which nothing has been decided yet (the applicant may still withdraw).
UNDECIDED = frozenset(
    {ApplicationStatus.SUBMITTED, ApplicationStatus.ACCEPTED, ApplicationStatus.INVESTIGATING}
)


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (Index("ix_applications_filer_created", "filed_by_id", "created_at"),)

    id: Mapped[intpk]
    #: Who filed it: the resident themself, or the helper filing on their behalf.
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    type: Mapped[ApplicationType] = mapped_column(enum_column(ApplicationType, 20))
    status: Mapped[ApplicationStatus] = mapped_column(enum_column(ApplicationStatus, 20))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel, 20))
    #: The applicant (the person in hardship). ID and phone are sealed; the hash is for joins.
    name: Mapped[str] = mapped_column(String(50))
    id_number_enc: Mapped[str] = mapped_column(Text)
    id_hash: Mapped[str] = mapped_column(key_string(64), index=True)
    phone_enc: Mapped[str] = mapped_column(Text)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    address: Mapped[str] = mapped_column(String(200))
    #: Household members: [{name, relation, id_number_enc?}] (ID numbers sealed).
    household: Mapped[list[Any]]
    #: Household monthly income in yuan.
    monthly_income: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    reason: Mapped[str] = mapped_column(Text)
    #: Ids of the filer's photos of documents, in the order given.
    photo_ids: Mapped[list[Any]]
    #: Type-specific facts: medical (hospital, dates, costs) or temporary (what, when).
    details: Mapped[dict[str, Any]]
    #: For filings on behalf: relationship, consent method, consent photo or witness.
    on_behalf: Mapped[dict[str, Any] | None]
    #: The lead this application feeds.
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    #: One timestamp per state.
    submitted_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    investigating_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    #: The decision, once decided (e.g. included in 低保, or not eligible) and its reason.
    outcome: Mapped[str | None] = mapped_column(String(40))
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    events: Mapped[list[ApplicationEvent]] = relationship(
        order_by="ApplicationEvent.id", back_populates="application"
    )


class ApplicationEvent(Base):
    """One step of an application's timeline, in words a resident understands."""

    __tablename__ = "application_events"

    id: Mapped[intpk]
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    status: Mapped[ApplicationStatus] = mapped_column(enum_column(ApplicationStatus, 20))
    #: Plain Chinese, e.g. "已提交申请，等待受理".
    title: Mapped[str] = mapped_column(String(200))
    actor_id: Mapped[int | None]

    application: Mapped[Application] = relationship(back_populates="events")


class ApplicationPhoto(Base):
    """Which photos an application carries, so photo access can follow the application's area."""

    __tablename__ = "application_photos"

    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), primary_key=True, index=True)


class IdempotencyRecord(Base):
    """The first answer to a request made with an `Idempotency-Key`, replayed for repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    #: SHA-256 of the canonical request body; a different body under the same key is refused.
    request_hash: Mapped[str] = mapped_column(key_string(64))
    response_status: Mapped[int]
    #: What identifies the first answer (e.g. {"application_id": 12}).
    response_body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
