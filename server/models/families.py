"""Households (户) as people belong to them, and the aid granted to them (救助台账).

In the API and in Chinese a `Family` is the household (户): its members with their relation to
the head, its address, town and village. It is a different thing from the visit ledger's
`Household` row (models/visits.py, one per head of household and village, carrying the latest
visit's assessment); a family links to the ledger rows of its members by their ID numbers.

A person (by ID number) is a current member of at most one family: `uq_family_members_current`
is a partial unique index over members who have not left. Moving a person closes their
membership (`left_at`, `moved_to_family_id`) and opens a new one, so the history stays.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.areas import Town, Village
from server.models.base import Base, enum_column, intpk, key_string

_CURRENT_SQL = "left_at IS NULL AND id_hash IS NOT NULL"


class FamilySource(enum.StrEnum):
    """Where a family or a membership first came from."""

    APPLICATION = "application"  # an application's household members
    VISIT = "visit"  # a visit's head of household and members
    ROSTER = "roster"  # the civil-affairs roster (低保/特困 recipients)
    STAFF = "staff"  # entered or corrected by town staff or a helper
    LEAD = "lead"  # a lead's person, aided by a transfer slip's outcome


class Family(Base):
    """A household (户): who lives together, where, under which head."""

    __tablename__ = "families"

    id: Mapped[intpk]
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    #: The village (村/社区); null only for a roster entry that named no village.
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[FamilySource] = mapped_column(enum_column(FamilySource, 20))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Optimistic concurrency: a stale edit raises StaleDataError → 409.
    version: Mapped[int] = mapped_column(default=1)

    members: Mapped[list[FamilyMember]] = relationship(
        back_populates="family", order_by="FamilyMember.id", foreign_keys="FamilyMember.family_id"
    )
    town: Mapped[Town] = relationship()
    village: Mapped[Village | None] = relationship()

    __mapper_args__ = {"version_id_col": version}


class FamilyMember(Base):
    """One person's membership of a family, from when they joined until they left."""

    __tablename__ = "family_members"
    __table_args__ = (
        # A person is a current member of at most one family.
        Index(
            "uq_family_members_current",
            "id_hash",
            unique=True,
            postgresql_where=text(_CURRENT_SQL),
            sqlite_where=text(_CURRENT_SQL),
        ),
    )

    id: Mapped[intpk]
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    #: Sealed ID number and its keyed hash; null when only the name is known.
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    id_hash: Mapped[str | None] = mapped_column(key_string(64))
    #: Relation to the head in plain Chinese (户主, 配偶, 子女, 孙女...).
    relation: Mapped[str] = mapped_column(String(20))
    is_head: Mapped[bool] = mapped_column(default=False)
    source: Mapped[FamilySource] = mapped_column(enum_column(FamilySource, 20))
    joined_at: Mapped[datetime]
    #: When the membership ended (moved away, removed); null while current.
    left_at: Mapped[datetime | None]
    #: The family the person moved to, when the membership ended by a move.
    moved_to_family_id: Mapped[int | None] = mapped_column(ForeignKey("families.id"))
    left_reason: Mapped[str | None] = mapped_column(String(200))

    family: Mapped[Family] = relationship(back_populates="members", foreign_keys=[family_id])


class AidPeriod(enum.StrEnum):
    MONTHLY = "monthly"  # 按月发放 (低保, 特困供养)
    ONE_OFF = "one_off"  # 一次性 (临时救助, 医疗救助, ...)


class AidGrant(Base):
    """Aid a decision granted (救助台账): kind, amount, from when, when it is reviewed."""

    __tablename__ = "aid_grants"
    __table_args__ = (
        # Granted by exactly one decision: an application's, or a slip's one outcome.
        CheckConstraint("(application_id IS NULL) <> (dispatch_id IS NULL)", name="one_decision"),
    )

    id: Mapped[intpk]
    #: The application whose decision granted it (one grant per decision)...
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), unique=True)
    #: ...or the transfer slip whose one outcome did, on a lead without applications (a
    #: department file's, a report's).
    dispatch_id: Mapped[int | None] = mapped_column(ForeignKey("dispatches.id"), unique=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    #: The person aided (the applicant): name and keyed hash of the ID number.
    name: Mapped[str] = mapped_column(String(50))
    id_hash: Mapped[str] = mapped_column(key_string(64), index=True)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    #: The outcome code that grants it (services/kernel/outcomes.py GRANTS_AID), e.g. `dibao`.
    kind: Mapped[str] = mapped_column(String(40), index=True)
    period: Mapped[AidPeriod] = mapped_column(enum_column(AidPeriod, 10))
    #: Yuan a month (monthly) or once (one-off); null when the decision named no amount.
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    start_on: Mapped[date]
    #: When the grant is to be reviewed (复核); past it the family is on the town's worklist.
    review_on: Mapped[date | None] = mapped_column(index=True)
    #: The last review, and what it said.
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(String(500))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime]
