"""Field work (摸排巡查): household visits and calls, the ledger of households, public information.

A helper's visit or phone call records a household's situation; the household's ledger row
(分类台帐) carries its latest assessment. Policies and contacts are what the mini-program shows
to anyone, maintained by the center.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.areas import Town, Village
from server.models.base import Base, enum_column, intpk, key_string


class VisitKind(enum.StrEnum):
    VISIT = "visit"  # 入户走访
    PHONE = "phone"  # 电话询问


class Health(enum.StrEnum):
    HEALTHY = "healthy"  # 健康
    FRAIL = "frail"  # 年老体弱
    CHRONIC = "chronic"  # 慢性病
    SERIOUS = "serious"  # 重病、大病
    DISABLED = "disabled"  # 残疾


class LabourCapacity(enum.StrEnum):
    FULL = "full"  # 有劳动能力
    PARTIAL = "partial"  # 部分丧失劳动能力
    NONE = "none"  # 无劳动能力


class Hardship(enum.StrEnum):
    """Degree of hardship (困难程度). Severe and urgent reach the town's lead queue at once."""

    NONE = "none"  # 无明显困难
    GENERAL = "general"  # 一般困难
    SEVERE = "severe"  # 严重困难
    URGENT = "urgent"  # 急难


class Cause(enum.StrEnum):
    """Cause of hardship (致困原因)."""

    ILLNESS = "illness"  # 因病
    DISABILITY = "disability"  # 因残
    ACCIDENT = "accident"  # 因意外
    DISASTER = "disaster"  # 因灾
    UNEMPLOYMENT = "unemployment"  # 失业
    SCHOOLING = "schooling"  # 因学
    ELDERLY_ALONE = "elderly_alone"  # 独居老人
    OTHER = "other"  # 其他


class Household(Base):
    """A household's ledger row (台帐), one per head of household and village.

    The assessment columns copy the household's latest visit (by visit date, then id), so the
    ledger reads one row per household without looking at its history.
    """

    __tablename__ = "households"
    __table_args__ = (UniqueConstraint("village_id", "head_id_hash"),)

    id: Mapped[intpk]
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    #: Head of household (户主): name, sealed ID number and its keyed hash (the person's key).
    head_name: Mapped[str] = mapped_column(String(50))
    head_id_enc: Mapped[str] = mapped_column(Text)
    head_id_hash: Mapped[str] = mapped_column(key_string(64), index=True)
    #: Sealed phone number, or None.
    phone_enc: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(200))
    #: Members as last recorded: [{"name", "relation", "id_number_enc"}]; IDs sealed.
    members: Mapped[list[Any]] = mapped_column(default=list)
    #: Latest assessment, copied from `last_visit`.
    health: Mapped[Health] = mapped_column(enum_column(Health, 20))
    labour_capacity: Mapped[LabourCapacity] = mapped_column(enum_column(LabourCapacity, 20))
    hardship: Mapped[Hardship] = mapped_column(enum_column(Hardship, 20), index=True)
    causes: Mapped[list[Any]] = mapped_column(default=list)
    needs: Mapped[str | None] = mapped_column(String(500))
    #: The visit the assessment comes from (no foreign key: visits already point here).
    last_visit_id: Mapped[int | None]
    last_visited_on: Mapped[date]
    #: When the household is due for its next visit; before today means overdue.
    next_visit_on: Mapped[date] = mapped_column(index=True)
    #: The person's lead, once a severe or urgent hardship was reported.
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    categories: Mapped[list[HouseholdCategory]] = relationship(
        cascade="all, delete-orphan", order_by="HouseholdCategory.category"
    )
    town: Mapped[Town] = relationship()
    village: Mapped[Village] = relationship()


class HouseholdCategory(Base):
    """One category of people sought (services/leads/core.CATEGORIES) a household belongs to."""

    __tablename__ = "household_categories"

    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(30), primary_key=True, index=True)


