"""部门报送 in the console: the feeds board, a department's upload with its progress while the
worker imports, the result and rejected rows with errors.xlsx, and the feeds' settings."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from server.models import AuditEntry
from tests.builders import make_id_number
from tests.console_helpers import console_login, csrf_of, post
from tests.feedfiles import OOP_HEADER, xlsx

PASSWORD = "correct-horse-9"


def oop_row(name: str, id_number: str, amount: object) -> list[object]:
    return [1, name, id_number, "博山区医院", "2026-03-05", "2026-03-15", amount]


def _file(good: int, bad: int) -> bytes:
    rows = [OOP_HEADER, *[oop_row(f"人{i}", make_id_number(), 30000 + i) for i in range(good)]]
    rows += [oop_row(f"错{i}", "37030419800101123", 30000) for i in range(bad)]
    return xlsx(rows)


def _upload(client, csrf: str, content: bytes, code: str = "insurance_oop"):  # noqa: ANN001, ANN202
    return client.post(
        f"/console/feeds/{code}/batches",
        data={"csrf_token": csrf, "file": (io.BytesIO(content), "住院名单.xlsx")},
        content_type="multipart/form-data",
    )


def test_console_department_uploads_a_file_and_reads_the_result_and_rejected_rows(
    client, staff, db
):
    csrf = console_login(client, staff("department_staff"), PASSWORD)
    board = client.get("/console/feeds").text
    assert 'id="feed-insurance_oop"' in board and 'id="feed-fire"' not in board
    resp = _upload(client, csrf, _file(3, 2))
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"]).text
    assert "导入完成" in page and "hx-trigger" not in page
    result = dict(re.findall(r'data-key="(\w+)">(\d+)<', page))
    assert result["read"] == "5" and result["rejected"] == "2" and result["leads_created"] == "3"
    assert page.count('<td class="num">') >= 2 and "公民身份号码" in page
    errors = client.get(re.search(r'id="errors-xlsx" href="([^"]+)"', page).group(1))
    assert errors.status_code == 200
    sheet = load_workbook(io.BytesIO(errors.data)).active
    assert sheet.max_row == 3 and "错误说明" in [c.value for c in sheet[1]]
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "pii.exported"))
    feed = client.get("/console/feeds/insurance_oop").text
    assert "住院名单.xlsx" in feed


def test_console_a_large_upload_shows_progress_until_the_worker_is_done(
    client, staff, runtime, monkeypatch
):
    from server.services.feeds import batches
    from server.worker.loop import run_worker

    monkeypatch.setattr(batches, "INLINE_MAX_BYTES", 0)
    csrf = console_login(client, staff("department_staff"), PASSWORD)
    resp = _upload(client, csrf, _file(4, 1))
    location = resp.headers["Location"]
    page = client.get(location).text
    assert "排队等待导入" in page and 'hx-trigger="every 1s"' in page
    assert 'max="5" value="0"' in page
    fragment = client.get(f"{location}/progress", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and "hx-get" in fragment
    run_worker(runtime, once=True)
    done = client.get(f"{location}/progress", headers={"HX-Request": "true"}).text
    assert "导入完成" in done and "hx-trigger" not in done and 'max="5" value="5"' in done


def test_console_another_departments_feed_is_404_and_its_upload_403(client, staff):
    csrf = console_login(client, staff("department_staff"), PASSWORD)
    assert client.get("/console/feeds/fire").status_code == 404
    assert _upload(client, csrf, _file(1, 0), code="fire").status_code == 403


@pytest.mark.parametrize("role", ["town_staff", "audit_admin"])
def test_console_feeds_refuse_towns_and_the_auditor(client, staff, role):
    console_login(client, staff(role), PASSWORD)
    assert client.get("/console/feeds").status_code == 403
    assert client.get("/console/feeds/insurance_oop/settings").status_code == 403


def test_console_leader_reads_a_batch_but_may_not_download_its_errors(client, staff):
    csrf = console_login(client, staff("department_staff"), PASSWORD)
    location = _upload(client, csrf, _file(1, 1)).headers["Location"]
    leader = client.application.test_client()
    console_login(leader, staff("leader"), PASSWORD)
    assert leader.get(location).status_code == 200
    assert leader.get(f"{location}/errors.xlsx").status_code == 403


def test_console_system_admin_changes_a_feeds_settings_and_the_history_shows_it(client, staff):
    admin = client.application.test_client()
    console_login(admin, staff("system_admin"), PASSWORD)
    page = admin.get("/console/feeds/insurance_oop/settings")
    assert page.status_code == 200
    resp = post(
        admin,
        "/console/feeds/insurance_oop/settings",
        csrf_of(page.text),
        **{"aliases-name": "患者姓名、病人姓名", "threshold": "25000"},
    )
    assert resp.status_code == 303
    center = client
    csrf = console_login(center, staff("center_staff"), PASSWORD)
    shown = center.get("/console/feeds/insurance_oop/settings").text
    assert "患者姓名、病人姓名" in shown and "门槛：25000" in shown
    assert 'name="threshold"' not in shown
    refused = post(center, "/console/feeds/insurance_oop/settings", csrf, threshold="1")
    assert refused.status_code == 403
    bad = post(admin, "/console/feeds/insurance_oop/settings", csrf_of(page.text), threshold="x")
    assert bad.status_code == 422
