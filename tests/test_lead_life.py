"""A lead's own life through the HTTP API, on both engines: triage (dismiss with a reason,
already covered, reopen within 30 days), its handler (assign, claim, reassign), the queue by
handler, internal notes for staff only, and finding a lead by a whole ID or phone number."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from server import clock
from server.models import AuditEntry, Lead, LeadEvent, LeadStatus
from server.services.kernel.access import SYSTEM
from server.services.leads.core import set_lead_status
from tests.builders import error_code, make_id_number
from tests.builders.leads import add_lead, ids, page_plan, queue, village
from tests.concurrent import Call, race_http


def post(client, login, path: str, body: dict[str, Any] | None = None):
    return client.post(f"/api/v1{path}", headers=login.headers, json=body or {})


def ok(resp) -> bool:
    assert resp.status_code in (200, 201), resp.get_json()
    return True


def lead_json(client, login, lead_id: int) -> dict[str, Any]:
    resp = client.get(f"/api/v1/leads/{lead_id}", headers=login.headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def events(db, lead_id: int, kind: str) -> int:
    db.expire_all()
    return db.scalar(
        select(func.count())
        .select_from(LeadEvent)
        .where(LeadEvent.lead_id == lead_id, LeadEvent.kind == kind)
    )


def audits(db, action: str) -> list[AuditEntry]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture
def center(staff_login):
    return staff_login(role="center_staff")


@pytest.fixture
def chengdong(staff_login):
    return staff_login(role="town_staff", town="chengdong")


# --- triage ---------------------------------------------------------------------------------


def test_a_dismissed_lead_closes_with_its_reason_timestamp_timeline_step_and_audit_row(
    client, center, db, runtime
):
    lead = add_lead(db, runtime)
    resp = post(client, center, f"/leads/{lead.id}/dismiss", {"reason": "duplicate"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "dismissed" and body["dismissed_at"] is not None
    assert body["dismissal_reason_label"] == "重复线索"
    assert body["reopen_until"] is not None
    (step,) = body["timeline"]
    assert (step["kind"], step["reason_label"], step["actor"]["id"]) == (
        "dismissed",
        "重复线索",
        center.user_id,
    )
    (audit,) = audits(db, "lead.dismissed")
    assert audit.detail["reason"] == "duplicate"
    assert lead.id not in ids(queue(client, center))


def test_dismissing_for_another_reason_needs_the_text(client, center, db, runtime):
    lead = add_lead(db, runtime)
    resp = post(client, center, f"/leads/{lead.id}/dismiss", {"reason": "other"})
    assert resp.status_code == 422 and error_code(resp) == "dismissal_text_required"
    assert "note" in resp.get_json()["errors"]
    ok = post(
        client, center, f"/leads/{lead.id}/dismiss", {"reason": "other", "note": "已迁出本区"}
    )
    assert ok.status_code == 200 and ok.get_json()["dismissal_note"] == "已迁出本区"


def test_a_lead_marked_already_covered_closes_with_its_own_timestamp(client, center, db, runtime):
    lead = add_lead(db, runtime)
    resp = post(client, center, f"/leads/{lead.id}/covered", {"note": "已纳入低保"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "covered" and body["covered_at"] is not None
    assert [e["kind"] for e in body["timeline"]] == ["covered"]
    assert len(audits(db, "lead.covered")) == 1


def test_a_dismissed_lead_reopens_within_30_days_and_is_refused_after(client, center, db, runtime):
    lead = add_lead(db, runtime)
    other = add_lead(db, runtime)
    for each in (lead, other):
        assert ok(post(client, center, f"/leads/{each.id}/dismiss", {"reason": "unreachable"}))
    resp = post(client, center, f"/leads/{lead.id}/reopen", {"note": "联系上了"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "new" and body["reopened_at"] is not None
    assert [e["kind"] for e in body["timeline"]] == ["dismissed", "reopened"]
    assert lead.id in ids(queue(client, center))

    db.expire_all()
    stored = db.get(Lead, other.id)
    stored.dismissed_at = clock.now() - timedelta(days=31)
    db.commit()
    late = post(client, center, f"/leads/{other.id}/reopen")
    assert late.status_code == 409 and error_code(late) == "reopen_window_passed"
    assert "超过30天" in late.get_json()["message"]
    assert events(db, other.id, "reopened") == 0


def test_reopening_is_refused_while_the_person_has_another_open_lead(client, center, db, runtime):
    number = make_id_number()
    old = add_lead(db, runtime, id_number=number)
    assert ok(post(client, center, f"/leads/{old.id}/dismiss", {"reason": "out_of_scope"}))
    new = add_lead(db, runtime, id_number=number)
    assert new.id != old.id and new.previous_lead_id == old.id
    resp = post(client, center, f"/leads/{old.id}/reopen")
    assert resp.status_code == 409 and error_code(resp) == "person_has_open_lead"
    assert str(new.id) in resp.get_json()["message"]


def test_triage_is_refused_once_a_slip_is_out(client, center, db, runtime):
    lead = add_lead(db, runtime)
    db.expire_all()
    set_lead_status(db, db.get(Lead, lead.id), LeadStatus.DISPATCHED, actor=SYSTEM, now=clock.now())
    db.commit()
    for path, body in (
        (f"/leads/{lead.id}/dismiss", {"reason": "duplicate"}),
        (f"/leads/{lead.id}/covered", {}),
    ):
        resp = post(client, center, path, body)
        assert resp.status_code == 409 and error_code(resp) == "lead_state", resp.get_json()
    assert post(client, center, f"/leads/{lead.id}/reopen").status_code == 409


def test_only_center_and_town_staff_triage_and_assign_and_only_their_own_towns_leads(
    client, staff_login, center, db, runtime
):
    lead = add_lead(db, runtime, town="chengdong")
    baita = staff_login(role="town_staff", town="baita")
    for login in (staff_login(role="leader"), staff_login(role="department_staff")):
        for path in ("dismiss", "covered", "reopen", "assign", "claim"):
            assert post(client, login, f"/leads/{lead.id}/{path}").status_code == 403
    for path, body in (("dismiss", {"reason": "duplicate"}), ("claim", None)):
        resp = post(client, baita, f"/leads/{lead.id}/{path}", body)
        assert resp.status_code == 404, resp.get_json()


# --- the handler ----------------------------------------------------------------------------


def test_a_handler_is_staff_of_the_center_or_of_the_leads_town_and_nobody_else(
    client, staff_login, center, chengdong, db, runtime
):
    lead = add_lead(db, runtime, town="chengdong")
    path = f"/leads/{lead.id}/assign"
    for outsider in (
        staff_login(role="town_staff", town="baita"),
        staff_login(role="department_staff"),
        staff_login(role="leader"),
    ):
        resp = post(client, center, path, {"handler_id": outsider.user_id})
        assert resp.status_code == 422 and error_code(resp) == "handler_not_eligible"
        assert "handler_id" in resp.get_json()["errors"]
    first = post(client, center, path, {"handler_id": chengdong.user_id})
    assert first.status_code == 200 and first.get_json()["handler"]["id"] == chengdong.user_id
    colleague = staff_login(role="center_staff")
    second = post(client, chengdong, path, {"handler_id": colleague.user_id})
    assert second.status_code == 200, second.get_json()
    body = second.get_json()
    assert body["handler"]["id"] == colleague.user_id and body["assigned_at"] is not None
    assert [(e["kind"], e["handler"]["id"]) for e in body["timeline"]] == [
        ("assigned", chengdong.user_id),
        ("reassigned", colleague.user_id),
    ]
    assert body["timeline"][1]["previous_handler"]["id"] == chengdong.user_id
    assert [a.action for a in audits(db, "lead.reassigned")] == ["lead.reassigned"]
    gone = post(client, center, path, {"handler_id": None})
    assert gone.get_json()["handler"] is None
    assert gone.get_json()["timeline"][-1]["kind"] == "unassigned"


def test_assign_to_me_claims_a_lead_nobody_handles_but_not_one_someone_else_handles(
    client, staff_login, chengdong, db, runtime
):
    lead = add_lead(db, runtime, town="chengdong")
    mine = post(client, chengdong, f"/leads/{lead.id}/claim")
    assert mine.status_code == 200 and mine.get_json()["handler"]["id"] == chengdong.user_id
    again = post(client, chengdong, f"/leads/{lead.id}/claim")
    assert again.status_code == 200 and events(db, lead.id, "claimed") == 1
    colleague = staff_login(role="town_staff", town="chengdong")
    taken = post(client, colleague, f"/leads/{lead.id}/claim")
    assert taken.status_code == 409 and error_code(taken) == "lead_has_handler"


def test_the_queue_filters_by_handler_and_by_unassigned(
    client, staff_login, center, chengdong, db, runtime
):
    mine, theirs, nobodys = (add_lead(db, runtime, town="chengdong") for _ in range(3))
    assert ok(post(client, chengdong, f"/leads/{mine.id}/claim"))
    colleague = staff_login(role="center_staff")
    assert ok(post(client, center, f"/leads/{theirs.id}/assign", {"handler_id": colleague.user_id}))
    assert ids(queue(client, chengdong, handler="me")) == [mine.id]
    assert ids(queue(client, center, handler=str(colleague.user_id))) == [theirs.id]
    assert ids(queue(client, center, unassigned="true")) == [nobodys.id]
    item = queue(client, center, handler="me").get_json()["items"]
    assert item == []
    both = queue(client, center, handler="me", unassigned="true")
    assert both.status_code == 422


def test_the_handler_filter_is_a_range_of_its_index_in_queue_order(runtime, engine_name):
    # On SQLite the plan is chosen without statistics; PostgreSQL is asked without the
    # queue's own index, which on an empty table serves the order as cheaply.
    hiding = "ix_leads_queue" if engine_name == "postgresql" else None
    plan = page_plan(runtime, engine_name, ("open", "handler"), hiding=hiding, handler_id=7)
    assert "ix_leads_handler_queue" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


# --- notes ----------------------------------------------------------------------------------


def test_internal_notes_are_in_the_staff_timeline_and_never_shown_to_helpers(
    client, center, helper_login, resident_login, db, runtime
):
    village(db, "cd-001")
    lead = add_lead(db, runtime, town="chengdong", village_code="cd-001")
    resp = post(
        client, center, f"/leads/{lead.id}/notes", {"text": "邻居说其子在外地打工，电话未通"}
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["kind"] == "note"
    seen = lead_json(client, center, lead.id)["timeline"]
    assert [(e["kind"], e["text"]) for e in seen] == [("note", "邻居说其子在外地打工，电话未通")]
    helper = helper_login("hank", village="cd-001")
    assert lead_json(client, helper, lead.id)["timeline"] == []
    assert post(client, helper, f"/leads/{lead.id}/notes", {"text": "x"}).status_code == 403
    resident = resident_login("rita")
    assert client.get(f"/api/v1/leads/{lead.id}", headers=resident.headers).status_code == 403
    (audit,) = audits(db, "lead.note_added")
    assert "电话未通" not in str(audit.detail)


# --- search ---------------------------------------------------------------------------------


def test_a_lead_is_found_by_its_whole_id_number_sent_in_the_body(client, center, db, runtime):
    number = make_id_number()
    closed = add_lead(db, runtime, id_number=number)
    assert ok(post(client, center, f"/leads/{closed.id}/dismiss", {"reason": "duplicate"}))
    current = add_lead(db, runtime, id_number=number)
    add_lead(db, runtime)
    resp = post(client, center, "/leads/search", {"id_number": number})
    assert resp.status_code == 200, resp.get_json()
    items = resp.get_json()["items"]
    assert [i["id"] for i in items] == [current.id, closed.id]
    assert items[0]["id_number"].startswith(number[:6]) and "*" in items[0]["id_number"]
    part = post(client, center, "/leads/search", {"id_number": number[:14]})
    assert part.status_code == 422 and "id_number" in part.get_json()["errors"]
    (audit,) = audits(db, "lead.searched")
    assert audit.detail["by"] == "id_number" and number not in str(audit.detail)


def test_a_lead_is_found_by_a_mobile_or_landline_number(client, center, db, runtime):
    mobile = add_lead(db, runtime, phone="13812345678")
    landline = add_lead(db, runtime, phone="05334181234")
    found = post(client, center, "/leads/search", {"phone": "138 1234 5678"})
    assert [i["id"] for i in found.get_json()["items"]] == [mobile.id]
    found = post(client, center, "/leads/search", {"phone": "0533-4181234"})
    assert [i["id"] for i in found.get_json()["items"]] == [landline.id]
    neither = post(client, center, "/leads/search", {})
    assert neither.status_code == 422


def test_a_search_finds_only_leads_in_the_callers_scope_and_is_for_staff(
    client, staff_login, resident_login, db, runtime
):
    number = make_id_number()
    add_lead(db, runtime, id_number=number, town="chengdong")
    baita = staff_login(role="town_staff", town="baita")
    resp = post(client, baita, "/leads/search", {"id_number": number})
    assert resp.status_code == 200 and resp.get_json()["items"] == []
    resident = resident_login("rita")
    assert post(client, resident, "/leads/search", {"id_number": number}).status_code == 403


# --- at the same moment ---------------------------------------------------------------------


def test_two_staff_dismissing_one_lead_at_once_one_wins_with_one_timeline_step(
    app, client, center, staff_login, db, runtime
):
    lead = add_lead(db, runtime)
    colleague = staff_login(role="center_staff")
    path = f"/api/v1/leads/{lead.id}/dismiss"
    responses = race_http(
        app,
        [
            Call(center.headers, path, {"reason": "duplicate"}),
            Call(colleague.headers, path, {"reason": "unreachable"}),
        ],
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert events(db, lead.id, "dismissed") == 1
    assert len(audits(db, "lead.dismissed")) == 1


def test_two_staff_claiming_one_lead_at_once_one_wins(app, client, staff_login, db, runtime):
    lead = add_lead(db, runtime, town="chengdong")
    logins = [staff_login(role="town_staff", town="chengdong") for _ in range(2)]
    path = f"/api/v1/leads/{lead.id}/claim"
    responses = race_http(app, [Call(login.headers, path) for login in logins])
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert events(db, lead.id, "claimed") == 1
    winner = logins[[r.status_code for r in responses].index(200)]
    db.expire_all()
    assert db.get(Lead, lead.id).handler_id == winner.user_id
