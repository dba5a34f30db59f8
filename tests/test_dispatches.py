"""Transfer slips: issuing with a working-day due date, who sees and acts on them, every
transition (sign, return, feedback), the printed slip, revisits and residents' ratings."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from server.models import Application, AuditEntry, Dispatch, Lead
from server.services.kernel.qr import qr_data_uri
from tests.builders import dispatches as slips
from tests.builders import error_code, make_id_number, unique_jpeg
from tests.builders.applications import application_body, file, photo_id, village
from tests.builders.dispatches import (
    decisions_body,
    feedback_body,
    get,
    issue,
    issued,
    lead_status,
    make_lead,
    post,
)

pytestmark = pytest.mark.usefixtures("long_lived_tokens")
at_time = slips.at_time


# --- builders ----------------------------------------------------------------------------------


def staff_photo(client, login, dispatch_id: int):
    return client.post(
        f"/api/v1/dispatches/{dispatch_id}/attachments",
        headers=login.headers,
        data={"file": (io.BytesIO(unique_jpeg((40, 30), (10, 90, 10))), "p.jpg")},
        content_type="multipart/form-data",
    )


# --- issuing and the working-day calendar ------------------------------------------------------


def test_a_slip_gets_a_readable_number_and_is_due_in_5_working_days(client, center, db, at_time):
    at_time(2026, 11, 16, 10, 0)  # a Monday
    lead_id = make_lead(client, center)
    slip = issued(client, center, lead_id)
    assert slip["number"] == "BSJZ-2026-000001"
    assert slip["due_date"] == "2026-11-23"  # the Monday after: issue day never counts
    assert slip["due_date_certain"] is True
    assert slip["state"] == "issued"
    assert slip["unit"] == {"kind": "town", "code": "chengdong", "name": "城东街道"}
    assert slip["deadline"]["state"] == "on_time"
    assert slip["deadline"]["working_days_left"] == 5
    assert lead_status(db, lead_id) == "dispatched"
    second = issued(client, center, lead_id, unit_kind="department", unit_code="medical_insurance")
    assert second["number"] == "BSJZ-2026-000002"


def test_numbers_start_again_at_1_each_year(client, center, at_time):
    at_time(2026, 12, 31, 9, 0)
    assert issued(client, center, make_lead(client, center))["number"] == "BSJZ-2026-000001"
    at_time(2027, 1, 4, 9, 0)
    assert issued(client, center, make_lead(client, center))["number"] == "BSJZ-2027-000001"


def test_a_slip_issued_the_day_before_national_day_skips_the_holiday(client, center, at_time):
    """Issued Wed 30 Sep 2026 at 16:00: 1–7 Oct are holidays; day 1 is Thu 8 Oct, day 3 the
    make-up Saturday 10 Oct, day 5 Tue 13 Oct."""
    at_time(2026, 9, 30, 16, 0)
    slip = issued(client, center, make_lead(client, center))
    assert slip["due_date"] == "2026-10-13"
    assert slip["due_date_certain"] is True


def test_a_slip_issued_on_a_make_up_saturday_counts_from_the_next_working_day(
    client, center, at_time
):
    """Issued on the make-up working Saturday 10 Oct 2026: that day does not count either;
    Mon 12 Oct is day 1, Fri 16 Oct day 5."""
    at_time(2026, 10, 10, 9, 0)
    assert issued(client, center, make_lead(client, center))["due_date"] == "2026-10-16"


def test_a_slip_issued_friday_afternoon_before_spring_festival(client, center, at_time):
    """Fri 13 Feb 2026 at 16:00: day 1 is the make-up Saturday 14 Feb, then the holiday
    (15–23 Feb), then days 2–5 on 24–27 Feb."""
    at_time(2026, 2, 13, 16, 0)
    assert issued(client, center, make_lead(client, center))["due_date"] == "2026-02-27"


def test_a_slip_issued_at_8_in_the_morning_still_does_not_count_its_day(client, center, at_time):
    at_time(2026, 11, 16, 8, 0)
    assert issued(client, center, make_lead(client, center))["due_date"] == "2026-11-23"


def test_a_slip_due_in_a_year_with_no_calendar_says_its_date_is_uncertain(client, center, at_time):
    """Issued Tue 29 Dec 2026; 2027's holidays are unknown: weekends only, marked uncertain."""
    at_time(2026, 12, 29, 10, 0)
    slip = issued(client, center, make_lead(client, center))
    assert slip["due_date"] == "2027-01-05"
    assert slip["due_date_certain"] is False
    assert slip["deadline"]["certain"] is False
    page = get(client, center, "/api/v1/dispatches").get_json()
    assert page["items"][0]["due_date_certain"] is False


