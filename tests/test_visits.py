"""Visits (摸排巡查): recorded in the helper's village, severe hardship reaching the town's queue
the same day, scoped by village and town, and no clear-text ID numbers or phones at rest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from server import clock
from server.models import (
    AuditEntry,
    Channel,
    Household,
    Lead,
    LeadEvidence,
    Visit,
)
from tests.builders import error_code, make_id_number, visits
from tests.builders.applications import application_body, file, photo_id, village
from tests.builders.visits import record, town_id, visit_body

villages = visits.villages


@pytest.fixture
def hank(villages, helper_login):
    """The helper of cd-001."""
    return helper_login("hank", village="cd-001")


# --- recording ------------------------------------------------------------------------------


def test_helper_records_a_visit_in_their_village(client, hank):
    resp = record(client, hank)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["village"] == "cd-001"
    assert body["hardship_label"] == "一般困难"
    assert body["cause_labels"] == ["因病"]
    assert body["visited_on"] == clock.today().isoformat()
    assert body["recorded_by_id"] == hank.user_id
    assert body["lead_id"] is None


def test_id_number_and_phone_are_shown_masked(client, hank):
    id_number = make_id_number()
    body = record(client, hank, head={"name": "王大山", "id_number": id_number}).get_json()
    assert body["head"]["id_number"] == id_number[:6] + "********" + id_number[14:]
    assert body["phone"] == "139****5678"


def test_id_numbers_and_phones_are_never_stored_in_clear_text(client, hank, db):
    head_id, member_id = make_id_number(), make_id_number(birth="20100101")
    members = [{"name": "王小妹", "relation": "孙女", "id_number": member_id}]
    resp = record(
        client,
        hank,
        hardship="severe",
        head={"name": "王大山", "id_number": head_id},
        members=members,
    )
    assert resp.status_code == 201, resp.get_json()
    for table in ("visits", "households", "lead_evidence", "leads"):
        for row in db.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
            dumped = " ".join(str(v) for v in row)
            for secret in (head_id, member_id, "13912345678"):
                assert secret not in dumped, f"{table} stores {secret} in clear text"


def test_next_visit_defaults_by_hardship(client, hank):
    today = clock.today()
    urgent = record(client, hank, hardship="urgent").get_json()
    calm = record(
        client, hank, hardship="none", head={"name": "赵", "id_number": make_id_number()}
    ).get_json()
    assert urgent["next_visit_on"] == (today + timedelta(days=7)).isoformat()
    assert calm["next_visit_on"] == (today + timedelta(days=90)).isoformat()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"head": {"name": "王大山", "id_number": "370304195001011230"}}, "head.id_number"),
        ({"visited_on": (clock.today() + timedelta(days=1)).isoformat()}, "visited_on"),
        ({"next_visit_on": clock.today().isoformat()}, "next_visit_on"),
        ({"phone": "12345"}, "phone"),
        ({"needs": "需要\x07帮助"}, "needs"),
    ],
)
def test_invalid_visits_are_refused_with_the_field(client, hank, overrides, field):
    resp = record(client, hank, **overrides)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]


def test_unknown_cause_or_category_is_refused(client, hank):
    assert record(client, hank, causes=["laziness"]).status_code == 422
    assert record(client, hank, categories=["vip"]).status_code == 422


def test_photos_must_be_the_recorders_own(client, hank, resident_login):
    other = photo_id(client, resident_login("rita"))
    resp = record(client, hank, photo_ids=[other])
    assert resp.status_code == 422
    assert error_code(resp) == "photo_not_owned"
    mine = photo_id(client, hank)
    assert record(client, hank, photo_ids=[mine]).get_json()["photo_ids"] == [mine]


def test_recording_is_audited(client, hank, db):
    visit_id = record(client, hank).get_json()["id"]
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "visit.recorded"))
    assert (entry.target_id, entry.actor_id) == (visit_id, hank.user_id)


# --- the visit → lead path ------------------------------------------------------------------


def open_leads_of_town(db, code: str) -> list[Lead]:
    return list(
        db.scalars(select(Lead).where(Lead.town_id == town_id(db, code), Lead.is_open.is_(True)))
    )


@pytest.mark.parametrize("hardship", ["severe", "urgent"])
def test_severe_or_urgent_hardship_reaches_the_towns_queue_the_same_day(client, hank, db, hardship):
    resp = record(client, hank, hardship=hardship)
    assert resp.status_code == 201, resp.get_json()
    leads = open_leads_of_town(db, "chengdong")
    assert len(leads) == 1
    lead = leads[0]
    assert resp.get_json()["lead_id"] == lead.id
    assert lead.channel is Channel.VISIT
    assert lead.created_at.date() == clock.today()
    assert lead.village_id == db.scalar(select(Visit.village_id))
    assert {"left_behind", "illness"} <= set(lead.categories)
    evidence = db.scalar(select(LeadEvidence).where(LeadEvidence.lead_id == lead.id))
    assert (evidence.channel, evidence.source_type) == (Channel.VISIT, "visit")
    assert evidence.event_date == clock.today()


def test_the_town_sees_the_finding_in_its_queue_and_another_town_does_not(
    client, hank, staff_login
):
    lead_id = record(client, hank, hardship="severe").get_json()["lead_id"]
    chengdong = staff_login(role="town_staff", town="chengdong")
    baita = staff_login(role="town_staff", town="baita")
    queue = client.get("/api/v1/leads", headers=chengdong.headers)
    assert queue.status_code == 200, queue.get_json()
    assert lead_id in [item["id"] for item in queue.get_json()["items"]]
    other = client.get("/api/v1/leads", headers=baita.headers).get_json()
    assert lead_id not in [item["id"] for item in other["items"]]


def test_urgent_outranks_severe_in_the_queue(client, hank, db):
    severe = record(client, hank, hardship="severe").get_json()["lead_id"]
    urgent = record(
        client, hank, hardship="urgent", head={"name": "李", "id_number": make_id_number()}
    ).get_json()["lead_id"]
    assert db.get(Lead, urgent).priority > db.get(Lead, severe).priority


@pytest.mark.parametrize("hardship", ["none", "general"])
def test_mild_hardship_does_not_reach_the_queue(client, hank, db, hardship):
    resp = record(client, hank, hardship=hardship)
    assert resp.status_code == 201
    assert resp.get_json()["lead_id"] is None
    assert db.scalar(select(func.count()).select_from(Lead)) == 0


def test_a_finding_joins_the_persons_open_lead(client, hank, resident_login, db):
    village(db)
    alice = resident_login("alice")
    id_number = make_id_number()
    body = application_body(photos=[photo_id(client, alice)])
    body["applicant"]["id_number"] = id_number
    application = file(client, alice, body).get_json()
    visit = record(
        client, hank, hardship="severe", head={"name": "张三", "id_number": id_number}
    ).get_json()
    assert visit["lead_id"] == application["lead_id"]
    lead = db.get(Lead, visit["lead_id"])
    assert [e.channel for e in lead.evidence] == [Channel.MINIPROGRAM, Channel.VISIT]


def test_raising_the_hardship_by_an_edit_reports_it_then(client, hank, db):
    visit = record(client, hank, hardship="general").get_json()
    assert open_leads_of_town(db, "chengdong") == []
    resp = client.patch(
        f"/api/v1/visits/{visit['id']}", json={"hardship": "severe"}, headers=hank.headers
    )
    assert resp.status_code == 200, resp.get_json()
    assert len(open_leads_of_town(db, "chengdong")) == 1
    assert resp.get_json()["lead_id"] == open_leads_of_town(db, "chengdong")[0].id


def test_editing_a_reported_visit_adds_no_duplicate_evidence(client, hank, db):
    visit = record(client, hank, hardship="severe").get_json()
    client.patch(f"/api/v1/visits/{visit['id']}", json={"needs": "需要轮椅"}, headers=hank.headers)
    assert db.scalar(select(func.count()).select_from(LeadEvidence)) == 1


# --- the household's ledger row -------------------------------------------------------------


def test_one_household_per_head_and_village_with_the_latest_assessment(client, hank, db):
    head = {"name": "王大山", "id_number": make_id_number()}
    today = clock.today()
    record(client, hank, head=head, hardship="general", visited_on=today.isoformat())
    # A visit from last month entered late does not replace today's assessment.
    late = (today - timedelta(days=30)).isoformat()
    record(client, hank, head=head, hardship="none", visited_on=late)
    households = list(db.scalars(select(Household)))
    assert len(households) == 1
    assert households[0].hardship.value == "general"
    assert households[0].last_visited_on == today
    assert db.scalar(select(func.count()).select_from(Visit)) == 2


# --- scope ----------------------------------------------------------------------------------


def test_helpers_cannot_record_for_another_village(client, hank):
    resp = record(client, hank, village="cd-002")
    assert resp.status_code == 404
    assert error_code(resp) == "village_not_found"


def test_helpers_see_only_their_villages_visits(client, villages, helper_login):
    hank = helper_login("hank", village="cd-001")
    ivy = helper_login("ivy", village="cd-002")
    mine = record(client, hank).get_json()["id"]
    theirs = record(
        client, ivy, village="cd-002", head={"name": "钱", "id_number": make_id_number()}
    ).get_json()["id"]
    listed = client.get("/api/v1/visits", headers=hank.headers).get_json()
    assert [v["id"] for v in listed["items"]] == [mine]
    assert client.get(f"/api/v1/visits/{theirs}", headers=hank.headers).status_code == 404
    resp = client.patch(f"/api/v1/visits/{theirs}", json={"note": "x"}, headers=hank.headers)
    assert resp.status_code == 404


def test_helpers_edit_their_villages_records(client, villages, helper_login):
    hank = helper_login("hank", village="cd-001")
    hana = helper_login("hana", village="cd-001")
    visit = record(client, hank).get_json()
    resp = client.patch(
        f"/api/v1/visits/{visit['id']}",
        json={"needs": "冬季取暖困难", "version": visit["version"]},
        headers=hana.headers,
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["needs"] == "冬季取暖困难"


def test_town_staff_see_and_edit_their_towns_visits_only(client, villages, staff_login):
    chengdong = staff_login(role="town_staff", town="chengdong")
    baita = staff_login(role="town_staff", town="baita")
    cd = record(client, chengdong, village="cd-002").get_json()
    bt = record(
        client, baita, village="bt-001", head={"name": "孙", "id_number": make_id_number()}
    ).get_json()
    listed = client.get("/api/v1/visits", headers=chengdong.headers).get_json()
    assert [v["id"] for v in listed["items"]] == [cd["id"]]
    assert client.get(f"/api/v1/visits/{bt['id']}", headers=chengdong.headers).status_code == 404
    ok = client.patch(
        f"/api/v1/visits/{cd['id']}", json={"note": "复核"}, headers=chengdong.headers
    )
    assert ok.status_code == 200
    assert record(client, chengdong, village="bt-001").status_code == 404


def test_the_center_sees_every_visit(client, villages, staff_login):
    chengdong = staff_login(role="town_staff", town="chengdong")
    baita = staff_login(role="town_staff", town="baita")
    record(client, chengdong)
    record(client, baita, village="bt-001", head={"name": "孙", "id_number": make_id_number()})
    center = staff_login(role="center_staff")
    assert client.get("/api/v1/visits", headers=center.headers).get_json()["total"] == 2


def test_a_stale_edit_is_refused(client, hank):
    visit = record(client, hank).get_json()
    first = client.patch(
        f"/api/v1/visits/{visit['id']}", json={"note": "a", "version": 1}, headers=hank.headers
    )
    assert first.get_json()["version"] == 2
    stale = client.patch(
        f"/api/v1/visits/{visit['id']}", json={"note": "b", "version": 1}, headers=hank.headers
    )
    assert stale.status_code == 409


def test_edits_are_audited_with_old_and_new_values(client, hank, db):
    visit = record(client, hank).get_json()
    client.patch(f"/api/v1/visits/{visit['id']}", json={"hardship": "none"}, headers=hank.headers)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "visit.edited"))
    assert entry.detail["old"] == {"hardship": "general"}
    assert entry.detail["new"] == {"hardship": "none"}


@pytest.mark.parametrize("role", ["department_staff", "leader"])
def test_other_staff_roles_cannot_use_visits(client, villages, staff_login, role):
    login = staff_login(role=role)
    assert record(client, login).status_code == 403
    assert client.get("/api/v1/visits", headers=login.headers).status_code == 403


def test_residents_cannot_use_visits(client, villages, resident_login):
    login = resident_login("rita")
    assert record(client, login).status_code == 403
    assert client.get("/api/v1/visits", headers=login.headers).status_code == 403


def test_visits_need_a_login(client, villages):
    assert client.post("/api/v1/visits", json=visit_body()).status_code == 401
    assert client.get("/api/v1/visits").status_code == 401
    assert client.patch("/api/v1/visits/1", json={}).status_code == 401


def test_photo_links_follow_the_visits_photos(client, hank, db):
    from server.models import VisitPhoto

    first, second = photo_id(client, hank), photo_id(client, hank)
    visit = record(client, hank, photo_ids=[first]).get_json()
    client.patch(
        f"/api/v1/visits/{visit['id']}", json={"photo_ids": [second]}, headers=hank.headers
    )
    links = db.execute(select(VisitPhoto.visit_id, VisitPhoto.photo_id)).all()
    assert links == [(visit["id"], second)]


def test_visit_photos_are_seen_by_the_village_and_town_and_nobody_else(
    client, villages, helper_login, staff_login, resident_login
):
    hank = helper_login("hank", village="cd-001")
    photo = photo_id(client, hank)
    record(client, hank, photo_ids=[photo])
    allowed = [
        helper_login("hana", village="cd-001"),
        staff_login(role="town_staff", town="chengdong"),
        staff_login(),
    ]
    refused = [
        helper_login("ivy", village="cd-002"),
        staff_login(role="town_staff", town="baita"),
        resident_login("rita"),
    ]
    for login in allowed:
        assert client.get(f"/api/v1/uploads/{photo}", headers=login.headers).status_code == 200
    for login in refused:
        assert client.get(f"/api/v1/uploads/{photo}", headers=login.headers).status_code == 404
