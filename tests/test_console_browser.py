"""The staff console in a real browser: Debian's chromium driven by Playwright (sync API).

Playwright for Python, launched with `/usr/bin/chromium` (it downloads no browser): one
browser for the session, a fresh context (cookie jar) per role. The app runs on a live server
in a thread on a free loopback port, against the same test database as the rest of the suite.
These tests run on SQLite only: the services they drive are covered on both engines by the
test-client tests (tests/test_console.py and the API's), and a second browser run would double
the slowest part of the suite for nothing new. Screenshots go to `<pytest basetemp>/screenshots`.

Skipped when chromium or playwright is missing, unless `REQUIRE_BROWSER=1` (set by .ci/run).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server import clock
from server.models import AuditEntry, Role
from server.services.accounts.staff import create_staff
from server.services.kernel.access import SYSTEM
from tests.builders.applications import application_body, file, photo_id, village, with_applicant

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct-horse-9"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _browser_missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"chromium not found at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (pip) not installed"
    return None


@pytest.fixture(scope="session")
def browser(engine_name: str) -> Iterator[Any]:
    if engine_name != "sqlite":
        pytest.skip("browser tests run on SQLite only (see the module's docstring)")
    missing = _browser_missing()
    if missing:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"a browser is required (REQUIRE_BROWSER=1): {missing}")
        pytest.skip(f"browser tests skipped: {missing}; set REQUIRE_BROWSER=1 to fail instead")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def live_server(app, browser) -> Iterator[str]:  # noqa: ANN001
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def open_as(browser, live_server, runtime):  # noqa: ANN001, ANN201
    """A logged-in page for a new staff account: `open_as("town_staff", town="chengdong")`."""
    contexts = []
    counter = iter(range(1, 100))

    def build(
        role: str,
        *,
        town: str | None = None,
        department: str | None = None,
        javascript: bool = True,
        home: str = "/console/",
    ) -> Any:
        username = f"b-{role}-{next(counter)}"
        with runtime.session_factory() as db:
            create_staff(
                db,
                username=username,
                password=PASSWORD,
                role=Role(role),
                town_code=town,
                department_code=department,
                now=clock.now(),
                actor=SYSTEM,
                must_change_password=False,
            )
            db.commit()
        context = browser.new_context(
            viewport={"width": 1366, "height": 768},
            locale="zh-CN",
            java_script_enabled=javascript,
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{live_server}/console/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}{home}")
        return page

    yield build
    for context in contexts:
        context.close()


@pytest.fixture
def casework(client, resident_login, staff_login, db):  # noqa: ANN001, ANN201
    """A resident's application in 城东 (its lead), and a hotline report heard by name only."""
    village(db)
    resident = resident_login("alice")
    filed = file(client, resident, application_body(photos=[photo_id(client, resident)]))
    assert filed.status_code == 201, filed.get_json()
    body = filed.get_json()
    bob = resident_login("bob")
    second = file(
        client,
        bob,
        with_applicant(application_body(photos=[photo_id(client, bob)]), name="王五"),
    )
    assert second.status_code == 201, second.get_json()
    heard = client.post(
        "/api/v1/leads",
        json={
            "channel": "hotline",
            "name": "张三",
            "summary": "邻居反映张三家老人卧床无人照料",
            "town": "chengdong",
            "village": "cd-001",
            "categories": ["illness"],
        },
        headers=staff_login(role="center_staff").headers,
    )
    assert heard.status_code == 201, heard.get_json()
    return {
        "resident": resident,
        "application": body["id"],
        "lead": body["lead_id"],
        "report": heard.get_json()["lead"]["id"],
        "second": second.get_json()["id"],
    }


