"""Builders for decisions on applications: one application of each kind for one person, a
signed slip for an application's lead, and an application taken up for investigation."""

from __future__ import annotations

from typing import Any

from server.models import Application
from tests.builders import make_id_number
from tests.builders.applications import application_body, file, photo_id
from tests.builders.dispatches import issued, post

KINDS = ("dibao", "tekun", "temporary", "medical")


def kind_body(kind: str, photo: int, id_number: str) -> dict[str, Any]:
    body = application_body(photos=[photo], type=kind)
    body["applicant"]["id_number"] = id_number
    if kind == "medical":
        body["medical"] = {
            "hospital": "博山区人民医院",
            "admission_date": "2026-10-01",
            "discharge_date": "2026-10-12",
            "total_cost": "42000",
            "out_of_pocket": "18000",
        }
    if kind == "temporary":
        body["temporary"] = {"what_happened": "家中失火", "happened_on": "2026-10-20"}
    return body


def file_kinds(client, login, kinds=KINDS, *, id_number: str | None = None) -> dict[str, int]:
    """The resident files one application of each kind for the same person: {kind: id}."""
    id_number = id_number or make_id_number()
    ids = {}
    for kind in kinds:
        resp = file(client, login, kind_body(kind, photo_id(client, login), id_number))
        assert resp.status_code == 201, resp.get_json()
        ids[kind] = resp.get_json()["id"]
    return ids


def signed_slip(client, center, unit, db, application_id: int) -> tuple[int, dict[str, Any]]:
    lead_id = db.get(Application, application_id).lead_id
    slip = issued(client, center, lead_id)
    assert post(client, unit, f"/api/v1/dispatches/{slip['id']}/sign").status_code == 200
    return lead_id, slip


def investigated(client, login, application_id: int) -> None:
    base = f"/api/v1/applications/{application_id}"
    assert post(client, login, f"{base}/accept").status_code == 200
    assert post(client, login, f"{base}/investigate").status_code == 200
