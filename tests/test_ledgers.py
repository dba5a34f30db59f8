"""Ledgers (分类台帐): scoped like visits, filtered by town, village and category, households
overdue for a visit first, and the xlsx a town keeps on paper."""

from __future__ import annotations

import io

import openpyxl
import pytest

from server import clock
from tests.builders import make_id_number, visits
from tests.builders.ledgers import days, household
from tests.builders.visits import record

villages = visits.villages


@pytest.fixture
def town(villages, staff_login):
    return staff_login(role="town_staff", town="chengdong")


def names(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [row["head_name"] for row in resp.get_json()["items"]]


def test_households_overdue_for_a_visit_come_first_longest_overdue_at_the_top(client, town):
    household(client, town, "丁-下月", visited=0, next_in=60)
    household(client, town, "丙-下周", visited=0, next_in=5)
    household(client, town, "乙-逾期10天", visited=-20, next_in=-10)
    household(client, town, "甲-逾期30天", visited=-60, next_in=-30)
    resp = client.get("/api/v1/ledgers", headers=town.headers)
    assert names(resp) == ["甲-逾期30天", "乙-逾期10天", "丙-下周", "丁-下月"]
    body = resp.get_json()
    assert body["overdue"] == 2
    assert [r["days_overdue"] for r in body["items"]] == [30, 10, 0, 0]
    assert [r["overdue"] for r in body["items"]] == [True, True, False, False]


def test_overdue_only_lists_just_the_overdue(client, town):
    household(client, town, "甲", visited=-60, next_in=-30)
    household(client, town, "乙", visited=0, next_in=5)
    assert names(client.get("/api/v1/ledgers?overdue=true", headers=town.headers)) == ["甲"]


def test_each_row_shows_the_latest_assessment_and_the_last_visit_date(client, town):
    head = {"name": "王大山", "id_number": make_id_number()}
    record(client, town, head=head, hardship="general", visited_on=days(-40))
    record(client, town, head=head, hardship="severe", visited_on=days(-3), causes=["disaster"])
    (row,) = client.get("/api/v1/ledgers", headers=town.headers).get_json()["items"]
    assert row["hardship_label"] == "严重困难"
    assert row["cause_labels"] == ["因灾"]
    assert row["last_visited_on"] == days(-3)
    assert row["members"] == 2
    assert row["id_number"].count("*") == 8
    assert row["phone"] == "139****5678"


def test_filter_by_category(client, town):
    household(client, town, "留守", visited=0, next_in=30, categories=["left_behind"])
    household(client, town, "残疾", visited=0, next_in=30, categories=["disabled", "dibao"])
    resp = client.get("/api/v1/ledgers?category=disabled", headers=town.headers)
    assert names(resp) == ["残疾"]
    assert resp.get_json()["items"][0]["category_labels"] == ["低保对象", "残疾人"]


def test_a_households_category_follows_its_latest_visit(client, town):
    head = {"name": "王大山", "id_number": make_id_number()}
    record(client, town, head=head, categories=["dibao"], visited_on=days(-10))
    record(client, town, head=head, categories=["tekun"], visited_on=days(0))
    assert names(client.get("/api/v1/ledgers?category=dibao", headers=town.headers)) == []
    assert names(client.get("/api/v1/ledgers?category=tekun", headers=town.headers)) == ["王大山"]


def test_filter_by_village(client, town):
    household(client, town, "一村", visited=0, next_in=30)
    household(client, town, "二村", visited=0, next_in=30, village="cd-002")
    assert names(client.get("/api/v1/ledgers?village=cd-002", headers=town.headers)) == ["二村"]


@pytest.fixture
def spread(client, villages, staff_login, helper_login):
    """One household in each of cd-001, cd-002 (城东) and bt-001 (白塔)."""
    center = staff_login(role="center_staff")
    household(client, center, "城东一村", visited=0, next_in=30)
    household(client, center, "城东二村", visited=0, next_in=30, village="cd-002")
    household(client, center, "白塔", visited=0, next_in=30, village="bt-001")
    return center


def test_the_center_reads_every_town_and_filters_by_town(client, spread):
    assert len(names(client.get("/api/v1/ledgers", headers=spread.headers))) == 3
    by_town = client.get("/api/v1/ledgers?town=baita", headers=spread.headers)
    assert names(by_town) == ["白塔"]


def test_town_staff_read_only_their_town(client, spread, staff_login):
    chengdong = staff_login(role="town_staff", town="chengdong")
    rows = names(client.get("/api/v1/ledgers", headers=chengdong.headers))
    assert sorted(rows) == sorted(["城东一村", "城东二村"])
    assert client.get("/api/v1/ledgers?town=baita", headers=chengdong.headers).status_code == 404
    other_village = client.get("/api/v1/ledgers?village=bt-001", headers=chengdong.headers)
    assert other_village.status_code == 404


def test_helpers_read_only_their_village(client, spread, helper_login):
    hank = helper_login("hank", village="cd-001")
    assert names(client.get("/api/v1/ledgers", headers=hank.headers)) == ["城东一村"]
    assert client.get("/api/v1/ledgers?village=cd-002", headers=hank.headers).status_code == 404


@pytest.mark.parametrize("role", ["department_staff", "leader"])
def test_other_staff_roles_cannot_read_ledgers(client, spread, staff_login, role):
    login = staff_login(role=role)
    assert client.get("/api/v1/ledgers", headers=login.headers).status_code == 403
    assert client.get("/api/v1/ledgers.xlsx", headers=login.headers).status_code == 403


def test_residents_cannot_read_ledgers(client, spread, resident_login):
    login = resident_login("rita")
    assert client.get("/api/v1/ledgers", headers=login.headers).status_code == 403


def test_ledgers_need_a_login(client):
    assert client.get("/api/v1/ledgers").status_code == 401
    assert client.get("/api/v1/ledgers.xlsx").status_code == 401


# --- xlsx -----------------------------------------------------------------------------------


def workbook(resp) -> openpyxl.Workbook:
    assert resp.status_code == 200, resp.get_data()[:300]
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    return openpyxl.load_workbook(io.BytesIO(resp.get_data()))


def test_the_export_is_the_paper_ledger_overdue_first_with_one_sheet_per_category(client, town):
    household(client, town, "乙", visited=0, next_in=30, categories=["dibao"])
    household(client, town, "甲", visited=-60, next_in=-30, categories=["dibao", "disabled"])
    resp = client.get("/api/v1/ledgers.xlsx", headers=town.headers)
    assert "attachment" in resp.headers["Content-Disposition"]
    book = workbook(resp)
    assert book.sheetnames == ["汇总", "低保对象", "残疾人"]
    sheet = book["汇总"]
    assert sheet["A1"].value == "城东街道困难群众分类台帐"
    assert "共2户，其中逾期未走访1户" in sheet["A2"].value
    header = [c.value for c in sheet[3]]
    assert header[:5] == ["序号", "镇（街道）", "村（社区）", "户主姓名", "身份证号码"]
    assert "最近走访日期" in header and "逾期天数" in header
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4, max_row=5)]
    assert [r[3] for r in rows] == ["甲", "乙"]
    assert rows[0][header.index("逾期天数")] == 30
    assert rows[0][4].count("*") == 8  # masked even on paper
    assert "填报人" in sheet["A7"].value
    assert [r[3] for r in book["残疾人"].iter_rows(min_row=4, max_row=4, values_only=True)] == [
        "甲"
    ]
    assert sheet.page_setup.orientation == "landscape"


