"""协理员 in the console: inviting for a village (the code and its QR code shown once,
printable), the helpers with their filings and visits, revoking invitations and helpers."""

from __future__ import annotations

import base64
import io
import re

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from server.models import AuditEntry, HelperInvitation, Role, Town, User
from tests.builders.applications import village
from tests.console_helpers import console_login, csrf_of, post

PASSWORD = "correct-horse-9"


@pytest.fixture
def villages(db):
    """cd-001 in 城东 (chengdong) and bt-001 in 白塔 (baita)."""
    village(db, code="cd-001")
    village(db, code="bt-001", town_id=db.scalar(select(Town.id).where(Town.code == "baita")))


def _audit(db, action: str) -> list[AuditEntry]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_town_staff_invite_see_the_qr_code_and_revoke_the_invitation(client, staff, villages, db):
    csrf = console_login(client, staff("town_staff"), PASSWORD)
    page = client.get("/console/helpers")
    assert page.status_code == 200 and "邀请协理员" in page.text
    assert "测试村cd-001" in page.text and "测试村bt-001" not in page.text  # own town only
    made = post(client, "/console/helpers/invitations", csrf, village="cd-001")
    assert made.status_code == 201
    code = re.search(r'id="invitation-code">([A-Z0-9]+)<', made.text).group(1)
    qr = re.search(r'id="invitation-qr" src="data:image/png;base64,([^"]+)"', made.text).group(1)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(qr))))
    assert decoded and code in decoded[0].text
    assert "data-print" in made.text
    invitation = db.scalar(select(HelperInvitation))
    assert invitation.code_hash != code  # the code itself is never stored
    assert [a.target_id for a in _audit(db, "helper_invitation.created")] == [invitation.id]
    listed = client.get("/console/helpers").text
    assert f'id="invitation-{invitation.id}"' in listed and code not in listed
    assert 'data-confirm="确定撤销该邀请吗' in listed
    revoked = post(client, f"/console/helpers/invitations/{invitation.id}/revoke", csrf)
    assert revoked.status_code == 303
    assert f'id="invitation-{invitation.id}"' not in client.get("/console/helpers").text
    assert [a.target_id for a in _audit(db, "helper_invitation.revoked")] == [invitation.id]


def test_posts_without_csrf_are_refused(client, staff, villages, db):
    console_login(client, staff("town_staff"), PASSWORD)
    refused = client.post("/console/helpers/invitations", data={"village": "cd-001"})
    assert refused.status_code == 400
    assert db.scalar(select(HelperInvitation)) is None


def test_town_staff_cannot_invite_for_another_towns_village(client, staff, villages, db):
    csrf = console_login(client, staff("town_staff"), PASSWORD)
    assert post(client, "/console/helpers/invitations", csrf, village="bt-001").status_code == 404
    assert db.scalar(select(HelperInvitation)) is None


def test_helpers_are_listed_with_counts_and_revoked(client, staff, villages, helper_login, db):
    helper = helper_login("hank", village="cd-001")
    console = client.application.test_client()
    csrf = console_login(console, staff("town_staff"), PASSWORD)
    page = console.get("/console/helpers")
    row = page.text.split(f'id="helper-{helper.user_id}"')[1].split("</tr>")[0]
    assert "测试村cd-001" in row and "data-filings>0<" in row and "data-visits>0<" in row
    other_town = client.application.test_client()
    console_login(other_town, staff("town_staff", town="baita"), PASSWORD)
    assert f'id="helper-{helper.user_id}"' not in other_town.get("/console/helpers").text
    assert post(console, f"/console/helpers/{helper.user_id}/revoke", csrf).status_code == 303
    db.expire_all()
    assert db.get(User, helper.user_id).role is Role.RESIDENT
    assert [a.target_id for a in _audit(db, "helper.revoked")] == [helper.user_id]


def test_leaders_read_the_list_but_cannot_invite(client, staff, villages):
    csrf = console_login(client, staff("leader"), PASSWORD)
    page = client.get("/console/helpers")
    assert page.status_code == 200 and "协理员名单" in page.text and "生成邀请码" not in page.text
    assert post(client, "/console/helpers/invitations", csrf, village="cd-001").status_code == 403


@pytest.mark.parametrize("role", ["department_staff", "system_admin", "audit_admin"])
def test_other_roles_get_403(client, staff, villages, role):
    csrf = console_login(client, staff(role), PASSWORD)
    assert client.get("/console/helpers").status_code == 403
    assert post(client, "/console/helpers/invitations", csrf, village="cd-001").status_code == 403


def test_the_navigation_links_helpers_for_town_staff(client, staff):
    console_login(client, staff("town_staff"), PASSWORD)
    assert 'href="/console/helpers"' in client.get("/console/leads").text
    assert csrf_of(client.get("/console/helpers").text)
