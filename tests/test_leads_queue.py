"""The lead queue through the HTTP API: order, keyset pages, filters, scope, reports and merges."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server import clock
from server.models import (
    AuditEntry,
    Channel,
    Lead,
    LeadEvidence,
    LeadStatus,
    Role,
    User,
)
from server.services.kernel.access import SYSTEM
from server.services.leads.core import set_lead_status
from tests.builders import error_code, make_id_number
from tests.builders.leads import add_lead, ids, page_plan, plan_of, queue, village


def report(client, login, **overrides: Any):
    body: dict[str, Any] = {
        "channel": "hotline",
        "name": "章三",
        "summary": "邻居反映老人独居，生病无人照顾",
        "town": "chengdong",
        "categories": ["illness"],
        "reporter": {"name": "王热心", "organisation": None, "phone": "13900001111"},
    }
    body.update(overrides)
    return client.post("/api/v1/leads", headers=login.headers, json=body)


# --- order and pages ------------------------------------------------------------------------


def test_queue_puts_the_most_urgent_first_then_the_oldest(client, staff_login, db, runtime):
    low = add_lead(db, runtime, priority=1)
    urgent_first = add_lead(db, runtime, priority=9)
    zero = add_lead(db, runtime, priority=0)
    urgent_second = add_lead(db, runtime, priority=9)
    resp = queue(client, staff_login())
    # Arrival order breaks ties: the lead that has waited longer comes first.
    assert ids(resp) == [urgent_first.id, urgent_second.id, low.id, zero.id]


def test_keyset_pages_walk_the_whole_queue_without_gaps_or_repeats(
    client, staff_login, db, runtime
):
    made = [add_lead(db, runtime, priority=p % 4) for p in range(23)]
    expected = [lead.id for lead in sorted(made, key=lambda lead: (-lead.priority, lead.id))]
    login = staff_login()
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        resp = queue(client, login, **params)
        seen += ids(resp)
        pages += 1
        cursor = resp.get_json()["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 5


def test_a_new_urgent_lead_does_not_shift_the_pages_already_handed_out(
    client, staff_login, db, runtime
):
    for p in (5, 4, 3, 2, 1):
        add_lead(db, runtime, priority=p)
    login = staff_login()
    first = queue(client, login, limit=2).get_json()
    add_lead(db, runtime, priority=10)  # arrives while staff read page 1
    second = queue(client, login, limit=2, cursor=first["next_cursor"]).get_json()
    assert [i["priority"] for i in second["items"]] == [3, 2]


def test_a_garbled_cursor_is_refused_with_a_clear_reason(client, staff_login):
    resp = queue(client, staff_login(), cursor="not-a-cursor")
    assert resp.status_code == 422
    assert error_code(resp) == "bad_cursor"


def test_the_queue_order_is_read_from_the_index_without_sorting(app, db, runtime, engine_name):
    """`ix_leads_queue` (is_open, priority DESC, id) serves the keyset order directly."""
    sql = (
        "SELECT id FROM leads WHERE is_open = {t} AND priority < 5 "
        "ORDER BY priority DESC, id LIMIT 21"
    )
    if engine_name == "sqlite":
        plan = plan_of(runtime, engine_name, sql.format(t=1))
        assert "ix_leads_queue" in plan and "TEMP B-TREE" not in plan, plan
    else:
        plan = plan_of(runtime, engine_name, sql.format(t="true"))
        assert "ix_leads_queue" in plan and "Sort" not in plan, plan


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "values", "index"),
    [
        (("status",), {"is_open": False, "status": "closed"}, "ix_leads_status_queue"),
        (("open", "channel"), {"channel": "hotline"}, "ix_leads_channel_queue"),
        (("open", "village"), {"village_code": "bt-001"}, "ix_leads_village_queue"),
        (("open", "town"), {"town_code": "baita"}, "ix_leads_town_queue"),
    ],
)
def test_a_status_channel_village_or_town_filter_is_a_range_in_queue_order(
    runtime, engine_name, filters, values, index
):
    """A status, channel or village few leads have is found without walking the queue."""
    plan = page_plan(runtime, engine_name, filters, **values)
    assert index in plan and "TEMP B-TREE" not in plan and "Sort" not in plan, plan


@pytest.mark.parametrize(
    ("name", "index"), [("name", "ix_leads_name"), ("name_key", "ix_leads_name_key")]
)
def test_a_name_search_reads_the_index_of_names_not_every_lead(runtime, engine_name, name, index):
    """The names alone are read (not every open lead's row), then the few matches sorted."""
    if engine_name != "sqlite":
        pytest.skip("PostgreSQL chooses by its statistics and the search's own values (below)")
    plan = page_plan(runtime, engine_name, ("open", name), name_like="%无此人%")
    assert f"COVERING INDEX {index}" in plan, plan


def test_a_pinyin_search_is_a_range_of_the_pinyin_index_on_postgresql(runtime, engine_name):
    """A pinyin prefix is a range of `ix_leads_name_key`: PostgreSQL can read a prefix from a
    btree index only under the "C" collation, which the key columns have (`key_string`)."""
    if engine_name != "postgresql":
        pytest.skip("SQLite compares bytes; its plan is checked above")
    plan = page_plan(runtime, engine_name, ("open", "name_key"), name_like="zhang%")
    assert "ix_leads_name_key" in plan and "Seq Scan" not in plan, plan


@pytest.mark.parametrize(
    ("filters", "scope", "values", "index"),
    [
        (("open", "feed"), "all", {"feed": "insurance_oop"}, "ix_lead_evidence_feed_lead"),
        (("open",), "department", {"scope_id": 1}, "ix_lead_evidence_department_lead"),
    ],
)
def test_the_feed_filter_and_a_departments_scope_are_answered_from_an_index(
    runtime, engine_name, filters, scope, values, index
):
    """Whether a lead the queue walks has evidence from the feed or department is read from
    one index, without fetching its evidence rows."""
    if engine_name != "sqlite":
        pytest.skip("PostgreSQL chooses by its statistics and the request's own values (below)")
    plan = page_plan(runtime, engine_name, filters, scope, **values)
    assert f"COVERING INDEX {index}" in plan, plan


def test_filters_that_match_few_or_many_leads_are_planned_with_their_values(
    client, staff_login, runtime, engine_name
):
    """psycopg prepares a statement on its fifth run and PostgreSQL may then keep one plan for
    any value: a name nobody has would be sought with the plan of a name many have, and a
    department with few leads with the plan of the one with most."""
    if engine_name != "postgresql":
        pytest.skip("SQLite plans every statement with its values")
    center = staff_login()
    department = staff_login(role="department_staff", department="education")
    # Prepared statements live per connection, and the pool hands its connections out in turn:
    # start from an empty pool so the requests below share one or two, as a quiet server's do.
    runtime.read_engine.dispose()
    runtime.engine.dispose()
    for _ in range(12):
        ids(queue(client, center, name="无此人"))
        ids(queue(client, center, channel="police_110"))
        ids(queue(client, department))
        ids(queue(client, center))
    with runtime.read_engine.connect() as conn:
        prepared = list(
            conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars()
        )
        prepared_sql = " ".join(prepared)
    assert "named.name LIKE" not in prepared_sql and "leads.channel =" not in prepared_sql
    # The department's page (its evidence tested along the queue); its one-row probe of
    # whether the department has evidence at all has one plan and may be prepared.
    assert not [s for s in prepared if "lead_evidence.department_id =" in s and "FROM leads" in s]
    assert "ORDER BY leads.priority DESC" in prepared_sql  # the plain queue: one plan


def test_queue_filters_by_each_field(client, staff_login, db, runtime):
    login = staff_login()
    old = add_lead(db, runtime, name="李老汉", priority=2, now=clock.now() - timedelta(days=10))
    medical = add_lead(
        db,
        runtime,
        name="王大娘",
        priority=7,
        categories=("illness",),
        feed="insurance_oop",
        town="baita",
        village_code="bt-001",
    )
    hotline = add_lead(db, runtime, name="张凌", channel=Channel.HOTLINE, id_number=None)
    closed = add_lead(db, runtime, name="赵六")
    set_lead_status(db, closed, LeadStatus.CLOSED, actor=SYSTEM, now=clock.now())
    db.commit()
    today = clock.today()
    assert ids(queue(client, login, feed="insurance_oop")) == [medical.id]
    assert ids(queue(client, login, category="illness")) == [medical.id]
    assert ids(queue(client, login, town="baita")) == [medical.id]
    assert ids(queue(client, login, village="bt-001")) == [medical.id]
    assert ids(queue(client, login, channel="hotline")) == [hotline.id]
    assert ids(queue(client, login, min_priority=3)) == [medical.id]
    assert ids(queue(client, login, status="closed")) == [closed.id]
    assert closed.id not in ids(queue(client, login))
    assert ids(queue(client, login, created_to=(today - timedelta(days=5)).isoformat())) == [old.id]
    assert old.id not in ids(queue(client, login, created_from=today.isoformat()))
    assert ids(queue(client, login, name="大娘")) == [medical.id]
    assert ids(queue(client, login, name="zhang lin")) == [hotline.id]  # pinyin, folded
    assert ids(queue(client, login, town="no-such-town")) == []


def test_queue_items_are_lean_and_carry_no_id_numbers(client, staff_login, db, runtime):
    add_lead(db, runtime, priority=3, reason="医保: 单次自付 ¥32,400", phone="13812345678")
    item = queue(client, staff_login()).get_json()["items"][0]
    assert item["priority_reasons"] == ["医保: 单次自付 ¥32,400"]
    assert item["has_id_number"] is True
    assert "id_number" not in item and "phone" not in item


# --- who sees what --------------------------------------------------------------------------


def test_town_staff_see_only_their_town_and_others_leads_are_404(client, staff_login, db, runtime):
    mine = add_lead(db, runtime, town="chengdong")
    theirs = add_lead(db, runtime, town="baita")
    login = staff_login(role="town_staff", town="chengdong")
    assert ids(queue(client, login)) == [mine.id]
    resp = client.get(f"/api/v1/leads/{theirs.id}", headers=login.headers)
    assert resp.status_code == 404
    assert client.get(f"/api/v1/leads/{mine.id}", headers=login.headers).status_code == 200


def test_helpers_see_only_their_village(client, staff_login, resident_login, db, runtime):
    mine = add_lead(db, runtime, village_code="cd-001")
    add_lead(db, runtime, village_code="cd-002")
    add_lead(db, runtime)  # town known, village not
    login = resident_login("hank")
    user = db.get(User, login.user_id)
    user.role, user.village_id = Role.HELPER, village(db, "cd-001").id
    db.commit()
    assert ids(queue(client, login)) == [mine.id]


def test_department_staff_see_leads_with_evidence_from_their_department(
    client, staff_login, db, runtime
):
    ours = add_lead(db, runtime, feed="insurance_oop", department="medical_insurance")
    add_lead(db, runtime, feed="disability_new", department="disabled_federation")
    add_lead(db, runtime)
    login = staff_login(role="department_staff", department="medical_insurance")
    assert ids(queue(client, login)) == [ours.id]


def test_department_staff_whose_evidence_reached_no_lead_see_an_empty_queue(
    client, staff_login, db, runtime
):
    add_lead(db, runtime, feed="insurance_oop", department="medical_insurance")
    add_lead(db, runtime)
    login = staff_login(role="department_staff", department="traffic_police")
    page = queue(client, login).get_json()
    assert page == {"items": [], "next_cursor": None}


def test_center_staff_and_leaders_see_every_lead(client, staff_login, db, runtime):
    a = add_lead(db, runtime, town="chengdong")
    b = add_lead(db, runtime, town="baita")
    c = add_lead(db, runtime, town=None)
    for role in ("center_staff", "leader"):
        assert sorted(ids(queue(client, staff_login(role=role)))) == [a.id, b.id, c.id]


def test_residents_cannot_read_the_queue(client, resident_login, db, runtime):
    lead = add_lead(db, runtime)
    login = resident_login("rita")
    assert queue(client, login).status_code == 403
    assert client.get(f"/api/v1/leads/{lead.id}", headers=login.headers).status_code == 403


def test_the_queue_needs_a_login(client):
    assert client.get("/api/v1/leads").status_code == 401
    assert client.post("/api/v1/leads", json={}).status_code == 401


@pytest.mark.parametrize("role", ["leader", "department_staff", "resident", "helper"])
def test_only_center_and_town_staff_register_and_merge(
    client, staff_login, resident_login, db, runtime, role
):
    lead = add_lead(db, runtime, id_number=None)
    other = add_lead(db, runtime)
    if role in ("resident", "helper"):
        login = resident_login("x")
        if role == "helper":
            user = db.get(User, login.user_id)
            user.role, user.village_id = Role.HELPER, village(db).id
            db.commit()
    else:
        login = staff_login(role=role)
    assert report(client, login).status_code == 403
    resp = client.post(
        f"/api/v1/leads/{lead.id}/merge", headers=login.headers, json={"into_lead_id": other.id}
    )
    assert resp.status_code == 403


# --- one lead in full -----------------------------------------------------------------------


def test_a_lead_shows_its_evidence_timeline_with_numbers_masked(client, staff_login, db, runtime):
    number = make_id_number(birth="19500304")
    lead = add_lead(db, runtime, id_number=number, phone="13812345678", priority=4)
    login = staff_login()
    resp = report(client, login, id_number=number, name="张三")
    assert resp.status_code == 201
    body = client.get(f"/api/v1/leads/{lead.id}", headers=login.headers).get_json()
    assert body["id_number"] == number[:6] + "********" + number[14:]
    assert body["phone"] == "138****5678"
    assert [e["channel"] for e in body["evidence"]] == ["feed", "hotline"]
    hotline = body["evidence"][1]
    assert hotline["summary"].startswith("救助热线：邻居反映")
    assert hotline["reporter"] == {"name": "王热心", "organisation": None, "phone": "139****1111"}


def test_center_staff_may_see_the_whole_number_and_the_look_is_audited(
    client, staff_login, db, runtime
):
    number = make_id_number()
    lead = add_lead(db, runtime, id_number=number, phone="13812345678")
    login = staff_login()
    resp = client.post(f"/api/v1/leads/{lead.id}/personal-data", headers=login.headers)
    assert resp.status_code == 200
    assert resp.get_json() == {"lead_id": lead.id, "id_number": number, "phone": "13812345678"}
    audit = db.scalar(select(AuditEntry).where(AuditEntry.action == "pii.viewed"))
    assert audit.actor_id == login.user_id and audit.target_id == lead.id
    town = staff_login(role="town_staff")
    resp = client.post(f"/api/v1/leads/{lead.id}/personal-data", headers=town.headers)
    assert resp.status_code == 403


# --- reports from other channels ------------------------------------------------------------


def test_a_report_with_an_id_number_lands_in_that_persons_open_lead(
    client, staff_login, db, runtime
):
    number = make_id_number()
    lead = add_lead(db, runtime, id_number=number, priority=3)
    resp = report(
        client,
        staff_login(),
        id_number=number,
        channel="police_110",
        categories=["accident"],
        urgent=True,
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["lead"]["id"] == lead.id and body["lead_created"] is False
    assert body["lead"]["priority"] == 3 + 2 + 3 + 5
    assert "110转来：因意外、情况紧急（+10）" in body["lead"]["priority_reasons"]


def test_a_report_with_a_bad_id_number_is_refused_field_by_field(client, staff_login):
    good = make_id_number()
    wrong_check_digit = good[:17] + ("0" if good[17] != "0" else "1")
    resp = report(client, staff_login(), id_number=wrong_check_digit)
    assert resp.status_code == 422
    assert "id_number" in resp.get_json()["errors"]


def test_town_staff_register_reports_only_for_their_town(client, staff_login):
    login = staff_login(role="town_staff", town="chengdong")
    assert report(client, login, town="baita").status_code == 403
    resp = report(client, login, town=None)
    assert resp.status_code == 201
    assert resp.get_json()["lead"]["town"]["code"] == "chengdong"


def test_a_hotline_lead_without_an_id_is_matched_to_its_person_and_merged(
    client, staff_login, db, runtime
):
    """The issue's scenario: a caller names 章三 in 城东 cd-001; the feed knows 张三 there."""
    person = add_lead(
        db,
        runtime,
        name="张三",
        village_code="cd-001",
        priority=6,
        reason="医保: 单次自付 ¥32,400",
        categories=("illness",),
    )
    stranger = add_lead(db, runtime, name="李四", village_code="cd-001")
    login = staff_login()
    resp = report(client, login, village="cd-001", phone="13900002222")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    hotline_id = body["lead"]["id"]
    assert body["lead_created"] is True
    candidates = body["candidates"]
    assert [c["lead_id"] for c in candidates] == [person.id]
    assert candidates[0]["score"] == 65
    assert candidates[0]["reasons"] == ["姓名同音：zhang san", "同一村居"]
    assert stranger.id not in [c["lead_id"] for c in candidates]

    resp = client.post(
        f"/api/v1/leads/{hotline_id}/merge", headers=login.headers, json={"into_lead_id": person.id}
    )
    assert resp.status_code == 200, resp.get_json()
    merged = resp.get_json()
    assert merged["id"] == person.id
    assert [e["channel"] for e in merged["evidence"]] == ["feed", "hotline"]
    assert merged["phone"] == "139****2222"  # the report's phone fills what the lead lacked
    assert merged["priority"] == 6 + 1 + 2
    source = client.get(f"/api/v1/leads/{hotline_id}", headers=login.headers).get_json()
    assert source["status"] == "merged" and source["merged_into_id"] == person.id
    assert source["evidence"] == []
    assert hotline_id not in ids(queue(client, login))
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "lead.merge")) is not None


