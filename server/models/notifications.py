"""WeChat subscribe-message notifications: subscriptions (quota), the outbox, the in-app inbox."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, enum_column, intpk, key_string


class SubscriptionStatus(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    BAN = "ban"  # the user turned off all subscribe messages of this mini-program
    FILTER = "filter"  # WeChat filtered the template (e.g. title duplicates)


class Subscription(Base):
    """What a user last answered for one template, and how many sends they allowed."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "template_id"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    template_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[SubscriptionStatus] = mapped_column(enum_column(SubscriptionStatus, 10))
    #: One-time templates: sends still allowed (each acceptance adds one, each send uses one).
    quota: Mapped[int] = mapped_column(default=0)
    #: Long-term templates (public-service mini-programs) allow any number of sends.
    long_term: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class OutboxState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a worker until `lease_until`
    SENT = "sent"
    SKIPPED = "skipped"  # no subscription quota (未订阅): the inbox still has it
    FAILED = "failed"  # refused by WeChat for good (bad data, page, openid), reason kept


class OutboxMessage(Base):
    """One subscribe message to send, written in the transaction of the change it reports."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[intpk]
    #: The change this message reports (e.g. "application:12:accepted"); written once.
    dedup_key: Mapped[str] = mapped_column(key_string(120), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: received / status / result / revisit; the template id is taken from the configuration
    #: when the message is sent, so a changed template applies to what is still queued.
    event: Mapped[str] = mapped_column(String(30))
    #: Template fields, already formatted to WeChat's rules ({"thing1": "...", ...}).
    data: Mapped[dict[str, Any]]
    page: Mapped[str | None] = mapped_column(String(200))
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[OutboxState] = mapped_column(enum_column(OutboxState, 10))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    #: While SENDING: when another worker may assume this one died and take the row over.
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class InboxMessage(Base):
    """The same notice inside the mini-program, so nothing is lost when WeChat cannot deliver."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_user_created", "user_id", "created_at"),)

    id: Mapped[intpk]
    dedup_key: Mapped[str] = mapped_column(key_string(120), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    page: Mapped[str | None] = mapped_column(String(200))
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