def test_the_export_is_scoped_like_the_ledger(client, spread, staff_login):
    chengdong = staff_login(role="town_staff", town="chengdong")
    book = workbook(client.get("/api/v1/ledgers.xlsx", headers=chengdong.headers))
    rows = [r[3] for r in book["汇总"].iter_rows(min_row=4, max_row=5, values_only=True)]
    assert sorted(rows) == sorted(["城东一村", "城东二村"])
    assert book["汇总"]["A7"].value.startswith("填报人")


def test_the_export_is_audited(client, town, db):
    from sqlalchemy import select

    from server.models import AuditEntry

    household(client, town, "甲", visited=0, next_in=30)
    client.get("/api/v1/ledgers.xlsx?village=cd-001", headers=town.headers)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "ledger.exported"))
    assert entry.detail == {"rows": 1, "village": "cd-001"}


def test_the_demo_seed_fills_each_towns_ledger(client, db, runtime):
    from server.demo.seed import DEMO_PASSWORD, seed_demo

    seed_demo(db, pii=runtime.pii, now=clock.now())
    db.commit()
    token = client.post(
        "/api/v1/auth/staff-login", json={"username": "chengdong", "password": DEMO_PASSWORD}
    ).get_json()["token"]
    body = client.get("/api/v1/ledgers", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["total"] == 4
    assert {row["town"] for row in body["items"]} == {"chengdong"}


def test_a_malformed_village_code_is_refused(client, town):
    assert client.get("/api/v1/ledgers?village=cd%00", headers=town.headers).status_code == 422


def test_search_by_part_of_the_head_of_households_name(client, town):
    household(client, town, "张秀英", visited=0, next_in=30)
    household(client, town, "李秀兰", visited=0, next_in=20)
    household(client, town, "王_%", visited=0, next_in=10)
    assert names(client.get("/api/v1/ledgers?name=秀", headers=town.headers)) == [
        "李秀兰",
        "张秀英",
    ]
    assert names(client.get("/api/v1/ledgers?name=张", headers=town.headers)) == ["张秀英"]
    assert names(client.get("/api/v1/ledgers?name=_%", headers=town.headers)) == ["王_%"]
