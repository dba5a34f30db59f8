"""Volunteer teams, social organisations and enterprises: registered by the center, members
invited like helpers (role `volunteer`), reporting leads through the same intake as every
report, reading back only their own reports in plain words, refused everything else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.models import AuditEntry, Lead, LeadEvidence
from tests.builders import error_code, make_id_number, volunteers
from tests.builders.applications import photo_id
from tests.builders.dispatches import get, post
from tests.builders.volunteers import register

villages = volunteers.villages
volunteer_login = volunteers.volunteer_login


def report_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "孙大娘",
        "phone": "13800002222",
        "village": "cd-001",
        "summary": "独居老人，冬季取暖困难，行动不便",
        "categories": ["left_behind"],
    }
    body.update(overrides)
    return body


def test_the_center_registers_an_organisation_and_invites_a_member_who_becomes_a_volunteer(
    client, center, resident_login, villages, db
):
    org = register(client, center)
    assert (org["kind_label"], org["contact_phone"]) == ("志愿服务队", "137****1111")
    invited = post(client, center, f"/api/v1/social-orgs/{org['id']}/invitations").get_json()
    assert invited["link"].endswith(f"volunteer?code={invited['code']}")
    assert invited["qr_png"].startswith("data:image/png;base64,")
    vera = resident_login("vera")
    joined = post(client, vera, "/api/v1/volunteer/redeem", {"code": invited["code"].lower()})
    assert joined.status_code == 200, joined.get_json()
    assert (joined.get_json()["role"], joined.get_json()["org_name"]) == ("volunteer", org["name"])
    again = post(
        client, resident_login("walt"), "/api/v1/volunteer/redeem", {"code": invited["code"]}
    )
    assert again.status_code == 409 and error_code(again) == "invitation_unusable"
    members = get(client, center, f"/api/v1/social-orgs/{org['id']}/members").get_json()
    assert [m["user_id"] for m in members] == [vera.user_id]
    actions = set(db.scalars(select(AuditEntry.action)))
    assert {"social_org.registered", "social_invitation.created", "volunteer.joined"} <= actions


def test_a_volunteer_reports_a_lead_through_the_same_intake_with_their_organisations_channel(
    client, volunteer_login, center, db
):
    vera = volunteer_login("vera")
    photo = photo_id(client, vera)
    id_number = make_id_number()
    resp = post(
        client,
        vera,
        "/api/v1/volunteer/reports",
        report_body(id_number=id_number, photo_ids=[photo]),
    )
    assert resp.status_code == 201, resp.get_json()
    report = resp.get_json()
    assert (report["status"], report["status_text"]) == ("new", "已收到，工作人员正在核实")
    lead = db.scalar(select(Lead))
    assert (lead.channel.value, lead.name) == ("volunteer", "孙大娘")
    evidence = db.scalar(select(LeadEvidence))
    assert evidence.reporter_org == "志愿队-vera" and evidence.facts["photo_ids"] == [photo]
    # The same intake: an invalid ID number is refused as for any report.
    bad = post(client, vera, "/api/v1/volunteer/reports", report_body(id_number="123"))
    assert bad.status_code == 422 and "id_number" in bad.get_json()["errors"]
    # Staff see the report in the queue like any other.
    assert lead.priority_reasons[0].startswith("志愿者反映")
    queue = get(client, center, "/api/v1/leads?channel=volunteer").get_json()
    assert [i["id"] for i in queue["items"]] == [lead.id]


def test_an_enterprises_member_reports_with_the_enterprise_channel_only_in_towns_served(
    client, volunteer_login, center, db
):
    org = register(client, center, name="博山某热电公司", kind="enterprise")
    ed = volunteer_login("ed", org=org)
    outside = post(client, ed, "/api/v1/volunteer/reports", report_body(village="bt-001"))
    assert outside.status_code == 422 and error_code(outside) == "village_not_served"
    inside = post(client, ed, "/api/v1/volunteer/reports", report_body())
    assert inside.status_code == 201, inside.get_json()
    assert db.scalar(select(Lead.channel)).value == "enterprise"


def test_a_volunteer_reads_their_own_reports_status_in_plain_words_and_nothing_else(
    client, volunteer_login, center, staff_login, db
):
    vera = volunteer_login("vera")
    id_number = make_id_number()
    mine = post(client, vera, "/api/v1/volunteer/reports", report_body(id_number=id_number))
    mine = mine.get_json()
    # Staff later add to the same person's lead (a hotline call with more personal data).
    hotline = post(
        client,
        center,
        "/api/v1/leads",
        {
            "channel": "hotline",
            "name": "孙大娘",
            "summary": "邻居来电：老人住院，医疗费无力承担",
            "id_number": id_number,
            "phone": "13911112222",
            "town": "chengdong",
        },
    )
    assert hotline.status_code == 201
    lead_id = hotline.get_json()["lead"]["id"]
    issued = post(
        client,
        center,
        f"/api/v1/leads/{lead_id}/dispatches",
        {"unit_kind": "town", "unit_code": "chengdong", "instructions": "请入户核实"},
    )
    assert issued.status_code == 201, issued.get_json()
    read = get(client, vera, f"/api/v1/volunteer/reports/{mine['id']}").get_json()
    assert (read["status"], read["status_text"]) == ("dispatched", "已转交镇街或部门办理")
    text = str(read)
    assert "住院" not in text and "13911112222" not in text and "139****2222" not in text
    assert read["phone"] == "138****2222"  # what they reported, masked
    listed = get(client, vera, "/api/v1/volunteer/reports").get_json()
    assert [r["id"] for r in listed["items"]] == [mine["id"]]


def test_a_volunteer_is_refused_leads_and_others_reports(client, volunteer_login, center):
    vera = volunteer_login("vera")
    walt = volunteer_login("walt")
    theirs = post(client, walt, "/api/v1/volunteer/reports", report_body()).get_json()
    mine = post(client, vera, "/api/v1/volunteer/reports", report_body(name="钱大爷")).get_json()
    assert get(client, vera, f"/api/v1/volunteer/reports/{theirs['id']}").status_code == 404
    assert get(client, vera, "/api/v1/leads").status_code == 403
    lead_ids = [i["id"] for i in get(client, center, "/api/v1/leads").get_json()["items"]]
    for lead_id in lead_ids:  # not even the lead their own report opened
        assert get(client, vera, f"/api/v1/leads/{lead_id}").status_code == 403
    assert get(client, vera, "/api/v1/households").status_code == 403
    assert post(client, vera, "/api/v1/social-orgs", {"name": "x"}).status_code == 403
    assert [
        r["id"] for r in get(client, vera, "/api/v1/volunteer/reports").get_json()["items"]
    ] == [mine["id"]]


def test_only_the_center_registers_organisations_and_only_volunteers_report(
    client, staff_login, resident_login, villages, center
):
    town = staff_login(role="town_staff")
    assert post(client, town, "/api/v1/social-orgs", {"name": "x"}).status_code == 403
    org = register(client, center)
    assert post(client, town, f"/api/v1/social-orgs/{org['id']}/invitations").status_code == 403
    alice = resident_login("alice")
    assert post(client, alice, "/api/v1/volunteer/reports", report_body()).status_code == 403
    assert get(client, alice, "/api/v1/volunteer/reports").status_code == 403


def test_a_revoked_volunteer_is_a_resident_again_and_can_no_longer_report(
    client, volunteer_login, center, db
):
    vera = volunteer_login("vera")
    org_id = get(client, center, "/api/v1/social-orgs").get_json()[0]["id"]
    resp = post(client, center, f"/api/v1/social-orgs/{org_id}/members/{vera.user_id}/revoke")
    assert resp.status_code == 200 and resp.get_json()["role"] == "resident"
    assert post(client, vera, "/api/v1/volunteer/reports", report_body()).status_code == 403
