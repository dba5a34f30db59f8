"""The working-day calendar that staff load for years the library does not know yet."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base


class CalendarYear(Base):
    """A year whose official schedule was loaded by staff; it replaces the library's data."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: Where the schedule came from, e.g. "国办发明电〔2026〕X号" or a file name.
    source: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[datetime]
    loaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CalendarDay(Base):
    """An exception to Monday–Friday in a loaded year: a holiday, or a make-up working day."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(
        ForeignKey("calendar_years.year", ondelete="CASCADE"), index=True
    )
    #: True for a make-up working day (调休上班) on a weekend; False for a holiday.
    is_workday: Mapped[bool]
    name: Mapped[str] = mapped_column(String(50))
