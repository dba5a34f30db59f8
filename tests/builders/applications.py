"""Builders for applications: a photo, a village, a helper, an application's body, filing it,
and the resident `alice` (a fixture: import it into the test module that uses it)."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest
from sqlalchemy import select

from server.models import Role, User, Village
from tests.builders import make_id_number, unique_jpeg

_keys = itertools.count(1)


def photo_id(client, login) -> int:
    resp = client.post(
        "/api/v1/uploads",
        headers=login.headers,
        data={"file": (io.BytesIO(unique_jpeg()), "a.jpg")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def village(db, *, code: str = "cd-001", town_id: int | None = None) -> Village:
    from server.models import Town

    existing = db.scalar(select(Village).where(Village.code == code))
    if existing:
        return existing
    town_id = town_id or db.scalar(select(Town.id).where(Town.code == "chengdong"))
    row = Village(code=code, name=f"测试村{code}", town_id=town_id)
    db.add(row)
    db.commit()
    return row


def make_helper(db, login, *, village_code: str = "cd-001"):
    user = db.get(User, login.user_id)
    user.role, user.village_id = Role.HELPER, village(db, code=village_code).id
    db.commit()
    return login


def application_body(*, photos: list[int], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "dibao",
        "applicant": {
            "name": "张三",
            "id_number": make_id_number(),
            "phone": "13812345678",
            "town": "chengdong",
            "village": "cd-001",
            "address": "城东街道幸福路1号",
        },
        "household": [{"name": "李四", "relation": "配偶"}],
        "monthly_income": "800.00",
        "reason": "家中老人长期患病，无固定收入。",
        "photo_ids": photos,
    }
    body.update(overrides)
    return body


def file(client, login, body, *, key: str | None = None):
    headers = {**login.headers, "Idempotency-Key": key or f"key-{next(_keys)}"}
    return client.post("/api/v1/applications", json=body, headers=headers)


@pytest.fixture
def alice(client, resident_login, db):
    village(db)
    return resident_login("alice")


def with_applicant(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body["applicant"] = {**body["applicant"], **changes}
    return body


def on_behalf(**overrides: Any) -> dict[str, Any]:
    return {
        "relationship": "村协理员",
        "consent_method": "verbal",
        "witness_name": "王五",
        "applicant_phone": "13900001111",
        **overrides,
    }