def test_issuing_moves_the_leads_applications_to_accepted(client, center, resident_login, db):
    village(db)
    alice = resident_login("alice")
    filed = file(client, alice, application_body(photos=[photo_id(client, alice)]))
    assert filed.status_code == 201, filed.get_json()
    application = db.get(Application, filed.get_json()["id"])
    issued(client, center, application.lead_id)
    mine = get(client, alice, f"/api/v1/applications/{application.id}").get_json()
    assert mine["status"] == "accepted"


def test_town_staff_issue_slips_for_leads_of_their_own_town_only(
    client, center, chengdong, staff_login
):
    own = make_lead(client, center, town="chengdong")
    other = make_lead(client, center, town="baita")
    slip = issued(client, chengdong, own, unit_kind="department", unit_code="civil_affairs")
    assert slip["unit"]["name"] == "区民政局"
    assert issue(client, chengdong, other).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"),
    [("department_staff", 403), ("leader", 403), ("helper", 403), ("resident", 403)],
)
def test_other_roles_cannot_issue_slips(
    client, center, staff_login, resident_login, helper_login, db, role, status
):
    village(db)
    lead_id = make_lead(client, center)
    if role == "resident":
        login = resident_login("bob")
    elif role == "helper":
        login = helper_login("hank")
    else:
        login = staff_login(role=role)
    assert issue(client, login, lead_id).status_code == status


def test_anonymous_callers_get_401(client, center):
    lead_id = make_lead(client, center)
    assert client.post(f"/api/v1/leads/{lead_id}/dispatches", json={}).status_code == 401
    assert client.get("/api/v1/dispatches").status_code == 401


def test_an_unknown_unit_is_refused(client, center):
    lead_id = make_lead(client, center)
    resp = issue(client, center, lead_id, unit_kind="department", unit_code="nowhere")
    assert resp.status_code == 422
    assert error_code(resp) == "department_not_found"
    assert issue(client, center, lead_id, unit_code="atlantis").status_code == 422


def test_an_unknown_lead_is_404(client, center):
    assert issue(client, center, 987654).status_code == 404


def test_a_closed_lead_cannot_be_dispatched(client, center, db):
    lead_id = make_lead(client, center)
    lead = db.get(Lead, lead_id)
    lead.status, lead.is_open = Lead.status.type.enum_class("closed"), False
    db.commit()
    resp = issue(client, center, lead_id)
    assert resp.status_code == 409
    assert error_code(resp) == "lead_not_open"


# --- who sees which slip -----------------------------------------------------------------------


def test_receiving_units_list_only_their_own_slips(
    client, center, chengdong, insurance, staff_login
):
    lead_id = make_lead(client, center, town="baita")
    to_town = issued(client, center, lead_id, unit_code="chengdong")
    to_insurance = issued(
        client, center, lead_id, unit_kind="department", unit_code="medical_insurance"
    )
    civil = staff_login(role="department_staff", department="civil_affairs")

    def numbers(login) -> list[str]:
        return [d["number"] for d in get(client, login, "/api/v1/dispatches").get_json()["items"]]

    assert numbers(chengdong) == [to_town["number"]]
    assert numbers(insurance) == [to_insurance["number"]]
    assert numbers(civil) == []
    assert sorted(numbers(center)) == sorted([to_town["number"], to_insurance["number"]])
    assert get(client, civil, f"/api/v1/dispatches/{to_town['id']}").status_code == 404
    assert get(client, chengdong, f"/api/v1/dispatches/{to_insurance['id']}").status_code == 404
    assert get(client, insurance, f"/api/v1/dispatches/{to_insurance['id']}").status_code == 200


