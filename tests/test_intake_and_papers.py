"""One open application per person and kind, papers added and asked for, 窗口办/电话办, 主动告知
(inform tasks), audited photo views, and the small things found when tried as a new user."""

from __future__ import annotations

import io
import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.clock import TZ
from server.models import AuditEntry, InboxMessage, InformTask, Lead, LeadEvidence
from tests.builders import dispatches as slips
from tests.builders import error_code, make_id_number, unique_jpeg
from tests.builders.applications import application_body, file, on_behalf, photo_id, village
from tests.builders.decisions import file_kinds, signed_slip
from tests.builders.dispatches import decisions_body, get, post

pytestmark = pytest.mark.usefixtures("long_lived_tokens")
at_time = slips.at_time
_keys = itertools.count(1)


@pytest.fixture
def alice(client, resident_login, db):
    village(db)
    return resident_login("alice")


@pytest.fixture
def town(staff_login, db):
    village(db)
    return staff_login(role="town_staff", town="chengdong")


def distinct_photos(client, login, n: int) -> list[int]:
    """`n` different photos."""
    ids = []
    for _ in range(n):
        resp = client.post(
            "/api/v1/uploads",
            headers=login.headers,
            data={"file": (io.BytesIO(unique_jpeg()), "p.jpg")},
            content_type="multipart/form-data",
        )
        ids.append(resp.get_json()["id"])
    assert len(set(ids)) == n
    return ids


def intake_body(**overrides: Any) -> dict[str, Any]:
    body = application_body(photos=[])
    body["applicant"]["phone"] = "0533-4181234"  # a landline: no mobile in the household
    body["intake"] = {"channel": "window", "consent_method": "verbal", "witness_name": "王五"}
    body.update(overrides)
    return body


def intake(client, login, body, *, key: str | None = None):
    headers = {**login.headers, "Idempotency-Key": key or f"intake-{next(_keys)}"}
    return client.post("/api/v1/applications/intake", json=body, headers=headers)


# --- one open application per person and kind -------------------------------------------------


def test_a_second_application_of_the_same_kind_while_one_is_open_is_409_naming_it(client, alice):
    id_number = make_id_number()
    first = file_kinds(client, alice, ("dibao",), id_number=id_number)["dibao"]
    body = application_body(photos=[photo_id(client, alice)])
    body["applicant"]["id_number"] = id_number
    again = file(client, alice, body)
    assert (again.status_code, error_code(again)) == (409, "application_open")
    assert f"SQ{first:08d}" in again.get_json()["message"]
    assert again.get_json()["errors"]["open_application"] == [f"SQ{first:08d}"]
    post(client, alice, f"/api/v1/applications/{first}/withdraw")
    assert file(client, alice, body).status_code == 201  # none open any more


def test_another_kind_for_the_same_person_is_filed(client, alice):
    assert len(file_kinds(client, alice, ("dibao", "temporary"))) == 2


# --- papers ---------------------------------------------------------------------------------


def test_staff_ask_for_papers_the_resident_adds_photos_and_the_timeline_shows_both(
    client, alice, town, db
):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    base = f"/api/v1/applications/{app_id}"
    asked = post(client, town, f"{base}/request-papers", {"what": "户口本首页及本人页"})
    assert asked.status_code == 200, asked.get_json()
    message = db.scalar(select(InboxMessage).where(InboxMessage.title == "请补充申请材料"))
    assert message.user_id == alice.user_id
    assert f"SQ{app_id:08d}" in message.body and "户口本首页及本人页" in message.body
    added = post(client, alice, f"{base}/photos", {"photo_ids": [photo_id(client, alice)]})
    assert added.status_code == 200, added.get_json()
    timeline = [(s["kind"], s["title"]) for s in added.get_json()["timeline"]]
    assert timeline[-2:] == [
        ("papers_requested", "请补充材料：户口本首页及本人页"),
        ("papers_added", "已补充材料（1 张照片）"),
    ]
    assert len(added.get_json()["photo_ids"]) == 2
    new_photo = added.get_json()["photo_ids"][-1]
    assert get(client, town, f"/api/v1/uploads/{new_photo}").status_code == 200


def test_photos_are_added_only_while_undecided_and_up_to_nine(client, alice, town):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    path = f"/api/v1/applications/{app_id}/photos"
    too_many = post(client, alice, path, {"photo_ids": distinct_photos(client, alice, 9)})
    assert too_many.status_code == 422
    assert "还可补充 8 张" in too_many.get_json()["errors"]["photo_ids"][0]
    post(client, alice, f"/api/v1/applications/{app_id}/withdraw")
    late = post(client, alice, path, {"photo_ids": [photo_id(client, alice)]})
    assert (late.status_code, error_code(late)) == (409, "application_state")


