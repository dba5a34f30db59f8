"""WeChat state shared by every process: the cached access token, and the nonces of accepted
server pushes (replay protection)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, intpk, key_string


class WeChatAccessToken(Base):
    """One row per appid; also the row every refreshing process locks (see wechat/tokens.py)."""

    __tablename__ = "wechat_access_tokens"

    #: The mini-program's appid.
    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The current access token; NULL when none is cached or WeChat rejected it.
    token: Mapped[str | None] = mapped_column(Text)
    #: WeChat's real expiry (readers stop using the token 5 minutes earlier).
    expires_at: Mapped[datetime | None]
    #: When the row was last written (fetch, invalidation or placeholder insert).
    updated_at: Mapped[datetime]


class WeChatPushNonce(Base):
    """A (timestamp, nonce) pair of a signed push already accepted: the same pair again within
    the freshness window is a replay. Rows older than the window are deleted as pushes come."""

    __tablename__ = "wechat_push_nonces"
    __table_args__ = (UniqueConstraint("timestamp", "nonce", name="uq_wechat_push_nonce"),)

    id: Mapped[intpk]
    #: The push's `timestamp` query argument (seconds since the epoch, as WeChat signed it).
    timestamp: Mapped[int] = mapped_column(BigInteger)
    #: The push's `nonce` query argument.
    nonce: Mapped[str] = mapped_column(key_string(64))
    #: When we accepted it (the clean-up deletes by this).
    seen_at: Mapped[datetime] = mapped_column(index=True)