def test_the_lead_towns_platform_sees_slips_about_its_leads(client, center, staff_login):
    baita = staff_login(role="town_staff", town="baita")
    slip = issued(
        client,
        center,
        make_lead(client, center, town="baita"),
        unit_kind="department",
        unit_code="civil_affairs",
    )
    listed = get(client, baita, "/api/v1/dispatches").get_json()["items"]
    assert [d["id"] for d in listed] == [slip["id"]]
    assert listed[0]["can_act"] is False


def test_residents_and_helpers_cannot_read_slips(client, resident_login):
    assert get(client, resident_login("r"), "/api/v1/dispatches").status_code == 403


def test_slips_filter_by_state_and_deadline(client, center, at_time):
    at_time(2026, 11, 16, 10, 0)
    first = issued(client, center, make_lead(client, center))
    at_time(2026, 11, 20, 10, 0)
    issued(client, center, make_lead(client, center))
    at_time(2026, 11, 24, 10, 0)  # the first was due on 23 Nov
    overdue = get(client, center, "/api/v1/dispatches?deadline=overdue").get_json()
    assert [d["id"] for d in overdue["items"]] == [first["id"]]
    assert overdue["items"][0]["deadline"] == {
        "state": "overdue",
        "label": "已超期1个工作日",
        "working_days_left": None,
        "overdue_days": 1,
        "certain": True,
    }
    assert get(client, center, "/api/v1/dispatches?deadline=on_time").get_json()["total"] == 1
    assert get(client, center, "/api/v1/dispatches?state=signed").get_json()["total"] == 0


@pytest.mark.parametrize(
    ("today", "state", "left", "late"),
    [
        ((2026, 11, 16, 12), "on_time", 5, 0),  # the day of issue
        ((2026, 11, 19, 12), "on_time", 2, 0),  # Thursday: Friday and Monday left
        ((2026, 11, 20, 12), "due_soon", 1, 0),  # Friday: only Monday left
        ((2026, 11, 22, 12), "due_soon", 1, 0),  # Sunday before the Monday due date
        ((2026, 11, 23, 12), "due_soon", 0, 0),  # the due date itself
        ((2026, 11, 24, 12), "overdue", None, 1),
        ((2026, 11, 28, 12), "overdue", None, 4),  # Saturday: Tue–Fri were working days
        ((2026, 11, 30, 12), "overdue", None, 5),
    ],
)
def test_every_open_slip_shows_on_time_due_soon_or_overdue_by_n_working_days(
    client, center, at_time, today, state, left, late
):
    at_time(2026, 11, 16, 10, 0)
    slip = issued(client, center, make_lead(client, center))
    at_time(*today, 0)
    shown = get(client, center, f"/api/v1/dispatches/{slip['id']}").get_json()["deadline"]
    assert (shown["state"], shown["working_days_left"], shown["overdue_days"]) == (
        state,
        left,
        late,
    )


# --- sign ---------------------------------------------------------------------------------------


def test_the_receiving_unit_signs_and_the_application_moves_to_investigating(
    client, center, chengdong, resident_login, db
):
    village(db)
    alice = resident_login("alice")
    filed = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()
    lead_id = db.get(Application, filed["id"]).lead_id
    slip = issued(client, center, lead_id)
    signed = post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    assert signed.status_code == 200, signed.get_json()
    assert signed.get_json()["state"] == "signed"
    assert signed.get_json()["signed_at"] is not None
    mine = get(client, alice, f"/api/v1/applications/{filed['id']}").get_json()
    assert mine["status"] == "investigating"


def test_signing_twice_is_a_conflict(client, center, chengdong):
    slip = issued(client, center, make_lead(client, center))
    assert post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign").status_code == 200
    again = post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    assert again.status_code == 409
    assert error_code(again) == "dispatch_state"


def test_only_the_receiving_unit_may_sign(client, center, insurance, staff_login):
    slip = issued(
        client,
        center,
        make_lead(client, center, town="chengdong"),
        unit_kind="department",
        unit_code="medical_insurance",
    )
    path = f"/api/v1/dispatches/{slip['id']}/sign"
    # The center issues but does not sign; a leader only reads.
    assert post(client, center, path).status_code == 403
    assert post(client, staff_login(role="leader"), path).status_code == 403
    # The lead's own town sees the slip but did not receive it.
    lead_town = staff_login(role="town_staff", town="chengdong")
    resp = post(client, lead_town, path)
    assert resp.status_code == 403
    assert error_code(resp) == "not_receiving_unit"
    # Another department does not even see it.
    other = staff_login(role="department_staff", department="civil_affairs")
    assert post(client, other, path).status_code == 404
    assert post(client, insurance, path).status_code == 200


