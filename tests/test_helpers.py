"""Village helpers: invited by staff of their town, redeemed once, revoked, filing on behalf."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from server.models import Application, AuditEntry, HelperInvitation
from tests.builders import error_code
from tests.builders.applications import application_body, file, on_behalf, photo_id, village


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
    link = f"https://e-rescue.example.invalid/mp/redeem?code={body['code']}"
    assert body["link"] == link
    assert [d.text for d in decoded] == [link]


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


def test_staff_list_the_helpers_of_their_own_villages(client, villages, staff_login, helper_login):
    helper_login("hank", village="cd-001")
    helper_login("bill", village="bt-001")
    chengdong = staff_login(role="town_staff", town="chengdong")
    listed = client.get("/api/v1/helpers", headers=chengdong.headers).get_json()
    assert [h["village"] for h in listed] == ["cd-001"]
    everyone = client.get("/api/v1/helpers", headers=staff_login(role="leader").headers)
    assert len(everyone.get_json()) == 2


def test_revoking_a_helper_makes_them_a_resident_again_with_the_same_token(
    client, villages, staff_login, helper_login, db
):
    helper = helper_login()
    path = f"/api/v1/helpers/{helper.user_id}/revoke"
    other_town = staff_login(role="town_staff", town="baita")
    assert client.post(path, headers=other_town.headers).status_code == 404
    own_town = staff_login(role="town_staff", town="chengdong")
    assert client.post(path, headers=own_town.headers).get_json()["role"] == "resident"
    assert client.get("/api/v1/me", headers=helper.headers).get_json()["role"] == "resident"
    assert client.get("/api/v1/helper/filings", headers=helper.headers).status_code == 403
    assert "helper.revoked" in db.scalars(select(AuditEntry.action)).all()
    listed = client.get("/api/v1/helpers", headers=own_town.headers).get_json()
    assert listed == []


def test_a_helper_lists_their_filings_with_status(client, villages, helper_login):
    helper = helper_login()
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    filed = file(client, helper, body)
    assert filed.status_code == 201, filed.get_json()
    listed = client.get("/api/v1/helper/filings", headers=helper.headers).get_json()
    assert listed["total"] == 1
    assert listed["items"][0]["status"] == "submitted"
    assert "*" in listed["items"][0]["id_number"]


def test_a_helper_of_village_a_cannot_file_for_village_b(client, villages, helper_login, db):
    helper = helper_login(village="cd-001")
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    body["applicant"] = {**body["applicant"], "town": "baita", "village": "bt-001"}
    resp = file(client, helper, body)
    assert resp.status_code == 403
    assert error_code(resp) == "not_your_village"
    assert db.scalar(select(func.count()).select_from(Application)) == 0


def test_residents_have_no_filings_list(client, resident_login):
    assert client.get("/api/v1/helper/filings", headers=resident_login().headers).status_code == 403


def _decode(png: bytes) -> list[str]:
    return [d.text for d in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_the_qr_url_serves_a_png_of_the_redeem_page(client, villages, staff_login):
    staff = staff_login(role="town_staff", town="chengdong")
    created = invite(client, staff).get_json()
    resp = client.get(created["qr_url"], headers=staff.headers)
    assert resp.status_code == 200
    assert resp.mimetype == "image/png"
    assert "no-store" in resp.headers["Cache-Control"]
    assert resp.headers["X-Code-Kind"] == "link"
    assert _decode(resp.data) == [created["link"]]


def test_the_invitations_wxacode_carries_the_redeem_page_and_a_short_scene(
    client, villages, staff_login
):
    staff = staff_login(role="town_staff", town="chengdong")
    created = invite(client, staff).get_json()
    resp = client.get(created["qr_url"] + "&kind=wxacode", headers=staff.headers)
    assert resp.headers["X-Code-Kind"] == "wxacode"
    assert _decode(resp.data) == [f"pages/helper/redeem?scene=i={created['code']}"]


def test_the_qr_png_needs_the_invitations_code(client, villages, staff_login):
    staff = staff_login()
    created = invite(client, staff).get_json()
    path = f"/api/v1/helpers/invitations/{created['id']}/qr.png"
    assert client.get(f"{path}?code=ABCDEFGHJK", headers=staff.headers).status_code == 404
    assert client.get(path, headers=staff.headers).status_code == 422


def test_town_staff_cannot_fetch_the_qr_of_another_towns_invitation(client, villages, staff_login):
    created = invite(client, staff_login(role="town_staff", town="chengdong")).get_json()
    other_town = staff_login(role="town_staff", town="baita")
    assert client.get(created["qr_url"], headers=other_town.headers).status_code == 404


@pytest.mark.parametrize("role", ["department_staff", "leader"])
def test_other_staff_roles_cannot_fetch_a_qr(client, villages, staff_login, role):
    created = invite(client, staff_login()).get_json()
    assert client.get(created["qr_url"], headers=staff_login(role=role).headers).status_code == 403


def test_residents_cannot_fetch_a_qr(client, villages, staff_login, resident_login):
    created = invite(client, staff_login()).get_json()
    assert client.get(created["qr_url"], headers=resident_login().headers).status_code == 403


def test_a_used_invitation_has_no_qr_any_more(client, villages, staff_login, resident_login):
    staff = staff_login()
    created = invite(client, staff).get_json()
    assert redeem(client, resident_login(), created["code"]).status_code == 200
    resp = client.get(created["qr_url"], headers=staff.headers)
    assert resp.status_code == 409
    assert error_code(resp) == "invitation_unusable"


def test_the_code_never_reaches_the_audit_log(client, villages, staff_login, resident_login, db):
    code = invite(client, staff_login()).get_json()["code"]
    redeem(client, resident_login(), code)
    entries = db.scalars(select(AuditEntry)).all()
    assert {"helper_invitation.created", "helper.appointed"} <= {e.action for e in entries}
    assert all(code not in repr(e.detail) for e in entries)


def test_town_staff_see_only_their_towns_invitations(client, villages, staff_login):
    chengdong = staff_login(role="town_staff", town="chengdong")
    created = invite(client, chengdong).get_json()
    baita = staff_login(role="town_staff", town="baita")
    assert client.get("/api/v1/helpers/invitations", headers=baita.headers).get_json() == []
    revoke = f"/api/v1/helpers/invitations/{created['id']}/revoke"
    assert client.post(revoke, headers=baita.headers).status_code == 404
    listed = client.get("/api/v1/helpers/invitations", headers=chengdong.headers).get_json()
    assert [i["id"] for i in listed] == [created["id"]]


def test_a_helper_cannot_redeem_a_second_invitation(client, villages, staff_login, helper_login):
    helper = helper_login(village="cd-001")
    code = invite(client, staff_login(), "bt-001").get_json()["code"]
    resp = redeem(client, helper, code)
    assert resp.status_code == 403
    assert error_code(resp) == "already_a_helper"


def test_town_staff_cannot_list_another_towns_village(client, villages, staff_login, helper_login):
    helper_login(village="bt-001")
    chengdong = staff_login(role="town_staff", town="chengdong")
    resp = client.get("/api/v1/helpers?village=bt-001", headers=chengdong.headers)
    assert resp.status_code == 404
    baita = staff_login(role="town_staff", town="baita")
    listed = client.get("/api/v1/helpers?village=bt-001", headers=baita.headers).get_json()
    assert [h["village"] for h in listed] == ["bt-001"]


@pytest.mark.parametrize("role", ["department_staff"])
def test_department_staff_cannot_list_or_revoke_helpers(
    client, villages, staff_login, helper_login, role
):
    helper = helper_login()
    staff = staff_login(role=role)
    assert client.get("/api/v1/helpers", headers=staff.headers).status_code == 403
    path = f"/api/v1/helpers/{helper.user_id}/revoke"
    assert client.post(path, headers=staff.headers).status_code == 403


def test_residents_and_helpers_cannot_list_or_revoke_helpers(
    client, villages, helper_login, resident_login
):
    helper = helper_login()
    for login in (resident_login(), helper_login("other")):
        assert client.get("/api/v1/helpers", headers=login.headers).status_code == 403
        path = f"/api/v1/helpers/{helper.user_id}/revoke"
        assert client.post(path, headers=login.headers).status_code == 403


def test_leaders_list_but_cannot_revoke_helpers(client, villages, staff_login, helper_login):
    helper = helper_login()
    leader = staff_login(role="leader")
    assert len(client.get("/api/v1/helpers", headers=leader.headers).get_json()) == 1
    path = f"/api/v1/helpers/{helper.user_id}/revoke"
    assert client.post(path, headers=leader.headers).status_code == 403


def test_only_helpers_can_be_revoked(client, villages, staff_login, resident_login):
    resident = resident_login()
    path = f"/api/v1/helpers/{resident.user_id}/revoke"
    assert client.post(path, headers=staff_login().headers).status_code == 404


def test_anonymous_callers_get_401(client, villages):
    assert client.get("/api/v1/helpers").status_code == 401
    assert client.post("/api/v1/helpers/redeem", json={"code": "ABCDEFGHJK"}).status_code == 401
    assert client.get("/api/v1/helper/filings").status_code == 401


def test_filings_are_newest_first_paginated_and_only_the_helpers_own(
    client, villages, helper_login, resident_login
):
    helper = helper_login()
    names = ["张一", "张二", "张三"]
    for name in names:
        body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
        body["applicant"] = {**body["applicant"], "name": name}
        assert file(client, helper, body).status_code == 201
    other = helper_login("other")
    body = application_body(photos=[photo_id(client, other)], on_behalf=on_behalf())
    assert file(client, other, body).status_code == 201

    first = client.get("/api/v1/helper/filings?per_page=2", headers=helper.headers).get_json()
    assert first["total"] == 3
    assert [a["name"] for a in first["items"]] == ["张三", "张二"]
    second = client.get(
        "/api/v1/helper/filings?per_page=2&page=2", headers=helper.headers
    ).get_json()
    assert [a["name"] for a in second["items"]] == ["张一"]
    assert all(a["channel"] == "on_behalf" for a in first["items"] + second["items"])
    assert all("*" in a["phone"] for a in first["items"])


def test_a_filing_shows_its_new_status_once_staff_accept_it(
    client, villages, helper_login, staff_login
):
    helper = helper_login()
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    filed = file(client, helper, body).get_json()
    staff = staff_login(role="town_staff", town="chengdong")
    accepted = client.post(f"/api/v1/applications/{filed['id']}/accept", headers=staff.headers)
    assert accepted.status_code == 200, accepted.get_json()
    listed = client.get("/api/v1/helper/filings", headers=helper.headers).get_json()
    assert listed["items"][0]["status"] == accepted.get_json()["status"]
    assert listed["items"][0]["status"] != "submitted"
