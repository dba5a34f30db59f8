"""Working days on the official calendar; the day of issue never counts."""

from __future__ import annotations

from datetime import date, datetime

from server import clock
from server.models import CalendarDay, CalendarYear
from server.services.calendar.workdays import WorkCalendar

LIB = WorkCalendar.library_only()


def test_a_slip_issued_the_day_before_national_day_skips_the_holiday():
    # 2026-09-30 (Wed); 10-01..10-07 off; 10-10 (Sat) is a make-up working day.
    assert LIB.add_working_days(date(2026, 9, 30), 5).value == date(2026, 10, 13)


def test_friday_afternoon_before_a_holiday_counts_from_the_first_working_day_after():
    issued = datetime(2026, 9, 25, 16, 0, tzinfo=clock.TZ)  # Friday 16:00
    result = LIB.due_date(issued)
    # 28, 29, 30 Sep, then the holiday, then 8 and 9 Oct.
    assert result.value == date(2026, 10, 9) and result.certain


def test_a_make_up_saturday_is_a_working_day():
    assert LIB.is_workday(date(2026, 10, 10)) == (True, True)


def test_beyond_every_known_year_falls_back_to_weekdays_and_says_so():
    result = LIB.add_working_days(date(2026, 12, 30), 5)
    assert result.value == date(2027, 1, 6)
    assert result.certain is False


def test_a_year_loaded_by_staff_replaces_the_fallback(db):
    db.add(CalendarYear(year=2027, source="测试", loaded_at=clock.now()))
    db.flush()
    db.add(CalendarDay(day=date(2027, 1, 1), year=2027, is_workday=False, name="元旦"))
    db.commit()
    result = WorkCalendar.load(db).add_working_days(date(2026, 12, 31), 1)
    assert result.value == date(2027, 1, 4) and result.certain


def test_working_days_between_counts_after_start_up_to_end():
    assert LIB.working_days_between(date(2026, 11, 20), date(2026, 11, 27)).days == 5
    assert LIB.working_days_between(date(2026, 11, 27), date(2026, 11, 20)).days == -5