# --- return -------------------------------------------------------------------------------------


def test_the_unit_returns_a_slip_with_a_reason_and_the_lead_goes_back_to_triage(
    client, center, chengdong, db
):
    lead_id = make_lead(client, center)
    slip = issued(client, center, lead_id)
    path = f"/api/v1/dispatches/{slip['id']}/return"
    assert post(client, chengdong, path, {"reason": "  "}).status_code == 422
    assert post(client, chengdong, path).status_code == 422
    returned = post(client, chengdong, path, {"reason": "该户不在本街道辖区"})
    assert returned.status_code == 200, returned.get_json()
    body = returned.get_json()
    assert (body["state"], body["return_reason"]) == ("returned", "该户不在本街道辖区")
    assert body["deadline"]["state"] == "returned"
    assert lead_status(db, lead_id) == "triaged"
    # A returned slip is finished: no signing, no second return, no feedback.
    assert post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign").status_code == 409
    assert post(client, chengdong, path, {"reason": "x"}).status_code == 409
    # The center may issue anew.
    assert issue(client, center, lead_id, unit_code="chengxi").status_code == 201
    assert lead_status(db, lead_id) == "dispatched"


def test_a_signed_slip_can_still_be_returned(client, center, chengdong):
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    resp = post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/return", {"reason": "重复"})
    assert resp.status_code == 200


def test_only_the_receiving_unit_may_return(client, center, insurance):
    slip = issued(client, center, make_lead(client, center))
    path = f"/api/v1/dispatches/{slip['id']}/return"
    assert post(client, center, path, {"reason": "x"}).status_code == 403
    assert post(client, insurance, path, {"reason": "x"}).status_code == 404


# --- feedback -----------------------------------------------------------------------------------


def test_feedback_needs_the_slip_signed_first(client, center, chengdong):
    slip = issued(client, center, make_lead(client, center))
    resp = post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", feedback_body())
    assert resp.status_code == 409
    assert error_code(resp) == "dispatch_state"


def test_feedback_decides_the_application_and_the_lead_waits_for_its_revisit(
    client, center, chengdong, resident_login, db, at_time
):
    at_time(2026, 11, 16, 10, 0)
    village(db)
    alice = resident_login("alice")
    filed = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()
    lead_id = db.get(Application, filed["id"]).lead_id
    slip = issued(client, center, lead_id)
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    at_time(2026, 11, 23, 17, 0)  # the due date: on time
    resp = post(
        client,
        chengdong,
        f"/api/v1/dispatches/{slip['id']}/feedback",
        decisions_body((filed["id"], "dibao")),
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["state"], body["outcome"]) == ("answered", None)
    decided = body["applications"][0]
    assert (decided["outcome_label"], decided["decided_by_this_slip"]) == ("纳入低保", True)
    assert body["answered_on_time"] is True
    assert body["deadline"]["state"] == "answered_on_time"
    mine = get(client, alice, f"/api/v1/applications/{filed['id']}").get_json()
    assert (mine["status"], mine["outcome"]) == ("decided", "dibao")
    assert lead_status(db, lead_id) == "awaiting_revisit"


def test_feedback_after_the_due_date_is_recorded_as_late(client, center, chengdong, at_time):
    at_time(2026, 11, 16, 10, 0)
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    at_time(2026, 11, 24, 9, 0)
    body = post(
        client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", feedback_body()
    ).get_json()
    assert body["answered_on_time"] is False
    assert body["deadline"]["state"] == "answered_late"


