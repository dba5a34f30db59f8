"""Hot read-only views run without a transaction, and such a session can never write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.db import ReadOnlySessionWrote
from server.models import Town


def test_a_read_only_session_refuses_to_write(runtime, db):
    before = db.scalar(select(func.count()).select_from(Town))
    session = runtime.read_session_factory()
    try:
        session.add(Town(code="nowhere", name="无此镇"))
        with pytest.raises(ReadOnlySessionWrote):
            session.flush()
    finally:
        session.rollback()
        session.close()
    assert db.scalar(select(func.count()).select_from(Town)) == before


def test_the_queue_reads_what_was_just_committed(client, staff_login):
    center = staff_login()
    report = {
        "channel": "hotline",
        "name": "章三",
        "summary": "邻居反映老人独居",
        "town": "chengdong",
        "categories": ["illness"],
    }
    lead = client.post("/api/v1/leads", json=report, headers=center.headers).get_json()["lead"]
    page = client.get("/api/v1/leads", headers=center.headers).get_json()
    assert [item["id"] for item in page["items"]] == [lead["id"]]
