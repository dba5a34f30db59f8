"""Staff handle applications in their own area: read, accept, investigate, decide; photos follow."""

from __future__ import annotations

import pytest

from tests.builders import error_code
from tests.builders.applications import application_body, file, make_helper, photo_id, village


@pytest.fixture
def filed(client, resident_login, db):
    """An application filed by a resident of 城东 (chengdong), with one photo."""
    village(db)
    login = resident_login("alice")
    photo = photo_id(client, login)
    resp = file(client, login, application_body(photos=[photo]))
    assert resp.status_code == 201, resp.get_json()
    return {"id": resp.get_json()["id"], "photo": photo, "login": login}


def _get(client, login, path):
    return client.get(path, headers=login.headers)


def _post(client, login, path, json=None):
    return client.post(path, headers=login.headers, json=json or {})


def test_town_staff_see_their_towns_applications(client, filed, staff_login):
    town = staff_login(role="town_staff", town="chengdong")
    listed = _get(client, town, "/api/v1/applications").get_json()
    assert [a["id"] for a in listed["items"]] == [filed["id"]]
    one = _get(client, town, f"/api/v1/applications/{filed['id']}")
    assert one.status_code == 200
    assert "*" in one.get_json()["id_number"]


def test_another_towns_staff_get_404_and_an_empty_list(client, filed, staff_login):
    other = staff_login(role="town_staff", town="baita")
    assert _get(client, other, "/api/v1/applications").get_json()["items"] == []
    assert _get(client, other, f"/api/v1/applications/{filed['id']}").status_code == 404


def test_center_staff_and_leaders_see_every_application(client, filed, staff_login):
    for role in ("center_staff", "leader"):
        login = staff_login(role=role)
        assert _get(client, login, f"/api/v1/applications/{filed['id']}").status_code == 200


def test_department_staff_cannot_list_applications(client, filed, staff_login):
    dept = staff_login(role="department_staff")
    assert _get(client, dept, "/api/v1/applications").status_code == 403


def test_list_filters_by_status_and_type(client, filed, staff_login):
    center = staff_login()
    assert _get(client, center, "/api/v1/applications?status=submitted").get_json()["total"] == 1
    assert _get(client, center, "/api/v1/applications?status=decided").get_json()["total"] == 0
    assert _get(client, center, "/api/v1/applications?type=medical").get_json()["total"] == 0
    assert _get(client, center, "/api/v1/applications?town=baita").get_json()["total"] == 0


def test_steps_move_forward_and_the_resident_reads_them(client, filed, staff_login):
    town = staff_login(role="town_staff", town="chengdong")
    base = f"/api/v1/applications/{filed['id']}"
    assert _post(client, town, f"{base}/accept").get_json()["status"] == "accepted"
    assert _post(client, town, f"{base}/investigate").get_json()["status"] == "investigating"
    decided = _post(client, town, f"{base}/decide", {"outcome": "dibao"}).get_json()
    assert decided["status"] == "decided"
    assert decided["outcome_label"] == "纳入低保"
    mine = _get(client, filed["login"], base).get_json()
    titles = [step["title"] for step in mine["timeline"]]
    assert titles[-1] == "办结：纳入低保"
    assert [step["status"] for step in mine["timeline"]] == [
        "submitted",
        "accepted",
        "investigating",
        "decided",
    ]


def investigated(client, login, application_id: int) -> None:
    """Take the application through 受理 and 调查核实."""
    base = f"/api/v1/applications/{application_id}"
    assert _post(client, login, f"{base}/accept").status_code == 200
    assert _post(client, login, f"{base}/investigate").status_code == 200


def test_not_eligible_needs_a_reason_the_resident_reads(client, filed, staff_login):
    center = staff_login()
    investigated(client, center, filed["id"])
    path = f"/api/v1/applications/{filed['id']}/decide"
    refused = _post(client, center, path, {"outcome": "not_eligible"})
    assert refused.status_code == 422
    assert "reason" in refused.get_json()["errors"]
    ok = _post(client, center, path, {"outcome": "not_eligible", "reason": "家庭收入高于标准"})
    assert ok.get_json()["timeline"][-1]["title"] == "办结：不符合条件（家庭收入高于标准）"


def test_accepting_twice_is_409_application_state(client, filed, staff_login):
    center = staff_login()
    base = f"/api/v1/applications/{filed['id']}"
    assert _post(client, center, f"{base}/accept").status_code == 200
    again = _post(client, center, f"{base}/accept")
    assert again.status_code == 409
    assert error_code(again) == "application_state"


def test_steps_cannot_be_skipped_or_taken_backwards(client, filed, staff_login):
    """提交 → 受理 → 调查核实 → 办结: deciding or investigating from 提交 is refused."""
    center = staff_login()
    base = f"/api/v1/applications/{filed['id']}"
    for path, body in ((f"{base}/decide", {"outcome": "dibao"}), (f"{base}/investigate", None)):
        refused = _post(client, center, path, body)
        assert (refused.status_code, error_code(refused)) == (409, "application_state")
    investigated(client, center, filed["id"])
    back = _post(client, center, f"{base}/accept")
    assert (back.status_code, error_code(back)) == (409, "application_state")
    mine = _get(client, filed["login"], base).get_json()
    assert [step["status"] for step in mine["timeline"]] == [
        "submitted",
        "accepted",
        "investigating",
    ]


def test_a_decided_application_cannot_be_withdrawn_or_decided_again(client, filed, staff_login):
    center = staff_login()
    base = f"/api/v1/applications/{filed['id']}"
    investigated(client, center, filed["id"])
    assert _post(client, center, f"{base}/decide", {"outcome": "dibao"}).status_code == 200
    again = _post(client, center, f"{base}/decide", {"outcome": "tekun"})
    assert (again.status_code, error_code(again)) == (409, "application_state")
    assert _post(client, filed["login"], f"{base}/withdraw").status_code == 409


def test_only_town_and_center_staff_take_steps(client, filed, staff_login, resident_login):
    path = f"/api/v1/applications/{filed['id']}/accept"
    for login in (
        filed["login"],
        staff_login(role="leader"),
        staff_login(role="department_staff"),
    ):
        assert _post(client, login, path).status_code == 403
    other_town = staff_login(role="town_staff", town="baita")
    assert _post(client, other_town, path).status_code == 404


def test_staff_cannot_withdraw_a_residents_application(client, filed, staff_login):
    path = f"/api/v1/applications/{filed['id']}/withdraw"
    assert _post(client, staff_login(), path).status_code == 403


def test_photos_follow_the_application_to_the_staff_of_its_area(client, filed, staff_login):
    path = f"/api/v1/uploads/{filed['photo']}"
    assert _get(client, staff_login(), path).status_code == 200
    assert _get(client, staff_login(role="leader"), path).status_code == 200
    assert _get(client, staff_login(role="town_staff", town="chengdong"), path).status_code == 200
    assert _get(client, staff_login(role="town_staff", town="baita"), path).status_code == 404
    assert _get(client, staff_login(role="department_staff"), path).status_code == 404


def test_on_behalf_phone_is_sealed_and_consent_shown(client, resident_login, db):
    from sqlalchemy import select

    from server.models import Application
    from tests.builders.applications import on_behalf

    helper = make_helper(db, resident_login("helper"))
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    resp = file(client, helper, body)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["on_behalf"]["consent_method"] == "verbal"
    stored = db.scalar(select(Application.on_behalf))
    assert "13900001111" not in str(stored)
