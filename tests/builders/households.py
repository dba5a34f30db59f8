"""Builders for households: an application decided by the town directly, without a slip."""

from __future__ import annotations

from typing import Any

from tests.builders.dispatches import post


def decide_directly(client, login, application_id: int, **body: Any):
    for step in ("accept", "investigate"):
        resp = post(client, login, f"/api/v1/applications/{application_id}/{step}")
        assert resp.status_code == 200, resp.get_json()
    return post(client, login, f"/api/v1/applications/{application_id}/decide", body)
