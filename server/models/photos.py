"""Photos of documents uploaded by residents and helpers (stored on disk by content hash)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, intpk, key_string


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("owner_id", "sha256"),)

    id: Mapped[intpk]
    #: Who uploaded it; only they (and center staff) may read it.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 (hex) of the stored, processed JPEG; also its file name under the upload dir.
    sha256: Mapped[str] = mapped_column(key_string(64), index=True)
    #: Pixel size of the stored JPEG (after orientation and scaling).
    width: Mapped[int]
    height: Mapped[int]
    #: Size of the stored JPEG in bytes.
    bytes: Mapped[int]
    created_at: Mapped[datetime]
