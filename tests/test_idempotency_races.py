"""Identical retries sent at once (same Idempotency-Key, same body) all get the first answer:
one record, the same id, never a wrong 409, on both engines."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from server.models import Application, IdempotencyRecord, Lead, LeadEvidence
from tests.builders.applications import application_body, photo_id, village
from tests.builders.idempotency import REPORT
from tests.concurrent import Call, race_http

RETRIES = 60


@pytest.fixture
def resident(resident_login, db):
    village(db)
    return resident_login("alice")


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_sixty_identical_application_retries_at_once_make_one_application(
    app,
    client,
    resident,
    db,
):
    body = application_body(photos=[photo_id(client, resident)])
    headers = {**resident.headers, "Idempotency-Key": str(uuid.uuid4())}
    responses = race_http(app, [Call(headers, "/api/v1/applications", body)] * RETRIES)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * RETRIES, {
        (r.status_code, r.get_json().get("code")) for r in responses
    }
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert count(db, Application) == 1
    assert count(db, IdempotencyRecord) == 1


def test_sixty_identical_report_retries_at_once_open_one_lead(app, staff_login, db):
    login = staff_login()
    headers = {**login.headers, "Idempotency-Key": str(uuid.uuid4())}
    responses = race_http(app, [Call(headers, "/api/v1/leads", REPORT)] * RETRIES)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * RETRIES, statuses
    assert len({r.get_json()["lead"]["id"] for r in responses}) == 1
    assert count(db, Lead) == 1
    assert count(db, LeadEvidence) == 1
