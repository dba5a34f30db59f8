"""Department files through the HTTP API, on both engines: rows without an ID number in feeds
that rarely carry one, total rows, errors that quote the whole value, and department staff
reading only their own department's evidence on a lead several files touch."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.models import Lead
from tests.builders import make_id_number
from tests.console_helpers import console_login
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


def shared_lead(client, center) -> None:
    """One person in two departments' files: 医保's large bill and 残联's new disability."""
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


def test_department_staff_read_only_their_own_departments_evidence_on_a_shared_lead(
    client, staff_login
):
    center = staff_login(role="center_staff")
    shared_lead(client, center)
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


def test_department_staff_see_only_the_categories_their_own_evidence_brought(client, staff_login):
    center = staff_login(role="center_staff")
    shared_lead(client, center)
    insurer = staff_login(role="department_staff", department="medical_insurance")
    (whole,) = client.get("/api/v1/leads", headers=center.headers).get_json()["items"]
    assert "disabled" in whole["categories"]
    (item,) = client.get("/api/v1/leads", headers=insurer.headers).get_json()["items"]
    assert item["categories"] and "disabled" not in item["categories"], item
    seen = client.get(f"/api/v1/leads/{item['id']}", headers=insurer.headers).get_json()
    assert seen["categories"] == item["categories"]
    assert "残疾" not in "".join(seen["category_labels"])


def test_department_staff_filtering_by_a_category_only_another_department_brings_find_nothing(
    app, client, staff_login
):
    center = staff_login(role="center_staff")
    shared_lead(client, center)
    insurer = staff_login(
        role="department_staff", department="medical_insurance", username="insurer"
    )
    federation = staff_login(
        role="department_staff", department="disabled_federation", username="federation"
    )

    def found(login) -> int:
        resp = client.get("/api/v1/leads?category=disabled", headers=login.headers)
        assert resp.status_code == 200, resp.get_json()
        return len(resp.get_json()["items"])

    assert found(federation) == 1
    assert found(insurer) == 0
    for username, count in (("federation", 1), ("insurer", 0)):
        with app.test_client() as browser:
            console_login(browser, username, "correct-horse-9")
            page = browser.get("/console/leads?category=disabled")
            assert page.status_code == 200
            assert f"共 {count} 条" in page.get_data(as_text=True)


def test_department_staff_read_only_the_notes_their_own_department_wrote(client, staff_login):
    center = staff_login(role="center_staff")
    number = make_id_number()
    imported(
        client,
        center,
        "insurance_oop",
        [OOP_HEADER, [1, "张三", number, "博山区医院", "2026-10-01", "2026-10-20", 32400]],
    )
    insurer = staff_login(role="department_staff", department="medical_insurance")
    colleague = staff_login(role="department_staff", department="medical_insurance")
    (item,) = client.get("/api/v1/leads", headers=insurer.headers).get_json()["items"]
    path = f"/api/v1/leads/{item['id']}/notes"
    for login, words in ((center, "残联核实为肢体二级"), (colleague, "本月已报销两次")):
        resp = client.post(path, headers=login.headers, json={"text": words})
        assert resp.status_code == 201, resp.get_json()
    seen = client.get(f"/api/v1/leads/{item['id']}", headers=insurer.headers).get_json()
    texts = [e["text"] for e in seen["timeline"]]
    assert "本月已报销两次" in texts and "残联核实为肢体二级" not in str(seen["timeline"])
    whole = client.get(f"/api/v1/leads/{item['id']}", headers=center.headers).get_json()
    assert {"本月已报销两次", "残联核实为肢体二级"} <= {e["text"] for e in whole["timeline"]}


def test_a_phone_number_is_one_number_with_or_without_chinas_country_code(client, staff_login):
    center = staff_login(role="center_staff")
    mobile = report(client, center, name="李四", phone="+86 138 1234 5678")
    landline = report(client, center, name="王五", phone="05334181234")
    for written, lead in (
        ("13812345678", mobile),
        ("0086-138-1234-5678", mobile),
        ("+86 533 4181234", landline),
        ("(0533)4181234", landline),
    ):
        resp = client.post("/api/v1/leads/search", headers=center.headers, json={"phone": written})
        assert resp.status_code == 200, resp.get_json()
        assert [i["id"] for i in resp.get_json()["items"]] == [lead["id"]], written
