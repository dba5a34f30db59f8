"""Department files through the HTTP API, on both engines: rows without an ID number in feeds
that rarely carry one, total rows, errors that quote the whole value, and department staff
reading only their own department's evidence on a lead several files touch."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.models import Lead
from tests.builders import make_id_number
from tests.feedfiles import OOP_HEADER, upload, xlsx

COMPLAINT_HEADER = ["序号", "姓名", "身份证号", "投诉日期", "诉求内容", "联系电话", "住址", "镇街"]


def complaint(name: str, *, id_number: str = "", phone: str = "", address: str = "") -> list:
    return [1, name, id_number, "2026-11-20", "家中老人病重，生活困难", phone, address, "城东街道"]


def imported(client, login, code: str, rows: list[list[Any]]) -> dict[str, Any]:
    resp = upload(client, login, code, xlsx(rows))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def report(client, login, **body: Any) -> dict[str, Any]:
    base = {"channel": "hotline", "summary": "来电反映生活困难", "town": "chengdong"}
    resp = client.post("/api/v1/leads", headers=login.headers, json={**base, **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["lead"]


def test_a_complaint_row_without_an_id_number_opens_a_lead_matched_to_its_person(
    client, staff_login, db
):
    center = staff_login(role="center_staff")
    person = report(client, center, name="王秀英", id_number=make_id_number(), phone="13912345678")
    batch = imported(
        client,
        center,
        "complaints",
        [COMPLAINT_HEADER, complaint("王秀英", phone="139-1234-5678")],
    )
    result = batch["result"]
    assert (result["rejected"], result["without_id"], result["leads_created"]) == (0, 1, 1)
    assert result["with_candidates"] == 1
    db.expire_all()
    new = db.scalar(select(Lead).where(Lead.person_hash.is_(None)))
    assert new is not None and new.channel.value == "feed" and new.id != person["id"]
    resp = client.get(f"/api/v1/leads/{new.id}/candidates", headers=center.headers)
    (best, *_) = resp.get_json()["candidates"]
    assert best["lead_id"] == person["id"]
    assert {"姓名相同", "联系电话相同"} <= set(best["reasons"]), best
    merged = client.post(
        f"/api/v1/leads/{new.id}/merge",
        headers=center.headers,
        json={"into_lead_id": person["id"]},
    )
    assert merged.status_code == 200, merged.get_json()
    assert any(e["feed_code"] == "complaints" for e in merged.get_json()["evidence"])
    assert any(r.startswith("投诉中心") for r in merged.get_json()["priority_reasons"])
    again = imported(
        client, center, "complaints", [COMPLAINT_HEADER, complaint("王秀英", phone="13912345678")]
    )
    assert again["result"]["leads_created"] == 0 and again["result"]["duplicates"] == 1


def test_a_row_without_an_id_number_needs_a_phone_or_an_address(client, staff_login):
    center = staff_login(role="center_staff")
    batch = imported(
        client,
        center,
        "complaints",
        [
            COMPLAINT_HEADER,
            complaint("李大海"),
            complaint("赵小红", address="城东街道幸福路3号"),
        ],
    )
    assert batch["result"]["rejected"] == 1 and batch["result"]["leads_created"] == 1
    (rejected,) = batch["rejected"]
    assert rejected["code"] == "contact_required"


def test_an_id_number_stays_required_where_the_registry_says_so(client, staff_login):
    center = staff_login(role="center_staff")
    batch = imported(
        client,
        center,
        "insurance_oop",
        [OOP_HEADER, [1, "张三", "", "博山区医院", "2026-10-01", "2026-10-20", 32400]],
    )
    assert batch["result"]["rejected"] == 1 and batch["result"]["without_id"] == 0


def test_total_rows_are_skipped_and_counted_not_reported_as_errors(client, staff_login):
    center = staff_login(role="center_staff")
    batch = imported(
        client,
        center,
        "insurance_oop",
        [
            OOP_HEADER,
            [1, "张三", make_id_number(), "博山区医院", "2026-10-01", "2026-10-20", 32400],
            ["合计", "", "", "", "", "", 32400],
            ["", "小计", "", "", "", "", 32400],
            ["总计（本月）", None, None, None, None, None, 64800],
        ],
    )
    result = batch["result"]
    assert (result["totals_skipped"], result["rejected"], result["leads_created"]) == (3, 0, 1)
    assert batch["rejected"] == []


def test_a_feed_error_quotes_the_whole_value(client, staff_login):
    center = staff_login(role="center_staff")
    batch = imported(
        client,
        center,
        "insurance_oop",
        [OOP_HEADER, [1, "张三", make_id_number(), "博山区医院", "2026-10-01", "", "约两万"]],
    )
    (rejected,) = batch["rejected"]
    assert rejected["message"].endswith("约两万"), rejected


def test_department_staff_read_only_their_own_departments_evidence_on_a_shared_lead(
    client, staff_login
):
    center = staff_login(role="center_staff")
    number = make_id_number()
    imported(
        client,
        center,
        "insurance_oop",
        [OOP_HEADER, [1, "张三", number, "博山区医院", "2026-10-01", "2026-10-20", 32400]],
    )
    imported(
        client,
        center,
        "disability_new",
        [
            ["姓名", "身份证号", "残疾类别", "残疾等级", "认定日期"],
            ["张三", number, "肢体", "二级", "2026-11-02"],
        ],
    )
    insurer = staff_login(role="department_staff", department="medical_insurance")
    federation = staff_login(role="department_staff", department="disabled_federation")
    (item,) = client.get("/api/v1/leads", headers=insurer.headers).get_json()["items"]
    assert all(r.startswith("医保") for r in item["priority_reasons"]), item
    full = client.get(f"/api/v1/leads/{item['id']}", headers=center.headers).get_json()
    assert {e["feed_code"] for e in full["evidence"]} == {"insurance_oop", "disability_new"}
    for login, feed, prefix in (
        (insurer, "insurance_oop", "医保"),
        (federation, "disability_new", "残联"),
    ):
        seen = client.get(f"/api/v1/leads/{item['id']}", headers=login.headers).get_json()
        assert {e["feed_code"] for e in seen["evidence"]} == {feed}, seen["evidence"]
        assert seen["priority_reasons"] and all(
            r.startswith(prefix) for r in seen["priority_reasons"]
        )
