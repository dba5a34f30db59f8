"""服务点海报 in the console: each village's poster listed, previewed on a printable page and
served as the PNG the API draws; only the town's own villages, and only town staff and center."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.models import Town
from tests.builders.applications import village
from tests.console_helpers import console_login

PASSWORD = "correct-horse-9"


@pytest.fixture
def villages(db):
    village(db, code="cd-001")
    village(db, code="bt-001", town_id=db.scalar(select(Town.id).where(Town.code == "baita")))


def test_town_staff_preview_and_print_their_villages_posters(client, staff, villages):
    console_login(client, staff("town_staff"), PASSWORD)
    listing = client.get("/console/posters")
    assert listing.status_code == 200
    assert 'id="poster-cd-001"' in listing.text and 'id="poster-bt-001"' not in listing.text
    assert 'href="/console/posters"' in listing.text  # in the navigation
    page = client.get("/console/posters/cd-001/print?kind=link")
    assert page.status_code == 200 and "data-print" in page.text
    assert 'src="/console/posters/cd-001.png?kind=link"' in page.text
    png = client.get("/console/posters/cd-001.png?kind=link")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n" and png.headers["X-Code-Kind"] == "link"


def test_another_towns_village_is_not_found(client, staff, villages):
    console_login(client, staff("town_staff"), PASSWORD)
    assert client.get("/console/posters/bt-001/print").status_code == 404
    assert client.get("/console/posters/bt-001.png").status_code == 404


def test_the_center_sees_every_village(client, staff, villages):
    console_login(client, staff("center_staff"), PASSWORD)
    listing = client.get("/console/posters").text
    assert 'id="poster-cd-001"' in listing and 'id="poster-bt-001"' in listing
    assert client.get("/console/posters/bt-001.png?kind=link").status_code == 200


@pytest.mark.parametrize("role", ["leader", "department_staff", "system_admin", "audit_admin"])
def test_other_roles_get_403(client, staff, villages, role):
    console_login(client, staff(role), PASSWORD)
    for path in (
        "/console/posters",
        "/console/posters/cd-001/print",
        "/console/posters/cd-001.png",
    ):
        assert client.get(path).status_code == 403, path
