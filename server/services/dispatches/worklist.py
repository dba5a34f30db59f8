"""What waits for a staff member today (the console's 首页), and the duplicate-review list.

Each count is the total the matching list shows, from the same service functions and filters
that list uses, so a count always clicks through to exactly its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from server.clock import TZ
from server.models import (
    ApplicationStatus,
    Department,
    DispatchState,
    Lead,
    LeadStatus,
    Role,
    Town,
    UnitKind,
)
from server.services.applications import reading
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches import listing
from server.services.feeds.batches import list_feeds
from server.services.households import aid
from server.services.kernel.access import Actor
from server.services.leads import access, merging, queue
from server.services.notifications import informing
from server.services.reports import statistics, town_summaries

#: How many of the newest open leads without an ID number the duplicate review scores.
PAIR_SCAN = 50


@dataclass(frozen=True)
class WorkItem:
    """One line of the worklist: what, how many, and the console list it opens."""

    label: str
    count: int
    #: Console endpoint and its query arguments (the view builds the URL).
    endpoint: str
    args: dict[str, Any] = field(default_factory=dict)
    #: "1000+" style: the count stopped at a cap.
    capped: bool = False
    urgent: bool = False


@dataclass(frozen=True)
class Worklist:
    items: list[WorkItem]
    #: For a town: the month whose summary is due next and its due date.
    summary_month: str | None = None
    summary_due: date | None = None
    summary_status: str | None = None


def worklist(db: Session, *, actor: Actor, now: datetime) -> Worklist:
    calendar = WorkCalendar.load(db)
    today = now.astimezone(TZ).date()
    if actor.role is Role.TOWN_STAFF:
        return _town_worklist(db, actor=actor, calendar=calendar, today=today, now=now)
    if actor.role is Role.DEPARTMENT_STAFF:
        return Worklist(items=_unit_slip_items(db, actor, calendar, today))
    return _center_worklist(db, actor=actor, calendar=calendar, today=today)


def _center_worklist(db: Session, *, actor: Actor, calendar: WorkCalendar, today: date) -> Worklist:
    new = queue.count_queue(
        db.connection(), actor=actor, filters=queue.QueueFilter(status=LeadStatus.NEW)
    )
    pairs = candidate_pairs(db, actor=actor)
    feeds = list_feeds(db, actor=actor, today=today)
    late_feeds = [f for f in feeds if f["state"] in ("late", "never_sent")]
    items = [
        WorkItem("待研判的新线索", new.count, "console.queue", {"status": "new"}, new.capped),
        WorkItem("待甄别的疑似重复", len(pairs), "console.duplicates", {}, len(pairs) >= PAIR_SCAN),
        WorkItem(
            "2个工作日内到期的转办单",
            _slip_total(db, actor, calendar, today, deadline="due_soon"),
            "console.dispatches",
            {"deadline": "due_soon"},
        ),
        WorkItem(
            "已超期的转办单",
            _slip_total(db, actor, calendar, today, deadline="overdue"),
            "console.dispatches",
            {"deadline": "overdue"},
            urgent=True,
        ),
        WorkItem(
            "待受理的申请",
            _application_total(db, actor, ApplicationStatus.SUBMITTED),
            "console.applications",
            {"status": "submitted"},
        ),
        WorkItem("逾期未报送的部门数据", len(late_feeds), "console.feeds", {}, urgent=True),
        _review_item(db, actor, today),
        *_inform_items(db, actor, today),
    ]
    return Worklist(items=items)


def _review_item(db: Session, actor: Actor, today: date) -> WorkItem:
    """Aid whose review date has passed (救助复核到期), in the actor's area."""
    return WorkItem(
        "救助复核已到期",
        aid.count_due_reviews(db, actor=actor, today=today),
        "console.households",
        {"review_due": "1"},
        urgent=True,
    )


def _town_worklist(
    db: Session, *, actor: Actor, calendar: WorkCalendar, today: date, now: datetime
) -> Worklist:
    mine = queue.count_queue(db.connection(), actor=actor, filters=queue.QueueFilter())
    items = _unit_slip_items(db, actor, calendar, today)
    items += [
        WorkItem(
            "待受理的申请",
            _application_total(db, actor, ApplicationStatus.SUBMITTED),
            "console.applications",
            {"status": "submitted"},
        ),
        WorkItem(
            "调查核实中的申请",
            _application_total(db, actor, ApplicationStatus.INVESTIGATING),
            "console.applications",
            {"status": "investigating"},
        ),
        WorkItem("本镇街在办线索", mine.count, "console.queue", {}, mine.capped),
        _review_item(db, actor, today),
        *_inform_items(db, actor, today),
    ]
    first_of_month = today.replace(day=1)
    previous = (first_of_month - timedelta(days=1)).strftime("%Y-%m")
    period = statistics.parse_month(previous, calendar=calendar)
    summaries = town_summaries.list_summaries(db, period=period, actor=actor, now=now)
    status = summaries["items"][0]["status"] if summaries["items"] else None
    return Worklist(
        items=items, summary_month=previous, summary_due=period.due_date, summary_status=status
    )