def test_a_lead_with_two_slips_waits_until_both_are_answered(
    client, center, chengdong, insurance, db
):
    lead_id = make_lead(client, center)
    town = issued(client, center, lead_id)
    dept = issued(client, center, lead_id, unit_kind="department", unit_code="medical_insurance")
    post(client, chengdong, f"/api/v1/dispatches/{town['id']}/sign")
    post(client, chengdong, f"/api/v1/dispatches/{town['id']}/feedback", feedback_body())
    assert lead_status(db, lead_id) == "dispatched"
    post(client, insurance, f"/api/v1/dispatches/{dept['id']}/sign")
    resp = post(
        client,
        insurance,
        f"/api/v1/dispatches/{dept['id']}/feedback",
        feedback_body(outcome="medical_aid", amount="12000.50"),
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["amount"] == "12000.50"
    assert resp.get_json()["outcome_label"] == "给予医疗救助 12000.5 元"
    assert lead_status(db, lead_id) == "awaiting_revisit"


def test_a_returned_slip_does_not_hold_the_lead_back(client, center, chengdong, insurance, db):
    lead_id = make_lead(client, center)
    town = issued(client, center, lead_id)
    dept = issued(client, center, lead_id, unit_kind="department", unit_code="medical_insurance")
    post(client, insurance, f"/api/v1/dispatches/{dept['id']}/return", {"reason": "未参保"})
    post(client, chengdong, f"/api/v1/dispatches/{town['id']}/sign")
    post(client, chengdong, f"/api/v1/dispatches/{town['id']}/feedback", feedback_body())
    assert lead_status(db, lead_id) == "awaiting_revisit"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"outcome": "not_eligible"}, "reason"),
        ({"outcome": "referred", "reason": " "}, "reason"),
        ({"outcome": "temporary_aid"}, "amount"),
        ({"outcome": "not_eligible", "reason": "收入超标", "amount": "100"}, "amount"),
        ({"outcome": "temporary_aid", "amount": "0"}, "amount"),
        ({"outcome": "unknown"}, "outcome"),
        ({"findings": ""}, "findings"),
    ],
)
def test_feedback_is_checked(client, center, chengdong, overrides, field):
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    resp = post(
        client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", feedback_body(**overrides)
    )
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]


def test_not_eligible_feedback_carries_its_reason_to_the_resident(
    client, center, chengdong, resident_login, db
):
    village(db)
    alice = resident_login("alice")
    filed = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()
    slip = issued(client, center, db.get(Application, filed["id"]).lead_id)
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    post(
        client,
        chengdong,
        f"/api/v1/dispatches/{slip['id']}/feedback",
        decisions_body((filed["id"], "not_eligible"), reason="家庭人均收入高于低保标准"),
    )
    mine = get(client, alice, f"/api/v1/applications/{filed['id']}").get_json()
    assert (mine["outcome"], mine["outcome_reason"]) == ("not_eligible", "家庭人均收入高于低保标准")
    titles = [step["title"] for step in mine["timeline"]]
    assert titles[-1] == "办结：不符合条件（家庭人均收入高于低保标准）"


def test_feedback_carries_photos_the_unit_uploaded_and_the_center_can_open_them(
    client, center, chengdong, staff_login
):
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    uploaded = staff_photo(client, chengdong, slip["id"])
    assert uploaded.status_code == 201, uploaded.get_json()
    photo = uploaded.get_json()["id"]
    resp = post(
        client,
        chengdong,
        f"/api/v1/dispatches/{slip['id']}/feedback",
        feedback_body(photo_ids=[photo]),
    )
    assert resp.get_json()["photo_ids"] == [photo]
    opened = get(client, center, f"/api/v1/dispatches/{slip['id']}/attachments/{photo}")
    assert opened.status_code == 200
    assert opened.mimetype == "image/jpeg"
    assert get(client, center, f"/api/v1/dispatches/{slip['id']}/attachments/999").status_code == (
        404
    )
    other_town = staff_login(role="town_staff", town="baita")
    path = f"/api/v1/dispatches/{slip['id']}/attachments/{photo}"
    assert get(client, other_town, path).status_code == 404


def test_feedback_refuses_photos_the_unit_did_not_upload(client, center, chengdong, resident_login):
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    someone_elses = photo_id(client, resident_login("eve"))
    resp = post(
        client,
        chengdong,
        f"/api/v1/dispatches/{slip['id']}/feedback",
        feedback_body(photo_ids=[someone_elses]),
    )
    assert resp.status_code == 422
    assert "photo_ids" in resp.get_json()["errors"]