def test_console_center_and_town_rounds_reach_the_residents_inbox(
    open_as, casework, live_server, screenshots, client, db
):
    center = open_as("center_staff")
    center.screenshot(path=screenshots / "worklist.png")
    # Duplicate review: the hotline report beside the application's lead; merge them.
    center.click("text=待甄别的疑似重复")
    center.click("text=甄别")
    assert "第 1 个，共 1 个" in center.inner_text(".stepper")
    assert center.locator("tr.differs").count() >= 1
    center.screenshot(path=screenshots / "duplicate_review.png")
    center.click("#merge")
    assert "已合并" in center.inner_text(".flashes")
    # The queue, then the lead: reveal the ID number in place (htmx) and issue a slip.
    center.goto(f"{live_server}/console/leads")
    center.screenshot(path=screenshots / "queue.png")
    center.click(f"a[href='/console/leads/{casework['lead']}']")
    masked = center.inner_text("#pii")
    assert "****" in masked
    center.click("#reveal")
    center.wait_for_selector("text=本次查看已记录")
    assert "****" not in center.inner_text("#pii")
    center.screenshot(path=screenshots / "lead_detail.png")
    # Triage: take the lead (指派给我) and leave an internal note for colleagues.
    center.click("#claim")
    assert "已认领" in center.inner_text(".flashes")
    center.fill("#note-text", "已电话联系本人，同意入户核实")
    center.click("#add-note")
    assert "已电话联系本人" in center.inner_text(".timeline")
    center.click("text=签发转办单")
    assert "前反馈" in center.inner_text("#due-date")
    center.select_option("#unit", "town:chengdong")
    center.fill("#instructions", "请入户核实家庭收入和老人照料情况")
    center.click("text=确认签发")
    assert "已签发" in center.inner_text(".flashes")
    number = re.search(r"BSJZ-\d{4}-\d{6}", center.inner_text("h1")).group(0)

    # The town: its inbox, sign, answer; then decide the other application on its own.
    town = open_as("town_staff", town="chengdong")
    town.click("text=本单位收件")
    town.screenshot(path=screenshots / "slip_inbox.png")
    town.click(f"text={number}")
    town.click("#sign")
    town.fill("#findings", "入户核实：家庭人均收入低于本地低保标准")
    # Answered application by application: each undecided application has its own outcome.
    town.select_option(f"#outcome-{casework['application']}", "dibao")
    town.click("#answer")
    assert "已反馈" in town.inner_text(".flashes")
    town.goto(f"{live_server}/console/applications/{casework['second']}")
    town.screenshot(path=screenshots / "application_review.png")
    town.click("#accept")
    town.click("#investigate")
    town.select_option("#decide-outcome", "not_eligible")
    town.fill("#decide-reason", "家庭收入高于临时救助标准")
    town.click("#decide")
    assert "已办结" in town.inner_text("h1")
    town.goto(f"{live_server}/console/supervision")
    town.screenshot(path=screenshots / "supervision.png")

    # The resident reads every step of the first application in the inbox (JSON API).
    inbox = client.get("/api/v1/messages", headers=casework["resident"].headers).get_json()
    titles = " ".join(m["title"] + m["body"] for m in inbox["items"])
    for step in ("已提交", "受理", "调查核实", "纳入低保"):
        assert step in titles, titles
    revealed = db.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "pii.viewed", AuditEntry.target_id == casework["lead"]
        )
    )
    assert revealed is not None


def test_console_core_actions_work_without_javascript(open_as, casework, live_server):
    center = open_as("center_staff", javascript=False)
    center.goto(f"{live_server}/console/leads?name=张三")
    assert "张三" in center.inner_text("table.queue")
    center.click(f"a[href='/console/leads/{casework['lead']}']")
    center.click("#reveal")  # a plain form POST: the whole page comes back
    assert "本次查看已记录" in center.inner_text("#pii")
    center.click("text=签发转办单")
    center.select_option("#unit", "town:chengdong")
    center.fill("#instructions", "请核实")
    center.click("text=确认签发")
    assert "已签发" in center.inner_text(".flashes")
    town = open_as("town_staff", town="chengdong", javascript=False)
    town.goto(f"{live_server}/console/inbox")
    town.click("table a >> nth=0")
    town.click("#sign")
    assert "已签收" in town.inner_text(".flashes")


def test_console_main_forms_work_from_the_keyboard(browser, live_server, runtime, casework):
    with runtime.session_factory() as db:
        create_staff(
            db,
            username="keyboard",
            password=PASSWORD,
            role=Role.CENTER_STAFF,
            town_code=None,
            department_code=None,
            now=clock.now(),
            actor=SYSTEM,
            must_change_password=False,
        )
        db.commit()
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{live_server}/console/login")
    # The username field has focus; Tab to the password, Enter submits.
    page.keyboard.type("keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/console/")
    page.goto(f"{live_server}/console/leads/{casework['lead']}/dispatch")
    page.focus("#unit")
    page.keyboard.press("ArrowDown")  # the first unit
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "instructions"
    page.keyboard.type("请核实")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the submit button
    page.wait_for_selector(".flashes")
    assert "已签发" in page.inner_text(".flashes")
    context.close()