def _inform_items(db: Session, actor: Actor, today: date) -> list[WorkItem]:
    """Inform-the-person tasks not yet done, and those past their 3 working days."""
    counts = {
        state: informing.list_tasks(db, actor=actor, today=today, state=state, page=1, per_page=1)[
            1
        ]
        for state in ("open", "overdue")
    }
    return [
        WorkItem("待告知办理结果的群众", counts["open"], "console.inform_tasks", {"state": "open"}),
        WorkItem(
            "逾期未告知",
            counts["overdue"],
            "console.inform_tasks",
            {"state": "overdue"},
            urgent=True,
        ),
    ]


def _unit_slip_items(
    db: Session, actor: Actor, calendar: WorkCalendar, today: date
) -> list[WorkItem]:
    """A receiving unit's slips to sign and to answer."""
    unit = unit_of(db, actor)
    if unit is None:
        return []
    kind, code = unit
    args = {"unit_kind": kind.value, "unit_code": code}
    return [
        WorkItem(
            "待签收的转办单",
            _slip_total(db, actor, calendar, today, state=DispatchState.ISSUED, unit=unit),
            "console.dispatches",
            {**args, "state": "issued"},
        ),
        WorkItem(
            "待反馈的转办单",
            _slip_total(db, actor, calendar, today, state=DispatchState.SIGNED, unit=unit),
            "console.dispatches",
            {**args, "state": "signed"},
        ),
        WorkItem(
            "已超期未反馈",
            _slip_total(db, actor, calendar, today, deadline="overdue", unit=unit),
            "console.dispatches",
            {**args, "deadline": "overdue"},
            urgent=True,
        ),
    ]


def unit_of(db: Session, actor: Actor) -> tuple[UnitKind, str] | None:
    """The receiving unit an actor works for, as (kind, code)."""
    if actor.role is Role.TOWN_STAFF and actor.town_id is not None:
        town = db.get(Town, actor.town_id)
        return (UnitKind.TOWN, town.code) if town else None
    if actor.role is Role.DEPARTMENT_STAFF and actor.department_id is not None:
        dept = db.get(Department, actor.department_id)
        return (UnitKind.DEPARTMENT, dept.code) if dept else None
    return None


def _slip_total(
    db: Session,
    actor: Actor,
    calendar: WorkCalendar,
    today: date,
    *,
    state: DispatchState | None = None,
    deadline: str | None = None,
    unit: tuple[UnitKind, str] | None = None,
) -> int:
    _rows, total = listing.list_dispatches(
        db,
        listing.DispatchFilter(
            state=state,
            deadline=deadline,
            unit_kind=unit[0] if unit else None,
            unit_code=unit[1] if unit else None,
        ),
        calendar=calendar,
        actor=actor,
        today=today,
        page=1,
        per_page=1,
    )
    return total


def _application_total(db: Session, actor: Actor, status: ApplicationStatus) -> int:
    _rows, total = reading.list_applications(
        db, actor=actor, page=1, per_page=1, status=status.value
    )
    return total


# --- Duplicate review ------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidatePair:
    """An open lead without an ID number and its candidates (best first)."""

    lead_id: int
    name: str
    created_at: datetime
    candidates: list[merging.Candidate]


def candidate_pairs(db: Session, *, actor: Actor, scan: int = PAIR_SCAN) -> list[CandidatePair]:
    """The newest open leads without an ID number (reports heard by name) that have candidate
    leads in `actor`'s scope, with those candidates: the pairs staff adjudicate.

    A lead with an ID number joins its person's lead by itself; only those without one need a
    person to decide. At most `scan` leads are scored per call.
    """
    query = access.scope_leads(
        select(Lead)
        .where(Lead.is_open == true(), Lead.person_hash.is_(None))
        .order_by(Lead.id.desc())
        .limit(scan),
        actor,
    )
    pairs = []
    for lead in db.scalars(query):
        found = merging.find_candidates(db, lead, actor=actor)
        if found:
            pairs.append(CandidatePair(lead.id, lead.name, lead.created_at, found))
    return pairs