def test_only_the_filer_adds_photos(client, alice, resident_login):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    mallory = resident_login("mallory")
    resp = post(
        client,
        mallory,
        f"/api/v1/applications/{app_id}/photos",
        {"photo_ids": [photo_id(client, mallory)]},
    )
    assert resp.status_code == 404


def test_photo_counts_are_told_in_photos_not_characters(client, alice):
    resp = file(client, alice, application_body(photos=[]))
    assert resp.get_json()["errors"]["photo_ids"] == ["请上传 1 到 9 张照片"]


# --- 窗口办 / 电话办 ----------------------------------------------------------------------------


def test_town_staff_file_at_the_window_with_a_landline_and_the_lead_says_window(client, town, db):
    sent = intake_body()
    resp = intake(client, town, sent, key="w-1")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["channel"], body["intake"]["consent_method"]) == ("window", "verbal")
    assert body["phone"].startswith("053")
    assert db.get(Lead, body["lead_id"]).channel.value == "window"
    replay = intake(client, town, sent, key="w-1")
    assert (replay.status_code, replay.get_json()["id"]) == (201, body["id"])
    assert db.scalar(select(InboxMessage.id)) is None  # no WeChat to message


def test_a_phone_application_needs_the_calls_record_number(client, center, db):
    village(db)
    consent = {"channel": "phone", "consent_method": "recorded_call"}
    refused = intake(client, center, intake_body(intake=consent))
    assert "intake.call_record" in refused.get_json()["errors"]
    ok = intake(client, center, intake_body(intake={**consent, "call_record": "LY20261202-01"}))
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["channel"] == "phone"


def test_window_intake_is_checked_as_the_mini_program_is(client, town):
    bad_id = intake_body()
    bad_id["applicant"]["id_number"] = "370304198001011234"
    assert intake(client, town, bad_id).status_code == 422
    bad_phone = intake_body()
    bad_phone["applicant"]["phone"] = "12345"
    assert intake(client, town, bad_phone).get_json()["errors"]["applicant.phone"]
    no_witness = intake_body(intake={"channel": "window", "consent_method": "verbal"})
    assert "intake.witness_name" in intake(client, town, no_witness).get_json()["errors"]


def test_a_landline_is_not_accepted_in_the_mini_program(client, alice):
    body = application_body(photos=[photo_id(client, alice)])
    body["applicant"]["phone"] = "0533-4181234"
    assert file(client, alice, body).status_code == 422


def test_only_town_and_center_staff_file_at_the_window_and_towns_only_their_own(
    client, alice, staff_login, db
):
    assert intake(client, alice, intake_body()).status_code == 403
    assert intake(client, staff_login(role="department_staff"), intake_body()).status_code == 403
    other = staff_login(role="town_staff", town="baita")
    resp = intake(client, other, intake_body())
    assert (resp.status_code, error_code(resp)) == (403, "not_your_town")


# --- 主动告知 -----------------------------------------------------------------------------------


def decide_window_application(client, town, at_time) -> dict[str, Any]:
    at_time(2026, 11, 16, 10, 0)  # a Monday
    filed = intake(client, town, intake_body()).get_json()
    base = f"/api/v1/applications/{filed['id']}"
    for step in ("accept", "investigate"):
        post(client, town, f"{base}/{step}")
    decided = post(client, town, f"{base}/decide", {"outcome": "dibao"})
    assert decided.status_code == 200, decided.get_json()
    return filed


def test_a_decision_for_a_person_without_wechat_opens_an_inform_task_due_in_3_working_days(
    client, town, at_time
):
    filed = decide_window_application(client, town, at_time)
    tasks = get(client, town, "/api/v1/inform-tasks?state=open").get_json()
    assert tasks["total"] == 1
    task = tasks["items"][0]
    assert (task["lead_id"], task["due_date"], task["overdue"]) == (
        filed["lead_id"],
        "2026-11-19",
        False,
    )
    assert task["what"] == f"最低生活保障申请（SQ{filed['id']:08d}）：纳入低保"
    at_time(2026, 11, 20, 9, 0)
    overdue = get(client, town, "/api/v1/inform-tasks?state=overdue").get_json()
    assert [t["id"] for t in overdue["items"]] == [task["id"]]


def test_recording_the_telling_closes_the_task_once_and_the_month_counts_it_on_time(
    client, town, center, at_time
):
    decide_window_application(client, town, at_time)
    task = get(client, town, "/api/v1/inform-tasks").get_json()["items"][0]
    at_time(2026, 11, 18, 15, 0)
    told = {"method": "phone", "informed_at": "2026-11-18T14:30:00+08:00", "note": "本人接听"}
    done = post(client, town, f"/api/v1/inform-tasks/{task['id']}/informed", told)
    assert done.status_code == 200, done.get_json()
    assert (done.get_json()["method_label"], done.get_json()["on_time"]) == ("电话告知", True)
    again = post(client, town, f"/api/v1/inform-tasks/{task['id']}/informed", told)
    assert (again.status_code, error_code(again)) == (409, "already_informed")
    at_time(2026, 12, 2, 10, 0)
    report = get(client, center, "/api/v1/reports/monthly?month=2026-11").get_json()
    assert report["informed"] == {
        "due": 1,
        "leads_informed_on_time": 1,
        "informed_on_time": 1,
        "informed_late": 0,
        "not_informed": 0,
    }


