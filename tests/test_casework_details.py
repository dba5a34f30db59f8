"""Smaller casework rules found when tried as a new user would, each through HTTP on both
engines: outcomes that fit the application's kind, a 110 report's summary, a visit's next date
after its hardship is raised, 五保户 as 特困, landlines where a household may have no mobile,
and a yearly feed that never sent."""

from __future__ import annotations

from sqlalchemy import select

from server.models import RosterEntry
from tests.builders import error_code, make_id_number
from tests.builders.applications import application_body, file, on_behalf, photo_id, village
from tests.builders.decisions import file_kinds, investigated, signed_slip
from tests.builders.dispatches import decisions_body, post
from tests.builders.visits import record
from tests.feedfiles import csv_bytes, upload


def test_an_outcome_that_does_not_answer_the_applications_kind_is_refused_on_that_field(
    client, resident_login, staff_login, db
):
    village(db)
    alice = resident_login("alice")
    center = staff_login(role="center_staff")
    chengdong = staff_login(role="town_staff", town="chengdong")
    ids = file_kinds(client, alice, ("medical", "temporary"))
    investigated(client, chengdong, ids["medical"])
    direct = post(
        client, chengdong, f"/api/v1/applications/{ids['medical']}/decide", {"outcome": "dibao"}
    )
    assert direct.status_code == 422 and error_code(direct) == "outcome_not_for_kind"
    assert "医疗救助" in direct.get_json()["errors"]["outcome"][0]
    _, slip = signed_slip(client, center, chengdong, db, ids["temporary"])
    body = decisions_body((ids["temporary"], "medical_aid"), amount="3000")
    answered = post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", body)
    assert answered.status_code == 422 and error_code(answered) == "outcome_not_for_kind"
    assert "decisions.0.outcome" in answered.get_json()["errors"]
    fits = decisions_body((ids["temporary"], "temporary_aid"), amount="3000")
    assert (
        post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", fits).status_code
        == 200
    )


def test_a_basic_living_application_may_end_in_whichever_of_dibao_tekun_or_temporary_aid_fits(
    client, resident_login, staff_login, db
):
    """The district's rule: the town places a basic-living hardship in 低保, 特困 or 临时救助,
    whichever its investigation shows; a 医疗救助 application may end in 临时救助 after a
    sudden grave illness (《社会救助暂行办法》第四十七条)."""
    village(db)
    alice = resident_login("alice")
    chengdong = staff_login(role="town_staff", town="chengdong")
    ids = file_kinds(client, alice, ("temporary", "medical"))
    for kind, outcome, body in (
        ("temporary", "dibao", {}),
        ("medical", "temporary_aid", {"amount": "3000"}),
    ):
        investigated(client, chengdong, ids[kind])
        path = f"/api/v1/applications/{ids[kind]}/decide"
        resp = post(client, chengdong, path, {"outcome": outcome, **body})
        assert resp.status_code == 200, resp.get_json()


def test_a_110_reports_evidence_summary_does_not_repeat_its_label(client, staff_login, db):
    center = staff_login(role="center_staff")
    resp = client.post(
        "/api/v1/leads",
        headers=center.headers,
        json={
            "channel": "police_110",
            "name": "孙二",
            "summary": "110转来：夜间在桥下发现一名流浪老人",
            "town": "chengdong",
            "categories": ["vagrant"],
        },
    )
    assert resp.status_code == 201, resp.get_json()
    (evidence,) = resp.get_json()["lead"]["evidence"]
    assert evidence["summary"] == "110转来：夜间在桥下发现一名流浪老人"


def test_raising_a_visits_hardship_works_out_its_next_visit_again(client, helper_login, db):
    village(db, code="cd-001")
    hank = helper_login("hank", village="cd-001")
    made = record(client, hank, hardship="none", visited_on="2026-12-01")
    assert made.status_code == 201, made.get_json()
    visit = made.get_json()
    assert visit["next_visit_on"] == "2027-03-01"  # 90 days: no hardship
    raised = client.patch(
        f"/api/v1/visits/{visit['id']}",
        headers=hank.headers,
        json={"hardship": "severe", "version": visit["version"]},
    )
    assert raised.status_code == 200, raised.get_json()
    assert raised.get_json()["next_visit_on"] == "2026-12-08"  # 7 days: severe


def test_wubaohu_in_the_civil_affairs_feed_is_tekun(client, staff_login, db):
    center = staff_login(role="center_staff")
    rows = [
        ["姓名", "身份证号", "救助类别", "批准日期"],
        ["周五", make_id_number(), "农村五保户", "2025-03-01"],
    ]
    resp = upload(client, center, "civil_affairs_new", csv_bytes(rows), "roster.csv")
    assert resp.status_code == 201 and resp.get_json()["rejected"] == [], resp.get_json()
    db.expire_all()
    assert db.scalar(select(RosterEntry.programme)).value == "tekun"


def test_landlines_are_accepted_where_a_household_may_have_no_mobile(
    client, staff_login, helper_login, resident_login, db
):
    village(db, code="cd-001")
    alice = resident_login("alice")
    center = staff_login(role="center_staff")
    report = client.post(
        "/api/v1/leads",
        headers=center.headers,
        json={
            "channel": "hotline",
            "name": "吴大爷",
            "summary": "独居老人，家中只有座机",
            "phone": "0533-4181234",
            "town": "chengdong",
        },
    )
    assert report.status_code == 201, report.get_json()
    hank = helper_login("hank", village="cd-001")
    assert record(client, hank, phone="0533-4185678").status_code == 201
    body = application_body(photos=[photo_id(client, hank)], on_behalf=on_behalf())
    body["applicant"]["phone"] = "0533 4189999"
    filed = file(client, hank, body)
    assert filed.status_code == 201, filed.get_json()
    own = application_body(photos=[photo_id(client, alice)])  # a resident's own phone is mobile
    own["applicant"]["phone"] = "0533-4189999"
    refused = file(client, alice, own)
    assert refused.status_code == 422 and "applicant.phone" in refused.get_json()["errors"]


def test_a_yearly_feed_that_never_sent_says_so_plainly(client, staff_login):
    center = staff_login(role="center_staff")
    items = {
        f["code"]: f
        for f in client.get("/api/v1/feeds", headers=center.headers).get_json()["items"]
    }
    yearly = items["education_aid"]
    assert yearly["state"] == "never_sent"
    assert yearly["state_label"].startswith("从未报送数据"), yearly
    assert "工作日" not in yearly["state_label"] and yearly["late_by_working_days"] == 0
