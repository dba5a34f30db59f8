"""A 小程序码's scene resolves through the API into the page and parameters it stands for."""

from __future__ import annotations

import pytest

from tests.builders.applications import village


@pytest.fixture
def villages(db):
    village(db, code="cd-001")


def test_a_village_scene_opens_the_apply_page_with_the_village(client, villages):
    resp = client.get("/api/v1/launch/v=cd-001")
    assert resp.status_code == 200
    assert resp.get_json() == {"page": "pages/apply/apply", "params": {"village": "cd-001"}}


def test_an_invitation_scene_opens_the_redeem_page_with_the_code(client):
    resp = client.get("/api/v1/launch/i=ABCDE23456")
    assert resp.get_json() == {"page": "pages/helper/redeem", "params": {"code": "ABCDE23456"}}


@pytest.mark.parametrize("scene", ["v=nowhere", "x=1", "v=", "nonsense", "v=" + "1" * 31])
def test_an_unknown_scene_is_not_found(client, villages, scene):
    resp = client.get(f"/api/v1/launch/{scene}")
    assert resp.status_code == 404
    assert resp.get_json()["code"] == "scene_unknown"
