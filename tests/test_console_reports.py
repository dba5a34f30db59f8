"""The console's 统计 (charts beside tables, xlsx) and the towns' monthly summaries."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from server import clock
from server.demo.seed import DEMO_PASSWORD
from tests.console_helpers import chart_figures, console_login, post

PASSWORD = "correct-horse-9"


def _month_label(month: str) -> str:
    year, number = month.split("-")
    return f"{year}年{int(number)}月"


def _months_back(month: str, count: int) -> list[str]:
    year, number = (int(x) for x in month.split("-"))
    found = []
    for _ in range(count):
        found.insert(0, f"{year}-{number:02d}")
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
    return found


@pytest.fixture
def last_month_report(client, staff_login, monkeypatch):  # noqa: ANN001, ANN201
    """A hotline report heard 35 days ago, so the months before this one have figures too."""
    login = staff_login(role="center_staff")
    earlier = clock.now() - timedelta(days=35)
    monkeypatch.setattr(clock, "now", lambda: earlier)
    resp = client.post(
        "/api/v1/leads",
        json={"channel": "hotline", "name": "赵六", "summary": "独居老人", "town": "baita"},
        headers=login.headers,
    )
    monkeypatch.undo()
    assert resp.status_code == 201, resp.get_json()
    return earlier.astimezone(clock.TZ).strftime("%Y-%m")


@pytest.mark.parametrize("town", [None, "baita"])
def test_console_every_charts_figures_equal_the_apis_for_the_same_months(
    client, demo, last_month_report, staff_login, town
):
    """Each chart's bars and its table hold the figures of GET /api/v1/reports/monthly for
    each month it shows (six months of leads; the chosen month's slips, outcomes, revisits)."""
    month = clock.now().astimezone(clock.TZ).strftime("%Y-%m")
    headers = staff_login(role="leader").headers
    scope = {"town": town} if town else {}
    api = {
        m: client.get(
            "/api/v1/reports/monthly", query_string={"month": m, **scope}, headers=headers
        ).get_json()
        for m in _months_back(month, 6)
    }
    assert api[last_month_report]["leads"]["total"] >= 1
    console_login(client, "leader", DEMO_PASSWORD)
    page = client.get("/console/reports", query_string={"month": month, **scope})
    assert page.status_code == 200
    tables, bars = chart_figures(page.text)
    assert (
        set(tables)
        == set(bars)
        == {
            "leads_channel",
            "leads_feed",
            "leads_town",
            "slips_unit",
            "outcomes",
            "satisfaction",
            "informed",
        }
    )

    for chart, figure in (
        ("leads_channel", "by_channel"),
        ("leads_feed", "by_feed"),
        ("leads_town", "by_town"),
    ):
        expected = {
            (item["label"], _month_label(m)): item["count"]
            for m, report in api.items()
            for item in report["leads"][figure]
        }
        assert bars[chart] == expected, chart
        shown = {
            (label, column): int(cell)
            for label, row in tables[chart].items()
            if label != "合计"
            for column, cell in row.items()
            if column not in ("合计", next(iter(row))) and cell != "0"
        }
        assert shown == expected, chart

    now = api[month]
    units = {u["label"]: u for u in now["slips"]["by_unit"]}
    assert set(tables["slips_unit"]) == set(units)
    for label, unit in units.items():
        row = tables["slips_unit"][label]
        for column, key in (
            ("按期反馈", "answered_on_time"),
            ("逾期反馈", "answered_late"),
            ("本月签发", "issued"),
            ("退回", "returned"),
            ("月末在办", "still_open"),
        ):
            assert int(row[column]) == unit[key], (label, column)
        for series, key in (("按期反馈", "answered_on_time"), ("逾期反馈", "answered_late")):
            assert bars["slips_unit"].get((series, label), 0) == unit[key]

    outcomes = {o["label"]: o for o in now["outcomes"]}
    assert set(tables["outcomes"]) == set(outcomes)
    for label, item in outcomes.items():
        assert int(tables["outcomes"][label]["件数"]) == item["count"]
        assert tables["outcomes"][label]["金额（元）"] == item["amount"]
        assert bars["outcomes"][("件数", label)] == item["count"]

    for score in now["satisfaction"]["by_score"]:
        label = f"{score['score']}分"
        assert int(tables["satisfaction"][label]["回访次数"]) == score["count"]
        assert bars["satisfaction"].get(("回访次数", label), 0) == score["count"]

    for m, report in api.items():
        row = tables["informed"][_month_label(m)]
        informed = report["informed"]
        assert int(row["应告知"]) == informed["due"]
        for column, key in (
            ("按时告知", "informed_on_time"),
            ("逾期告知", "informed_late"),
            ("尚未告知", "not_informed"),
        ):
            assert int(row[column]) == informed[key]
            assert bars["informed"].get((column, _month_label(m)), 0) == informed[key]


def test_console_chart_export_is_the_charts_table(client, demo):
    console_login(client, "center", DEMO_PASSWORD)
    page = client.get("/console/reports")
    tables, _bars = chart_figures(page.text)
    resp = client.get("/console/reports/leads_channel.xlsx")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "private, no-store"
    sheet = load_workbook(io.BytesIO(resp.data)).active
    rows = [r for r in sheet.iter_rows(min_row=4, values_only=True)]
    assert {r[0]: r[-1] for r in rows} == {
        label: int(row["合计"]) for label, row in tables["leads_channel"].items()
    }
    assert client.get("/console/reports/nothing.xlsx").status_code == 404
    whole = client.get("/console/reports.xlsx")
    assert whole.status_code == 200
    assert "线索" in load_workbook(io.BytesIO(whole.data)).sheetnames


def test_console_reports_charts_are_svg_drawn_on_the_server_without_inline_style(client, demo):
    console_login(client, "center", DEMO_PASSWORD)
    html = client.get("/console/reports").text
    assert "<svg" in html and "<script>" not in html
    assert " style=" not in html and "<style" not in html


@pytest.mark.parametrize("path", ["/console/reports", "/console/summaries"])
def test_console_department_may_not_see_reports(client, staff, path):
    console_login(client, staff("department_staff"), PASSWORD)
    assert client.get(path).status_code == 403


def test_console_town_sees_only_its_own_towns_report(client, demo):
    console_login(client, "chengdong", DEMO_PASSWORD)
    assert client.get("/console/reports?town=baita").status_code == 404
    own = client.get("/console/reports")
    assert own.status_code == 200 and "城东" in own.text
    summaries = client.get("/console/summaries").text
    assert 'id="summary-chengdong"' in summaries and 'id="summary-baita"' not in summaries


def test_console_town_submits_its_monthly_summary_once(client, demo):
    csrf = console_login(client, "chengdong", DEMO_PASSWORD)
    page = client.get("/console/summaries")
    assert "提交月度小结" in page.text
    month = (clock.now().astimezone(clock.TZ).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    empty = post(client, f"/console/summaries/{month}/submit", csrf, remarks="")
    assert empty.status_code == 422 and "请填写本月小结" in empty.text
    resp = post(client, f"/console/summaries/{month}/submit", csrf, remarks="本月入户走访 12 户")
    assert resp.status_code == 303
    shown = client.get(resp.headers["Location"]).text
    assert "月度小结已提交" in shown and "本月入户走访 12 户" in shown
    assert "提交时的统计数字" in shown
    again = post(client, f"/console/summaries/{month}/submit", csrf, remarks="再交一次")
    assert again.status_code == 409
    this_month = clock.now().astimezone(clock.TZ).strftime("%Y-%m")
    early = post(client, f"/console/summaries/{this_month}/submit", csrf, remarks="提前")
    assert early.status_code == 422 and "尚未结束" in early.text


def test_console_leader_reads_summaries_but_may_not_submit(client, demo):
    csrf = console_login(client, "leader", DEMO_PASSWORD)
    page = client.get("/console/summaries")
    assert page.status_code == 200 and 'id="summary-baita"' in page.text
    assert "提交月度小结" not in page.text
    month = (clock.now().astimezone(clock.TZ).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert post(client, f"/console/summaries/{month}/submit", csrf, remarks="x").status_code == 403