class Visit(Base):
    """One visit or phone call to a household, as the helper recorded it."""

    __tablename__ = "visits"

    id: Mapped[intpk]
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    #: Who recorded it (a helper, or a town cadre); who last edited it.
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    edited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    kind: Mapped[VisitKind] = mapped_column(enum_column(VisitKind, 10))
    head_name: Mapped[str] = mapped_column(String(50))
    head_id_enc: Mapped[str] = mapped_column(Text)
    head_id_hash: Mapped[str] = mapped_column(key_string(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(200))
    #: [{"name", "relation", "id_number_enc"}]; member IDs are optional and sealed.
    members: Mapped[list[Any]] = mapped_column(default=list)
    health: Mapped[Health] = mapped_column(enum_column(Health, 20))
    labour_capacity: Mapped[LabourCapacity] = mapped_column(enum_column(LabourCapacity, 20))
    hardship: Mapped[Hardship] = mapped_column(enum_column(Hardship, 20))
    #: Cause codes (Cause values).
    causes: Mapped[list[Any]] = mapped_column(default=list)
    #: Categories of people sought (services/leads/core.CATEGORIES codes).
    categories: Mapped[list[Any]] = mapped_column(default=list)
    #: What the household asks for or needs, in the helper's words.
    needs: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(String(500))
    #: Photos the recorder uploaded (ids in `photos`).
    photo_ids: Mapped[list[Any]] = mapped_column(default=list)
    visited_on: Mapped[date] = mapped_column(index=True)
    next_visit_on: Mapped[date]
    #: The lead this visit reported to (severe or urgent hardship only).
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    reported_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Optimistic concurrency: a stale edit raises StaleDataError → 409.
    version: Mapped[int] = mapped_column(default=1)

    household: Mapped[Household] = relationship(foreign_keys=[household_id])
    village: Mapped[Village] = relationship()

    __mapper_args__ = {"version_id_col": version}


class VisitPhoto(Base):
    """A photo a visit carries, so photo access can follow the visit's village and town."""

    __tablename__ = "visit_photos"

    visit_id: Mapped[int] = mapped_column(
        ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), primary_key=True, index=True)


class PolicyInfo(Base):
    """One kind of aid as the public reads it: who qualifies, what to photograph, how long."""

    __tablename__ = "public_policies"

    id: Mapped[intpk]
    #: Stable code, e.g. `dibao`, `tekun`, `temporary`, `medical`.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(50))
    summary: Mapped[str] = mapped_column(String(500))
    #: Plain-Chinese lines: who qualifies; which documents to photograph.
    eligibility: Mapped[list[Any]] = mapped_column(default=list)
    documents: Mapped[list[Any]] = mapped_column(default=list)
    #: How long handling takes, in plain Chinese.
    duration: Mapped[str] = mapped_column(String(200))
    how_to_apply: Mapped[str] = mapped_column(String(500))
    sort_order: Mapped[int] = mapped_column(default=0)
    #: The last edit by center staff; None while the seeded default stands.
    updated_at: Mapped[datetime | None]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ContactKind(enum.StrEnum):
    DISTRICT_HOTLINE = "district_hotline"  # 全区社会救助联系电话
    TOWN_PLATFORM = "town_platform"  # 镇街“一门受理、协同办理”平台
    OTHER = "other"  # other lines (12349, the center's office, ...)


class PublicContact(Base):
    """A phone number the public may call; each town's platform has exactly one."""

    __tablename__ = "public_contacts"

    id: Mapped[intpk]
    kind: Mapped[ContactKind] = mapped_column(enum_column(ContactKind, 20), index=True)
    #: The town of a town platform contact; unique, so each town has one.
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(30))
    #: Office hours or other notes, in plain Chinese.
    note: Mapped[str | None] = mapped_column(String(200))
    #: Where a service point is (street address, and GCJ-02 coordinates for wx.openLocation).
    address: Mapped[str | None] = mapped_column(String(200))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    #: True while the number is a placeholder from the demo seed, not a confirmed number.
    is_demo: Mapped[bool] = mapped_column(default=False)
    sort_order: Mapped[int] = mapped_column(default=0)
    #: The last edit by center staff; None while the seeded default stands.
    updated_at: Mapped[datetime | None]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    town: Mapped[Town | None] = relationship()
