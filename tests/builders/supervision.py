"""Builders for supervision (督办): a moment in Asia/Shanghai, one check-deadlines run, and the
notices it writes for two overdue slips.

`noted` is a fixture imported by the module that uses it, with `at_time`
(tests/builders/dispatches.py), which it needs."""

from __future__ import annotations

from datetime import datetime

import pytest

from server.clock import TZ
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches import supervision
from server.services.dispatches.supervision import check_deadlines
from tests.builders.dispatches import issued, make_lead


def moment(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


def run_check(runtime, *args: int) -> supervision.CheckResult:
    """One check-deadlines run at the given moment, committed like the command does."""
    with runtime.session_factory() as db:
        result = check_deadlines(db, WorkCalendar.load(db), moment(*args))
        db.commit()
    return result


@pytest.fixture
def noted(runtime, client, center, at_time):
    """Overdue slips of 城东街道 and 区卫生健康局 found on 24 Nov 2026."""
    at_time(2026, 11, 16, 10, 0)
    town = issued(client, center, make_lead(client, center))
    dept = issued(
        client, center, make_lead(client, center), unit_kind="department", unit_code="health"
    )
    run_check(runtime, 2026, 11, 24, 8, 0)
    return {"town": town, "department": dept}
