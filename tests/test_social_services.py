"""Services organisations give households: assigned from a lead by the center or the town,
recorded by the organisation's volunteers, shown on the household's chain, counted by
organisation and kind."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from server.models import Lead, Town
from tests.builders import error_code, make_id_number, volunteers
from tests.builders.applications import application_body, file, photo_id, village
from tests.builders.dispatches import get, post
from tests.builders.volunteers import register

volunteer_login = volunteers.volunteer_login


@pytest.fixture
def center(staff_login):
    return staff_login(role="center_staff")


@pytest.fixture
def villages(db):
    village(db, code="cd-001")
    baita = db.scalar(select(Town.id).where(Town.code == "baita"))
    village(db, code="bt-001", town_id=baita)


@pytest.fixture
def lead_id(client, resident_login, villages, db) -> int:
    """A lead whose person has a household (an application in 城东)."""
    alice = resident_login("alice")
    body = application_body(photos=[photo_id(client, alice)])
    body["applicant"]["id_number"] = make_id_number()
    assert file(client, alice, body).status_code == 201
    return db.scalar(select(Lead.id))


def assign(client, login, lead_id: int, org_id: int, **overrides: Any):
    body = {
        "lead_id": lead_id,
        "org_id": org_id,
        "kind": "counselling",
        "instructions": "老人独居情绪低落，请上门心理疏导",
    }
    body.update(overrides)
    return post(client, login, "/api/v1/service-assignments", body)


def served(**overrides: Any) -> dict[str, Any]:
    body = {"served_on": "2026-11-28", "duration_minutes": 90, "notes": "上门陪伴聊天，情绪好转"}
    body.update(overrides)
    return body


def test_a_service_assigned_from_a_lead_is_recorded_by_the_organisation_and_shows_on_the_chain(
    client, center, lead_id, volunteer_login, staff_login
):
    org = register(client, center, name="博山心语社工服务中心", kind="social_org")
    vera = volunteer_login("vera", org=org)
    town = staff_login(role="town_staff")
    resp = assign(client, town, lead_id, org["id"])
    assert resp.status_code == 201, resp.get_json()
    assignment = resp.get_json()
    assert (assignment["kind_label"], assignment["household"]["head_name"]) == ("心理疏导", "张三")
    mine = get(client, vera, "/api/v1/service-assignments?open=true").get_json()
    assert [a["id"] for a in mine] == [assignment["id"]]
    assert "id_number" not in str(mine)
    photo = photo_id(client, vera)
    done = post(
        client, vera, "/api/v1/services", served(assignment_id=assignment["id"], photo_ids=[photo])
    )
    assert done.status_code == 201, done.get_json()
    assert get(client, town, f"/api/v1/uploads/{photo}/thumbnail").status_code == 200
    baita = staff_login(role="town_staff", town="baita")
    assert get(client, baita, f"/api/v1/uploads/{photo}/thumbnail").status_code == 404
    again = post(client, vera, "/api/v1/services", served(assignment_id=assignment["id"]))
    assert again.status_code == 409 and error_code(again) == "assignment_done"
    household_id = assignment["household"]["id"]
    chain = get(client, town, f"/api/v1/households/{household_id}/chain").get_json()
    (item,) = [i for i in chain["items"] if i["kind"] == "service"]
    assert item["title"].startswith("博山心语社工服务中心提供心理疏导服务（2026-11-28，90分钟）")
    assert not [d for d in chain["due"] if d["kind"] == "service"]


def test_an_open_assignment_is_due_on_the_chain(client, center, lead_id, volunteer_login):
    org = register(client, center)
    resp = assign(client, center, lead_id, org["id"], kind="humanistic_care", due_on="2027-01-10")
    assert resp.status_code == 201, resp.get_json()
    household_id = resp.get_json()["household"]["id"]
    chain = get(client, center, f"/api/v1/households/{household_id}/chain").get_json()
    (due,) = [d for d in chain["due"] if d["kind"] == "service"]
    assert (due["due_on"], due["title"]) == ("2027-01-10", "待提供服务：人文关怀")


def test_the_center_counts_services_by_organisation_and_kind(
    client, center, lead_id, volunteer_login
):
    org = register(client, center)
    other = register(client, center, name="某企业志愿者协会", kind="enterprise")
    vera = volunteer_login("vera", org=org)
    for kind in ("counselling", "counselling", "resource_linking"):
        a = assign(client, center, lead_id, org["id"], kind=kind).get_json()
        assert (
            post(client, vera, "/api/v1/services", served(assignment_id=a["id"])).status_code == 201
        )
    household_id = a["household"]["id"]
    direct = post(
        client,
        center,
        "/api/v1/services",
        served(org_id=other["id"], household_id=household_id, kind="capacity_building"),
    )
    assert direct.status_code == 201, direct.get_json()
    counts = get(client, center, "/api/v1/services/counts").get_json()
    table = {(c["org_name"], c["kind_label"]): c["services"] for c in counts}
    assert table == {
        ("博山区爱心志愿服务队", "心理疏导"): 2,
        ("博山区爱心志愿服务队", "资源链接"): 1,
        ("某企业志愿者协会", "能力提升"): 1,
    }
    assert {c["minutes"] for c in counts if c["kind"] == "counselling"} == {180}


def test_assignments_and_services_are_refused_outside_role_area_and_organisation(
    client, center, lead_id, volunteer_login, staff_login, resident_login
):
    org = register(client, center)
    far = register(client, center, name="白塔志愿队", towns=["baita"])
    baita = staff_login(role="town_staff", town="baita")
    assert assign(client, baita, lead_id, org["id"]).status_code == 404
    outside = assign(client, center, lead_id, far["id"])
    assert outside.status_code == 422 and error_code(outside) == "org_not_serving"
    a = assign(client, center, lead_id, org["id"]).get_json()
    stranger = volunteer_login("walt", org=register(client, center, name="另一队"))
    assert (
        post(client, stranger, "/api/v1/services", served(assignment_id=a["id"])).status_code == 404
    )
    assert get(client, stranger, "/api/v1/service-assignments").get_json() == []
    vera = volunteer_login("vera", org=org)
    assert assign(client, vera, lead_id, org["id"]).status_code == 403
    assert get(client, vera, "/api/v1/services/counts").status_code == 403
    alice = resident_login("bob")
    assert post(client, alice, "/api/v1/services", served(assignment_id=a["id"])).status_code == 403
    future = post(
        client, vera, "/api/v1/services", served(assignment_id=a["id"], served_on="2099-01-01")
    )
    assert future.status_code == 422