def test_a_merge_can_be_undone(client, staff_login, db, runtime):
    person = add_lead(db, runtime, name="张三", village_code="cd-001", priority=6)
    login = staff_login()
    hotline_id = report(client, login, village="cd-001", phone="13900002222").get_json()["lead"][
        "id"
    ]
    client.post(
        f"/api/v1/leads/{hotline_id}/merge", headers=login.headers, json={"into_lead_id": person.id}
    )
    resp = client.post(f"/api/v1/leads/{hotline_id}/unmerge", headers=login.headers)
    assert resp.status_code == 200, resp.get_json()
    restored = resp.get_json()
    assert restored["status"] == "new" and restored["merged_into_id"] is None
    assert [e["channel"] for e in restored["evidence"]] == ["hotline"]
    target = client.get(f"/api/v1/leads/{person.id}", headers=login.headers).get_json()
    assert target["priority"] == 6 and target["phone"] is None
    assert [e["channel"] for e in target["evidence"]] == ["feed"]
    assert target["merges"][0]["undone_at"] is not None
    again = client.post(f"/api/v1/leads/{hotline_id}/unmerge", headers=login.headers)
    assert again.status_code == 409 and error_code(again) == "not_merged"


def test_leads_kept_apart_are_no_longer_offered_as_candidates(client, staff_login, db, runtime):
    person = add_lead(db, runtime, name="张三", village_code="cd-001")
    login = staff_login()
    hotline_id = report(client, login, village="cd-001").get_json()["lead"]["id"]
    url = f"/api/v1/leads/{hotline_id}/candidates"
    assert [c["lead_id"] for c in client.get(url, headers=login.headers).get_json()["candidates"]]
    resp = client.post(
        f"/api/v1/leads/{hotline_id}/keep-apart",
        headers=login.headers,
        json={"other_lead_id": person.id, "reason": "来电人说是另一位张三"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert client.get(url, headers=login.headers).get_json()["candidates"] == []
    # Saying it again changes nothing.
    again = client.post(
        f"/api/v1/leads/{person.id}/keep-apart",
        headers=login.headers,
        json={"other_lead_id": hotline_id},
    )
    assert again.get_json()["reason"] == "来电人说是另一位张三"


def test_candidates_are_found_by_look_alike_characters_and_by_phone(
    client, staff_login, db, runtime
):
    shape = add_lead(db, runtime, name="王秀英", town="baita")
    phone = add_lead(db, runtime, name="刘大壮", phone="13700003333", village_code="cd-009")
    login = staff_login()
    body = report(client, login, name="玉秀英", town="baita").get_json()
    assert [(c["lead_id"], c["reasons"]) for c in body["candidates"]] == [
        (shape.id, ["姓名形近：玉→王", "同一镇街"])
    ]
    body = report(client, login, name="刘大状", phone="137-0000-3333", village="cd-009").get_json()
    assert body["candidates"][0]["lead_id"] == phone.id
    assert body["candidates"][0]["reasons"] == [
        "姓名同音：liu da zhuang",
        "联系电话相同",
        "同一村居",
    ]


def test_a_lead_with_an_id_number_cannot_be_folded_into_one_without(
    client, staff_login, db, runtime
):
    with_id = add_lead(db, runtime)
    without = add_lead(db, runtime, id_number=None)
    other_person = add_lead(db, runtime)
    login = staff_login()

    def merge(src, dst):
        return client.post(
            f"/api/v1/leads/{src}/merge", headers=login.headers, json={"into_lead_id": dst}
        )

    assert error_code(merge(with_id.id, without.id)) == "merge_direction"
    assert error_code(merge(with_id.id, other_person.id)) == "merge_different_people"
    assert error_code(merge(without.id, without.id)) == "merge_same_lead"
    assert merge(without.id, 999999).status_code == 404


def test_town_staff_cannot_merge_into_a_lead_of_another_town(client, staff_login, db, runtime):
    mine = add_lead(db, runtime, id_number=None, town="chengdong")
    theirs = add_lead(db, runtime, town="baita")
    login = staff_login(role="town_staff", town="chengdong")
    resp = client.post(
        f"/api/v1/leads/{mine.id}/merge", headers=login.headers, json={"into_lead_id": theirs.id}
    )
    assert resp.status_code == 404
    assert db.get(Lead, mine.id).merged_into_id is None


def test_evidence_of_a_report_keeps_no_clear_text_phone(client, staff_login, db):
    report(client, staff_login(), phone="13900002222")
    row = db.scalar(select(LeadEvidence))
    assert "13900002222" not in str(row.facts) and row.reporter_phone_enc
    assert "13900001111" not in (row.reporter_phone_enc or "")


@pytest.mark.parametrize("bad", ["张\x00三", "张\ud800三"])
def test_a_report_with_control_characters_is_refused(client, staff_login, bad):
    body = {"channel": "hotline", "name": bad, "summary": "测试"}
    resp = client.post(
        "/api/v1/leads",
        headers=staff_login().headers,
        data=json.dumps(body),  # ASCII escapes: a lone surrogate travels escaped
        content_type="application/json",
    )
    assert resp.status_code == 422
    assert "name" in resp.get_json()["errors"]


def test_department_staff_get_404_for_a_lead_without_their_evidence(
    client, staff_login, db, runtime
):
    other = add_lead(db, runtime, feed="disability_new", department="disabled_federation")
    login = staff_login(role="department_staff", department="medical_insurance")
    assert client.get(f"/api/v1/leads/{other.id}", headers=login.headers).status_code == 404


def test_an_absurdly_large_lead_id_is_simply_not_found(client, staff_login):
    resp = client.get(f"/api/v1/leads/{10**30}", headers=staff_login().headers)
    assert resp.status_code == 404
