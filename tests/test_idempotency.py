"""A retried create (same Idempotency-Key) never makes a second record: visits, hand-registered
reports and transfer slips, as applications already do (tests/test_applications.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from server.models import Dispatch, IdempotencyRecord, Lead, LeadEvidence, Visit
from tests.builders import error_code
from tests.builders.applications import village
from tests.builders.dispatches import make_lead
from tests.builders.idempotency import REPORT
from tests.builders.visits import town_id, visit_body

SLIP = {"unit_kind": "town", "unit_code": "chengdong", "instructions": "请入户核实"}


def keyed(login, key: str) -> dict[str, str]:
    return {**login.headers, "Idempotency-Key": key}


def count(db, model: Any) -> int:
    return db.scalar(select(func.count()).select_from(model))


@pytest.fixture
def hank(db, helper_login):
    village(db, code="cd-001")
    village(db, code="bt-001", town_id=town_id(db, "baita"))
    return helper_login("hank", village="cd-001")


def test_a_retried_visit_returns_the_first_and_records_one(client, hank, db):
    key = str(uuid.uuid4())
    body = visit_body(hardship="severe")
    first = client.post("/api/v1/visits", json=body, headers=keyed(hank, key))
    again = client.post("/api/v1/visits", json=body, headers=keyed(hank, key))
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count(db, Visit) == 1
    assert count(db, LeadEvidence) == 1


def test_the_same_key_with_another_visit_is_refused(client, hank, db):
    key = str(uuid.uuid4())
    client.post("/api/v1/visits", json=visit_body(), headers=keyed(hank, key))
    other = client.post(
        "/api/v1/visits", json=visit_body(needs="冬季取暖困难"), headers=keyed(hank, key)
    )
    assert other.status_code == 409
    assert error_code(other) == "idempotency_conflict"
    assert count(db, Visit) == 1


def test_visits_without_a_key_are_each_recorded(client, hank, db):
    for _ in range(2):
        assert (
            client.post("/api/v1/visits", json=visit_body(), headers=hank.headers).status_code
            == 201
        )
    assert count(db, Visit) == 2


def test_a_key_too_long_is_refused_with_the_header_named(client, hank):
    resp = client.post("/api/v1/visits", json=visit_body(), headers=keyed(hank, "k" * 81))
    assert resp.status_code == 422
    assert "Idempotency-Key" in resp.get_json()["errors"]


def test_every_endpoint_reads_the_key_by_one_rule_with_one_limit(client, resident_login, db):
    """Applications require a key (428 without one); everywhere a key longer than 80
    characters is 422 naming the header, and a reused key with another body is 409."""
    from tests.builders.applications import application_body, file, photo_id

    village(db)
    alice = resident_login("alice")
    body = application_body(photos=[photo_id(client, alice)])
    too_long = file(client, alice, body, key="k" * 81)
    assert too_long.status_code == 422 and error_code(too_long) == "idempotency_key_invalid"
    assert "Idempotency-Key" in too_long.get_json()["errors"]
    key = "k" * 80
    assert file(client, alice, body, key=key).status_code == 201
    other = file(client, alice, {**body, "reason": "另一份"}, key=key)
    assert other.status_code == 409 and error_code(other) == "idempotency_conflict"


def test_a_retried_hotline_report_opens_one_lead(client, staff_login, db):
    center = staff_login()
    key = str(uuid.uuid4())
    first = client.post("/api/v1/leads", json=REPORT, headers=keyed(center, key))
    again = client.post("/api/v1/leads", json=REPORT, headers=keyed(center, key))
    assert first.status_code == again.status_code == 201
    assert again.get_json()["lead"]["id"] == first.get_json()["lead"]["id"]
    assert first.get_json()["lead_created"] is True
    assert again.get_json()["lead_created"] is False
    assert count(db, Lead) == 1
    assert count(db, LeadEvidence) == 1


def test_a_retried_slip_is_issued_once(client, staff_login, db):
    center = staff_login()
    lead_id = make_lead(client, center)
    key = str(uuid.uuid4())
    url = f"/api/v1/leads/{lead_id}/dispatches"
    first = client.post(url, json=SLIP, headers=keyed(center, key))
    again = client.post(url, json=SLIP, headers=keyed(center, key))
    assert first.status_code == again.status_code == 201
    assert again.get_json()["number"] == first.get_json()["number"]
    assert count(db, Dispatch) == 1


def test_keys_are_per_user_and_per_kind_of_record(client, staff_login, db):
    """One client key reused for a report and then a slip, or by two staff, clashes with nothing."""
    center, other = staff_login(), staff_login()
    key = str(uuid.uuid4())
    lead = client.post("/api/v1/leads", json=REPORT, headers=keyed(center, key))
    lead_id = lead.get_json()["lead"]["id"]
    url = f"/api/v1/leads/{lead_id}/dispatches"
    assert client.post(url, json=SLIP, headers=keyed(center, key)).status_code == 201
    assert client.post(url, json=SLIP, headers=keyed(other, key)).status_code == 201
    assert count(db, Dispatch) == 2
    assert count(db, IdempotencyRecord) == 3
