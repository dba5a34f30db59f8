"""主动告知: telling a person without WeChat what became of their lead.

A person found through a feed, a hotline, the window or a helper has no WeChat openid, so no
message reaches them. Each decision on such a lead opens one task for the lead's town (or the
helper who filed for them): how the person was told, when and by whom.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, enum_column, intpk


class InformMethod(enum.StrEnum):
    PHONE = "phone"  # 电话告知
    VISIT = "visit"  # 上门告知
    LETTER = "letter"  # 书面告知


class InformTask(Base):
    """One "inform the person" task: opened by a decision, done when staff record the telling."""

    __tablename__ = "inform_tasks"
    __table_args__ = (Index("ix_inform_tasks_town_open", "town_id", "informed_at", "due_date"),)

    id: Mapped[intpk]
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    #: What decided: "dispatch:<id>" (a slip's feedback) or "application:<id>" (a direct
    #: decision); one task per decision, so a repeated call never opens a second.
    source_key: Mapped[str] = mapped_column(String(40), unique=True)
    #: Whose worklist it is on: the lead's town, and the helper who filed on the person's behalf.
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    helper_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: What to tell, in plain Chinese (each application's result, or the slip's outcome).
    what: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    #: Last day to tell the person (3 working days after the decision, the day itself not counted).
    due_date: Mapped[date]
    #: How, when and by whom the person was told; null until done.
    method: Mapped[InformMethod | None] = mapped_column(enum_column(InformMethod, 10))
    informed_at: Mapped[datetime | None]
    informed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime | None]
    #: Optimistic concurrency: two people recording the same telling, one wins.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