def test_only_the_receiving_unit_uploads_attachments(client, center, insurance):
    slip = issued(client, center, make_lead(client, center))
    assert staff_photo(client, center, slip["id"]).status_code == 403
    assert staff_photo(client, insurance, slip["id"]).status_code == 404


def test_answering_twice_is_a_conflict(client, center, chengdong):
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    path = f"/api/v1/dispatches/{slip['id']}/feedback"
    assert post(client, chengdong, path, feedback_body()).status_code == 200
    assert post(client, chengdong, path, feedback_body()).status_code == 409
    assert (
        post(
            client, chengdong, f"/api/v1/dispatches/{slip['id']}/return", {"reason": "x"}
        ).status_code
        == 409
    )


def test_every_transition_writes_an_audit_row(client, center, chengdong, db):
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", feedback_body())
    rows = db.execute(
        select(AuditEntry.action, AuditEntry.actor_id)
        .where(AuditEntry.target_type == "dispatch", AuditEntry.target_id == slip["id"])
        .order_by(AuditEntry.id)
    ).all()
    assert rows == [
        ("dispatch.issued", center.user_id),
        ("dispatch.signed", chengdong.user_id),
        ("dispatch.answered", chengdong.user_id),
    ]


# --- the printed slip ---------------------------------------------------------------------------


def test_the_printed_slip_carries_a_qr_code_of_its_number_and_is_audited(
    client, center, chengdong, db
):
    id_number = make_id_number()
    slip = issued(client, center, make_lead(client, center, id_number=id_number))
    resp = get(client, chengdong, f"/api/v1/dispatches/{slip['id']}/slip.html")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert slip["number"] in html
    assert qr_data_uri(slip["number"]) in html
    assert "size: A4" in html
    assert id_number in html  # the unit needs the whole number to find the person
    assert "请入户核实家庭经济状况" in html
    viewed = db.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "pii.viewed", AuditEntry.target_id == slip["id"]
        )
    )
    assert viewed is not None
    assert viewed.actor_id == chengdong.user_id
    assert viewed.detail == {"fields": ["id_number", "phone"], "purpose": "print_slip"}


def test_the_printed_slip_escapes_what_staff_typed(client, center):
    slip = issued(client, center, make_lead(client, center), instructions="<script>x</script>")
    html = get(client, center, f"/api/v1/dispatches/{slip['id']}/slip.html").get_data(as_text=True)
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;" in html


def test_a_slip_printed_for_an_unknown_year_says_the_deadline_is_provisional(
    client, center, at_time
):
    at_time(2026, 12, 30, 10, 0)
    slip = issued(client, center, make_lead(client, center))
    html = get(client, center, f"/api/v1/dispatches/{slip['id']}/slip.html").get_data(as_text=True)
    assert "节假日安排尚未公布" in html


def test_other_units_cannot_print_a_slip(client, center, insurance):
    slip = issued(client, center, make_lead(client, center))
    assert get(client, insurance, f"/api/v1/dispatches/{slip['id']}/slip.html").status_code == 404


# --- revisit and rating -------------------------------------------------------------------------


def answered_lead(client, center, chengdong) -> tuple[int, dict[str, Any]]:
    lead_id = make_lead(client, center)
    slip = issued(client, center, lead_id)
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", feedback_body())
    return lead_id, slip


def test_center_staff_revisit_and_the_lead_closes(client, center, chengdong, db):
    lead_id, _ = answered_lead(client, center, chengdong)
    resp = post(
        client,
        center,
        f"/api/v1/leads/{lead_id}/revisit",
        {"satisfaction": 5, "comment": "已电话告知，群众满意"},
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["satisfaction"], body["source"], body["informed"]) == (5, "center", True)
    assert lead_status(db, lead_id) == "closed"
    again = post(client, center, f"/api/v1/leads/{lead_id}/revisit", {"satisfaction": 4})
    assert again.status_code == 409


def test_a_revisit_waits_until_every_slip_is_answered(client, center):
    lead_id = make_lead(client, center)
    issued(client, center, lead_id)
    resp = post(client, center, f"/api/v1/leads/{lead_id}/revisit", {"satisfaction": 3})
    assert resp.status_code == 409
    assert error_code(resp) == "lead_not_awaiting_revisit"


