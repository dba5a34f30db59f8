"""Services social organisations give households (服务), and the assignments that ask for them."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, enum_column, intpk


class ServiceKind(enum.StrEnum):
    """The services the policy asks society to give (救助服务)."""

    HOUSEHOLD_SURVEY = "household_survey"  # 家境调查
    HUMANISTIC_CARE = "humanistic_care"  # 人文关怀
    COUNSELLING = "counselling"  # 心理疏导
    RESOURCE_LINKING = "resource_linking"  # 资源链接
    CAPACITY_BUILDING = "capacity_building"  # 能力提升
    SOCIAL_INTEGRATION = "social_integration"  # 社会融入


class ServiceAssignment(Base):
    """A service the center or a town asks an organisation to give a household, from a lead."""

    __tablename__ = "service_assignments"

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(ForeignKey("social_orgs.id"), index=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    kind: Mapped[ServiceKind] = mapped_column(enum_column(ServiceKind, 30))
    #: What the household needs, for the organisation (no ID numbers).
    instructions: Mapped[str] = mapped_column(String(500))
    due_on: Mapped[date]
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime]
    #: When a service was recorded against it (the assignment is then done).
    done_at: Mapped[datetime | None]


class ServiceRecord(Base):
    """A service an organisation gave a household (服务记录)."""

    __tablename__ = "service_records"

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(ForeignKey("social_orgs.id"), index=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("service_assignments.id"))
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    kind: Mapped[ServiceKind] = mapped_column(enum_column(ServiceKind, 30), index=True)
    served_on: Mapped[date] = mapped_column(index=True)
    duration_minutes: Mapped[int]
    notes: Mapped[str] = mapped_column(String(1000))
    photo_ids: Mapped[list[Any]] = mapped_column(default=list)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class ServicePhoto(Base):
    """A photo a service record carries, so staff of the household's area may open it."""

    __tablename__ = "service_photos"

    record_id: Mapped[int] = mapped_column(
        ForeignKey("service_records.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), primary_key=True, index=True)