def test_console_town_submits_the_monthly_summary(open_as, casework, screenshots):
    town = open_as("town_staff", town="chengdong")
    town.click("nav >> text=统计")
    assert town.locator("svg.chart").count() >= 1
    town.click("text=镇街月度小结")
    town.fill("#remarks", "本月入户走访困难群众 12 户，新发现线索 3 条")
    town.click("#submit-summary")
    assert "月度小结已提交" in town.inner_text(".flashes")
    row = town.inner_text("#summary-chengdong")
    assert "本月入户走访困难群众 12 户" in row and "提交" in row
    town.screenshot(path=screenshots / "summaries.png")
    center = open_as("center_staff")
    center.click("nav >> text=统计")
    center.screenshot(path=screenshots / "reports.png", full_page=True)
    # The month picker redraws the charts in place (htmx), and the address follows.
    center.select_option("select[name=town]", "chengdong")
    center.click("form.filters button")
    center.wait_for_url("**town=chengdong**")
    assert "城东" in center.inner_text("h1") or center.locator("#report-body").count() == 1


@pytest.fixture
def worker(runtime):  # noqa: ANN001, ANN201
    """The background worker in a thread, as `e-rescue worker` runs it beside the web server."""
    from server.worker.loop import run_worker

    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(runtime,),
        kwargs={"once": False, "interval": 0.3, "stop": stop},
        daemon=True,
    )
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


def _department_file(rows: int, rejected: int) -> bytes:
    """区医保分局's file of `rows` stays: most below the threshold, some leads, some broken."""
    from tests.builders import make_id_number
    from tests.feedfiles import OOP_HEADER, xlsx

    body = []
    for i in range(rows - rejected):
        birth = f"19{40 + i % 60:02d}{1 + i % 12:02d}{1 + i % 28:02d}"
        amount = 30000 if i % 40 == 0 else 800
        body.append(
            [
                i,
                f"测试{i}",
                make_id_number(birth=birth, seq=f"{i % 1000:03d}"),
                "博山区医院",
                "2026-11-05",
                "2026-11-15",
                amount,
            ]
        )
    body += [[0, "错误", "123", "博山区医院", "2026-11-05", "2026-11-15", 800]] * rejected
    return xlsx([OOP_HEADER, *body])


def test_console_department_watches_a_20000_row_upload_to_the_end(
    open_as, worker, screenshots, tmp_path
):
    path = tmp_path / "住院名单-20000.xlsx"
    path.write_bytes(_department_file(20_000, 25))
    dept = open_as("department_staff", department="medical_insurance")
    dept.click("nav >> text=部门报送")
    dept.click("text=医保大额自付住院人员")
    dept.set_input_files("#file", str(path))
    dept.click("#upload")
    dept.wait_for_selector("#progress-bar")
    dept.evaluate("window.stayedOnPage = true")  # gone if the page reloads
    assert dept.inner_text("#rows-total") == "20000"
    dept.screenshot(path=screenshots / "upload_progress.png")
    seen = set()
    for _ in range(600):
        done = int(dept.inner_text("#rows-done"))
        if 0 < done < 20000 and not seen - {0}:
            dept.screenshot(path=screenshots / "upload_progress.png")
        seen.add(done)
        if dept.get_attribute("#batch-progress", "data-status") == "done":
            break
        dept.wait_for_timeout(250)
    assert dept.get_attribute("#batch-progress", "data-status") == "done"
    assert dept.evaluate("window.stayedOnPage") is True
    assert dept.inner_text("#rows-done") == "20000"
    assert dept.get_attribute("#progress-bar", "value") == "20000"
    assert min(seen) < 20000  # the bar moved while the worker imported
    dept.screenshot(path=screenshots / "upload_result.png")
    assert "未通过校验的行（25）" in dept.inner_text("#rejected")
    assert dept.locator("table.rejected tbody tr").count() == 25
    with dept.expect_download() as download:
        dept.click("#errors-xlsx")
    assert download.value.suggested_filename.endswith("errors.xlsx")


def test_console_leader_clicks_a_dashboard_card_through_to_its_list(open_as, casework, screenshots):
    leader = open_as("leader")
    leader.click("nav >> text=驾驶舱")
    leader.screenshot(path=screenshots / "dashboard.png", full_page=True)
    value = leader.inner_text("#card-open_leads .kpi-value")
    leader.click("#card-open_leads a")
    leader.wait_for_url("**/console/leads**")
    assert f"共 {value} 条" in leader.inner_text(".total")
    leader.go_back()
    channel = leader.locator(".kpi-channels li a").first
    count = channel.locator(".kpi-value").inner_text()
    channel.click()
    leader.wait_for_url("**channel=**")
    assert f"共 {count} 条" in leader.inner_text(".total")


