"""Administration in the console: staff accounts (create, role and jurisdiction, reset
password), the holiday calendar (preview, load, the banner while next year is unknown), the
outbox's state, and locking and unlocking accounts (安全管理员)."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from server import clock
from server.models import AuditEntry, AuthToken, CalendarYear, Role, Town, User
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
        ("security_admin", "/console/admin/staff"),
        ("audit_admin", "/console/admin/staff"),
        ("center_staff", "/console/admin/staff"),
        ("town_staff", "/console/admin/staff"),
    ],
)
def test_console_admin_pages_refuse_other_roles(client, staff, role, path):
    console_login(client, staff(role), PASSWORD)
    assert client.get(path).status_code == 403


def _audit(db, action: str) -> list[AuditEntry]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _user(db, username: str) -> User:
    db.expire_all()
    return db.scalar(select(User).where(User.username == username))


def test_system_admin_creates_an_account_with_a_one_time_password(client, staff, db):
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    page = client.get("/console/admin/staff")
    assert page.status_code == 200 and "新建账号" in page.text
    assert 'href="/console/admin/staff"' in page.text  # in the administrator's navigation
    made = post(
        client,
        "/console/admin/staff",
        csrf,
        username="wang.bt",
        display_name="王白塔",
        role="town_staff",
        town="baita",
    )
    assert made.status_code == 201
    password = re.search(r'id="temporary-password">([^<]+)<', made.text).group(1)
    user = _user(db, "wang.bt")
    assert user.role is Role.TOWN_STAFF and user.must_change_password
    assert user.town_id == db.scalar(select(Town.id).where(Town.code == "baita"))
    (entry,) = [a for a in _audit(db, "staff.created") if a.target_id == user.id]
    assert entry.actor_role == "system_admin"
    assert password not in client.get("/console/admin/staff").text
    # the first login must change the temporary password
    newcomer = client.application.test_client()
    form = newcomer.get("/console/login")
    resp = newcomer.post(
        "/console/login",
        data={"username": "wang.bt", "password": password, "csrf_token": csrf_of(form.text)},
    )
    assert "修改密码" in (
        newcomer.get(resp.headers["Location"]).text if resp.status_code in (302, 303) else resp.text
    )


def test_town_staff_without_a_town_is_refused(client, staff, db):
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    resp = post(client, "/console/admin/staff", csrf, username="no.town", role="town_staff")
    assert resp.status_code == 422 and "须指定所属镇街" in resp.text
    assert _user(db, "no.town") is None


def test_system_admin_changes_role_and_jurisdiction_and_the_sessions_end(client, staff, db):
    name = staff("town_staff")
    worker = client.application.test_client()
    console_login(worker, name, PASSWORD)
    user = _user(db, name)
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    resp = post(
        client,
        f"/console/admin/staff/{user.id}",
        csrf,
        role="department_staff",
        department="medical_insurance",
    )
    assert resp.status_code == 303
    user = _user(db, name)
    assert user.role is Role.DEPARTMENT_STAFF and user.town_id is None and user.department_id
    (entry,) = _audit(db, "staff.changed")
    assert entry.target_id == user.id
    assert entry.detail["before"]["role"] == "town_staff"
    assert entry.detail["after"]["role"] == "department_staff"
    assert worker.get("/console/leads").status_code == 302  # logged out: to the login page
    row = client.get("/console/admin/staff").text.split(f'id="staff-{user.id}"')[1]
    assert "部门" in row.split("</tr>")[0] or "医保" in row.split("</tr>")[0]


def test_system_admin_cannot_change_their_own_account(client, staff, db):
    name = staff("system_admin")
    csrf = console_login(client, name, PASSWORD)
    me = _user(db, name)
    resp = post(client, f"/console/admin/staff/{me.id}", csrf, role="center_staff")
    assert resp.status_code == 409
    assert _user(db, name).role is Role.SYSTEM_ADMIN


def test_system_admin_resets_a_password(client, staff, db):
    name = staff("center_staff")
    worker = client.application.test_client()
    console_login(worker, name, PASSWORD)
    user = _user(db, name)
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    resp = post(client, f"/console/admin/staff/{user.id}/password", csrf)
    assert resp.status_code == 200
    temporary = re.search(r'id="temporary-password">([^<]+)<', resp.text).group(1)
    assert _user(db, name).must_change_password
    (entry,) = _audit(db, "staff.password_reset")
    assert entry.target_id == user.id and temporary not in str(entry.detail)
    assert worker.get("/console/leads").status_code == 302
    db.expire_all()
    assert not db.scalars(
        select(AuthToken).where(AuthToken.user_id == user.id, AuthToken.revoked_at.is_(None))
    ).all()
    # the old password no longer works; the temporary one must be changed
    again = client.application.test_client()
    form = again.get("/console/login")
    old = again.post(
        "/console/login",
        data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert old.status_code != 303


def test_staff_posts_without_csrf_are_refused(client, staff, db):
    name = staff("center_staff")
    console_login(client, staff("system_admin"), PASSWORD)
    user = _user(db, name)
    assert (
        client.post(
            "/console/admin/staff", data={"username": "x.y.z", "role": "leader"}
        ).status_code
        == 400
    )
    assert client.post(f"/console/admin/staff/{user.id}/password").status_code == 400
    assert (
        client.post(f"/console/admin/staff/{user.id}", data={"role": "leader"}).status_code == 400
    )
    assert _user(db, "x.y.z") is None and _user(db, name).role is Role.CENTER_STAFF


@pytest.mark.parametrize("role", ["security_admin", "audit_admin", "center_staff"])
def test_other_roles_cannot_manage_staff(client, staff, db, role):
    name = staff("town_staff")
    user = _user(db, name)
    csrf = console_login(client, staff(role), PASSWORD)
    assert post(client, f"/console/admin/staff/{user.id}/password", csrf).status_code == 403
    assert (
        post(client, "/console/admin/staff", csrf, username="a.b.c", role="leader").status_code
        == 403
    )


def test_security_admin_locks_an_account_and_unlocks_it(client, staff, db):
    name = staff("town_staff")
    worker = client.application.test_client()
    console_login(worker, name, PASSWORD)
    admin = client.application.test_client()
    csrf = console_login(admin, staff("security_admin"), PASSWORD)
    resp = post(admin, "/console/admin/locks/lock", csrf, username=name, days="3", reason="离职")
    assert resp.status_code == 303
    assert worker.get("/console/leads").status_code == 302  # its session ended
    page = admin.get("/console/admin/locks").text
    assert name in page.split("<tbody>")[1]
    (entry,) = _audit(db, "account.locked")
    assert entry.detail["username"] == name and entry.detail["reason"] == "离职"
    form = worker.get("/console/login")
    refused = worker.post(
        "/console/login",
        data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert refused.status_code != 303 and "登录失败次数过多" in refused.text
    user_id = _user(db, name).id
    assert post(admin, f"/console/admin/locks/{user_id}/unlock", csrf).status_code == 303
    console_login(worker, name, PASSWORD)


def test_only_the_security_admin_locks(client, staff, db):
    name = staff("town_staff")
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    assert post(client, "/console/admin/locks/lock", csrf, username=name).status_code == 403
    assert not _audit(db, "account.locked")


def _upload(client, path: str, csrf: str, content: str):
    return client.post(
        path,
        data={"csrf_token": csrf, "file": (io.BytesIO(content.encode()), "villages.csv")},
        content_type="multipart/form-data",
    )


def test_villages_file_is_previewed_then_loaded(client, staff, db):
    from server.models import Village

    chengdong = db.scalar(select(Town.id).where(Town.code == "chengdong"))
    db.add_all(
        [
            Village(code="cd-101", name="老名村", town_id=chengdong),
            Village(code="cd-102", name="搬家村", town_id=chengdong),
            Village(code="cd-103", name="不变村", town_id=chengdong),
        ]
    )
    db.commit()
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    page = client.get("/console/admin/villages")
    assert page.status_code == 200 and "老名村" in page.text
    content = (
        "镇街,村居,编码\n"
        "城东街道,新名村,cd-101\n"
        "白塔镇,搬家村,cd-102\n"
        "城东街道,不变村,cd-103\n"
        "城东街道,新来村,cd-104\n"
    )
    preview = _upload(client, "/console/admin/villages/preview", csrf, content)
    assert preview.status_code == 200
    kinds = re.findall(r'data-kind="(\w+)"', preview.text)
    assert sorted(kinds) == ["added", "moved", "renamed"]
    assert "老名村 / 城东街道" in preview.text and "搬家村 / 白塔镇" in preview.text
    assert '<li id="villages-unchanged"><span class="kpi-value">1<' in preview.text
    db.expire_all()
    assert db.scalar(select(Village).where(Village.code == "cd-104")) is None  # nothing written
    table = preview.text.split('<textarea name="table" hidden>')[1].split("</textarea>")[0]
    loaded = post(client, "/console/admin/villages", csrf_of(preview.text), table=table)
    assert loaded.status_code == 303
    assert "新增 1 个，更新 2 个" in client.get(loaded.headers["Location"]).text
    db.expire_all()
    assert db.scalar(select(Village.name).where(Village.code == "cd-101")) == "新名村"
    baita = db.scalar(select(Town.id).where(Town.code == "baita"))
    assert db.scalar(select(Village.town_id).where(Village.code == "cd-102")) == baita
    assert db.scalar(select(Village).where(Village.code == "cd-104")) is not None
    (entry,) = _audit(db, "villages.imported")
    assert entry.detail == {"created": 1, "updated": 2}


def test_villages_preview_with_errors_is_422_and_offers_no_load(client, staff, db):
    csrf = console_login(client, staff("system_admin"), PASSWORD)
    content = "镇街,村居,编码\n火星镇,某村,x-1\n城东街道,好村,cd-201\n"
    preview = _upload(client, "/console/admin/villages/preview", csrf, content)
    assert preview.status_code == 422 and "第2行" in preview.text
    assert "确认载入" not in preview.text


def test_villages_pages_refuse_others_and_posts_need_csrf(client, staff):
    console_login(client, staff("system_admin"), PASSWORD)
    assert (
        client.post("/console/admin/villages", data={"table": "镇街,村居,编码\n"}).status_code
        == 400
    )
    for role in ("center_staff", "town_staff", "security_admin"):
        other = client.application.test_client()
        csrf = console_login(other, staff(role), PASSWORD)
        assert other.get("/console/admin/villages").status_code == 403
        assert post(other, "/console/admin/villages", csrf, table="x").status_code == 403
