"""Public information: policies and contacts readable without login, maintained by the center."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.models import AuditEntry, PolicyInfo, PublicContact, Town
from server.services.places.areas import TOWNS
from server.services.places.public_info import seed_public_info
from tests.builders import error_code

NEW_DIBAO = {
    "title": "最低生活保障（低保）",
    "summary": "家庭人均收入低于低保标准的，可以申请。",
    "eligibility": ["本区户籍", "人均收入低于标准"],
    "documents": ["身份证", "户口簿"],
    "duration": "30个工作日内",
    "how_to_apply": "小程序申请",
}


def test_policies_are_public_and_cover_the_four_kinds_of_aid(client):
    resp = client.get("/api/v1/public/policies")
    assert resp.status_code == 200
    policies = {p["code"]: p for p in resp.get_json()}
    assert list(policies) == ["dibao", "tekun", "temporary", "medical"]
    for policy in policies.values():
        assert policy["eligibility"] and policy["documents"]
        assert policy["duration"] and policy["how_to_apply"]
    assert "身份证" in policies["dibao"]["documents"][0]
    assert "5个工作日" in policies["temporary"]["duration"]


def test_contacts_are_public_hotline_first_and_one_platform_per_town(client):
    resp = client.get("/api/v1/public/contacts")
    assert resp.status_code == 200
    contacts = resp.get_json()
    assert contacts[0]["kind"] == "district_hotline"
    towns = [c for c in contacts if c["kind"] == "town_platform"]
    assert [c["town"] for c in towns] == [code for code, *_ in TOWNS]
    assert all(c["phone"] for c in contacts)


def test_placeholder_numbers_are_marked_as_demo(client):
    contacts = client.get("/api/v1/public/contacts").get_json()
    hotline = contacts[0]
    assert hotline["is_demo"] is True
    assert "演示号码" in hotline["note"]
    assert all(c["is_demo"] for c in contacts if c["kind"] == "town_platform")


def test_center_staff_rewrite_a_policy_and_the_public_sees_it(client, staff_login, db):
    center = staff_login(role="center_staff")
    resp = client.put("/api/v1/public/policies/dibao", json=NEW_DIBAO, headers=center.headers)
    assert resp.status_code == 200, resp.get_json()
    dibao = client.get("/api/v1/public/policies").get_json()[0]
    assert dibao["summary"] == NEW_DIBAO["summary"]
    assert dibao["updated_at"] is not None
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "public_policy.saved"))
    assert entry.actor_id == center.user_id
    assert entry.detail["new"]["summary"] == NEW_DIBAO["summary"]


def test_center_staff_add_a_new_kind_of_aid(client, staff_login):
    center = staff_login(role="center_staff")
    body = {**NEW_DIBAO, "title": "教育救助", "sort_order": 9}
    assert (
        client.put("/api/v1/public/policies/education", json=body, headers=center.headers)
    ).status_code == 200
    codes = [p["code"] for p in client.get("/api/v1/public/policies").get_json()]
    assert codes[-1] == "education"


def test_a_policy_code_must_be_plain(client, staff_login):
    center = staff_login(role="center_staff")
    resp = client.put("/api/v1/public/policies/低保", json=NEW_DIBAO, headers=center.headers)
    assert resp.status_code == 422


def test_changing_a_towns_number_confirms_it_and_updates_the_town(client, staff_login, db):
    center = staff_login(role="center_staff")
    contacts = client.get("/api/v1/public/contacts").get_json()
    baita = next(c for c in contacts if c["town"] == "baita")
    resp = client.patch(
        f"/api/v1/public/contacts/{baita['id']}",
        json={"phone": "0533-4999999"},
        headers=center.headers,
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["is_demo"] is False
    assert db.scalar(select(Town.phone).where(Town.code == "baita")) == "0533-4999999"


def test_center_staff_add_and_remove_an_extra_line(client, staff_login):
    center = staff_login(role="center_staff")
    resp = client.post(
        "/api/v1/public/contacts",
        json={"kind": "other", "name": "区社会救助综合服务中心", "phone": "0533-4180001"},
        headers=center.headers,
    )
    assert resp.status_code == 201, resp.get_json()
    contact_id = resp.get_json()["id"]
    assert contact_id in [c["id"] for c in client.get("/api/v1/public/contacts").get_json()]
    deleted = client.delete(f"/api/v1/public/contacts/{contact_id}", headers=center.headers)
    assert deleted.status_code == 204
    assert contact_id not in [c["id"] for c in client.get("/api/v1/public/contacts").get_json()]


def test_the_hotline_and_town_platforms_cannot_be_removed(client, staff_login):
    center = staff_login(role="center_staff")
    hotline = client.get("/api/v1/public/contacts").get_json()[0]
    resp = client.delete(f"/api/v1/public/contacts/{hotline['id']}", headers=center.headers)
    assert resp.status_code == 409
    assert error_code(resp) == "contact_required"


def test_a_town_has_one_platform_number(client, staff_login):
    center = staff_login(role="center_staff")
    resp = client.post(
        "/api/v1/public/contacts",
        json={"kind": "town_platform", "town": "baita", "name": "白塔镇", "phone": "0533-1"},
        headers=center.headers,
    )
    assert resp.status_code == 409


def test_a_phone_number_has_digits(client, staff_login):
    center = staff_login(role="center_staff")
    hotline = client.get("/api/v1/public/contacts").get_json()[0]
    resp = client.patch(
        f"/api/v1/public/contacts/{hotline['id']}",
        json={"phone": "call us"},
        headers=center.headers,
    )
    assert resp.status_code == 422


WRITES = [
    ("PUT", "/api/v1/public/policies/dibao", NEW_DIBAO),
    ("POST", "/api/v1/public/contacts", {"kind": "other", "name": "x", "phone": "12345"}),
    ("PATCH", "/api/v1/public/contacts/1", {"phone": "12345"}),
    ("DELETE", "/api/v1/public/contacts/2", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_editing_needs_a_login(client, method, path, body):
    resp = client.open(path, method=method, json=body)
    assert resp.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize("role", ["town_staff", "department_staff", "leader"])
def test_only_center_staff_edit(client, staff_login, db, method, path, body, role):
    resp = client.open(path, method=method, json=body, headers=staff_login(role=role).headers)
    assert resp.status_code == 403
    assert db.scalar(select(AuditEntry.id).where(AuditEntry.action.like("public_%"))) is None


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_residents_and_helpers_cannot_edit(
    client, resident_login, helper_login, db, method, path, body
):
    from tests.builders.applications import village

    village(db)
    for login in (resident_login("rita"), helper_login("hank")):
        resp = client.open(path, method=method, json=body, headers=login.headers)
        assert resp.status_code == 403


def test_seeding_again_keeps_the_centers_edits_and_adds_nothing(client, staff_login, runtime):
    center = staff_login(role="center_staff")
    client.put("/api/v1/public/policies/dibao", json=NEW_DIBAO, headers=center.headers)
    with runtime.session_factory() as session:
        before = session.scalar(select(func.count()).select_from(PublicContact))
        seed_public_info(session)
        session.commit()
        assert session.scalar(select(func.count()).select_from(PublicContact)) == before
        assert session.scalar(select(func.count()).select_from(PolicyInfo)) == 4
        dibao = session.scalar(select(PolicyInfo).where(PolicyInfo.code == "dibao"))
        assert dibao.summary == NEW_DIBAO["summary"]


def test_a_removed_extra_line_stays_removed_after_seeding(client, staff_login, runtime):
    center = staff_login(role="center_staff")
    line = next(c for c in client.get("/api/v1/public/contacts").get_json() if c["kind"] == "other")
    client.delete(f"/api/v1/public/contacts/{line['id']}", headers=center.headers)
    with runtime.session_factory() as session:
        seed_public_info(session)
        session.commit()
    ids = [c["id"] for c in client.get("/api/v1/public/contacts").get_json()]
    assert line["id"] not in ids


def test_control_characters_are_refused(client, staff_login):
    center = staff_login(role="center_staff")
    body = {**NEW_DIBAO, "eligibility": ["本区户籍\x00"]}
    resp = client.put("/api/v1/public/policies/dibao", json=body, headers=center.headers)
    assert resp.status_code == 422


def test_a_service_point_has_a_place_for_the_map(client, staff_login):
    center = staff_login(role="center_staff")
    baita = next(
        c for c in client.get("/api/v1/public/contacts").get_json() if c["town"] == "baita"
    )
    place = {"address": "白塔镇政府便民服务中心", "latitude": 36.4581, "longitude": 117.8652}
    resp = client.patch(
        f"/api/v1/public/contacts/{baita['id']}", json=place, headers=center.headers
    )
    assert resp.status_code == 200, resp.get_json()
    shown = next(
        c for c in client.get("/api/v1/public/contacts").get_json() if c["id"] == baita["id"]
    )
    assert {k: shown[k] for k in place} == place


@pytest.mark.parametrize(
    "body",
    [{"latitude": 36.4}, {"latitude": 91, "longitude": 117.8}, {"longitude": 181, "latitude": 1}],
)
def test_a_place_needs_both_coordinates_in_range(client, staff_login, body):
    center = staff_login(role="center_staff")
    baita = next(
        c for c in client.get("/api/v1/public/contacts").get_json() if c["town"] == "baita"
    )
    resp = client.patch(f"/api/v1/public/contacts/{baita['id']}", json=body, headers=center.headers)
    assert resp.status_code == 422
