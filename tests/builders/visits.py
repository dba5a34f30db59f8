"""Builders for visits (摸排巡查): a visit's body, recording it, a town's id, and the villages.

`villages` is a fixture imported by the module that uses it: other modules define their own
`villages` with other villages (tests/test_volunteers.py's has no cd-002)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from server.models import Town
from tests.builders import make_id_number
from tests.builders.applications import village


def visit_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "village": "cd-001",
        "head": {"name": "王大山", "id_number": make_id_number(birth="19500101")},
        "kind": "visit",
        "phone": "13912345678",
        "address": "城东街道幸福村3组12号",
        "members": [{"name": "王小妹", "relation": "孙女", "id_number": None}],
        "health": "serious",
        "labour_capacity": "none",
        "hardship": "general",
        "causes": ["illness"],
        "categories": ["left_behind"],
        "needs": "医疗费用负担重，希望了解医疗救助。",
    }
    body.update(overrides)
    return body


def record(client, login, **overrides: Any):
    return client.post("/api/v1/visits", json=visit_body(**overrides), headers=login.headers)


def town_id(db, code: str) -> int:
    return db.scalar(select(Town.id).where(Town.code == code))


@pytest.fixture
def villages(db):
    """cd-001, cd-002 in 城东 (chengdong); bt-001 in 白塔 (baita)."""
    village(db, code="cd-001")
    village(db, code="cd-002")
    village(db, code="bt-001", town_id=town_id(db, "baita"))
