"""Users of every role, their bearer tokens, and login throttling."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.areas import Department, Town, Village
from server.models.base import Base, enum_column, intpk, key_string


class Role(enum.StrEnum):
    RESIDENT = "resident"
    HELPER = "helper"
    TOWN_STAFF = "town_staff"
    DEPARTMENT_STAFF = "department_staff"
    CENTER_STAFF = "center_staff"
    LEADER = "leader"


STAFF_ROLES = frozenset({Role.TOWN_STAFF, Role.DEPARTMENT_STAFF, Role.CENTER_STAFF, Role.LEADER})


class User(Base):
    """Anyone who logs in. Residents and helpers come through WeChat; staff by password."""

    __tablename__ = "users"

    id: Mapped[intpk]
    role: Mapped[Role] = mapped_column(enum_column(Role, 20), index=True)
    #: WeChat identity (residents, helpers). Never taken from the client, only from jscode2session.
    openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    #: WeChat session_key, encrypted; rotates at each login and never leaves the server.
    session_key_enc: Mapped[str | None] = mapped_column(Text)
    #: Staff login name and argon2 password hash.
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(50))
    #: Jurisdiction: a helper's village, a town staff member's town, a department's staff.
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]

    village: Mapped[Village | None] = relationship()
    town: Mapped[Town | None] = relationship()
    department: Mapped[Department | None] = relationship()


class AuthToken(Base):
    """An opaque bearer token, stored only as its SHA-256 digest."""

    __tablename__ = "auth_tokens"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(key_string(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed staff logins per account (`user:NAME`) and per address (`ip:ADDR`)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
