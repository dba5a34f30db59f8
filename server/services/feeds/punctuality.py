"""Is each department on time? Due dates from the feed's cadence, counted in working days.

- event feeds (3 working days after the event): the last batch is late when it carried an event
  more than 3 working days older than the upload; there is no next due date.
- weekly (every Monday), monthly (by the 5th), yearly (by 31 December): the latest due date on or
  before today is met by a batch received after the due date before it. A due date that falls on
  a day off moves to the next working day (Monday after a holiday week, the 5th in Spring Festival).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from server.services.calendar.workdays import WorkCalendar
from server.services.feeds.registry import Cadence, Feed

EVENT_WORKING_DAYS = 3
#: "Due soon" when the next due date is this many working days away or fewer.
DUE_SOON_WORKING_DAYS = 2


class State(enum.StrEnum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    LATE = "late"
    NEVER_SENT = "never_sent"


STATE_LABELS = {
    State.ON_TIME: "按时",
    State.DUE_SOON: "即将到期",
    State.LATE: "逾期",
    State.NEVER_SENT: "尚未报送",
}


@dataclass(frozen=True)
class Punctuality:
    state: State
    next_due: date | None
    late_by: int  # working days
    certain: bool  # False when a date lies beyond the calendar we know
    label: str


def punctuality(
    feed: Feed,
    *,
    last_upload: date | None,
    earliest_event: date | None,
    today: date,
    calendar: WorkCalendar,
) -> Punctuality:
    if feed.cadence is Cadence.EVENT:
        return _event(last_upload, earliest_event, calendar)
    previous_due, before = _due_dates_around(feed.cadence, today, calendar)
    met = last_upload is not None and last_upload > before
    if met:
        upcoming = _next_due(feed.cadence, previous_due, calendar)
        gap = calendar.working_days_between(today, upcoming)
        state = State.DUE_SOON if gap.days <= DUE_SOON_WORKING_DAYS else State.ON_TIME
        return _make(state, upcoming, 0, gap.certain)
    late = calendar.working_days_between(previous_due, today)
    if late.days <= 0:
        return _make(State.DUE_SOON, previous_due, 0, late.certain)
    if last_upload is None:
        # Never sent anything: say so, with the due date ahead, instead of counting working
        # days since a due date before the feed was ever expected ("尚未报送 227 个工作日").
        upcoming = _next_due(feed.cadence, previous_due, calendar)
        return Punctuality(
            State.NEVER_SENT,
            upcoming,
            0,
            late.certain,
            f"从未报送数据（本期应于{upcoming.year}年{upcoming.month}月{upcoming.day}日前报送）",
        )
    return _make(State.LATE, previous_due, late.days, late.certain)


def _make(state: State, next_due: date | None, late_by: int, certain: bool) -> Punctuality:
    label = STATE_LABELS[state]
    if late_by > 0:
        label = f"{label} {late_by} 个工作日"
    return Punctuality(state, next_due, late_by, certain, label)


def _event(
    last_upload: date | None, earliest_event: date | None, calendar: WorkCalendar
) -> Punctuality:
    if last_upload is None:
        return Punctuality(State.NEVER_SENT, None, 0, True, "从未报送数据")
    if earliest_event is None:
        return _make(State.ON_TIME, None, 0, True)
    due = calendar.add_working_days(earliest_event, EVENT_WORKING_DAYS)
    late = calendar.working_days_between(due.value, last_upload)
    if late.days > 0:
        return _make(State.LATE, None, late.days, due.certain and late.certain)
    return _make(State.ON_TIME, None, 0, due.certain)


def _nominal(cadence: Cadence, today: date) -> tuple[date, date]:
    """The nominal due date on or before `today` and the one before it."""
    if cadence is Cadence.WEEKLY:
        monday = today - timedelta(days=today.weekday())
        return monday, monday - timedelta(days=7)
    if cadence is Cadence.MONTHLY:
        this = today.replace(day=5)
        if this > today:
            this = _month_back(this)
        return this, _month_back(this)
    this = date(today.year, 12, 31)
    if this > today:
        this = date(today.year - 1, 12, 31)
    return this, date(this.year - 1, 12, 31)


def _month_back(day: date) -> date:
    return (
        day.replace(year=day.year - 1, month=12)
        if day.month == 1
        else day.replace(month=day.month - 1)
    )


def _shift(cadence: Cadence, day: date, calendar: WorkCalendar) -> date:
    """A weekly or monthly due date on a day off moves to the next working day."""
    if cadence is Cadence.YEARLY:
        return day  # "by the end of December" stays 31 December
    while not calendar.is_workday(day)[0]:
        day += timedelta(days=1)
    return day


def _due_dates_around(cadence: Cadence, today: date, calendar: WorkCalendar) -> tuple[date, date]:
    """(latest due date on or before today, the due date before it), both shifted."""
    current, before = _nominal(cadence, today)
    if _shift(cadence, current, calendar) > today:  # the shift has not come round yet
        current, before = before, _nominal(cadence, before - timedelta(days=1))[0]
    return _shift(cadence, current, calendar), _shift(cadence, before, calendar)


def _next_due(cadence: Cadence, current: date, calendar: WorkCalendar) -> date:
    """The due date after `current` (a shifted due date of the same cadence)."""
    nominal = _nominal(cadence, current)[0]
    if cadence is Cadence.WEEKLY:
        nxt = nominal + timedelta(days=7)
    elif cadence is Cadence.MONTHLY:
        nxt = (
            nominal.replace(year=nominal.year + 1, month=1)
            if nominal.month == 12
            else nominal.replace(month=nominal.month + 1)
        )
    else:
        nxt = date(nominal.year + 1, 12, 31)
    return _shift(cadence, nxt, calendar)
