"""Builders for social organisations and their volunteers: registering an organisation, a
volunteer logged in through its invitation, and the villages of the volunteers' tests.

`villages` and `volunteer_login` are fixtures imported by the module that uses them: this
`villages` has no cd-002 (tests/builders/visits.py's has), and `volunteer_login` needs it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from server.models import Town
from tests.builders import Login
from tests.builders.applications import village
from tests.builders.dispatches import post


@pytest.fixture
def villages(db):
    village(db, code="cd-001")
    baita = db.scalar(select(Town.id).where(Town.code == "baita"))
    village(db, code="bt-001", town_id=baita)


def register(client, center, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "博山区爱心志愿服务队",
        "kind": "volunteer_team",
        "contact_name": "刘队长",
        "contact_phone": "13700001111",
        "towns": ["chengdong"],
    }
    body.update(overrides)
    resp = post(client, center, "/api/v1/social-orgs", body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


@pytest.fixture
def volunteer_login(client, center, resident_login, villages):
    """A WeChat user who redeemed an invitation of an organisation: `volunteer_login("vera")`."""

    def build(name: str = "vera", *, org: dict[str, Any] | None = None) -> Login:
        org = org or register(client, center, name=f"志愿队-{name}")
        invited = post(client, center, f"/api/v1/social-orgs/{org['id']}/invitations")
        assert invited.status_code == 201, invited.get_json()
        login = resident_login(name)
        resp = post(client, login, "/api/v1/volunteer/redeem", {"code": invited.get_json()["code"]})
        assert resp.status_code == 200, resp.get_json()
        return Login(token=login.token, user_id=login.user_id, role="volunteer")

    return build