@pytest.mark.parametrize("score", [0, 6])
def test_satisfaction_is_1_to_5(client, center, chengdong, score):
    lead_id, _ = answered_lead(client, center, chengdong)
    resp = post(client, center, f"/api/v1/leads/{lead_id}/revisit", {"satisfaction": score})
    assert resp.status_code == 422


def test_only_center_staff_record_revisits(client, center, chengdong, staff_login):
    lead_id, _ = answered_lead(client, center, chengdong)
    for login in (chengdong, staff_login(role="leader"), staff_login(role="department_staff")):
        resp = post(client, login, f"/api/v1/leads/{lead_id}/revisit", {"satisfaction": 5})
        assert resp.status_code == 403


def test_a_resident_rates_their_decided_application_once_and_the_lead_closes(
    client, center, chengdong, resident_login, db
):
    village(db)
    alice = resident_login("alice")
    filed = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()
    path = f"/api/v1/applications/{filed['id']}/rating"
    early = post(client, alice, path, {"satisfaction": 4})
    assert early.status_code == 409
    assert error_code(early) == "application_not_decided"
    lead_id = db.get(Application, filed["id"]).lead_id
    slip = issued(client, center, lead_id)
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    post(
        client,
        chengdong,
        f"/api/v1/dispatches/{slip['id']}/feedback",
        decisions_body((filed["id"], "dibao")),
    )
    rated = post(client, alice, path, {"satisfaction": 4, "comment": "办得快"})
    assert rated.status_code == 201, rated.get_json()
    assert rated.get_json()["source"] == "resident"
    assert lead_status(db, lead_id) == "closed"
    twice = post(client, alice, path, {"satisfaction": 1})
    assert twice.status_code == 409
    assert error_code(twice) == "already_rated"


def test_nobody_rates_someone_elses_application(client, center, resident_login, staff_login, db):
    village(db)
    alice = resident_login("alice")
    filed = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()
    path = f"/api/v1/applications/{filed['id']}/rating"
    assert post(client, resident_login("mallory"), path, {"satisfaction": 1}).status_code == 404
    assert post(client, center, path, {"satisfaction": 1}).status_code == 403
    assert client.post(path, json={"satisfaction": 1}).status_code == 401


def test_a_failed_request_leaves_nothing_half_written(client, center, chengdong, db):
    """A refused feedback (bad outcome) writes no audit row, no state, no application step."""
    slip = issued(client, center, make_lead(client, center))
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    before = db.scalar(select(func.count()).select_from(AuditEntry))
    resp = post(
        client,
        chengdong,
        f"/api/v1/dispatches/{slip['id']}/feedback",
        feedback_body(outcome="temporary_aid"),
    )
    assert resp.status_code == 422
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == before
    assert db.get(Dispatch, slip["id"]).state.value == "signed"


def test_due_dates_are_stored_as_dates(db, client, center, at_time):
    at_time(2026, 11, 16, 10, 0)
    slip = issued(client, center, make_lead(client, center))
    assert db.get(Dispatch, slip["id"]).due_date == date(2026, 11, 23)


def test_a_page_of_slips_reads_the_working_day_calendar_once(client, center, app):
    from sqlalchemy import event

    for _ in range(3):
        issued(client, center, make_lead(client, center), unit_code="chengdong")
    engine = app.extensions["e_rescue"].engine
    reads: list[str] = []

    def count(conn, cursor, statement, *args: Any) -> None:  # noqa: ANN001
        if "calendar_days" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = get(client, center, "/api/v1/dispatches").get_json()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert page["total"] == 3 and len(reads) == 1


def test_a_page_of_slips_costs_the_same_statements_for_two_slips_or_six(client, center, app):
    from sqlalchemy import event

    engine = app.extensions["e_rescue"].engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args: Any) -> None:  # noqa: ANN001
        statements.append(statement)

    def statements_for_a_page() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert get(client, center, "/api/v1/dispatches").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    for _ in range(2):
        issued(client, center, make_lead(client, center), unit_code="chengdong")
    two = statements_for_a_page()
    for _ in range(4):
        issued(client, center, make_lead(client, center), unit_code="chengdong")
    six = statements_for_a_page()
    assert six == two, "\n".join(statements[-12:])