def test_console_audit_admin_finds_the_reveal_made_earlier(open_as, casework, screenshots):
    center = open_as("center_staff")
    center.goto(center.url.replace("/console/", f"/console/leads/{casework['lead']}"))
    center.click("#reveal")
    center.wait_for_selector("text=本次查看已记录")
    auditor = open_as("audit_admin", home="/console/audit")
    auditor.click("nav.tabs >> text=查看完整个人信息")
    auditor.fill("input[name=target_id]", str(casework["lead"]))
    auditor.click("#audit-filters button[type=submit]")
    row = auditor.locator("table.audit tbody tr").first
    row.wait_for()
    text = row.inner_text()
    assert f"lead #{casework['lead']}" in text and "查看完整个人信息" in text
    auditor.screenshot(path=screenshots / "audit.png")


def test_console_administrator_loads_next_years_holidays_and_the_banner_goes(open_as, screenshots):
    from server.services.calendar.holidays import year_status

    year = clock.now().astimezone(clock.TZ).year + 1
    if year_status(year, loaded={}, today=clock.now().date()).known:
        pytest.skip("the installed chinesecalendar already knows next year")
    admin = open_as("system_admin", home="/console/admin/holidays")
    assert f"{year}年节假日安排" in admin.inner_text("#calendar-banner")
    admin.fill(
        "#dates",
        f"{year}-01-01 休 元旦\n{year}-02-06 休 春节\n{year}-02-07 休 春节\n{year}-02-14 班 春节",
    )
    admin.click("#preview-holidays")
    assert admin.locator("#holiday-preview tbody tr").count() == 4
    admin.screenshot(path=screenshots / "holidays_preview.png")
    admin.click("#load-holidays")
    assert "已载入" in admin.inner_text(".flashes")
    assert admin.locator("#calendar-banner").count() == 0


def test_console_town_invites_a_helper_sees_the_qr_code_and_revokes_it(
    open_as, live_server, screenshots, db
):
    village(db, code="cd-001")
    town = open_as("town_staff", town="chengdong")
    town.goto(f"{live_server}/console/helpers")
    town.select_option("#invite-form select[name=village]", "cd-001")
    town.click("#invite-form button[type=submit]")
    qr = town.locator("#invitation-qr")
    qr.wait_for(state="visible")
    assert town.evaluate("document.getElementById('invitation-qr').naturalWidth") > 100
    code = town.inner_text("#invitation-code").strip()
    assert re.fullmatch(r"[A-Z0-9]{10}", code)
    assert town.locator("button[data-print]").is_visible()
    town.screenshot(path=screenshots / "helper_invitation.png")
    town.goto(f"{live_server}/console/helpers")
    row = town.locator("#invitations tbody tr[id^=invitation-]")
    assert row.count() == 1 and code not in town.inner_text("#invitations")
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    town.once("dialog", accept)
    row.locator("button[type=submit]").click()
    town.wait_for_selector(".flashes")
    assert asked and "撤销" in asked[0]
    assert "已撤销该邀请" in town.inner_text(".flashes")
    assert town.locator("#invitations tbody tr[id^=invitation-]").count() == 0
    db.expire_all()
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "helper_invitation.revoked"))


def test_console_administrator_creates_a_staff_account_and_sees_its_password_once(
    open_as, screenshots, db
):
    admin = open_as("system_admin", home="/console/admin/holidays")
    admin.click("nav >> text=工作人员账号")
    admin.fill("#staff-create input[name=username]", "li.baita")
    admin.fill("#staff-create input[name=display_name]", "李白塔")
    admin.select_option("#staff-create select[name=role]", "town_staff")
    admin.select_option("#staff-create select[name=town]", "baita")
    admin.click("#staff-create button[type=submit]")
    password = admin.inner_text("#temporary-password").strip()
    assert len(password) >= 12
    admin.screenshot(path=screenshots / "staff_password.png")
    admin.click("text=返回工作人员账号")
    assert "li.baita" in admin.inner_text("#staff") and password not in admin.content()
    admin.screenshot(path=screenshots / "staff_accounts.png", full_page=True)


def test_console_town_opens_the_ledger_and_a_villages_poster(open_as, live_server, screenshots, db):
    village(db, code="cd-001")
    town = open_as("town_staff", town="chengdong")
    town.click("nav >> text=走访摸排")
    assert town.locator("#ledger").is_visible() and town.locator("#ledger-export").is_visible()
    town.screenshot(path=screenshots / "ledgers.png")
    town.goto(f"{live_server}/console/posters/cd-001/print?kind=link")
    town.wait_for_function("document.getElementById('poster-image').naturalWidth > 1000")
    town.screenshot(path=screenshots / "poster.png")
