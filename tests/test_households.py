"""Households (户): built from applications and visits, edited and moved by town staff and the
village's helpers (each change audited), their chain in time order, aid granted by decisions
(救助台账) and its review on the town's worklist, and who may see them."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from server.models import AuditEntry, FamilyMember, Lead, Role, Town
from server.services.dispatches import worklist
from server.services.kernel.access import Actor
from tests.builders import dispatches as slips
from tests.builders import error_code, make_id_number
from tests.builders.applications import application_body, file, photo_id, village
from tests.builders.dispatches import decisions_body, get, issued, post
from tests.builders.households import decide_directly
from tests.builders.visits import visit_body

pytestmark = pytest.mark.usefixtures("long_lived_tokens")
at_time = slips.at_time


@pytest.fixture
def villages(db):
    """cd-001, cd-002 in 城东 (chengdong); bt-001 in 白塔 (baita)."""
    village(db, code="cd-001")
    village(db, code="cd-002")
    baita = db.scalar(select(Town.id).where(Town.code == "baita"))
    village(db, code="bt-001", town_id=baita)


@pytest.fixture
def alice(client, resident_login, villages):
    return resident_login("alice")


@pytest.fixture
def hank(helper_login, villages):
    return helper_login("hank", village="cd-001")


def filed(client, login, *, head_id: str, household: list[dict[str, Any]], **overrides: Any):
    body = application_body(photos=[photo_id(client, login)], household=household, **overrides)
    body["applicant"]["id_number"] = head_id
    resp = file(client, login, body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def visited(client, login, *, head_id: str, **overrides: Any) -> dict[str, Any]:
    body = visit_body(head={"name": "张三", "id_number": head_id}, **overrides)
    resp = client.post("/api/v1/visits", json=body, headers=login.headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def household_of(client, login, name: str) -> dict[str, Any]:
    page = get(client, login, f"/api/v1/households?name={name}").get_json()
    assert page["total"] == 1, page
    return page["items"][0]


def relations(household: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["relation"] for m in household["members"]}


def test_a_household_is_built_from_an_applications_members_and_a_visit(
    client, alice, hank, chengdong
):
    head, spouse = make_id_number(), make_id_number()
    filed(
        client,
        alice,
        head_id=head,
        household=[
            {"name": "李四", "relation": "配偶", "id_number": spouse},
            {"name": "张小", "relation": "子女"},
        ],
    )
    members = [{"name": "王小妹", "relation": "孙女", "id_number": None}]
    visited(client, hank, head_id=head, members=members)
    visited(client, hank, head_id=head, members=members)  # a second visit adds no one twice
    household = household_of(client, chengdong, "张三")
    assert relations(household) == {
        "张三": "户主",
        "李四": "配偶",
        "张小": "子女",
        "王小妹": "孙女",
    }
    assert household["head_name"] == "张三"
    assert household["village"]["code"] == "cd-001"
    spouse_row = next(m for m in household["members"] if m["name"] == "李四")
    assert spouse_row["id_number"] == spouse[:6] + "********" + spouse[-4:]


def test_the_chain_lists_every_kind_of_item_in_time_order_with_the_next_thing_due(
    client, alice, hank, center, chengdong, db, at_time
):
    head = make_id_number()
    at_time(2026, 11, 16, 9, 0)
    application = filed(
        client, alice, head_id=head, household=[{"name": "李四", "relation": "配偶"}]
    )
    lead_id = db.get(Lead, db.scalar(select(Lead.id))).id
    at_time(2026, 11, 16, 10, 0)
    slip = issued(client, center, lead_id)
    assert post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign").status_code == 200
    at_time(2026, 11, 18, 15, 0)
    body = decisions_body((application["id"], "dibao"), amount="800")
    body["decisions"][0]["aid"] = {"start_on": "2026-12-01", "review_on": "2027-06-01"}
    resp = post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", body)
    assert resp.status_code == 200, resp.get_json()
    at_time(2026, 11, 20, 9, 0)
    visited(client, hank, head_id=head, hardship="general", visited_on="2026-11-20")
    at_time(2026, 11, 25, 9, 0)
    resp = post(client, center, f"/api/v1/leads/{lead_id}/revisit", {"satisfaction": 5})
    assert resp.status_code in (200, 201), resp.get_json()

    household = household_of(client, chengdong, "张三")
    chain = get(client, chengdong, f"/api/v1/households/{household['id']}/chain").get_json()
    kinds = [i["kind"] for i in chain["items"]]
    assert kinds == [
        "lead",
        "evidence",
        "application",
        "slip",
        "feedback",
        "decision",
        "aid",
        "visit",
        "revisit",
    ]
    moments = [i["at"] for i in chain["items"]]
    assert moments == sorted(moments)
    aid = next(i for i in chain["items"] if i["kind"] == "aid")
    assert aid["title"] == "救助发放：纳入低保，每月 800 元，自 2026-12-01 起"
    assert chain["next_due"]["kind"] == "visit"  # general hardship: visited again in 30 days
    assert chain["next_due"]["due_on"] == "2026-12-20"
    assert {d["kind"] for d in chain["due"]} == {"visit", "aid_review"}


def test_a_roster_file_places_its_recipients_in_households_in_the_background(
    client, center, chengdong, runtime
):
    from server import clock
    from server.worker import runner
    from tests.feedfiles import csv_bytes, upload

    rows = [
        ["姓名", "身份证号", "救助类别", "批准日期", "镇街"],
        ["赵大", make_id_number(), "农村低保", "2025-01-10", "城东街道"],
        ["钱二", make_id_number(), "特困供养", "2025-03-02", "城东街道"],
        ["孙三", make_id_number(), "农村低保", "2025-04-01", ""],
    ]
    resp = upload(client, center, "civil_affairs_new", csv_bytes(rows), "roster.csv")
    assert resp.status_code == 201, resp.get_json()
    assert get(client, chengdong, "/api/v1/households").get_json()["total"] == 0
    deps = {"pii": runtime.pii}
    ran = runner.run_due(runtime.session_factory, worker_id="w1", clock=clock.now, deps=deps)
    assert ran >= 1
    assert {household_of(client, chengdong, n)["town"]["code"] for n in ("赵大", "钱二")} == {
        "chengdong"
    }
    # Without a town a household cannot be placed; the recipient waits (nobody is lost).
    assert get(client, center, "/api/v1/households?name=孙三").get_json()["total"] == 0
    again = upload(client, center, "civil_affairs_new", csv_bytes(rows[:2]), "roster.csv")
    assert again.status_code == 201
    runner.run_due(runtime.session_factory, worker_id="w1", clock=clock.now, deps=deps)
    assert household_of(client, chengdong, "赵大")["members"][0]["name"] == "赵大"


def test_a_member_moved_to_another_household_keeps_the_history(client, alice, chengdong, db):
    filed(client, alice, head_id=make_id_number(), household=[])
    spouse = make_id_number()
    other = client.post(
        "/api/v1/households",
        json={
            "village": "cd-002",
            "address": "城东街道二村5号",
            "head": {"name": "赵六", "id_number": make_id_number()},
            "members": [{"name": "李四", "relation": "女儿", "id_number": spouse}],
        },
        headers=chengdong.headers,
    )
    assert other.status_code == 201, other.get_json()
    source = other.get_json()
    target = household_of(client, chengdong, "张三")
    moving = next(m for m in source["members"] if m["name"] == "李四")
    resp = post(
        client,
        chengdong,
        f"/api/v1/households/{source['id']}/members/{moving['id']}/move",
        {"to_household_id": target["id"], "relation": "配偶", "reason": "结婚"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert relations(resp.get_json())["李四"] == "配偶"
    left = get(client, chengdong, f"/api/v1/households/{source['id']}").get_json()
    assert "李四" not in relations(left)
    (former,) = left["former_members"]
    assert (former["name"], former["moved_to_household_id"]) == ("李四", target["id"])
    assert former["left_reason"] == "结婚" and former["left_at"] is not None
    actions = set(
        db.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "household"))
    )
    assert {
        "household.created",
        "household.member_moved_out",
        "household.member_moved_in",
    } <= actions


def test_a_person_in_one_household_is_not_added_to_another(client, alice, chengdong):
    spouse = make_id_number()
    filed(
        client,
        alice,
        head_id=make_id_number(),
        household=[{"name": "李四", "relation": "配偶", "id_number": spouse}],
    )
    resp = client.post(
        "/api/v1/households",
        json={"village": "cd-001", "head": {"name": "李四", "id_number": spouse}},
        headers=chengdong.headers,
    )
    assert resp.status_code == 409
    assert error_code(resp) == "member_elsewhere"


def test_a_village_helper_edits_their_villages_households_and_each_edit_is_audited(
    client, alice, hank, db
):
    filed(client, alice, head_id=make_id_number(), household=[])
    household = household_of(client, hank, "张三")
    resp = client.patch(
        f"/api/v1/households/{household['id']}",
        json={"address": "城东街道幸福路9号", "version": household["version"]},
        headers=hank.headers,
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["address"] == "城东街道幸福路9号"
    stale = client.patch(
        f"/api/v1/households/{household['id']}",
        json={"address": "又改了", "version": household["version"]},
        headers=hank.headers,
    )
    assert stale.status_code == 409
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "household.edited"))
    assert entry.actor_id == hank.user_id
    assert entry.detail["new"]["address"] == "城东街道幸福路9号"


def test_households_are_refused_to_other_roles_and_areas(
    client, alice, chengdong, insurance, staff_login, helper_login, resident_login
):
    filed(client, alice, head_id=make_id_number(), household=[])
    household = household_of(client, chengdong, "张三")
    path = f"/api/v1/households/{household['id']}"
    baita = staff_login(role="town_staff", town="baita")
    other_helper = helper_login("olga", village="cd-002")
    for login in (baita, other_helper):
        assert get(client, login, path).status_code == 404
        assert get(client, login, f"{path}/chain").status_code == 404
        assert client.patch(path, json={"address": "x"}, headers=login.headers).status_code == 404
    for login in (insurance, resident_login("bob")):
        assert get(client, login, path).status_code == 403
        assert get(client, login, "/api/v1/households").status_code == 403
    leader = staff_login(role="leader")
    assert get(client, leader, f"{path}/chain").status_code == 200
    assert client.patch(path, json={"address": "x"}, headers=leader.headers).status_code == 403
    assert get(client, baita, "/api/v1/households").get_json()["total"] == 0


def test_a_leads_detail_shows_the_household_and_its_other_open_leads_without_raising_them(
    client, alice, chengdong, db
):
    head, spouse = make_id_number(), make_id_number()
    filed(
        client,
        alice,
        head_id=head,
        household=[{"name": "李四", "relation": "配偶", "id_number": spouse}],
    )
    body = application_body(photos=[photo_id(client, alice)], type="temporary")
    body["applicant"] = {**body["applicant"], "name": "李四", "id_number": spouse}
    body["temporary"] = {"what_happened": "家中失火", "happened_on": "2026-10-20"}
    body["household"] = []
    spouse_app = file(client, alice, body)
    assert spouse_app.status_code == 201, spouse_app.get_json()
    leads = {lead.name: lead for lead in db.scalars(select(Lead))}
    before = leads["李四"].priority
    detail = get(client, chengdong, f"/api/v1/leads/{leads['张三'].id}").get_json()
    assert detail["household"]["head_name"] == "张三"
    (other,) = detail["household"]["other_open_leads"]
    assert (other["lead_id"], other["name"], other["relation"]) == (
        leads["李四"].id,
        "李四",
        "配偶",
    )
    assert other["priority"] == before
    db.expire_all()
    assert db.get(Lead, leads["李四"].id).priority == before


def test_a_decision_granting_aid_records_kind_amount_and_dates(client, alice, chengdong):
    application = filed(
        client,
        alice,
        head_id=make_id_number(),
        household=[],
        type="temporary",
        temporary={"what_happened": "家中失火", "happened_on": "2026-10-20"},
    )
    resp = decide_directly(
        client,
        chengdong,
        application["id"],
        outcome="temporary_aid",
        amount="3000",
        aid={"start_on": "2026-11-01"},
    )
    assert resp.status_code == 200, resp.get_json()
    (grant,) = get(client, chengdong, "/api/v1/aid-grants").get_json()["items"]
    assert (grant["kind"], grant["period"], grant["amount"]) == (
        "temporary_aid",
        "one_off",
        "3000.00",
    )
    assert (grant["start_on"], grant["review_on"]) == ("2026-11-01", None)
    assert grant["household_id"] == household_of(client, chengdong, "张三")["id"]


def reported(client, login, **body: Any) -> int:
    base = {"channel": "hotline", "summary": "来电反映生活困难", "town": "chengdong"}
    resp = post(client, login, "/api/v1/leads", {**base, **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["lead"]["id"]


def answered_with(client, center, unit, lead_id: int, **outcome: Any) -> dict[str, Any]:
    slip = issued(client, center, lead_id)
    assert post(client, unit, f"/api/v1/dispatches/{slip['id']}/sign").status_code == 200
    body = {"findings": "入户核实：家庭收入低于低保标准", **outcome}
    resp = post(client, unit, f"/api/v1/dispatches/{slip['id']}/feedback", body)
    assert resp.status_code == 200, resp.get_json()
    return slip


def test_a_slips_one_outcome_on_a_lead_without_applications_records_the_aid_granted(
    client, center, chengdong
):
    number = make_id_number()
    lead_id = reported(client, center, name="王五", id_number=number)
    slip = answered_with(client, center, chengdong, lead_id, outcome="dibao", amount="800")
    (grant,) = get(client, chengdong, "/api/v1/aid-grants").get_json()["items"]
    assert (grant["dispatch_id"], grant["application_id"]) == (slip["id"], None)
    assert (grant["kind"], grant["period"], grant["amount"]) == ("dibao", "monthly", "800.00")
    assert grant["review_on"] is not None
    household = household_of(client, chengdong, "王五")
    assert grant["household_id"] == household["id"]
    story = get(client, chengdong, f"/api/v1/households/{household['id']}/chain").get_json()
    assert any(i["kind"] == "aid" and "纳入低保" in i["title"] for i in story["items"]), story


def test_a_slips_outcome_for_a_lead_without_an_id_number_is_kept_on_the_slip_not_the_ledger(
    client, center, chengdong
):
    lead_id = reported(client, center, name="赵六", phone="13812345678")
    answered_with(client, center, chengdong, lead_id, outcome="temporary_aid", amount="2000")
    assert get(client, chengdong, "/api/v1/aid-grants").get_json()["total"] == 0


def test_a_refusal_grants_no_aid_and_review_before_start_is_refused(client, alice, chengdong):
    first = filed(client, alice, head_id=make_id_number(), household=[])
    early = decide_directly(
        client,
        chengdong,
        first["id"],
        outcome="dibao",
        aid={"start_on": "2026-11-01", "review_on": "2026-10-01"},
    )
    assert early.status_code == 422
    assert "aid.review_on" in early.get_json()["errors"]
    resp = post(
        client,
        chengdong,
        f"/api/v1/applications/{first['id']}/decide",
        {"outcome": "not_eligible", "reason": "收入高于标准"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert get(client, chengdong, "/api/v1/aid-grants").get_json()["total"] == 0


def test_a_passed_review_date_puts_the_household_on_the_towns_worklist(
    client, alice, chengdong, staff_login, db, runtime
):
    application = filed(client, alice, head_id=make_id_number(), household=[])
    resp = decide_directly(
        client,
        chengdong,
        application["id"],
        outcome="dibao",
        amount="700",
        aid={"start_on": "2025-11-01", "review_on": "2026-11-01"},
    )
    assert resp.status_code == 200, resp.get_json()
    due = get(client, chengdong, "/api/v1/aid-grants?due=true").get_json()
    assert due["total"] == 1 and due["items"][0]["review_due"] is True
    baita = staff_login(role="town_staff", town="baita")
    assert get(client, baita, "/api/v1/aid-grants?due=true").get_json()["total"] == 0
    town = db.scalar(select(Town).where(Town.code == "chengdong"))
    actor = Actor(user_id=chengdong.user_id, role=Role.TOWN_STAFF, town_id=town.id)
    from server import clock

    items = worklist.worklist(db, actor=actor, now=clock.now()).items
    review = next(i for i in items if i.endpoint == "console.households")
    assert review.count == 1 and review.args == {"review_due": "1"}
    grant_id = due["items"][0]["id"]
    resp = post(
        client,
        chengdong,
        f"/api/v1/aid-grants/{grant_id}/review",
        {"next_review_on": "2027-11-01", "note": "入户复核，家庭收入无变化"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert get(client, chengdong, "/api/v1/aid-grants?due=true").get_json()["total"] == 0
    assert date.fromisoformat(resp.get_json()["review_on"]) == date(2027, 11, 1)


def test_the_console_shows_a_households_chain_and_refuses_other_areas(
    client, app, alice, staff_login
):
    from tests.console_helpers import console_login

    filed(client, alice, head_id=make_id_number(), household=[{"name": "李四", "relation": "配偶"}])
    town = staff_login(role="town_staff", town="chengdong", username="hh-town")
    household = household_of(client, town, "张三")
    console_login(client, "hh-town", "correct-horse-9")
    page = client.get(f"/console/households/{household['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "一户一链：张三户" in html and "提交最低生活保障申请" in html and "配偶" in html
    listed = client.get("/console/households?name=张三").get_data(as_text=True)
    assert f"/console/households/{household['id']}" in listed
    other = app.test_client()
    staff_login(role="town_staff", town="baita", username="hh-baita")
    console_login(other, "hh-baita", "correct-horse-9")
    assert other.get(f"/console/households/{household['id']}").status_code == 404
    dept = app.test_client()
    staff_login(role="department_staff", username="hh-dept")
    console_login(dept, "hh-dept", "correct-horse-9")
    assert dept.get(f"/console/households/{household['id']}").status_code == 403


def couple_filed(client, alice, **spouse_address: str) -> None:
    """张三 files with his spouse 李四 in the household; 李四 then files her own application
    (where `spouse_address` says, by default in the same village): two open leads, one
    household."""
    spouse = make_id_number()
    filed(
        client,
        alice,
        head_id=make_id_number(),
        household=[{"name": "李四", "relation": "配偶", "id_number": spouse}],
    )
    body = application_body(photos=[photo_id(client, alice)], household=[])
    body["applicant"] = {**body["applicant"], "name": "李四", "id_number": spouse, **spouse_address}
    assert file(client, alice, body).status_code == 201


def test_the_queue_shows_each_leads_household_and_its_other_open_leads(
    client, alice, chengdong, db
):
    couple_filed(client, alice)
    leads = {lead.name: lead.id for lead in db.scalars(select(Lead))}
    items = {i["name"]: i for i in get(client, chengdong, "/api/v1/leads").get_json()["items"]}
    household_id = household_of(client, chengdong, "张三")["id"]
    assert items["张三"]["household"] == {"id": household_id, "other_open_leads": [leads["李四"]]}
    assert items["李四"]["household"] == {"id": household_id, "other_open_leads": [leads["张三"]]}


def test_the_queue_shows_a_household_members_open_lead_only_within_the_callers_scope(
    client, alice, chengdong, staff_login, db
):
    couple_filed(client, alice, town="baita", village="bt-001", address="白塔镇1号")
    leads = {lead.name: lead.id for lead in db.scalars(select(Lead))}
    town_items = {i["name"]: i for i in get(client, chengdong, "/api/v1/leads").get_json()["items"]}
    household_id = household_of(client, chengdong, "张三")["id"]
    assert "李四" not in town_items
    assert town_items["张三"]["household"] == {"id": household_id, "other_open_leads": []}
    center = staff_login(role="center_staff", username="hh-center")
    items = {i["name"]: i for i in get(client, center, "/api/v1/leads").get_json()["items"]}
    assert items["张三"]["household"]["other_open_leads"] == [leads["李四"]]


def test_the_consoles_lead_page_and_queue_show_the_household_and_its_other_open_leads(
    client, app, alice, staff_login, db
):
    from tests.console_helpers import console_login

    couple_filed(client, alice)
    leads = {lead.name: lead for lead in db.scalars(select(Lead))}
    before = leads["李四"].priority
    staff_login(role="town_staff", town="chengdong", username="hh-console")
    browser = app.test_client()
    console_login(browser, "hh-console", "correct-horse-9")
    household_id = db.scalar(select(FamilyMember.family_id).where(FamilyMember.name == "张三"))
    html = browser.get(f"/console/leads/{leads['张三'].id}").get_data(as_text=True)
    assert f'href="/console/households/{household_id}"' in html and "张三户" in html
    assert f'href="/console/leads/{leads["李四"].id}">李四</a>（配偶' in html
    queue = browser.get("/console/leads").get_data(as_text=True)
    assert queue.count("同户1条") == 2
    db.expire_all()
    assert db.get(Lead, leads["李四"].id).priority == before


def test_a_page_number_beyond_a_million_is_refused_not_a_server_error(client, chengdong):
    resp = get(client, chengdong, "/api/v1/households?page=6577842175494271795200")
    assert resp.status_code == 422 and "page" in resp.get_json()["errors"]
