"""走访摸排 in the console: visits by village and date, households due for a visit, and the
classified ledgers with their filters and xlsx export (masked, audited)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from server import clock
from server.models import AuditEntry
from tests.builders import make_id_number, visits
from tests.builders.visits import record
from tests.console_helpers import console_login

villages = visits.villages

PASSWORD = "correct-horse-9"
TODAY = clock.now().astimezone(clock.TZ).date()


@pytest.fixture
def visited(client, villages, helper_login, staff_login):
    """Two households visited in cd-001 (one 40 days ago, one today) and one in bt-001."""
    hank = helper_login("hank", village="cd-001")
    old = record(
        client,
        hank,
        head={"name": "王大山", "id_number": make_id_number(birth="19500101")},
        visited_on=(TODAY - timedelta(days=40)).isoformat(),
        next_visit_on=(TODAY - timedelta(days=10)).isoformat(),
        categories=["left_behind"],
    )
    assert old.status_code == 201, old.get_json()
    new = record(
        client,
        hank,
        head={"name": "李小花", "id_number": make_id_number(birth="19600202")},
        next_visit_on=(TODAY + timedelta(days=60)).isoformat(),
        categories=["disabled"],
    )
    assert new.status_code == 201, new.get_json()
    baita = staff_login(role="town_staff", town="baita")
    other = record(
        client,
        baita,
        village="bt-001",
        head={"name": "赵白塔", "id_number": make_id_number(birth="19700303")},
    )
    assert other.status_code == 201, other.get_json()
    return {"old": old.get_json(), "new": new.get_json(), "other": other.get_json()}


def _console(client, staff, role="town_staff", **kw):
    console = client.application.test_client()
    console_login(console, staff(role, **kw), PASSWORD)
    return console


def test_visits_by_village_and_date(client, staff, visited):
    console = _console(client, staff)
    page = console.get("/console/field/visits")
    assert page.status_code == 200
    assert f'id="visit-{visited["old"]["id"]}"' in page.text
    assert f'id="visit-{visited["new"]["id"]}"' in page.text
    assert f'id="visit-{visited["other"]["id"]}"' not in page.text  # another town's
    assert "王大山" in page.text and "19500101" not in page.text  # ID numbers masked
    since = (TODAY - timedelta(days=7)).isoformat()
    recent = console.get(f"/console/field/visits?village=cd-001&from={since}").text
    assert f'id="visit-{visited["new"]["id"]}"' in recent
    assert f'id="visit-{visited["old"]["id"]}"' not in recent
    assert console.get("/console/field/visits?village=bt-001").status_code == 404
    assert console.get(f"/console/field/visits?from={TODAY}&to={since}").status_code == 422


def test_households_due_for_a_visit(client, staff, visited):
    console = _console(client, staff)
    page = console.get("/console/field/due?days=14")
    assert page.status_code == 200
    old, new = visited["old"]["household_id"], visited["new"]["household_id"]
    assert f'id="household-{old}"' in page.text and "已逾期 10 天" in page.text
    assert f'id="household-{new}"' not in page.text
    assert f'id="household-{new}"' in console.get("/console/field/due?days=90").text


def test_ledgers_filter_and_export(client, staff, visited, db):
    console = _console(client, staff)
    page = console.get("/console/field/ledgers")
    assert page.status_code == 200 and 'id="ledger-total">2<' in page.text
    assert 'id="ledger-overdue">1<' in page.text and "19500101" not in page.text
    disabled = console.get("/console/field/ledgers?category=disabled").text
    assert "李小花" in disabled and "王大山" not in disabled
    overdue = console.get("/console/field/ledgers?overdue=true").text
    assert "王大山" in overdue and "李小花" not in overdue
    assert "李小花" in console.get("/console/field/ledgers?name=小花").text
    export = console.get("/console/field/ledgers.xlsx?category=left_behind")
    assert export.status_code == 200 and "spreadsheetml" in export.content_type
    cells = [
        str(c)
        for ws in load_workbook(io.BytesIO(export.data)).worksheets
        for row in ws.iter_rows(values_only=True)
        for c in row
        if c
    ]
    assert any("王大山" in c for c in cells) and not any("李小花" in c for c in cells)
    assert not any("19500101" in c for c in cells)
    db.expire_all()
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "ledger.exported"))


def test_the_center_sees_every_town_and_filters_by_town(client, staff, visited):
    console = _console(client, staff, "center_staff")
    page = console.get("/console/field/ledgers")
    assert 'id="ledger-total">3<' in page.text and 'name="town"' in page.text
    assert 'id="ledger-total">1<' in console.get("/console/field/ledgers?town=baita").text


@pytest.mark.parametrize("role", ["leader", "department_staff", "system_admin", "audit_admin"])
@pytest.mark.parametrize(
    "path",
    [
        "/console/field/visits",
        "/console/field/due",
        "/console/field/ledgers",
        "/console/field/ledgers.xlsx",
    ],
)
def test_other_roles_get_403(client, staff, role, path):
    console = _console(client, staff, role)
    assert console.get(path).status_code == 403


def test_the_navigation_links_field_work_for_town_staff(client, staff):
    console = _console(client, staff)
    assert 'href="/console/field/ledgers"' in console.get("/console/leads").text
    leader = _console(client, staff, "leader")
    assert 'href="/console/field/ledgers"' not in leader.get("/console/leads").text
