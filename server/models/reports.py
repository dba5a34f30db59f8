"""Monthly summaries that each town's platform reviews and submits to the center."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, intpk


class TownMonthlySummary(Base):
    """A town's summary of one month: the figures as submitted, and the town's remarks.

    Due by the 5th of the following month; a town with no row after that is listed as late.
    """

    __tablename__ = "town_monthly_summaries"
    __table_args__ = (UniqueConstraint("town_id", "month"),)

    id: Mapped[intpk]
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    #: The month summarised, "YYYY-MM" (Asia/Shanghai).
    month: Mapped[str] = mapped_column(String(7), index=True)
    #: The monthly statistics for the town at the moment of submission
    #: (services/reports/statistics.py `monthly_statistics`), kept as submitted even if later
    #: corrections change the live figures.
    figures: Mapped[dict[str, Any]]
    #: What the town has to say about its month (difficulties, cases to note).
    remarks: Mapped[str] = mapped_column(Text)
    #: The last day to submit (the 5th of the following month).
    due_date: Mapped[date]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime]
    #: True when submitted after the end of `due_date`.
    late: Mapped[bool] = mapped_column(default=False)
