"""The synthetic lead queue (open leads, each with one department's evidence row), bulk-loaded
with the indexes rebuilt after, and the real app on it with staff logged in through the API:
what bench/lead_queue.py and bench/console.py time."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.support.databases import load_rows
from server import clock, create_app
from server.config import Config
from server.models import Lead, LeadEvidence, Role
from server.services.accounts.staff import create_staff
from server.services.kernel.access import SYSTEM
from server.services.leads import matching
from server.services.leads.queue import encode_cursor
from server.services.places.areas import seed_reference

#: Rows of a page, and the deep page timed beside the first.
PAGE = 20
DEEP_PAGE = 500

#: The pool the queue's names are drawn from (smaller than `people`'s: the filtered pages'
#: figures in the README were measured with it).
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
GIVEN = "秀英华明丽强军芳敏静伟丹霞平刚桂兰玉红建国志勇德福兴海云春梅凤"
REASONS = [
    "医保: 单次自付 ¥32,400",
    "残联: 新认定二级残疾",
    "应急: 房屋火灾",
    "民政: 临时困难",
    "热线: 独居老人",
]
CATEGORY_SETS = [["illness"], ["disabled"], ["disaster"], ["temporary"], ["left_behind"], []]


# --- data ---------------------------------------------------------------------------------


_NAMES: list[tuple[str, str, str]] = []


def _names() -> list[tuple[str, str, str]]:
    """A pool of names with their sound and shape keys (pinyin is computed once per name)."""
    if not _NAMES:
        rng = random.Random(7)
        for _ in range(3000):
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            _NAMES.append((name, matching.name_key(name), matching.shape_key(name)))
    return _NAMES


_COLUMNS = (
    "id",
    "person_hash",
    "name",
    "name_key",
    "name_shape",
    "status",
    "is_open",
    "channel",
    "categories",
    "priority",
    "priority_reasons",
    "town_id",
    "created_at",
    "updated_at",
    "version",
)


def _rows(start: int, count: int, town_ids: list[int]) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(start)
    names = _names()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for lead_id in range(start, start + count):
        name, key, shape = names[rng.randrange(len(names))]
        # Every synthetic lead is open: page 500 of 20 rows exists even at 10,000 leads.
        status = rng.choices(("new", "triaged", "dispatched"), (7, 2, 1))[0]
        n_reasons = rng.choice((0, 1, 1, 2, 3))
        reasons = rng.sample(REASONS, n_reasons)
        priority = sum(rng.randint(1, 8) for _ in reasons)
        at = base + timedelta(seconds=lead_id * 7)
        yield (
            lead_id,
            f"{lead_id:064x}",
            name,
            key,
            shape,
            status,
            True,
            "feed",
            json.dumps(rng.choice(CATEGORY_SETS), ensure_ascii=False),
            priority,
            json.dumps(reasons, ensure_ascii=False),
            rng.choice(town_ids),
            at,
            at,
            1,
        )


#: Each synthetic lead carries one evidence row from a department's file, in these shares
#: (department, feed, share %): department staff see the leads with their department's evidence.
#: Traffic police sent nothing.
EVIDENCE_MIX = (
    ("medical_insurance", "insurance_oop", 60.0),
    ("civil_affairs", "civil_affairs_new", 30.0),
    ("disabled_federation", "disability_new", 5.0),
    ("emergency", "disaster", 4.9),
    ("education", "education_aid", 0.1),
)
_EVIDENCE_COLUMNS = (
    "lead_id",
    "channel",
    "feed_code",
    "summary",
    "facts",
    "dedup_key",
    "department_id",
    "created_at",
)


def _evidence_rows(
    start: int, count: int, department_ids: dict[str, int]
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(-start)
    mix = [(department_ids[code], feed) for code, feed, _share in EVIDENCE_MIX]
    weights = [share for _code, _feed, share in EVIDENCE_MIX]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for lead_id in range(start, start + count):
        department_id, feed = rng.choices(mix, weights)[0]
        yield (lead_id, "feed", feed, "测试", "{}", f"bench:{lead_id}", department_id, at)


def bulk_insert(engine: Any, start: int, count: int) -> float:
    """Load `count` synthetic leads, each with one evidence row; the indexes of both tables are
    dropped first and rebuilt after. Seconds."""
    began = time.perf_counter()
    indexes = [*Lead.__table__.indexes, *LeadEvidence.__table__.indexes]
    with engine.begin() as conn:
        town_ids = [r[0] for r in conn.execute(text("SELECT id FROM towns"))]
        ids = {code: id_ for code, id_ in conn.execute(text("SELECT code, id FROM departments"))}
        for index in indexes:
            index.drop(conn)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        dialect = engine.dialect.name
        load_rows(cursor, dialect, "leads", _COLUMNS, _rows(start, count, town_ids))
        load_rows(
            cursor, dialect, "lead_evidence", _EVIDENCE_COLUMNS, _evidence_rows(start, count, ids)
        )
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    # Statistics for the planners; on PostgreSQL also the visibility map, which autovacuum
    # sets after a load this size (it vacuums after inserts too): without it an index-only
    # scan still visits the table for every entry.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    return time.perf_counter() - began


# --- the app --------------------------------------------------------------------------------


def build_app(url: str) -> tuple[Any, str]:
    """The real app on `url` (its tables built) with the reference data and a logged-in center
    staff member: the app and that staff's bearer token."""
    app = create_app(Config(database_url=url, log_level="WARNING"))
    with app.extensions["e_rescue"].session_factory() as db:
        seed_reference(db)
        db.commit()
    return app, staff_token(app, "bench-center", Role.CENTER_STAFF)


def staff_token(app: Any, username: str, role: Role, department_code: str | None = None) -> str:
    """A new staff account, logged in through the API: its bearer token."""
    with app.extensions["e_rescue"].session_factory() as db:
        create_staff(
            db,
            username=username,
            password="bench-password-1",
            role=role,
            department_code=department_code,
            now=clock.now(),
            actor=SYSTEM,
            must_change_password=False,
        )
        db.commit()
    resp = app.test_client().post(
        "/api/v1/auth/staff-login", json={"username": username, "password": "bench-password-1"}
    )
    return resp.get_json()["token"]


def deep_cursor(engine: Any) -> str:
    """The cursor that opens page 500: the key of the last row of page 499 (not timed)."""
    with engine.connect() as conn:
        priority, lead_id = conn.execute(
            text(
                "SELECT priority, id FROM leads WHERE is_open = :t "
                "ORDER BY priority DESC, id LIMIT 1 OFFSET :n"
            ),
            {"t": True, "n": (DEEP_PAGE - 1) * PAGE - 1},
        ).one()
    return encode_cursor(priority, lead_id)


def page_ms(client: Any, token: str, cursor: str | None, runs: int = 60) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    query = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
    samples = []
    for i in range(runs + 5):
        began = time.perf_counter()
        resp = client.get("/api/v1/leads", headers=headers, query_string=query)
        elapsed = (time.perf_counter() - began) * 1000
        assert resp.status_code == 200 and len(resp.get_json()["items"]) == PAGE, resp.data[:300]
        if i >= 5:  # warm-up
            samples.append(elapsed)
    return statistics.median(samples)
