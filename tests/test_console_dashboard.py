"""领导驾驶舱: read-only KPI cards whose figures are the totals of the lists they open."""

from __future__ import annotations

import re

import pytest

from server.demo.seed import DEMO_PASSWORD
from tests.console_helpers import chart_figures, console_login

PASSWORD = "correct-horse-9"
_CARD = re.compile(
    r'<li class="[^"]*" id="card-([\w-]+)">\s*<a href="([^"]+)">\s*'
    r'<span class="kpi-value">([^<]+)</span>'
)
_CHANNEL_CARD = re.compile(
    r'<li id="card-([\w-]+)">\s*<a href="([^"]+)">\s*<span class="kpi-value">([^<]+)</span>'
)


def test_console_dashboard_cards_equal_the_lists_they_open(client, demo, staff_login):
    console_login(client, "leader", DEMO_PASSWORD)
    page = client.get("/console/dashboard")
    assert page.status_code == 200
    cards = {
        key: (href.replace("&amp;", "&"), value) for key, href, value in _CARD.findall(page.text)
    }
    channels = {
        key: (href.replace("&amp;", "&"), value)
        for key, href, value in _CHANNEL_CARD.findall(page.text)
    }
    assert {"open_leads", "found", "overdue", "on_time", "answer_days", "households_helped"} <= set(
        cards
    )
    assert channels, "the demo data has leads found this month"
    for key, (href, value) in {**channels, "open_leads": cards["open_leads"]}.items():
        listed = client.get(href).text
        assert f"共 {value} 条" in listed, (key, href)
    href, value = cards["overdue"]
    assert int(value) >= 1
    assert f"共 {value} 件" in client.get(href).text
    # The month's figures are the API's.
    month = cards["found"][0].split("month=")[1][:7]
    api = client.get(
        "/api/v1/reports/monthly",
        query_string={"month": month},
        headers=staff_login(role="leader").headers,
    ).get_json()
    assert cards["found"][1] == str(api["leads"]["total"])
    rate = api["slips"]["on_time_rate"]
    assert cards["on_time"][1] == (f"{rate:.1%}" if rate is not None else "—")
    _tables, bars = chart_figures(page.text)
    assert {"leads_channel", "slips_trend"} <= set(bars)
    for item in api["leads"]["by_channel"]:
        label = f"{month[:4]}年{int(month[5:])}月"
        assert bars["leads_channel"][(item["label"], label)] == item["count"]


def test_console_dashboard_is_read_only_without_forms(client, demo):
    console_login(client, "leader", DEMO_PASSWORD)
    html = client.get("/console/dashboard").text
    main = html.split('<main id="main"', 1)[1]
    assert "<form" not in main


@pytest.mark.parametrize("role", ["town_staff", "department_staff"])
def test_console_dashboard_refuses_towns_and_departments(client, staff, role):
    console_login(client, staff(role), PASSWORD)
    assert client.get("/console/dashboard").status_code == 403


def test_console_dashboard_trend_exports_its_table(client, demo):
    console_login(client, "center", DEMO_PASSWORD)
    assert client.get("/console/dashboard").status_code == 200
    assert client.get("/console/reports/slips_trend.xlsx").status_code == 200
