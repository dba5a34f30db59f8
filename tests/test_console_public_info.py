"""公开信息 in the console: the center edits the policy texts and the phone numbers residents
see (through services/places/public_info, audited); other roles are refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.models import AuditEntry, ContactKind, PolicyInfo, PublicContact
from tests.console_helpers import console_login, post

PASSWORD = "correct-horse-9"


def _audit(db, action: str) -> list[AuditEntry]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _policy_form(**overrides: str) -> dict[str, str]:
    form = {
        "title": "临时救助",
        "summary": "遭遇急难的家庭可申请。",
        "eligibility": "因病致贫\n突发事故",
        "documents": "身份证\n医疗票据",
        "duration": "7个工作日",
        "how_to_apply": "在小程序中提交申请",
    }
    form.update(overrides)
    return form


def test_the_center_edits_a_policy_and_adds_one(client, staff, db):
    csrf = console_login(client, staff("center_staff"), PASSWORD)
    page = client.get("/console/public-info")
    assert page.status_code == 200 and "政策信息" in page.text and "联系电话" in page.text
    assert 'href="/console/public-info"' in page.text
    code = db.scalar(select(PolicyInfo.code).order_by(PolicyInfo.sort_order))
    resp = post(client, f"/console/public-info/policies/{code}", csrf, **_policy_form())
    assert resp.status_code == 303
    db.expire_all()
    saved = db.scalar(select(PolicyInfo).where(PolicyInfo.code == code))
    assert saved.title == "临时救助" and saved.eligibility == ["因病致贫", "突发事故"]
    assert saved.documents == ["身份证", "医疗票据"]
    added = post(
        client,
        "/console/public-info/policies",
        csrf,
        code="new_aid",
        **_policy_form(title="新政策"),
    )
    assert added.status_code == 303
    assert "新政策" in client.get("/console/public-info").text
    assert {a.detail["code"] for a in _audit(db, "public_policy.saved")} == {code, "new_aid"}
    missing = post(client, f"/console/public-info/policies/{code}", csrf, title="缺字段")
    assert missing.status_code == 422


def test_the_center_edits_adds_and_removes_contacts(client, staff, db):
    csrf = console_login(client, staff("center_staff"), PASSWORD)
    hotline = db.scalar(
        select(PublicContact).where(PublicContact.kind == ContactKind.DISTRICT_HOTLINE)
    )
    resp = post(
        client,
        f"/console/public-info/contacts/{hotline.id}",
        csrf,
        name=hotline.name,
        phone="0533-4189999",
        note="工作日 8:30-17:30",
    )
    assert resp.status_code == 303
    db.expire_all()
    hotline = db.get(PublicContact, hotline.id)
    assert hotline.phone == "0533-4189999" and not hotline.is_demo
    assert _audit(db, "public_contact.edited")
    added = post(
        client, "/console/public-info/contacts", csrf, name="民政局办公室", phone="0533-4100000"
    )
    assert added.status_code == 303
    extra = db.scalar(select(PublicContact).where(PublicContact.name == "民政局办公室"))
    assert extra.kind is ContactKind.OTHER
    extra_id = extra.id
    page = client.get("/console/public-info").text
    assert f'id="contact-{extra.id}"' in page and "data-confirm" in page
    assert (
        post(client, f"/console/public-info/contacts/{hotline.id}/remove", csrf).status_code == 409
    )
    assert post(client, f"/console/public-info/contacts/{extra_id}/remove", csrf).status_code == 303
    db.expire_all()
    assert db.get(PublicContact, extra_id) is None
    assert [a.target_id for a in _audit(db, "public_contact.removed")] == [extra_id]


def test_posts_without_csrf_are_refused(client, staff, db):
    console_login(client, staff("center_staff"), PASSWORD)
    resp = client.post("/console/public-info/contacts", data={"name": "x", "phone": "12345"})
    assert resp.status_code == 400
    assert db.scalar(select(PublicContact).where(PublicContact.name == "x")) is None


@pytest.mark.parametrize(
    "role", ["town_staff", "leader", "department_staff", "system_admin", "audit_admin"]
)
def test_other_roles_get_403(client, staff, role):
    csrf = console_login(client, staff(role), PASSWORD)
    assert client.get("/console/public-info").status_code == 403
    resp = post(client, "/console/public-info/contacts", csrf, name="x", phone="12345")
    assert resp.status_code == 403
