"""Working days on the official Chinese calendar, including make-up working weekends (调休).

Sources, in order: a year loaded by staff into the database (it replaces everything else for that
year), then the `chinesecalendar` package (maintained, covers 2004–2026 in 1.11), then — for a
year nobody knows yet — Monday to Friday, with the result marked `certain=False`. It never fails.

Counting rule (used for the 5-working-day deadline of transfer slips): the day a slip is issued
never counts, whatever the hour; day 1 is the first working day after it. So a slip issued at
16:00 on the Friday before the National Day holiday has day 1 on the first working day after the
holiday (a make-up Saturday included), and is due at the end of day 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models.calendar import CalendarDay, CalendarYear


@dataclass(frozen=True)
class WorkdayResult:
    """A computed date, and whether every day it depended on came from a known calendar."""

    value: date
    certain: bool


@dataclass(frozen=True)
class WorkdayCount:
    days: int
    certain: bool


class WorkCalendar:
    """An immutable view of the calendar; build one per request or job with `load(db)`."""

    def __init__(self, loaded_days: dict[date, bool], loaded_years: set[int]) -> None:
        self._loaded_days = loaded_days
        self._loaded_years = loaded_years

    @classmethod
    def load(cls, db: Session) -> WorkCalendar:
        years = set(db.scalars(select(CalendarYear.year)))
        days = {d.day: d.is_workday for d in db.scalars(select(CalendarDay))}
        return cls(days, years)

    @classmethod
    def library_only(cls) -> WorkCalendar:
        return cls({}, set())

    def knows_year(self, year: int) -> bool:
        return year in self._loaded_years or _library_knows(year)

    def is_workday(self, day: date) -> tuple[bool, bool]:
        """(is a working day, certain)."""
        if day.year in self._loaded_years:
            return self._loaded_days.get(day, day.weekday() < 5), True
        if _library_knows(day.year):
            import chinese_calendar

            return chinese_calendar.is_workday(day), True
        return day.weekday() < 5, False

    def add_working_days(self, start: date, n: int) -> WorkdayResult:
        """The n-th working day after `start` (`start` itself never counts)."""
        day, counted, certain = start, 0, True
        while counted < n:
            day += timedelta(days=1)
            working, known = self.is_workday(day)
            certain = certain and known
            counted += working
        return WorkdayResult(day, certain)

    def counted_days(self, start: date, n: int) -> list[tuple[date, bool]]:
        """The n working days after `start`, each with whether its day was certain."""
        day, found = start, []
        while len(found) < n:
            day += timedelta(days=1)
            working, known = self.is_workday(day)
            if working:
                found.append((day, known))
        return found

    def due_date(self, issued_at: datetime, n: int = 5) -> WorkdayResult:
        return self.add_working_days(issued_at.date(), n)

    def working_days_between(self, start: date, end: date) -> WorkdayCount:
        """Working days in (start, end]; negative when end is before start."""
        if end < start:
            back = self.working_days_between(end, start)
            return WorkdayCount(-back.days, back.certain)
        day, count, certain = start, 0, True
        while day < end:
            day += timedelta(days=1)
            working, known = self.is_workday(day)
            certain = certain and known
            count += working
        return WorkdayCount(count, certain)


def _library_knows(year: int) -> bool:
    first, last = library_range()
    return first <= year <= last


_RANGE: tuple[int, int] | None = None


def library_range() -> tuple[int, int]:
    """The first and last year the installed `chinesecalendar` knows."""
    global _RANGE
    if _RANGE is None:
        import chinese_calendar

        years = {d.year for d in chinese_calendar.holidays}
        _RANGE = (min(years), max(years))
    return _RANGE
