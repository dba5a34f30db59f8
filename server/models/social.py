"""The social forces (社会力量): volunteer teams, social organisations and enterprises, their
members (role `volunteer`) and the leads they report. Donations are in models/donations.py,
the services they give in models/social_services.py.

An organisation is registered by the center with the towns it serves; its members join by a
one-time invitation code (as village helpers do) and log in through the mini-program.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, enum_column, intpk, key_string


class OrgKind(enum.StrEnum):
    VOLUNTEER_TEAM = "volunteer_team"  # 志愿服务队
    SOCIAL_ORG = "social_org"  # 社会组织
    ENTERPRISE = "enterprise"  # 企事业单位


class SocialOrg(Base):
    """A registered volunteer team, social organisation or enterprise."""

    __tablename__ = "social_orgs"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[OrgKind] = mapped_column(enum_column(OrgKind, 20))
    #: Who to call about the organisation, and their phone (sealed; masked in lists).
    contact_name: Mapped[str] = mapped_column(String(50))
    contact_phone_enc: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    towns: Mapped[list[SocialOrgTown]] = relationship(
        cascade="all, delete-orphan", order_by="SocialOrgTown.town_id"
    )


class SocialOrgTown(Base):
    """A town an organisation serves (its members report leads only there)."""

    __tablename__ = "social_org_towns"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("social_orgs.id", ondelete="CASCADE"), primary_key=True
    )
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), primary_key=True, index=True)


class SocialOrgInvitation(Base):
    """A one-time code that makes a WeChat user a member of an organisation."""

    __tablename__ = "social_org_invitations"

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(ForeignKey("social_orgs.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: SHA-256 of the normalised code; the code itself is shown once and never stored.
    code_hash: Mapped[str] = mapped_column(key_string(64), unique=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    redeemed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    redeemed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class SocialMember(Base):
    """A WeChat user's membership of an organisation (role `volunteer` while it lasts)."""

    __tablename__ = "social_members"

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(ForeignKey("social_orgs.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("social_org_invitations.id"))
    joined_at: Mapped[datetime]
    #: When staff ended the membership (the user is a resident again).
    revoked_at: Mapped[datetime | None]

    org: Mapped[SocialOrg] = relationship()


class VolunteerReport(Base):
    """A lead a volunteer reported, as they reported it: what they may read back."""

    __tablename__ = "volunteer_reports"

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(ForeignKey("social_orgs.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: The lead the report opened or joined, and the evidence row it added.
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("lead_evidence.id"))
    #: What the volunteer told us: the person's name, phone (sealed), village, what they saw.
    name: Mapped[str] = mapped_column(String(50))
    phone_enc: Mapped[str | None] = mapped_column(Text)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    summary: Mapped[str] = mapped_column(String(500))
    photo_ids: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]


class VolunteerReportPhoto(Base):
    """A photo a volunteer's report carries, so staff of the lead's area may open it."""

    __tablename__ = "volunteer_report_photos"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("volunteer_reports.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), primary_key=True, index=True)
