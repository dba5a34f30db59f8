"""WeChat state shared by every process: the cached access token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base


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
