"""The staff console (server/console): sessions, CSRF, roles and areas, masking, every screen.

Flask test-client tests (fast); what needs a real browser is in tests/test_console_browser.py.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from server import clock
from server.demo.seed import DEMO_PASSWORD
from server.models import AuditEntry, Role
from server.services.accounts.staff import create_staff
from server.services.kernel.access import SYSTEM
from tests.console_helpers import console_login, csrf_of, post

PASSWORD = "correct-horse-9"


def test_console_login_sets_an_httponly_samesite_cookie_scoped_to_the_console(client, staff):
    user = staff()
    page = client.get("/console/login")
    resp = client.post(
        "/console/login",
        data={"username": user, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert resp.status_code == 303
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # only in production (SESSION_COOKIE_SECURE)


def test_console_api_requests_open_no_cookie_session(client, staff):
    resp = client.get("/api/v1/public/policies")
    assert "Set-Cookie" not in resp.headers


def test_console_pages_need_a_login(client):
    resp = client.get("/console/leads")
    assert resp.status_code == 302
    assert "/console/login" in resp.headers["Location"]


def test_console_wrong_password_is_refused_with_the_apis_throttling(client, staff, runtime):
    user = staff()
    limit = runtime.config.login_max_failures
    for _ in range(limit):
        page = client.get("/console/login")
        resp = client.post(
            "/console/login",
            data={"username": user, "password": "wrong", "csrf_token": csrf_of(page.text)},
        )
        assert resp.status_code == 401
        assert "用户名或密码错误" in resp.text
    page = client.get("/console/login")
    resp = client.post(
        "/console/login",
        data={"username": user, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert resp.status_code == 429
    assert "登录失败次数过多" in resp.text
    # The API refuses the same account: one throttle for both doors.
    api = client.post("/api/v1/auth/staff-login", json={"username": user, "password": PASSWORD})
    assert api.status_code == 429


def test_console_post_without_csrf_token_is_refused(client, staff):
    csrf = console_login(client, staff(), PASSWORD)
    resp = client.post("/console/logout", data={})
    assert resp.status_code == 400
    assert "页面已过期" in resp.text
    resp = client.post("/console/logout", data={"csrf_token": csrf + "x"})
    assert resp.status_code == 400
    assert client.get("/console/").status_code == 200  # still logged in


def test_console_login_form_needs_the_csrf_token_too(client, staff):
    resp = client.post("/console/login", data={"username": staff(), "password": PASSWORD})
    assert resp.status_code == 400


def test_console_logout_revokes_the_token(client, staff):
    csrf = console_login(client, staff(), PASSWORD)
    cookie = client.get_cookie("boshan_console", path="/console")
    resp = post(client, "/console/logout", csrf)
    assert resp.status_code == 303
    assert client.get("/console/").status_code == 302
    # The old cookie, replayed, is dead: its token was revoked.
    client.set_cookie("boshan_console", cookie.value, path="/console")
    assert client.get("/console/").status_code == 302


def test_console_idle_timeout_logs_out(client, staff, runtime, monkeypatch):
    console_login(client, staff(), PASSWORD)
    later = clock.now() + timedelta(seconds=runtime.config.staff_idle_timeout + 5)
    monkeypatch.setattr(clock, "now", lambda: later)
    resp = client.get("/console/leads")
    assert resp.status_code == 302
    login = client.get(resp.headers["Location"])
    assert "未操作" in login.text
    monkeypatch.undo()
    assert client.get("/console/").status_code == 302


def test_console_forced_password_change_at_first_login_then_logs_in(client, runtime):
    with runtime.session_factory() as db:
        create_staff(
            db,
            username="newcomer",
            password=PASSWORD,
            role=Role.CENTER_STAFF,
            now=clock.now(),
            actor=SYSTEM,
        )
        db.commit()
    page = client.get("/console/login")
    resp = client.post(
        "/console/login",
        data={"username": "newcomer", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert resp.status_code == 200 and "修改密码" in resp.text
    assert client.get("/console/").status_code == 302  # not logged in yet
    weak = client.post(
        "/console/password",
        data={
            "username": "newcomer",
            "password": PASSWORD,
            "new_password": "short",
            "new_password_again": "short",
            "csrf_token": csrf_of(resp.text),
        },
    )
    assert weak.status_code == 422 and "密码不符合安全要求" in weak.text
    done = client.post(
        "/console/password",
        data={
            "username": "newcomer",
            "password": PASSWORD,
            "new_password": "Brand-new-2026",
            "new_password_again": "Brand-new-2026",
            "csrf_token": csrf_of(weak.text),
        },
    )
    assert done.status_code == 303
    assert client.get("/console/").status_code == 200


def test_console_activity_within_the_idle_timeout_keeps_the_session(
    client, staff, runtime, monkeypatch
):
    console_login(client, staff(), PASSWORD)
    start = clock.now()
    step = timedelta(seconds=runtime.config.staff_idle_timeout - 60)
    for n in (1, 2):
        monkeypatch.setattr(clock, "now", lambda n=n: start + n * step)
        assert client.get("/console/").status_code == 200


def test_console_login_redirects_only_inside_the_console(client, staff):
    user = staff()
    page = client.get("/console/login")
    resp = client.post(
        "/console/login",
        data={
            "username": user,
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "https://evil.example/console/",
        },
    )
    assert resp.headers["Location"].endswith("/console/")


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("department_staff", "/console/duplicates"),
        ("leader", "/console/duplicates"),
        ("department_staff", "/console/applications"),
        ("town_staff", "/console/feeds"),
        ("center_staff", "/console/inbox"),
        ("department_staff", "/console/inform-tasks"),
    ],
)
def test_console_page_a_role_may_not_see_is_403(client, staff, role, path):
    console_login(client, staff(role), PASSWORD)
    resp = client.get(path)
    assert resp.status_code == 403
    assert "没有权限" in resp.text


def test_console_reveal_is_center_only(client, staff, demo):
    csrf = console_login(client, staff("town_staff"), PASSWORD)
    lead_id = _first_lead_id(client)
    assert post(client, f"/console/leads/{lead_id}/reveal", csrf).status_code == 403


def test_console_town_reading_another_towns_lead_is_404(client, staff, demo, db):
    from sqlalchemy import select

    from server.models import Lead, Town

    baita = db.scalar(select(Town.id).where(Town.code == "baita"))
    other = db.scalar(select(Lead.id).where(Lead.town_id != baita, Lead.town_id.is_not(None)))
    console_login(client, staff("town_staff", town="baita"), PASSWORD)
    resp = client.get(f"/console/leads/{other}")
    assert resp.status_code == 404
    assert "未找到该线索" in resp.text


def test_console_masks_numbers_and_the_reveal_is_audited_as_the_apis(client, staff, demo, db):
    from sqlalchemy import select

    from server.models import Lead

    lead_id = db.scalar(select(Lead.id).where(Lead.id_number_enc.is_not(None)).limit(1))
    csrf = console_login(client, staff(), PASSWORD)
    page = client.get(f"/console/leads/{lead_id}")
    assert "****" in page.text
    resp = post(client, f"/console/leads/{lead_id}/reveal", csrf)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert "本次查看已记录" in resp.text
    entry = db.scalar(
        select(AuditEntry).where(AuditEntry.action == "pii.viewed", AuditEntry.target_id == lead_id)
    )
    assert entry is not None and entry.target_type == "lead"


def test_console_every_screen_renders_demo_data(client, demo, db):
    """Each main screen as center staff, a town and a department, on the demo data."""
    from sqlalchemy import select

    from server.models import Application, Dispatch, Lead

    lead_id = db.scalar(select(Lead.id).order_by(Lead.id))
    slip_id = db.scalar(select(Dispatch.id).order_by(Dispatch.id))
    app_id = db.scalar(select(Application.id).order_by(Application.id))
    console_login(client, "center", DEMO_PASSWORD)
    for path in (
        "/console/",
        "/console/leads",
        "/console/leads?channel=hotline&min_priority=1",
        f"/console/leads/{lead_id}",
        f"/console/leads/{lead_id}/dispatch",
        "/console/duplicates",
        "/console/dispatches",
        "/console/dispatches?deadline=overdue",
        f"/console/dispatches/{slip_id}",
        f"/console/dispatches/{slip_id}/slip",
        "/console/applications",
        f"/console/applications/{app_id}",
        "/console/supervision",
        "/console/feeds",
        "/console/inform-tasks?state=all",
    ):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.text[:3000])
    assert client.get("/console/leads/export.xlsx").status_code == 200
    assert client.get("/console/supervision.xlsx").status_code == 200


def test_console_pages_carry_no_inline_script_or_style(client, demo):
    console_login(client, "center", DEMO_PASSWORD)
    for path in ("/console/", "/console/leads", "/console/dispatches", "/console/supervision"):
        html = client.get(path).text
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert " on" + "click=" not in html


def test_console_vendored_htmx_matches_its_recorded_sha256():
    root = Path(__file__).resolve().parent.parent / "server/console/static/console/vendor"
    content = (root / "htmx-2.0.11/htmx.min.js").read_bytes()
    recorded = (root / "htmx-2.0.11/VENDOR.md").read_text(encoding="utf-8")
    assert hashlib.sha256(content).hexdigest() in recorded


def _first_lead_id(client) -> int:  # noqa: ANN001
    import re

    html = client.get("/console/leads").text
    return int(re.search(r'href="/console/leads/(\d+)"', html).group(1))


def test_console_queue_total_stops_at_the_cap(demo, runtime):
    from server.services.kernel.access import SYSTEM as CENTER
    from server.services.leads import queue

    with runtime.engine.connect() as conn:
        full = queue.count_queue(conn, actor=CENTER, filters=queue.QueueFilter())
        capped = queue.count_queue(conn, actor=CENTER, filters=queue.QueueFilter(), cap=3)
    assert full.count > 3 and not full.capped
    assert (capped.count, capped.capped) == (3, True)


def test_console_queue_filters_as_the_api_and_answers_htmx_with_the_rows_only(client, demo):
    console_login(client, "center", DEMO_PASSWORD)
    bad = client.get("/console/leads?min_priority=abc")
    assert bad.status_code == 422
    part = client.get(
        "/console/leads?channel=feed", headers={"HX-Request": "true", "HX-Target": "queue-results"}
    )
    assert part.status_code == 200
    assert "<html" not in part.text and "<table" in part.text
    assert "部门数据" in part.text


def test_console_queue_export_is_masked_and_audited(client, demo, db):
    import io
    import re

    from openpyxl import load_workbook
    from sqlalchemy import select

    console_login(client, "center", DEMO_PASSWORD)
    resp = client.get("/console/leads/export.xlsx")
    assert resp.status_code == 200
    sheet = load_workbook(io.BytesIO(resp.data)).active
    cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert sheet.max_row > 1
    assert not any(re.search(r"\d{17}[\dX]|1[3-9]\d{9}", c) for c in cells)
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "lead.exported"))


def test_console_bulk_dispatch_issues_one_slip_per_selected_lead(client, demo, db):
    import re

    from sqlalchemy import func, select

    from server.models import Dispatch

    csrf = console_login(client, "center", DEMO_PASSWORD)
    html = client.get("/console/leads?status=new").text
    ids = re.findall(r'name="lead_ids" value="(\d+)"', html)[:2]
    before = db.scalar(select(func.count(Dispatch.id)))
    resp = client.post(
        "/console/leads/bulk",
        data={
            "csrf_token": csrf,
            "action": "dispatch",
            "lead_ids": ids,
            "unit": "department:civil_affairs",
            "instructions": "请核实",
        },
    )
    assert resp.status_code == 303
    db.expire_all()
    assert db.scalar(select(func.count(Dispatch.id))) == before + 2


def _inform_task_in(db, town_code: str) -> int:  # noqa: ANN001
    """An inform task on a lead of `town_code` opened as a decision would (no WeChat reach)."""
    from sqlalchemy import select

    from server.models import Application, Lead, Town
    from server.services.notifications.informing import open_inform_task

    lead = db.scalar(
        select(Lead)
        .join(Town, Town.id == Lead.town_id)
        .where(
            Town.code == town_code,
            ~Lead.id.in_(select(Application.lead_id).where(Application.lead_id.is_not(None))),
        )
        .order_by(Lead.id)
        .limit(1)
    )
    task = open_inform_task(
        db, lead, source_key=f"test:{lead.id}", what="经核实，已纳入低保", now=clock.now()
    )
    db.commit()
    return task.id


def test_console_town_records_that_the_person_was_told_once(client, demo, db):
    from sqlalchemy import select

    from server.models import InformTask

    task_id = _inform_task_in(db, "chengdong")
    csrf = console_login(client, "chengdong", DEMO_PASSWORD)
    home = client.get("/console/").text
    assert "待告知办理结果的群众" in home
    page = client.get("/console/inform-tasks")
    assert f'id="task-{task_id}"' in page.text and "经核实，已纳入低保" in page.text
    when = clock.now().astimezone(clock.TZ).strftime("%Y-%m-%dT%H:%M")
    resp = post(
        client,
        f"/console/inform-tasks/{task_id}/informed",
        csrf,
        method="phone",
        informed_at=when,
        note="本人接听",
    )
    assert resp.status_code == 303
    db.expire_all()
    task = db.get(InformTask, task_id)
    assert task.method.value == "phone" and task.note == "本人接听"
    assert "电话告知" in client.get("/console/inform-tasks?state=done").text
    again = post(
        client, f"/console/inform-tasks/{task_id}/informed", csrf, method="visit", informed_at=when
    )
    assert again.status_code == 409 and "已完成" in again.text
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "lead.informed"))


def test_console_inform_minute_covers_a_decision_in_its_last_second(client, demo, db, monkeypatch):
    """Decided at 10:30:59.5, the form says "10:30" and arrives at 10:31:00.2: the minute
    stands for its whole sixty seconds, so the record is accepted."""
    decided = datetime(2026, 12, 2, 10, 30, 59, 500000, tzinfo=clock.TZ)
    monkeypatch.setattr(clock, "now", lambda: decided)
    task_id = _inform_task_in(db, "chengdong")
    csrf = console_login(client, "chengdong", DEMO_PASSWORD)
    monkeypatch.setattr(clock, "now", lambda: decided + timedelta(milliseconds=700))
    resp = post(
        client,
        f"/console/inform-tasks/{task_id}/informed",
        csrf,
        method="phone",
        informed_at="2026-12-02T10:30",
    )
    assert resp.status_code == 303


def test_console_inform_time_in_the_future_is_refused_with_its_message(client, demo, db):
    task_id = _inform_task_in(db, "chengdong")
    csrf = console_login(client, "chengdong", DEMO_PASSWORD)
    later = (clock.now() + timedelta(days=2)).astimezone(clock.TZ).strftime("%Y-%m-%dT%H:%M")
    resp = post(
        client, f"/console/inform-tasks/{task_id}/informed", csrf, method="phone", informed_at=later
    )
    assert resp.status_code == 422 and "告知时间应在作出决定之后" in resp.text


def test_console_another_towns_inform_task_is_404_and_a_leader_only_reads(client, demo, db):
    task_id = _inform_task_in(db, "chengdong")
    csrf = console_login(client, "baita", DEMO_PASSWORD)
    assert f'id="task-{task_id}"' not in client.get("/console/inform-tasks").text
    when = clock.now().astimezone(clock.TZ).strftime("%Y-%m-%dT%H:%M")
    resp = post(
        client, f"/console/inform-tasks/{task_id}/informed", csrf, method="phone", informed_at=when
    )
    assert resp.status_code == 404
    leader = client.application.test_client()
    csrf = console_login(leader, "leader", DEMO_PASSWORD)
    assert f'id="task-{task_id}"' in leader.get("/console/inform-tasks").text
    resp = post(
        leader, f"/console/inform-tasks/{task_id}/informed", csrf, method="phone", informed_at=when
    )
    assert resp.status_code == 403


def test_console_asking_for_more_papers_messages_the_filer_and_shows_in_the_timeline(
    client, demo, db
):
    from sqlalchemy import select

    from server.models import Application, ApplicationStatus, InboxMessage

    app_id = db.scalar(
        select(Application.id)
        .where(Application.status == ApplicationStatus.SUBMITTED)
        .order_by(Application.id)
    )
    before = len(db.scalars(select(InboxMessage.id)).all())
    csrf = console_login(client, "center", DEMO_PASSWORD)
    resp = post(
        client, f"/console/applications/{app_id}/request-papers", csrf, what="近三个月医疗票据"
    )
    assert resp.status_code == 303
    page = client.get(f"/console/applications/{app_id}").text
    assert "请补充材料：近三个月医疗票据" in page
    db.expire_all()
    assert len(db.scalars(select(InboxMessage.id)).all()) == before + 1
    empty = post(client, f"/console/applications/{app_id}/request-papers", csrf, what="")
    assert empty.status_code == 422 and "请说明需要补充的材料" in empty.text


def _new_lead_of(db, town_code: str) -> int:  # noqa: ANN001
    from sqlalchemy import select

    from server.models import Lead, LeadStatus, Town

    return db.scalar(
        select(Lead.id)
        .join(Town, Town.id == Lead.town_id)
        .where(Town.code == town_code, Lead.status == LeadStatus.NEW)
        .order_by(Lead.id)
        .limit(1)
    )


def test_console_triage_dismisses_with_a_reason_and_reopens_within_30_days(client, demo, db):
    from server.models import Lead, LeadStatus

    lead_id = _new_lead_of(db, "chengdong")
    csrf = console_login(client, "center", DEMO_PASSWORD)
    page = client.get(f"/console/leads/{lead_id}").text
    assert 'id="dismiss"' in page and "未指派" in page
    other = post(client, f"/console/leads/{lead_id}/dismiss", csrf, reason="other")
    assert other.status_code == 422 and "请写明原因" in other.text
    resp = post(client, f"/console/leads/{lead_id}/dismiss", csrf, reason="unreachable")
    assert resp.status_code == 303
    db.expire_all()
    assert db.get(Lead, lead_id).status is LeadStatus.DISMISSED
    page = client.get(f"/console/leads/{lead_id}").text
    assert "无法联系" in page and 'id="reopen"' in page and 'id="dismiss"' not in page
    assert post(client, f"/console/leads/{lead_id}/reopen", csrf).status_code == 303
    db.expire_all()
    assert db.get(Lead, lead_id).is_open


def test_console_assign_to_me_then_the_queue_filters_by_handler(client, demo, db):
    from sqlalchemy import select

    from server.models import Lead, User

    lead_id = _new_lead_of(db, "chengdong")
    csrf = console_login(client, "center", DEMO_PASSWORD)
    assert post(client, f"/console/leads/{lead_id}/claim", csrf).status_code == 303
    db.expire_all()
    center = db.scalar(select(User).where(User.username == "center"))
    assert db.get(Lead, lead_id).handler_id == center.id
    mine = client.get("/console/leads?handler=me").text
    assert f'value="{lead_id}"' in mine
    assert f'value="{lead_id}"' not in client.get("/console/leads?handler=none").text
    page = client.get(f"/console/leads/{lead_id}").text
    assert "认领" in page and 'id="claim"' not in page


def test_console_a_handler_from_another_town_is_refused(client, demo, db):
    from sqlalchemy import select

    from server.models import User

    lead_id = _new_lead_of(db, "chengdong")
    baita = db.scalar(select(User.id).where(User.username == "baita"))
    csrf = console_login(client, "center", DEMO_PASSWORD)
    page = client.get(f"/console/leads/{lead_id}").text
    assert f'<option value="{baita}"' not in page
    resp = post(client, f"/console/leads/{lead_id}/assign", csrf, handler_id=str(baita))
    assert resp.status_code == 422 and "经办人只能是" in resp.text


def test_console_internal_notes_are_in_the_timeline_for_staff(client, demo, db):
    lead_id = _new_lead_of(db, "chengdong")
    csrf = console_login(client, "chengdong", DEMO_PASSWORD)
    assert (
        post(client, f"/console/leads/{lead_id}/notes", csrf, text="家属说下周再来").status_code
        == 303
    )
    page = client.get(f"/console/leads/{lead_id}").text
    assert "内部备注" in page and "家属说下周再来" in page


def test_console_triage_of_another_towns_lead_is_404_and_a_leader_may_not_triage(client, demo, db):
    lead_id = _new_lead_of(db, "chengdong")
    csrf = console_login(client, "baita", DEMO_PASSWORD)
    assert (
        post(client, f"/console/leads/{lead_id}/dismiss", csrf, reason="duplicate").status_code
        == 404
    )
    leader = client.application.test_client()
    csrf = console_login(leader, "leader", DEMO_PASSWORD)
    assert (
        post(leader, f"/console/leads/{lead_id}/dismiss", csrf, reason="duplicate").status_code
        == 403
    )
    assert 'id="dismiss"' not in leader.get(f"/console/leads/{lead_id}").text


def test_console_bulk_claim_and_dismiss_the_selected_leads(client, demo, db):
    import re

    from server.models import Lead, LeadStatus

    csrf = console_login(client, "center", DEMO_PASSWORD)
    ids = re.findall(r'name="lead_ids" value="(\d+)"', client.get("/console/leads?status=new").text)
    ids = ids[:3]
    resp = client.post(
        "/console/leads/bulk",
        data={"csrf_token": csrf, "action": "claim", "lead_ids": ids[:2]},
    )
    assert resp.status_code == 303
    resp = client.post(
        "/console/leads/bulk",
        data={"csrf_token": csrf, "action": "dismiss", "lead_ids": ids[2:], "reason": "duplicate"},
    )
    assert resp.status_code == 303
    db.expire_all()
    assert all(db.get(Lead, int(i)).handler_id for i in ids[:2])
    assert db.get(Lead, int(ids[2])).status is LeadStatus.DISMISSED


def test_console_search_by_a_whole_id_number_is_a_post_and_audited(client, demo, db, runtime):
    from sqlalchemy import select

    from server.models import Lead

    lead = db.scalar(select(Lead).where(Lead.id_number_enc.is_not(None)).order_by(Lead.id))
    whole = runtime.pii.open(lead.id_number_enc)
    csrf = console_login(client, "center", DEMO_PASSWORD)
    assert client.get("/console/leads/search").status_code == 200
    resp = post(client, "/console/leads/search", csrf, id_number=whole)
    assert resp.status_code == 200 and f"#{lead.id}" in resp.text
    assert whole not in resp.text
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "lead.searched"))
    neither = post(client, "/console/leads/search", csrf)
    assert neither.status_code == 422 and "二选一" in neither.text


def test_console_select_options_are_escaped_keep_the_selected_one_and_group_units():
    from server.console.format import options
    from server.console.present import Choice

    html = options([Choice("a", "甲<乙>", False), Choice("b&c", "丙", True)])
    assert (
        html
        == '<option value="a">甲&lt;乙&gt;</option><option value="b&amp;c" selected>丙</option>'
    )
    units = [
        {"value": "department:mz", "name": "民政局", "group": "部门"},
        {"value": "town:cd", "name": "城东街道", "group": "镇街"},
    ]
    assert options(units) == (
        '<optgroup label="部门"><option value="department:mz">民政局</option></optgroup>'
        '<optgroup label="镇街"><option value="town:cd">城东街道</option></optgroup>'
    )
