"""Builders for transfer slips (转办单): a hotline lead, issuing a slip, the feedback and decision
bodies, a lead's status, logged-in requests, and the fixtures of the slips' tests.

`center`, `chengdong`, `insurance` and `long_lived_tokens` are registered in tests/conftest.py;
`long_lived_tokens` is not autouse: a module opts in with
`pytestmark = pytest.mark.usefixtures("long_lived_tokens")`. `at_time` is imported by the module
that uses it (tests/test_reports.py has its own `at_time`, which takes a datetime)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from server import clock
from server.clock import TZ
from server.models import Lead
from tests.builders import make_id_number


def make_lead(client, login, *, town: str = "chengdong", id_number: str | None = None) -> int:
    """A hotline report registered by `login`; returns the lead id."""
    resp = client.post(
        "/api/v1/leads",
        json={
            "channel": "hotline",
            "name": "王五",
            "summary": "家中失火，房屋受损，生活困难",
            "id_number": id_number or make_id_number(),
            "phone": "13912345678",
            "town": town,
            "address": "某村12号",
            "categories": ["disaster"],
        },
        headers=login.headers,
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["lead"]["id"]


def issue(
    client,
    login,
    lead_id: int,
    *,
    unit_kind: str = "town",
    unit_code: str = "chengdong",
    instructions: str = "请入户核实家庭经济状况",
):
    return client.post(
        f"/api/v1/leads/{lead_id}/dispatches",
        json={"unit_kind": unit_kind, "unit_code": unit_code, "instructions": instructions},
        headers=login.headers,
    )


def issued(client, login, lead_id: int, **kwargs: Any) -> dict[str, Any]:
    resp = issue(client, login, lead_id, **kwargs)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def post(client, login, path: str, json: dict[str, Any] | None = None):
    return client.post(path, json=json or {}, headers=login.headers)


def get(client, login, path: str):
    return client.get(path, headers=login.headers)


def feedback_body(**overrides: Any) -> dict[str, Any]:
    body = {"findings": "经入户核实，家庭收入低于当地低保标准", "outcome": "dibao"}
    body.update(overrides)
    return body


def decisions_body(*decided: tuple[int, str], **per_application: Any) -> dict[str, Any]:
    """Feedback deciding applications: `decisions_body((12, "dibao"), (13, "not_eligible"),
    reason="…")`; `per_application` goes into every decision."""
    return {
        "findings": "经入户核实，情况属实",
        "decisions": [
            {"application_id": app_id, "outcome": outcome, **per_application}
            for app_id, outcome in decided
        ],
    }


def lead_status(db, lead_id: int) -> str:
    db.expire_all()
    return db.get(Lead, lead_id).status.value


@pytest.fixture
def long_lived_tokens(runtime, monkeypatch):
    """Logins made at the real time stay valid while a test moves the clock weeks ahead."""
    ten_years = 10 * 365 * 24 * 3600
    config = replace(
        runtime.config,
        staff_token_ttl=ten_years,
        resident_token_ttl=ten_years,
        staff_idle_timeout=ten_years,
    )
    monkeypatch.setattr(runtime, "config", config)


@pytest.fixture
def at_time(monkeypatch):
    """Fix the application's clock: `at_time(datetime(2026, 9, 30, 16, 0))` (Asia/Shanghai)."""

    def set_to(*args: int) -> datetime:
        moment = datetime(*args, tzinfo=TZ)
        monkeypatch.setattr(clock, "now", lambda: moment)
        return moment

    return set_to


@pytest.fixture
def center(staff_login):
    return staff_login(role="center_staff")


@pytest.fixture
def chengdong(staff_login):
    return staff_login(role="town_staff", town="chengdong")


@pytest.fixture
def insurance(staff_login):
    return staff_login(role="department_staff", department="medical_insurance")
