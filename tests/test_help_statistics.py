"""The monthly statistics count the help given: households helped, aid granted by kind and
amount, donations received and allocated, and services given (district and per town)."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import select

from server import clock
from server.models import Lead
from tests.builders import volunteers
from tests.builders.applications import application_body, file, photo_id
from tests.builders.dispatches import get, post
from tests.builders.households import decide_directly
from tests.builders.volunteers import register

villages = volunteers.villages


def test_the_monthly_statistics_count_households_helped_aid_donations_and_services(
    client, center, villages, resident_login, staff_login, db
):
    alice = resident_login("alice")
    town = staff_login(role="town_staff")
    ids = []
    for name, kind in (("张三", "dibao"), ("王五", "temporary")):
        body = application_body(photos=[photo_id(client, alice)], household=[], type=kind)
        body["applicant"]["name"] = name
        if kind == "temporary":
            body["temporary"] = {"what_happened": "家中失火", "happened_on": "2026-10-20"}
        resp = file(client, alice, body)
        assert resp.status_code == 201, resp.get_json()
        ids.append(resp.get_json()["id"])
    assert decide_directly(client, town, ids[0], outcome="dibao", amount="800").status_code == 200
    assert (
        decide_directly(client, town, ids[1], outcome="temporary_aid", amount="3000").status_code
        == 200
    )
    households = sorted(
        h["id"] for h in get(client, town, "/api/v1/households").get_json()["items"]
    )
    donation = post(
        client,
        center,
        "/api/v1/donations",
        {"donor": {"name": "某公司"}, "kind": "money", "amount": "5000"},
    ).get_json()
    post(
        client,
        center,
        f"/api/v1/donations/{donation['id']}/allocations",
        {"quantity": "1000", "household_id": households[0]},
    )
    org = register(client, center)
    lead_id = db.scalar(select(Lead.id).where(Lead.name == "王五"))
    a = post(
        client,
        center,
        "/api/v1/service-assignments",
        {
            "lead_id": lead_id,
            "org_id": org["id"],
            "kind": "resource_linking",
            "instructions": "对接就业岗位",
        },
    ).get_json()
    today = clock.now().date().isoformat()
    resp = post(
        client,
        center,
        "/api/v1/services",
        {
            "assignment_id": a["id"],
            "served_on": today,
            "duration_minutes": 45,
            "notes": "已对接",
        },
    )
    assert resp.status_code == 201, resp.get_json()

    month = clock.now().strftime("%Y-%m")
    report = get(client, center, f"/api/v1/reports/monthly?month={month}").get_json()
    help_ = report["help"]
    assert help_["households_helped"] == 2
    assert (help_["aid"]["households"], help_["aid"]["grants"], help_["aid"]["amount"]) == (
        2,
        2,
        "3800.00",
    )
    by_kind = {k["kind"]: (k["period"], k["amount"]) for k in help_["aid"]["by_kind"]}
    assert by_kind == {"dibao": ("monthly", "800.00"), "temporary_aid": ("one_off", "3000.00")}
    assert help_["donations"] == {
        "received": 1,
        "money_received": "5000.00",
        "goods_received": 0,
        "allocations": 1,
        "money_allocated": "1000.00",
        "households": 1,
    }
    assert help_["services"] == {
        "services": 1,
        "by_kind": [
            {"kind": "resource_linking", "label": "资源链接", "services": 1, "households": 1}
        ],
    }
    mine = get(client, town, f"/api/v1/reports/monthly?month={month}").get_json()["help"]
    assert mine["households_helped"] == 2 and mine["donations"]["received"] == 0
    book = load_workbook(
        io.BytesIO(get(client, center, f"/api/v1/reports/monthly.xlsx?month={month}").data)
    )
    rows = {r[0]: r[1] for r in book["救助帮扶"].iter_rows(values_only=True) if r[0]}
    assert rows["得到帮扶的户数"] == 2 and rows["救助发放：金额（元）"] == 3800
