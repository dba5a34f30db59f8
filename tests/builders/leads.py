"""Builders for the lead queue: a town's id and a village, a lead made through the core rule
`record_signal`, the queue's pages and their ids, and the plan the database chooses for a page.

Not to be confused with tests/builders/applications.py's `village` (keyword `code`, a town's id)
and tests/builders/visits.py's `town_id` (no default town): these take codes."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select, text

from server import clock
from server.models import Channel, Department, Lead, Town, Village
from server.services.kernel.access import SYSTEM
from server.services.leads.core import Signal, record_signal
from server.services.leads.queue import _queue_statement
from tests.builders import make_id_number

_keys = itertools.count(1)


def town_id(db, code: str = "chengdong") -> int:
    return db.scalar(select(Town.id).where(Town.code == code))


def village(db, code: str = "cd-001", *, town: str = "chengdong") -> Village:
    existing = db.scalar(select(Village).where(Village.code == code))
    if existing:
        return existing
    row = Village(code=code, name=f"测试村{code}", town_id=town_id(db, town))
    db.add(row)
    db.commit()
    return row


def add_lead(
    db,
    runtime,
    *,
    name: str = "张三",
    id_number: str | None = "auto",
    phone: str | None = None,
    town: str | None = "chengdong",
    village_code: str | None = None,
    priority: int = 0,
    reason: str | None = None,
    categories: tuple[str, ...] = (),
    channel: Channel = Channel.FEED,
    feed: str | None = None,
    department: str | None = None,
    now=None,  # noqa: ANN001
) -> Lead:
    """A lead through the core rule `record_signal`, as the feeds and applications make them."""
    pii = runtime.pii
    number = make_id_number() if id_number == "auto" else id_number
    dept_id = (
        db.scalar(select(Department.id).where(Department.code == department))
        if department
        else None
    )
    outcome = record_signal(
        db,
        Signal(
            channel=channel,
            name=name,
            summary=f"测试信号 {name}",
            dedup_key=f"test:{next(_keys)}",
            person_hash=pii.hash(number) if number else None,
            id_number_enc=pii.seal(number),
            phone_enc=pii.seal(phone),
            phone_hash=pii.hash(phone) if phone else None,
            town_id=town_id(db, town) if town else None,
            village_id=village(db, village_code, town=town or "chengdong").id
            if village_code
            else None,
            categories=list(categories),
            priority=priority,
            priority_reason=reason or (f"测试+{priority}" if priority else None),
            feed_code=feed,
            department_id=dept_id,
        ),
        actor=SYSTEM,
        now=now or clock.now(),
    )
    db.commit()
    return outcome.lead


def queue(client, login, **params: Any):
    return client.get("/api/v1/leads", headers=login.headers, query_string=params)


def ids(resp) -> list[int]:
    assert resp.status_code == 200, resp.get_json()
    return [item["id"] for item in resp.get_json()["items"]]


def plan_of(runtime, engine_name: str, sql: str, *, hiding: str | None = None) -> str:
    """The plan the database chooses for `sql`, as one line.

    On PostgreSQL an empty table's statistics favour any plan: sequential scans, bitmap scans
    and sorts are forbidden so the plan shows what the indexes *can* do (a Sort would remain
    if no index gave the order). `hiding` drops an index inside the plan's transaction (rolled
    back): where two indexes serve the order equally well on an empty table, PostgreSQL's pick
    depends on statistics earlier tests left, so the one under test is asked alone."""
    with runtime.engine.connect() as conn:
        if engine_name == "sqlite":
            return " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(text(f"SET LOCAL {setting} = off"))
        if hiding is not None:
            conn.exec_driver_sql(f"DROP INDEX {hiding}")
        plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
        conn.rollback()
        return plan


def page_plan(
    runtime,
    engine_name: str,
    filters: tuple[str, ...],
    scope: str = "all",
    *,
    hiding: str | None = None,
    **values: Any,
) -> str:
    """The plan of the first page under `filters`, for the statement the queue itself runs."""
    statement = _queue_statement(scope, filters, "first", 21).statement.params(**values)
    dialect = runtime.engine.dialect
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return plan_of(runtime, engine_name, sql, hiding=hiding)
