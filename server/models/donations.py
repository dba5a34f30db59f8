"""Donations (捐赠) of money or goods, their receipts and their allocations."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, enum_column, intpk


class DonorKind(enum.StrEnum):
    PERSON = "person"  # 个人
    ORGANISATION = "organisation"  # 社会组织、团体
    ENTERPRISE = "enterprise"  # 企事业单位


class DonationKind(enum.StrEnum):
    MONEY = "money"  # 资金 (yuan)
    GOODS = "goods"  # 物资 (items × quantity)


class Donation(Base):
    """Money or goods given (捐赠), receipted with a number, allocated until nothing is left.

    `total` is yuan for money and the quantity for goods; `remaining` falls with each
    allocation, by one conditional UPDATE (`remaining >= n`), so two allocations racing beyond
    what is left cannot both succeed.
    """

    __tablename__ = "donations"

    id: Mapped[intpk]
    #: The receipt number (捐赠收据编号), e.g. `JZ2026000012`.
    number: Mapped[str] = mapped_column(String(20), unique=True)
    donor_name: Mapped[str] = mapped_column(String(100))
    donor_kind: Mapped[DonorKind] = mapped_column(enum_column(DonorKind, 20))
    #: The registered organisation that gave it, when it is one.
    donor_org_id: Mapped[int | None] = mapped_column(ForeignKey("social_orgs.id"), index=True)
    donor_phone_enc: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[DonationKind] = mapped_column(enum_column(DonationKind, 10))
    #: Goods only: what (棉被, 大米...) and the unit (床, 袋...).
    items: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(10))
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    remaining: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    received_on: Mapped[date] = mapped_column(index=True)
    #: The donor's restriction (定向用途, e.g. 助学), or None for general use.
    purpose: Mapped[str | None] = mapped_column(String(100), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class DonationAllocation(Base):
    """Part of a donation given to a household, or put into a fund."""

    __tablename__ = "donation_allocations"

    id: Mapped[intpk]
    donation_id: Mapped[int] = mapped_column(ForeignKey("donations.id"), index=True)
    #: The household it went to, or the fund (e.g. 临时救助备用金) — exactly one of them.
    family_id: Mapped[int | None] = mapped_column(ForeignKey("families.id"), index=True)
    fund: Mapped[str | None] = mapped_column(String(100))
    #: Yuan (money) or the quantity (goods), in the donation's terms.
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    allocated_on: Mapped[date] = mapped_column(index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    allocated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class DonationCounter(Base):
    """The last receipt number used in a year; incremented in one UPDATE (see services)."""

    __tablename__ = "donation_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)
