"""Administration in the console: the holiday calendar (preview, load, the banner while next
year is unknown), the outbox's state, and unlocking accounts (安全管理员)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from server import clock
from server.models import AuditEntry, CalendarYear
from tests.console_helpers import console_login, csrf_of, post

PASSWORD = "correct-horse-9"
NEXT_YEAR = clock.now().astimezone(clock.TZ).year + 1
SCHEDULE = f"""{NEXT_YEAR}-01-01 休 元旦
{NEXT_YEAR}-02-06 休 春节
{NEXT_YEAR}-02-07 休 春节
{NEXT_YEAR}-02-14 班 春节"""


def _next_year_known() -> bool:
    from server.services.calendar.holidays import year_status

    return year_status(NEXT_YEAR, loaded={}, today=clock.now().date()).known


def test_console_admin_previews_entered_dates_loads_them_and_the_banner_goes(client, staff, db):
    if _next_year_known():
        pytest.skip("the installed chinesecalendar already knows next year")
    center = client.application.test_client()
    console_login(center, staff("center_staff"), PASSWORD)
    assert f"{NEXT_YEAR}年节假日安排" in center.get("/console/leads").text
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    page = client.get("/console/admin/holidays")
    assert 'id="calendar-banner"' in page.text
    preview = post(
        client, "/console/admin/holidays/preview", csrf, dates=SCHEDULE, source="国办发明电"
    )
    assert preview.status_code == 200
    assert "放假 3 天，调休上班 1 天" in preview.text and "调休上班" in preview.text
    assert db.scalar(select(CalendarYear).where(CalendarYear.year == NEXT_YEAR)) is None
    table = preview.text.split('<textarea name="table" hidden>')[1].split("</textarea>")[0]
    loaded = post(
        client,
        "/console/admin/holidays",
        csrf_of(preview.text),
        table=table.replace("&#34;", '"'),
        source="国办发明电",
    )
    assert loaded.status_code == 303
    after = client.get(loaded.headers["Location"]).text
    assert "已载入" in after and 'id="calendar-banner"' not in after
    assert 'id="calendar-banner"' not in center.get("/console/leads").text
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.year_loaded"))


def test_console_holiday_preview_with_errors_is_422_and_loads_nothing(client, staff, db):
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    resp = post(
        client,
        "/console/admin/holidays/preview",
        csrf,
        dates=f"{NEXT_YEAR}-13-01 休 元旦\n{NEXT_YEAR}-01-04 班 补班",
    )
    assert resp.status_code == 422
    assert "日期无法识别" in resp.text and "本就是工作日" in resp.text
    assert "确认载入" not in resp.text


def test_console_holiday_file_is_previewed_too(client, staff):
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    content = f"日期,类型,名称\n{NEXT_YEAR}-10-01,holiday,国庆节\n".encode()
    resp = client.post(
        "/console/admin/holidays/preview",
        data={"csrf_token": csrf, "file": (io.BytesIO(content), "holidays.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200 and "国庆节" in resp.text and "确认载入" in resp.text


def test_console_outbox_status_shows_counts_and_the_oldest_waiting(client, staff, demo):
    console_login(client, staff("system_admin"), PASSWORD)
    page = client.get("/console/admin/outbox")
    assert page.status_code == 200
    for state in ("pending", "sent", "skipped", "failed", "oldest"):
        assert f'id="outbox-{state}"' in page.text


def test_console_security_admin_unlocks_a_locked_account(client, staff, runtime):
    from tests.console_helpers import csrf_of as token

    victim = staff("town_staff")
    for _ in range(runtime.config.login_max_failures):
        form = client.get("/console/login")
        client.post(
            "/console/login",
            data={"username": victim, "password": "wrong", "csrf_token": token(form.text)},
        )
    admin = client.application.test_client()
    csrf = console_login(admin, staff("security_admin"), PASSWORD)
    page = admin.get("/console/admin/locks").text
    assert victim in page
    user_id = int(page.split('id="locked-')[1].split('"')[0])
    assert post(admin, f"/console/admin/locks/{user_id}/unlock", csrf).status_code == 303
    assert victim not in admin.get("/console/admin/locks").text.split("<tbody>")[1]
    console_login(client, victim, PASSWORD)


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("center_staff", "/console/admin/holidays"),
        ("center_staff", "/console/admin/outbox"),
        ("security_admin", "/console/admin/holidays"),
        ("system_admin", "/console/admin/locks"),
        ("system_admin", "/console/leads"),
        ("security_admin", "/console/leads"),
        ("leader", "/console/admin/locks"),
    ],
)
def test_console_admin_pages_refuse_other_roles(client, staff, role, path):
    console_login(client, staff(role), PASSWORD)
    assert client.get(path).status_code == 403
