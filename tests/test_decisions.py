"""One decision per application: a slip's feedback answers each application of its lead on its
own; the lead stays open while any is undecided; a town's direct decision moves the lead on."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.models import Application, InboxMessage, OutboxMessage
from tests.builders import dispatches as slips
from tests.builders import error_code, make_id_number
from tests.builders.applications import village
from tests.builders.decisions import file_kinds, signed_slip
from tests.builders.dispatches import decisions_body, get, issued, lead_status, post

pytestmark = pytest.mark.usefixtures("long_lived_tokens")


@pytest.fixture
def alice(client, resident_login, db):
    village(db)
    return resident_login("alice")


def feedback(client, unit, slip, body):
    return post(client, unit, f"/api/v1/dispatches/{slip['id']}/feedback", body)


def test_a_slips_feedback_decides_each_of_four_applications_on_its_own(
    client, alice, center, chengdong, db
):
    ids = file_kinds(client, alice)
    lead_id, slip = signed_slip(client, center, chengdong, db, ids["dibao"])
    body = {
        "findings": "入户核实：收入低于低保标准，不符合特困条件，火灾属实，住院自付属实",
        "decisions": [
            {"application_id": ids["dibao"], "outcome": "dibao"},
            {"application_id": ids["tekun"], "outcome": "not_eligible", "reason": "有赡养人"},
            {"application_id": ids["temporary"], "outcome": "temporary_aid", "amount": "5000"},
            {"application_id": ids["medical"], "outcome": "medical_aid", "amount": "9000"},
        ],
    }
    resp = feedback(client, chengdong, slip, body)
    assert resp.status_code == 200, resp.get_json()
    labels = {
        kind: get(client, alice, f"/api/v1/applications/{app_id}").get_json()["timeline"][-1][
            "title"
        ]
        for kind, app_id in ids.items()
    }
    assert labels == {
        "dibao": "办结：纳入低保",
        "tekun": "办结：不符合条件（有赡养人）",
        "temporary": "办结：给予临时救助 5000 元",
        "medical": "办结：给予医疗救助 9000 元",
    }
    db.expire_all()
    results = db.scalars(select(InboxMessage).where(InboxMessage.title == "申请已办结")).all()
    bodies = sorted(m.body for m in results)
    assert bodies == sorted(
        [
            f"您的最低生活保障申请（SQ{ids['dibao']:08d}）已办结：纳入低保。",
            f"您的特困人员供养申请（SQ{ids['tekun']:08d}）已办结：不符合条件（有赡养人）。",
            f"您的临时救助申请（SQ{ids['temporary']:08d}）已办结：给予临时救助 5000 元。",
            f"您的医疗救助申请（SQ{ids['medical']:08d}）已办结：给予医疗救助 9000 元。",
        ]
    )
    assert lead_status(db, lead_id) == "awaiting_revisit"


def test_an_application_left_unanswered_stays_undecided_and_keeps_the_lead_open(
    client, alice, center, chengdong, db
):
    ids = file_kinds(client, alice, ("dibao", "temporary"))
    lead_id, slip = signed_slip(client, center, chengdong, db, ids["dibao"])
    resp = feedback(client, chengdong, slip, decisions_body((ids["dibao"], "dibao")))
    assert resp.status_code == 200, resp.get_json()
    left = {a["id"]: a["status"] for a in resp.get_json()["applications"]}
    assert left == {ids["dibao"]: "decided", ids["temporary"]: "investigating"}
    assert lead_status(db, lead_id) == "triaged"  # back with the center, which sees what is left
    decided = post(
        client,
        center,
        f"/api/v1/applications/{ids['temporary']}/decide",
        {"outcome": "temporary_aid", "amount": "2000"},
    )
    assert decided.status_code == 200, decided.get_json()
    assert lead_status(db, lead_id) == "awaiting_revisit"


def test_one_outcome_for_a_lead_with_undecided_applications_is_refused(
    client, alice, center, chengdong, db
):
    ids = file_kinds(client, alice, ("dibao", "temporary"))
    _, slip = signed_slip(client, center, chengdong, db, ids["dibao"])
    resp = feedback(client, chengdong, slip, slips.feedback_body(outcome="temporary_aid", amount=1))
    assert (resp.status_code, error_code(resp)) == (422, "decisions_required")
    assert f"SQ{ids['temporary']:08d}" in resp.get_json()["message"]
    db.expire_all()
    assert {a.status.value for a in db.scalars(select(Application))} == {"investigating"}


def test_a_decision_for_an_application_of_another_lead_is_refused(
    client, alice, center, chengdong, db
):
    mine = file_kinds(client, alice, ("dibao",))
    other = file_kinds(client, alice, ("dibao",))  # another person: another lead
    _, slip = signed_slip(client, center, chengdong, db, mine["dibao"])
    resp = feedback(client, chengdong, slip, decisions_body((other["dibao"], "dibao")))
    assert resp.status_code == 422
    assert "decisions.0.application_id" in resp.get_json()["errors"]


def test_each_decision_is_checked_on_its_own(client, alice, center, chengdong, db):
    ids = file_kinds(client, alice, ("temporary",))
    _, slip = signed_slip(client, center, chengdong, db, ids["temporary"])
    resp = feedback(client, chengdong, slip, decisions_body((ids["temporary"], "temporary_aid")))
    assert resp.status_code == 422
    assert "decisions.0.amount" in resp.get_json()["errors"]


def test_an_application_filed_after_the_slip_was_signed_cannot_be_decided_by_it(
    client, alice, center, chengdong, db
):
    id_number = make_id_number()
    first = file_kinds(client, alice, ("dibao",), id_number=id_number)
    _, slip = signed_slip(client, center, chengdong, db, first["dibao"])
    late = file_kinds(client, alice, ("temporary",), id_number=id_number)
    body = decisions_body((first["dibao"], "dibao"), (late["temporary"], "referred"), reason="转")
    resp = feedback(client, chengdong, slip, body)
    assert (resp.status_code, error_code(resp)) == (409, "application_state")
    assert f"SQ{late['temporary']:08d}" in resp.get_json()["message"]


def test_a_department_files_lead_still_takes_one_outcome(client, center, chengdong, db):
    lead_id = slips.make_lead(client, center)
    slip = issued(client, center, lead_id)
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    resp = feedback(client, chengdong, slip, slips.feedback_body())
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["outcome_label"], resp.get_json()["applications"]) == ("纳入低保", [])
    assert lead_status(db, lead_id) == "awaiting_revisit"


def test_a_towns_direct_decision_moves_the_lead_on(client, alice, center, staff_login, db):
    town = staff_login(role="town_staff", town="chengdong")
    ids = file_kinds(client, alice, ("dibao",))
    lead_id = db.get(Application, ids["dibao"]).lead_id
    base = f"/api/v1/applications/{ids['dibao']}"
    assert lead_status(db, lead_id) == "new"
    post(client, town, f"{base}/accept")
    assert lead_status(db, lead_id) == "triaged"
    post(client, town, f"{base}/investigate")
    decided = post(client, town, f"{base}/decide", {"outcome": "dibao"})
    assert decided.status_code == 200, decided.get_json()
    assert decided.get_json()["number"] == f"SQ{ids['dibao']:08d}"
    assert lead_status(db, lead_id) == "awaiting_revisit"
    db.expire_all()
    stored = db.get(Application, ids["dibao"])
    assert (stored.decided_by_id, stored.decision_dispatch_id) == (town.user_id, None)


def test_the_decision_is_written_once_with_who_and_which_slip(client, alice, center, chengdong, db):
    ids = file_kinds(client, alice, ("medical",))
    _, slip = signed_slip(client, center, chengdong, db, ids["medical"])
    body = decisions_body((ids["medical"], "medical_aid"), amount="1234.50")
    assert feedback(client, chengdong, slip, body).status_code == 200
    db.expire_all()
    stored = db.get(Application, ids["medical"])
    assert (stored.outcome, str(stored.amount), stored.decision_dispatch_id) == (
        "medical_aid",
        "1234.50",
        slip["id"],
    )
    assert stored.decided_by_id == chengdong.user_id
    results = db.scalars(select(OutboxMessage).where(OutboxMessage.event == "result")).all()
    assert len(results) == 1
