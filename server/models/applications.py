"""Applications filed in the mini-program (掌上办) or by a helper on someone's behalf (帮办代办)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
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
#: The same condition in SQL, for the partial unique index of one open application per kind.
_UNDECIDED_SQL = "status IN ('submitted', 'accepted', 'investigating')"


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_filer_created", "filed_by_id", "created_at"),
        # One undecided application per person and kind: a second one is refused (services say
        # which is open); the index makes two filings at the same moment refuse one too.
        Index(
            "uq_applications_open_kind",
            "id_hash",
            "type",
            unique=True,
            postgresql_where=text(_UNDECIDED_SQL),
            sqlite_where=text(_UNDECIDED_SQL),
        ),
    )

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
    #: For filings at the window or on the phone (窗口办/电话办): the staff member who took it
    #: and how the person consented (signed form photo, verbal with witness, recorded call).
    intake: Mapped[dict[str, Any] | None]
    #: The lead this application feeds.
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    #: One timestamp per state.
    submitted_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    investigating_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    #: The decision, once decided: an outcome code of services/kernel/outcomes.py (e.g. included in
    #: 低保, or not eligible), its reason and the amount in yuan where the outcome carries one.
    outcome: Mapped[str | None] = mapped_column(String(40))
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    #: Who decided, and the transfer slip whose feedback carried the decision (null: decided
    #: directly by the town or the center).
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_dispatch_id: Mapped[int | None] = mapped_column(
        ForeignKey("dispatches.id"), index=True
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Optimistic concurrency: a stale update raises StaleDataError → 409.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

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
    #: What kind of entry: a step (the status changed), "papers_requested" (staff asked for
    #: more documents) or "papers_added" (the filer added photos).
    kind: Mapped[str] = mapped_column(String(20), default="step")
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
