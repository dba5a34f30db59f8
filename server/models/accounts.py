"""Users of every role, their bearer tokens, login throttling, and account deletion requests."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, Text
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
    #: 三员分立 (等保 level 3): three administrators, none of whom can do another's work or
    #: any casework. System: accounts, areas, configuration. Security: locks, password policy,
    #: key rotation. Audit: reads the audit log, nothing else.
    SYSTEM_ADMIN = "system_admin"
    SECURITY_ADMIN = "security_admin"
    AUDIT_ADMIN = "audit_admin"


#: Staff who work cases, each within their jurisdiction.
CASEWORK_ROLES = frozenset({Role.TOWN_STAFF, Role.DEPARTMENT_STAFF, Role.CENTER_STAFF, Role.LEADER})
#: The three administrators of 三员分立.
ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})
#: Everyone who logs in with a password (and whose tokens expire when idle).
STAFF_ROLES = CASEWORK_ROLES | ADMIN_ROLES


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
    #: When the staff member last set their own password (null: never, e.g. a new account).
    password_changed_at: Mapped[datetime | None]
    #: Set by whoever hands out a password (a new account, a reset): the next login must
    #: choose a new one before it gets a token.
    must_change_password: Mapped[bool] = mapped_column(default=False)

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
    #: Last use, for the staff idle timeout; refreshed at most once a minute (null: created_at).
    last_seen_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class PasswordHistory(Base):
    """A staff member's earlier password hashes, so the last few cannot be chosen again."""

    __tablename__ = "password_history"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed staff logins per account name (`user:NAME`, known or not, so a lock says nothing
    about whether the name exists) and per address (`ip:ADDR`)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class DeletionStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    REFUSED = "refused"


class DeletionRequest(Base):
    """A resident's request to close their account and delete what we hold about them (PIPL
    art. 47); the center carries it out or refuses it with a reason."""

    __tablename__ = "deletion_requests"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[DeletionStatus] = mapped_column(enum_column(DeletionStatus, 10))
    #: The user id while the request is pending, NULL once decided: one pending request per
    #: user, also for two requests at the same moment (NULLs never collide).
    pending_key: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    #: What the resident wrote, if anything.
    reason: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: The center's note (required for a refusal).
    note: Mapped[str | None] = mapped_column(Text)
    #: What was deleted and what was kept under a legal retention duty, and why.
    outcome: Mapped[dict[str, Any] | None]
