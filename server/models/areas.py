"""Boshan's divisions (towns, streets, the development zone), villages, and departments."""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, enum_column, intpk


class TownKind(enum.StrEnum):
    STREET = "street"
    TOWN = "town"
    ZONE = "zone"


class Town(Base):
    """A first-level division (镇/街道/开发区) with its "一门受理、协同办理" platform."""

    __tablename__ = "towns"

    id: Mapped[intpk]
    #: Stable code used in URLs, files and QR codes (e.g. `chengdong`).
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    kind: Mapped[TownKind] = mapped_column(enum_column(TownKind, 10))
    #: The town platform's public phone number, shown in the mini-program.
    phone: Mapped[str | None] = mapped_column(String(30))
    sort_order: Mapped[int] = mapped_column(default=0)

    villages: Mapped[list[Village]] = relationship(back_populates="town", order_by="Village.code")


class Village(Base):
    """A village (村) or community (社区) under a town; loaded by staff."""

    __tablename__ = "villages"
    __table_args__ = (UniqueConstraint("town_id", "name"),)

    id: Mapped[intpk]
    #: Stable code, unique district-wide (e.g. the statistical code `370304001001`).
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)

    town: Mapped[Town] = relationship(back_populates="villages")


class Department(Base):
    """A district department that sends data feeds or receives transfer slips."""

    __tablename__ = "departments"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    sort_order: Mapped[int] = mapped_column(default=0)
