"""Reference data: eleven divisions, the departments, and villages loaded by staff."""

from __future__ import annotations

import io

import xlsxwriter


def test_eleven_divisions_are_seeded_with_stable_codes(client, resident_login):
    towns = client.get("/api/v1/areas", headers=resident_login().headers).get_json()
    assert len(towns) == 11
    assert {t["kind"] for t in towns} == {"street", "town", "zone"}
    assert [t["code"] for t in towns][:3] == ["chengdong", "chengxi", "shantou"]


def test_seeding_twice_changes_nothing(db):
    from sqlalchemy import func, select

    from server.models import Department, Town
    from server.services.places.areas import seed_reference

    seed_reference(db)
    db.commit()
    assert db.scalar(select(func.count()).select_from(Town)) == 11
    assert db.scalar(select(func.count()).select_from(Department)) == 13


def _xlsx(rows):
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        sheet.write_row(r, 0, row)
    book.close()
    return buf.getvalue()


def test_center_loads_villages_from_xlsx_with_a_title_row(client, staff_login, resident_login):
    login = staff_login(role="system_admin")
    content = _xlsx(
        [
            ["博山区村居名单"],
            ["镇街", "村居", "编码"],
            ["白塔镇", "西坡村", "370304105001"],
            ["baita", "东坡村", "370304105002"],
            ["不存在镇", "某村", "9"],
        ]
    )
    resp = client.post(
        "/api/v1/villages/import",
        headers=login.headers,
        data={"file": (io.BytesIO(content), "villages.xlsx")},
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["created"] == 2
    assert body["errors"][0]["row"] == 5
    towns = client.get("/api/v1/areas", headers=resident_login().headers).get_json()
    baita = next(t for t in towns if t["code"] == "baita")
    assert [v["name"] for v in baita["villages"]] == ["西坡村", "东坡村"]


def test_a_file_without_a_header_is_refused(client, staff_login):
    login = staff_login(role="system_admin")
    resp = client.post(
        "/api/v1/villages/import",
        headers=login.headers,
        data={"file": (io.BytesIO(b"a,b,c\n1,2,3\n"), "v.csv")},
    )
    assert resp.status_code == 422
    assert resp.get_json()["code"] == "villages_header_missing"


def test_town_staff_adds_a_village_of_their_own_town(client, staff_login):
    login = staff_login(role="town_staff", town="chengdong")
    resp = client.post(
        "/api/v1/villages",
        headers=login.headers,
        json={"town": "chengdong", "code": "cd-001", "name": "东关社区"},
    )
    assert resp.status_code == 201
    assert resp.get_json() == {"code": "cd-001", "name": "东关社区"}
