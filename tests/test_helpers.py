"""Village helpers: invited by staff of their town, redeemed once, revoked, filing on behalf."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from server.models import AuditEntry, HelperInvitation
from tests.builders import error_code
from tests.test_applications import application_body, file, on_behalf, photo_id, village


@pytest.fixture
def villages(db):
    """cd-001 in 城东 (chengdong) and bt-001 in 白塔 (baita)."""
    from server.models import Town

    village(db, code="cd-001")
    village(db, code="bt-001", town_id=db.scalar(select(Town.id).where(Town.code == "baita")))


def invite(client, login, village_code="cd-001"):
    return client.post(
        "/api/v1/helpers/invitations", json={"village": village_code}, headers=login.headers
    )


def redeem(client, login, code):
    return client.post("/api/v1/helpers/redeem", json={"code": code}, headers=login.headers)


def test_town_staff_invite_for_their_own_village(client, villages, staff_login):
    resp = invite(client, staff_login(role="town_staff", town="chengdong"))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert len(body["code"]) == 10
    assert body["page"] == f"pages/helper/redeem?code={body['code']}"


def test_the_qr_code_decodes_to_the_redeem_page_with_the_code(client, villages, staff_login):
    body = invite(client, staff_login()).get_json()
    png = base64.b64decode(body["qr_png"].removeprefix("data:image/png;base64,"))
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [d.text for d in decoded] == [body["page"]]


def test_the_code_is_stored_only_as_a_hash(client, villages, staff_login, db):
    code = invite(client, staff_login()).get_json()["code"]
    stored = db.scalar(select(HelperInvitation))
    assert code not in stored.code_hash


def test_town_staff_cannot_invite_for_another_towns_village(client, villages, staff_login):
    resp = invite(client, staff_login(role="town_staff", town="chengdong"), "bt-001")
    assert resp.status_code == 404


@pytest.mark.parametrize("role", ["department_staff", "leader"])
def test_other_staff_roles_cannot_invite(client, villages, staff_login, role):
    assert invite(client, staff_login(role=role)).status_code == 403


def test_residents_cannot_invite(client, villages, resident_login):
    assert invite(client, resident_login()).status_code == 403


def test_a_wechat_user_redeems_and_becomes_the_villages_helper(
    client, villages, staff_login, resident_login, db
):
    code = invite(client, staff_login()).get_json()["code"]
    login = resident_login("hank")
    resp = redeem(client, login, code.lower()[:5] + " " + code.lower()[5:])
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["village"] == "cd-001"
    me = client.get("/api/v1/me", headers=login.headers).get_json()
    assert me["role"] == "helper"
    actions = db.scalars(select(AuditEntry.action)).all()
    assert "helper.appointed" in actions


def test_a_code_redeems_once(client, villages, staff_login, resident_login):
    code = invite(client, staff_login()).get_json()["code"]
    assert redeem(client, resident_login("first"), code).status_code == 200
    second = redeem(client, resident_login("second"), code)
    assert second.status_code == 409
    assert error_code(second) == "invitation_unusable"


def test_an_expired_code_is_refused(client, villages, staff_login, resident_login, db):
    code = invite(client, staff_login()).get_json()["code"]
    invitation = db.scalar(select(HelperInvitation))
    invitation.expires_at = invitation.created_at - timedelta(seconds=1)
    db.commit()
    assert error_code(redeem(client, resident_login(), code)) == "invitation_unusable"


def test_a_revoked_invitation_is_refused(client, villages, staff_login, resident_login):
    staff = staff_login()
    created = invite(client, staff).get_json()
    path = f"/api/v1/helpers/invitations/{created['id']}/revoke"
    assert client.post(path, headers=staff.headers).status_code == 200
    assert client.get("/api/v1/helpers/invitations", headers=staff.headers).get_json() == []
    assert error_code(redeem(client, resident_login(), created["code"])) == "invitation_unusable"


def test_an_unknown_code_is_refused(client, villages, resident_login):
    assert error_code(redeem(client, resident_login(), "ABCDEFGHJK")) == "invitation_unusable"


def test_staff_cannot_redeem(client, villages, staff_login):
    code = invite(client, staff_login()).get_json()["code"]
    assert redeem(client, staff_login(role="town_staff"), code).status_code == 403


def _helper(client, staff_login, resident_login, name="hank", village_code="cd-001"):
    code = invite(client, staff_login(), village_code).get_json()["code"]
    login = resident_login(name)
    assert redeem(client, login, code).status_code == 200
    return login


def test_staff_list_the_helpers_of_their_own_villages(
    client, villages, staff_login, resident_login
):
    _helper(client, staff_login, resident_login, "hank", "cd-001")
    _helper(client, staff_login, resident_login, "bill", "bt-001")
    chengdong = staff_login(role="town_staff", town="chengdong")
    listed = client.get("/api/v1/helpers", headers=chengdong.headers).get_json()
    assert [h["village"] for h in listed] == ["cd-001"]
    everyone = client.get("/api/v1/helpers", headers=staff_login(role="leader").headers)
    assert len(everyone.get_json()) == 2


def test_revoking_a_helper_makes_them_a_resident_again(
    client, villages, staff_login, resident_login
):
    helper = _helper(client, staff_login, resident_login)
    path = f"/api/v1/helpers/{helper.user_id}/revoke"
    other_town = staff_login(role="town_staff", town="baita")
    assert client.post(path, headers=other_town.headers).status_code == 404
    own_town = staff_login(role="town_staff", town="chengdong")
    assert client.post(path, headers=own_town.headers).get_json()["role"] == "resident"
    assert client.get("/api/v1/me", headers=helper.headers).get_json()["role"] == "resident"
    assert client.get("/api/v1/helper/filings", headers=helper.headers).status_code == 403


def test_a_helper_lists_their_filings_with_status(client, villages, staff_login, resident_login):
    helper = _helper(client, staff_login, resident_login)
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    filed = file(client, helper, body)
    assert filed.status_code == 201, filed.get_json()
    listed = client.get("/api/v1/helper/filings", headers=helper.headers).get_json()
    assert listed["total"] == 1
    assert listed["items"][0]["status"] == "submitted"
    assert "*" in listed["items"][0]["id_number"]


def test_a_helper_of_village_a_cannot_file_for_village_b(
    client, villages, staff_login, resident_login
):
    helper = _helper(client, staff_login, resident_login, village_code="cd-001")
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    body["applicant"] = {**body["applicant"], "town": "baita", "village": "bt-001"}
    resp = file(client, helper, body)
    assert resp.status_code == 403
    assert error_code(resp) == "not_your_village"


def test_residents_have_no_filings_list(client, resident_login):
    assert client.get("/api/v1/helper/filings", headers=resident_login().headers).status_code == 403
