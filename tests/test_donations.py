"""Donations (捐赠): recorded and receipted by the center, allocated to households or a fund with
the remainder kept right (and two allocations racing beyond it: one refused), the books per
donor and purpose with their export, the household chain, and the public summary without names."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from server.models import AuditEntry
from tests.builders import error_code, make_id_number
from tests.builders.applications import application_body, file, photo_id, village
from tests.builders.dispatches import get, post
from tests.concurrent import Call, race_http


@pytest.fixture
def center(staff_login):
    return staff_login(role="center_staff")


@pytest.fixture
def households(client, resident_login, staff_login, db) -> list[int]:
    """Two households in 城东 (from two applications): their ids."""
    village(db, code="cd-001")
    alice = resident_login("alice")
    for name in ("张三", "王五"):
        body = application_body(photos=[photo_id(client, alice)], household=[])
        body["applicant"] = {**body["applicant"], "name": name, "id_number": make_id_number()}
        assert file(client, alice, body).status_code == 201
    town = staff_login(role="town_staff")
    page = get(client, town, "/api/v1/households").get_json()
    return sorted(h["id"] for h in page["items"])


def money(client, center, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "donor": {"name": "博山某建材有限公司", "kind": "enterprise", "phone": "05334000000"},
        "kind": "money",
        "amount": "10000",
        "received_on": "2026-11-20",
        "purpose": "助学",
    }
    body.update(overrides)
    resp = post(client, center, "/api/v1/donations", body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def allocate(client, login, donation_id: int, **body: Any):
    return post(client, login, f"/api/v1/donations/{donation_id}/allocations", body)


def test_a_donation_is_received_and_receipted_with_a_number(client, center, db):
    first = money(client, center)
    second = money(
        client,
        center,
        kind="goods",
        amount=None,
        items="棉被",
        quantity="20",
        unit="床",
        purpose=None,
        donor={"name": "李善人"},
    )
    assert (first["number"], second["number"]) == ("JZ2026000001", "JZ2026000002")
    assert (second["text"], second["remaining"]) == ("物资 棉被 20 床", "20.00")
    assert first["donor"]["phone"] != "05334000000"
    receipt = get(client, center, f"/api/v1/donations/{first['id']}/receipt.html")
    assert receipt.status_code == 200 and receipt.mimetype == "text/html"
    html = receipt.get_data(as_text=True)
    assert "捐赠收据" in html and "JZ2026000001" in html and "资金 10000 元" in html
    assert "助学" in html
    printed = db.scalar(select(AuditEntry).where(AuditEntry.action == "donation.receipt_printed"))
    assert printed.target_id == first["id"]


def test_allocations_to_two_households_leave_the_right_remainder_and_more_is_refused(
    client, center, households
):
    donation = money(client, center)
    one = allocate(client, center, donation["id"], quantity="3000", household_id=households[0])
    assert one.status_code == 201, one.get_json()
    two = allocate(client, center, donation["id"], quantity="4500.50", household_id=households[1])
    assert two.status_code == 201
    body = two.get_json()
    assert (body["allocated"], body["remaining"]) == ("7500.50", "2499.50")
    assert [a["household_head"] for a in body["allocations"]] == ["张三", "王五"]
    beyond = allocate(client, center, donation["id"], quantity="2500", household_id=households[0])
    assert beyond.status_code == 409 and error_code(beyond) == "donation_exhausted"
    fund = allocate(client, center, donation["id"], quantity="2499.50", fund="临时救助备用金")
    assert fund.status_code == 201 and fund.get_json()["remaining"] == "0.00"
    both = allocate(
        client, center, donation["id"], quantity="1", household_id=households[0], fund="x"
    )
    assert both.status_code == 422


def test_two_allocations_racing_beyond_the_remainder_one_is_refused(
    app, client, center, households, staff_login
):
    donation = money(client, center, amount="1000")
    colleague = staff_login(role="center_staff")
    path = f"/api/v1/donations/{donation['id']}/allocations"
    responses = race_http(
        app,
        [
            Call(center.headers, path, {"quantity": "700", "household_id": households[0]}),
            Call(colleague.headers, path, {"quantity": "600", "household_id": households[1]}),
        ],
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    after = get(client, center, f"/api/v1/donations/{donation['id']}").get_json()
    assert len(after["allocations"]) == 1
    assert after["remaining"] in ("300.00", "400.00")


def test_an_allocation_shows_on_the_households_chain(client, center, households, staff_login):
    donation = money(client, center)
    allocate(client, center, donation["id"], quantity="800", household_id=households[0])
    town = staff_login(role="town_staff")
    chain = get(client, town, f"/api/v1/households/{households[0]}/chain").get_json()
    (item,) = [i for i in chain["items"] if i["kind"] == "donation"]
    assert item["title"] == "获得捐赠：资金 800 元（助学）"
    other = get(client, town, f"/api/v1/households/{households[1]}/chain").get_json()
    assert not [i for i in other["items"] if i["kind"] == "donation"]


def test_the_center_sees_received_allocated_and_left_per_donor_and_purpose_and_exports_it(
    client, center, households, db
):
    a = money(client, center)
    money(client, center, amount="2000", purpose=None)
    money(client, center, donor={"name": "李善人"}, amount="500")
    allocate(client, center, a["id"], quantity="3000", household_id=households[0])
    books = get(client, center, "/api/v1/donations/books").get_json()
    by_donor = {line["key"]: line for line in books["by_donor"]}
    company = by_donor["博山某建材有限公司"]
    assert (company["received"], company["allocated"], company["left"]) == (
        "12000.00",
        "3000.00",
        "9000.00",
    )
    by_purpose = {line["key"]: line for line in books["by_purpose"]}
    assert by_purpose["助学"]["received"] == "10500.00"
    assert by_purpose["非定向"]["left"] == "2000.00"
    export = get(client, center, "/api/v1/donations/books.xlsx")
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.data))["按用途"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == ["用途", "类别", "单位", "接收", "已分配", "结余"]
    assert ["助学", "资金", "元", 10500, 3000, 7500] in rows
    assert db.scalar(select(AuditEntry.id).where(AuditEntry.action == "donation.exported"))


def test_the_public_summary_needs_no_login_and_names_nobody(client, center, households):
    donation = money(client, center)
    allocate(client, center, donation["id"], quantity="3000", household_id=households[0])
    resp = client.get("/api/v1/public/donations")
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    for name in ("张三", "博山某建材有限公司", "05334000000"):
        assert name not in text
    (line,) = [i for i in resp.get_json()["items"] if i["month"] == "2026-11"]
    assert (line["purpose"], line["money_received"]) == ("助学", "10000.00")
    allocated = sum(float(i["money_allocated"]) for i in resp.get_json()["items"])
    assert allocated == 3000


def test_the_public_summary_tells_goods_by_item_and_quantity_received_and_allocated(
    client, center, households
):
    quilts = money(
        client,
        center,
        kind="goods",
        amount=None,
        items="棉被",
        quantity="20",
        unit="床",
        purpose="冬季送温暖",
        donor={"name": "李善人"},
    )
    assert (
        allocate(client, center, quilts["id"], quantity="6", household_id=households[0]).status_code
        == 201
    )
    assert (
        allocate(client, center, quilts["id"], quantity="4", household_id=households[1]).status_code
        == 201
    )
    resp = client.get("/api/v1/public/donations")
    lines = {i["month"]: i for i in resp.get_json()["items"] if i["purpose"] == "冬季送温暖"}
    received = [g for line in lines.values() for g in line["goods"] if float(g["received"])]
    allocated = [g for line in lines.values() for g in line["goods"] if float(g["allocated"])]
    assert [(g["items"], g["unit"], g["received"]) for g in received] == [("棉被", "床", "20.00")]
    assert [(g["items"], g["unit"], g["allocated"]) for g in allocated] == [("棉被", "床", "10.00")]
    assert "李善人" not in resp.get_data(as_text=True)


def test_only_the_center_records_and_allocates_donations(
    client, center, households, staff_login, resident_login
):
    donation = money(client, center)
    town = staff_login(role="town_staff")
    leader = staff_login(role="leader")
    assert post(client, town, "/api/v1/donations", {"kind": "money"}).status_code == 403
    assert (
        allocate(client, town, donation["id"], quantity="1", household_id=households[0]).status_code
        == 403
    )
    assert get(client, town, f"/api/v1/donations/{donation['id']}").status_code == 403
    assert get(client, resident_login("bob"), "/api/v1/donations/books").status_code == 403
    assert get(client, leader, "/api/v1/donations/books").status_code == 200
    assert (
        allocate(
            client, leader, donation["id"], quantity="1", household_id=households[0]
        ).status_code
        == 403
    )
    assert get(client, center, "/api/v1/donations/999999").status_code == 404
    missing = allocate(client, center, donation["id"], quantity="1", household_id=999999)
    assert missing.status_code == 404
