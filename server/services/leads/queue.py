"""The lead queue: filters, keyset pages (an opaque cursor), capped counts, and for department
staff only what their own department brought.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from server.clock import TZ
from server.db import Precompiled
from server.errors import invalid
from server.models import (
    OPEN_STATUSES,
    Channel,
    FamilyMember,
    Lead,
    LeadEvidence,
    LeadStatus,
    Town,
    Village,
)
from server.services.kernel.access import Actor
from server.services.leads import matching
from server.services.leads.access import (
    among,
    categories_brought,
    department_brings,
    has_evidence,
    scope_condition,
    scope_shape,
)


@dataclass(frozen=True)
class QueueFilter:
    status: LeadStatus | None = None
    channel: Channel | None = None
    feed: str | None = None
    town_code: str | None = None
    village_code: str | None = None
    category: str | None = None
    min_priority: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    name: str | None = None
    #: Leads one staff member handles; or (`unassigned`) leads nobody handles yet.
    handler_id: int | None = None
    unassigned: bool | None = None


class QueueItem(NamedTuple):
    """One row of the queue page, in the column order of `_QUEUE_COLUMNS`."""

    id: int
    name: str
    status: str
    channel: str
    priority: int
    #: JSON text as stored: the page writes it out without a parse and a re-dump.
    priority_reasons_json: str
    categories_json: str
    town_id: int | None
    village_id: int | None
    has_id_number: bool
    created_at: datetime
    handler_id: int | None
    #: The person's current household, and its other members' open leads that the caller may
    #: see as "priority:id" pairs joined by commas (None when there are none): `household`.
    household_id: int | None
    household_others: str | None

    @property
    def household(self) -> tuple[int, list[int]] | None:
        """(household id, the other members' open leads, most urgent first), or None."""
        if self.household_id is None:
            return None
        pairs = (pair.split(":") for pair in (self.household_others or "").split(",") if pair)
        ordered = sorted((-int(priority), int(lead_id)) for priority, lead_id in pairs)
        return int(self.household_id), [lead_id for _, lead_id in ordered]


@dataclass
class QueuePage:
    items: list[QueueItem]
    next_cursor: str | None


_QUEUE_COLUMNS = (
    Lead.id,
    Lead.name,
    type_coerce(Lead.status, String).label("status"),
    type_coerce(Lead.channel, String).label("channel"),
    Lead.priority,
    # JSON columns come back as their text: the page passes them through without a parse and
    # a re-dump (the largest per-row cost of the page otherwise).
    cast(Lead.priority_reasons, Text).label("priority_reasons"),
    cast(Lead.categories, Text).label("categories"),
    Lead.town_id,
    Lead.village_id,
    Lead.person_hash.is_not(None).label("has_id_number"),
    Lead.created_at,
    Lead.handler_id,
)


def list_queue(
    conn: Connection, *, actor: Actor, filters: QueueFilter, cursor: str | None, limit: int
) -> QueuePage:
    """One page of the queue: most urgent first, then oldest first (arrival order).

    Keyset pagination on (priority desc, id asc), which `ix_leads_queue` holds in order: a page
    is one or two index range scans, whatever the page's depth and the queue's size. The page is
    the hot path of the console, so the statement for each shape of request (role scope, which
    filters, which cursor step, page size) is compiled once and run as driver SQL with bound
    values (`db.Precompiled`), and rows stay tuples (no ORM objects, no schema dump).
    """
    scope, scope_params = scope_shape(actor)
    if _nothing_in_scope(conn, scope, scope_params, filters):
        return QueuePage(items=[], next_cursor=None)
    conditions, params = _filter_shape(filters)
    params.update(scope_params)
    if cursor is None:
        rows = _queue_statement(scope, conditions, "first", limit + 1).rows(conn, params)
    else:
        params["cur_priority"], params["cur_id"] = decode_cursor(cursor)
        rows = _queue_statement(scope, conditions, "same", limit + 1).rows(conn, params)
        if len(rows) <= limit:
            lower = _queue_statement(scope, conditions, "lower", limit + 1 - len(rows))
            rows += lower.rows(conn, params)
    more = len(rows) > limit
    items = list(map(QueueItem._make, rows[:limit]))
    if scope == "department" and items:
        items = _own_department_reasons(conn, items, scope_params["scope_id"])
    next_cursor = encode_cursor(items[-1].priority, items[-1].id) if more and items else None
    return QueuePage(items=items, next_cursor=next_cursor)


def _own_department_reasons(
    conn: Connection, items: list[QueueItem], department_id: int
) -> list[QueueItem]:
    """Department staff's page shows only the priority reasons their own department's evidence
    brought (one more indexed statement for their pages only)."""
    ids = [i.id for i in items]
    rows = conn.execute(
        select(
            LeadEvidence.lead_id,
            LeadEvidence.priority_reason,
            LeadEvidence.feed_code,
            LeadEvidence.facts,
        )
        .where(LeadEvidence.department_id == department_id, LeadEvidence.lead_id.in_(ids))
        .order_by(LeadEvidence.id)
    )
    own: dict[int, list[str]] = {}
    brought: dict[int, set[str]] = {}
    for lead_id, reason, feed_code, facts in rows:
        if reason and reason not in own.setdefault(lead_id, []):
            own[lead_id].append(reason)
        brought.setdefault(lead_id, set()).update(categories_brought(feed_code, facts))
    return [
        i._replace(
            priority_reasons_json=json.dumps(own.get(i.id, []), ensure_ascii=False),
            categories_json=json.dumps(
                among(json.loads(i.categories_json or "[]"), brought.get(i.id, set())),
                ensure_ascii=False,
            ),
        )
        for i in items
    ]


def _nothing_in_scope(
    conn: Connection, scope: str, scope_params: dict[str, Any], filters: QueueFilter
) -> bool:
    """Department staff whose department's evidence reached no lead yet, or who filter by a
    category their department never brings: the answer is no lead, whatever other departments
    sent. Asked first because the walk in queue order would test every open lead for the
    department's evidence (244 ms at 1,000,000 leads on SQLite for a department with none)."""
    if scope != "department":
        return False
    department_id = scope_params["scope_id"]
    if not _DEPARTMENT_HAS_EVIDENCE.rows(conn, {"scope_id": department_id})[0][0]:
        return True
    return filters.category is not None and not department_brings(
        conn, department_id, filters.category
    )


#: One index probe (`ix_lead_evidence_department_lead`), planned with its value each time: the
#: generic plan PostgreSQL settles on after a few runs is a sequential scan that stops at the
#: first match, instant for a department with most of the evidence and a read of the whole
#: table for one with none (22 ms at 300,000 rows, measured).
_DEPARTMENT_HAS_EVIDENCE = Precompiled(
    select(
        select(literal_column("1"))
        .where(LeadEvidence.department_id == bindparam("scope_id", type_=Integer))
        .exists()
    ),
    plan_per_value=True,
)


@dataclass(frozen=True)
class QueueCount:
    count: int
    #: True when counting stopped at the cap: show "1000+".
    capped: bool


#: The queue counts its leads up to this many; past it the console shows "1000+".
COUNT_CAP = 1000


def count_queue(
    conn: Connection, *, actor: Actor, filters: QueueFilter, cap: int = COUNT_CAP
) -> QueueCount:
    """How many leads the queue holds under `filters`, counted up to `cap` + 1 rows of the
    same ranges the page reads (so it costs at most `cap` index entries, whatever the size)."""
    scope, scope_params = scope_shape(actor)
    if _nothing_in_scope(conn, scope, scope_params, filters):
        return QueueCount(count=0, capped=False)
    conditions, params = _filter_shape(filters)
    params.update(scope_params)
    ((count,),) = _count_statement(scope, conditions, cap + 1).rows(conn, params)
    return QueueCount(count=min(count, cap), capped=count > cap)


@lru_cache(maxsize=256)
def _count_statement(scope: str, filters: tuple[str, ...], limit: int) -> Precompiled:
    inner = select(literal_column("1").label("one"))
    condition = scope_condition(scope)
    if condition is not None:
        inner = inner.where(condition)
    for name in filters:
        inner = inner.where(_filter_condition(name))
    inner = inner.select_from(Lead).limit(literal_column(str(int(limit)), Integer)).subquery()
    one_plan = filters == ("open",) and scope != "department"
    return Precompiled(select(func.count()).select_from(inner), plan_per_value=not one_plan)


def _filter_shape(f: QueueFilter) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Which filter conditions apply, and their bound values."""
    names: list[str] = []
    params: dict[str, Any] = {}

    def use(name: str, **values: Any) -> None:
        names.append(name)
        params.update(values)

    if f.status is None:
        use("open")
    else:
        use("status", is_open=f.status in OPEN_STATUSES, status=f.status)
    if f.town_code is not None:
        use("town", town_code=f.town_code)
    if f.village_code is not None:
        use("village", village_code=f.village_code)
    if f.channel is not None:
        use("channel", channel=f.channel)
    if f.feed is not None:
        use("feed", feed=f.feed)
    if f.category is not None:
        use("category", category_like=f'%"{f.category}"%')
    if f.min_priority is not None:
        use("min_priority", min_priority=f.min_priority)
    if f.handler_id is not None:
        use("handler", handler_id=f.handler_id)
    if f.unassigned:
        use("unassigned")
    if f.created_from is not None:
        use("created_from", created_from=_day_start(f.created_from))
    if f.created_to is not None:
        use("created_to", created_before=_day_start(f.created_to + timedelta(days=1)))
    name = (f.name or "").strip()
    if name:
        if name.isascii() and any(ch.isalpha() for ch in name):
            use("name_key", name_like=_like_escape(matching.query_key(name)) + "%")
        else:
            use("name", name_like="%" + _like_escape(name) + "%")
    return tuple(names), params


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_condition(name: str) -> Any:
    """The SQL of one filter, with its values left as bound parameters."""
    if name == "open":
        return Lead.is_open == true()
    if name == "status":
        return and_(
            Lead.is_open == bindparam("is_open", type_=Boolean),
            Lead.status == bindparam("status", type_=Lead.status.type),
        )
    if name == "town":
        town = select(Town.id).where(Town.code == bindparam("town_code", type_=String))
        return Lead.town_id == town.scalar_subquery()
    if name == "village":
        village = select(Village.id).where(Village.code == bindparam("village_code", type_=String))
        return Lead.village_id == village.scalar_subquery()
    if name == "channel":
        return Lead.channel == bindparam("channel", type_=Lead.channel.type)
    if name == "feed":
        return has_evidence(LeadEvidence.feed_code == bindparam("feed", type_=String))
    if name == "category":
        return cast(Lead.categories, String).like(bindparam("category_like", type_=String))
    if name == "min_priority":
        return Lead.priority >= bindparam("min_priority", type_=Integer)
    if name == "handler":
        # `ix_leads_handler_queue` (partial: handler_id IS NOT NULL, which `=` implies).
        return Lead.handler_id == bindparam("handler_id", type_=Integer)
    if name == "unassigned":
        return Lead.handler_id.is_(None)
    if name == "created_from":
        return Lead.created_at >= bindparam("created_from", type_=Lead.created_at.type)
    if name == "created_to":
        return Lead.created_at < bindparam("created_before", type_=Lead.created_at.type)
    if name in ("name_key", "name"):
        return _named(getattr(_NAMED, name))
    raise ValueError(name)


#: The leads again, for the name filters' subquery.
_NAMED = aliased(Lead, name="named")


def _named(column: Any) -> Any:
    """Leads whose name (or pinyin key) matches, as a set drawn from that column's index.

    A name search matches a few leads among many. Tested on each row of the ordered queue
    walk, a name nobody has made the walk fetch every open lead (0.7 s at 1,000,000); the
    index of names alone holds everything the test needs and is read 15 times faster, and
    the few matches are then sorted.
    """
    return Lead.id.in_(
        select(_NAMED.id).where(column.like(bindparam("name_like", type_=String), escape="\\"))
    )


@lru_cache(maxsize=1024)
def _queue_statement(scope: str, filters: tuple[str, ...], step: str, limit: int) -> Precompiled:
    """The page statement for one shape of request, compiled once per process.

    `first`: the top of the queue; `same`: after the cursor within its priority; `lower`: the
    priorities below the cursor's. Each is a range scan of the queue index in its own order.
    """
    query = select(*_QUEUE_COLUMNS, *_household_columns(scope))
    condition = scope_condition(scope)
    if condition is not None:
        query = query.where(condition)
    for name in filters:
        query = query.where(_filter_condition(name))
    # Written into the SQL (1–101): a generic prepared plan with an unknown LIMIT may prefer a
    # full sort.
    page = literal_column(str(int(limit)), Integer)
    if step == "first":
        query = query.order_by(Lead.priority.desc(), Lead.id)
    elif step == "same":
        query = query.where(
            Lead.priority == bindparam("cur_priority", type_=Integer),
            Lead.id > bindparam("cur_id", type_=Integer),
        ).order_by(Lead.id)
    else:
        query = query.where(Lead.priority < bindparam("cur_priority", type_=Integer)).order_by(
            Lead.priority.desc(), Lead.id
        )
    # The plain queue of a town or a village has one best plan. Under a filter, or in a
    # department's scope, the best plan depends on how many leads the value matches: a channel
    # nobody used is a short range of `ix_leads_channel_queue`, the commonest is best walked in
    # `ix_leads_queue`; a department with few leads is best found from its evidence.
    one_plan = filters == ("open",) and scope != "department"
    return Precompiled(query.limit(page), plan_per_value=not one_plan)


#: The household columns' own aliases: the lead's membership, the household's members, their
#: open leads.
_MINE = aliased(FamilyMember, name="hh_mine")
_MEMBER = aliased(FamilyMember, name="hh_member")
_OTHER = aliased(Lead, name="hh_other")


def _household_columns(scope: str) -> tuple[Any, Any]:
    """Each page row's household and its other members' open leads in the caller's scope, as
    two subqueries of the page's own statement: a statement of its own cost a round trip per
    page (PostgreSQL under load 0.29x of bare Flask against 0.34x without it). Both are index
    probes: the membership by the person's hash (`uq_family_members_current`), the members by
    household, their open leads by person (`uq_leads_open_person`). The shown leads change no
    priority."""

    household = (
        select(_MINE.family_id)
        .where(_MINE.id_hash == Lead.person_hash, _MINE.left_at.is_(None))
        .scalar_subquery()
    )
    pair = cast(_OTHER.priority, String) + literal_column("':'") + cast(_OTHER.id, String)
    others = (
        select(_joined(pair))
        .select_from(_MINE)
        .join(_MEMBER, (_MEMBER.family_id == _MINE.family_id) & _MEMBER.left_at.is_(None))
        .join(
            _OTHER,
            # Names the partial index of open leads by person exactly, so both engines use it.
            (_OTHER.person_hash == _MEMBER.id_hash) & text("hh_other.is_open"),
        )
        .where(
            _MINE.id_hash == Lead.person_hash,
            _MINE.left_at.is_(None),
            _OTHER.id != Lead.id,
        )
    )
    condition = scope_condition(scope, lead=_OTHER)
    if condition is not None:
        others = others.where(condition)
    return household.label("household_id"), others.scalar_subquery().label("household_others")


class _joined(FunctionElement[str]):  # noqa: N801  (reads as a SQL function)
    """Text values joined by commas: `group_concat` on SQLite, `string_agg` on PostgreSQL,
    with the separator written into the SQL (SQLAlchemy's `aggregate_strings` binds it at
    render time, which a precompiled statement cannot hold)."""

    type = String()
    inherit_cache = True


@compiles(_joined)
def _joined_sqlite(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


@compiles(_joined, "postgresql")
def _joined_postgresql(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ',')"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=TZ)


def encode_cursor(priority: int, lead_id: int) -> str:
    """An opaque cursor: clients pass it back as they got it."""
    return base64.urlsafe_b64encode(f"q1:{priority}:{lead_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, priority, lead_id = raw.split(":")
        if tag != "q1":
            raise ValueError(tag)
        return int(priority), int(lead_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("cursor", "翻页参数无效，请从第一页重新开始", "bad_cursor") from exc