def test_the_telling_cannot_be_dated_in_the_future(client, town, at_time):
    decide_window_application(client, town, at_time)
    task = get(client, town, "/api/v1/inform-tasks").get_json()["items"][0]
    later = (datetime(2026, 11, 16, 10, 0, tzinfo=TZ) + timedelta(days=1)).isoformat()
    resp = post(
        client,
        town,
        f"/api/v1/inform-tasks/{task['id']}/informed",
        {"method": "visit", "informed_at": later},
    )
    assert resp.status_code == 422


def test_a_resident_with_wechat_gets_no_inform_task(client, alice, center, chengdong, db):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    _, slip = signed_slip(client, center, chengdong, db, app_id)
    post(
        client,
        chengdong,
        f"/api/v1/dispatches/{slip['id']}/feedback",
        decisions_body((app_id, "dibao")),
    )
    assert db.scalar(select(InformTask.id)) is None


def test_a_feed_or_hotline_lead_answered_by_a_slip_gets_an_inform_task(
    client, center, chengdong, db
):
    lead_id = slips.make_lead(client, center)
    slip = slips.issued(client, center, lead_id)
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", slips.feedback_body())
    task = db.scalar(select(InformTask))
    assert (task.lead_id, task.what) == (lead_id, "纳入低保")
    towns = get(client, chengdong, "/api/v1/inform-tasks").get_json()
    assert [t["lead_id"] for t in towns["items"]] == [lead_id]


def test_a_helper_who_filed_sees_the_task_and_the_messages_name_the_person(
    client, resident_login, staff_login, db
):
    from tests.builders.applications import make_helper

    helper = make_helper(db, resident_login("hank"))
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    body["applicant"]["name"] = "赵六"
    app_id = file(client, helper, body).get_json()["id"]
    inbox = db.scalar(select(InboxMessage.body).where(InboxMessage.user_id == helper.user_id))
    assert inbox.startswith(f"您为赵六代办的最低生活保障申请（SQ{app_id:08d}）")
    town = staff_login(role="town_staff", town="chengdong")
    base = f"/api/v1/applications/{app_id}"
    for step in ("accept", "investigate"):
        post(client, town, f"{base}/{step}")
    post(client, town, f"{base}/decide", {"outcome": "tekun"})
    tasks = get(client, helper, "/api/v1/inform-tasks").get_json()
    assert tasks["total"] == 1 and tasks["items"][0]["name"] == "赵六"


def test_others_do_not_see_a_towns_inform_tasks(client, town, staff_login, at_time):
    decide_window_application(client, town, at_time)
    other = staff_login(role="town_staff", town="baita")
    assert get(client, other, "/api/v1/inform-tasks").get_json()["total"] == 0
    assert (
        get(client, staff_login(role="department_staff"), "/api/v1/inform-tasks").status_code == 403
    )


# --- audited photo views, small things ---------------------------------------------------------


def test_staff_opening_a_residents_photo_is_audited_and_the_owner_is_not(client, alice, town, db):
    photo = photo_id(client, alice)
    file(client, alice, application_body(photos=[photo]))
    assert get(client, alice, f"/api/v1/uploads/{photo}").status_code == 200
    assert get(client, town, f"/api/v1/uploads/{photo}").status_code == 200
    db.expire_all()
    views = db.scalars(select(AuditEntry).where(AuditEntry.action == "pii.viewed")).all()
    assert [(v.actor_id, v.target_type, v.target_id) for v in views] == [
        (town.user_id, "photo", photo)
    ]


def test_an_answered_slip_does_not_ask_to_be_signed_first(client, center, chengdong):
    slip = slips.issued(client, center, slips.make_lead(client, center))
    path = f"/api/v1/dispatches/{slip['id']}/feedback"
    unsigned = post(client, chengdong, path, slips.feedback_body())
    assert "请先签收" in unsigned.get_json()["message"]
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    post(client, chengdong, path, slips.feedback_body())
    again = post(client, chengdong, path, slips.feedback_body())
    assert again.status_code == 409
    assert "请先签收" not in again.get_json()["message"]


def test_a_withdrawn_applications_evidence_is_marked_withdrawn_on_the_lead(client, alice, db):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    post(client, alice, f"/api/v1/applications/{app_id}/withdraw")
    db.expire_all()
    evidence = db.scalar(select(LeadEvidence).where(LeadEvidence.source_id == app_id))
    assert evidence.facts["withdrawn"] is True
    assert evidence.summary.endswith("（申请已撤回）")
