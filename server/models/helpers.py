"""Helper invitations: a one-time code that turns a WeChat user into a village's helper."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, intpk, key_string


class HelperInvitation(Base):
    __tablename__ = "helper_invitations"

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    #: The staff member who created it.
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: SHA-256 of the one-time code; the code itself is shown once, at creation.
    code_hash: Mapped[str] = mapped_column(key_string(64), unique=True)
    expires_at: Mapped[datetime]
    redeemed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    redeemed_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
