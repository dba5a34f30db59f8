"""A resident sees what we hold about them and asks for their account to be closed; the center
carries the request out, keeping what a law obliges us to keep (PIPL, issue 17)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.models import AuditEntry, AuthToken, InboxMessage, User
from tests.builders import make_id_number
from tests.builders.applications import application_body, file, photo_id


def _filed(client, login, **applicant):
    body = application_body(photos=[photo_id(client, login)])
    body["applicant"] = {**body["applicant"], **applicant}
    resp = file(client, login, body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _ask(client, login, **body):
    return client.post("/api/v1/me/deletion-request", json=body, headers=login.headers)


def test_a_resident_sees_everything_we_hold_about_them_unmasked(client, alice, db):  # noqa: F811
    person = make_id_number()
    filed = _filed(client, alice, id_number=person, phone="13900001111")
    resp = client.get("/api/v1/me/data", headers=alice.headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["account"]["id"] == alice.user_id and body["account"]["wechat_linked"] is True
    (application,) = body["applications"]
    assert application["number"] == filed["number"]
    assert application["id_number"] == person and application["phone"] == "13900001111"
    assert [m["title"] for m in body["messages"]]  # the "received" message
    (lead,) = body["leads"]
    assert lead["id"] == filed["lead_id"] and lead["status_label"] == "待研判"
    assert set(lead) == {"id", "status", "status_label", "channel", "categories", "created_at"}
    assert body["deletion_request"] is None


def test_looking_at_ones_own_data_is_audited(client, alice, db):  # noqa: F811
    client.get("/api/v1/me/data", headers=alice.headers)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "pii.viewed"))
    assert (entry.actor_id, entry.target_type, entry.target_id) == (
        alice.user_id,
        "user",
        alice.user_id,
    )


def test_asking_twice_is_asking_once(client, alice, db):  # noqa: F811
    first = _ask(client, alice, reason="不再需要")
    again = _ask(client, alice)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert first.get_json()["status"] == "pending"


def test_the_center_carries_out_a_request_keeping_applications_under_the_retention_duty(
    client,
    alice,
    staff_login,
    db,
):
    filed = _filed(client, alice)
    request_id = _ask(client, alice).get_json()["id"]
    center = staff_login(role="center_staff")
    listed = client.get("/api/v1/deletion-requests?status=pending", headers=center.headers)
    assert [r["id"] for r in listed.get_json()] == [request_id]
    resp = client.post(
        f"/api/v1/deletion-requests/{request_id}/decide",
        json={"outcome": "completed"},
        headers=center.headers,
    )
    assert resp.status_code == 200, resp.get_json()
    outcome = resp.get_json()["outcome"]
    assert outcome["wechat_unlinked"] is True and outcome["deleted"]["messages"] >= 1
    (kept,) = outcome["kept"]
    assert filed["number"] in kept["what"] and "依法保存" in kept["reason"]
    db.expire_all()
    user = db.get(User, alice.user_id)
    assert (user.openid, user.session_key_enc, user.is_active) == (None, None, False)
    assert (
        db.scalar(
            select(func.count()).select_from(InboxMessage).where(InboxMessage.user_id == user.id)
        )
        == 0
    )
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuthToken)
            .where(AuthToken.user_id == user.id, AuthToken.revoked_at.is_(None))
        )
        == 0
    )
    # Logged out at once; the same WeChat user logging in again starts a new, empty account.
    assert client.get("/api/v1/me/data", headers=alice.headers).status_code == 401


def test_a_request_already_decided_cannot_be_decided_again(client, alice, staff_login):  # noqa: F811
    request_id = _ask(client, alice).get_json()["id"]
    center = staff_login(role="center_staff")
    url = f"/api/v1/deletion-requests/{request_id}/decide"
    assert (
        client.post(url, json={"outcome": "completed"}, headers=center.headers).status_code == 200
    )
    again = client.post(url, json={"outcome": "completed"}, headers=center.headers)
    assert again.status_code == 409 and again.get_json()["code"] == "deletion_request_decided"


def test_a_refusal_needs_its_reason(client, alice, staff_login):  # noqa: F811
    request_id = _ask(client, alice).get_json()["id"]
    center = staff_login(role="center_staff")
    url = f"/api/v1/deletion-requests/{request_id}/decide"
    bare = client.post(url, json={"outcome": "refused"}, headers=center.headers)
    assert bare.status_code == 422 and bare.get_json()["code"] == "note_required"
    resp = client.post(
        url, json={"outcome": "refused", "note": "申请正在办理中"}, headers=center.headers
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "refused"
    assert client.get("/api/v1/me/data", headers=alice.headers).status_code == 200


@pytest.mark.parametrize(
    "role", ["town_staff", "department_staff", "leader", "system_admin", "audit_admin"]
)
def test_only_center_staff_handle_requests(client, staff_login, alice, role):  # noqa: F811
    request_id = _ask(client, alice).get_json()["id"]
    other = staff_login(role=role)
    assert client.get("/api/v1/deletion-requests", headers=other.headers).status_code == 403
    decide = client.post(
        f"/api/v1/deletion-requests/{request_id}/decide",
        json={"outcome": "completed"},
        headers=other.headers,
    )
    assert decide.status_code == 403
    assert client.get("/api/v1/deletion-requests", headers=alice.headers).status_code == 403


def test_staff_have_no_own_data_page_and_anonymous_callers_are_401(client, staff_login):
    center = staff_login(role="center_staff")
    assert client.get("/api/v1/me/data", headers=center.headers).status_code == 403
    assert (
        client.post("/api/v1/me/deletion-request", json={}, headers=center.headers).status_code
        == 403
    )
    assert client.get("/api/v1/me/data").status_code == 401
    assert client.post("/api/v1/me/deletion-request", json={}).status_code == 401
