"""Every workbook we write stores text as text (issue 17: formula injection).

A town's name, a department's file and a town's remarks carry live-formula text; each export
is opened with openpyxl and holds no formula cell (we write none) and no text cell that a
spreadsheet would read as one (OWASP: a leading = + - @ tab or CR is escaped with ').
"""

from __future__ import annotations

import io

import openpyxl
import pytest
from sqlalchemy import update

from server.models import Town
from server.services.kernel.workbooks import FORMULA_TRIGGERS, neutralise
from tests.builders import dispatches as slips
from tests.builders import make_id_number, visits
from tests.builders import supervision as notices
from tests.builders.dispatches import make_lead
from tests.builders.ledgers import household
from tests.console_helpers import console_login
from tests.feedfiles import OOP_HEADER, upload, xlsx

at_time = slips.at_time
noted = notices.noted
villages = visits.villages

HOSTILE = '=HYPERLINK("http://evil.example/","点此查看")'
CMD = "=cmd|' /C calc'!A0"


@pytest.fixture
def hostile_town(db):
    """城东街道 renamed to a formula, as text from elsewhere would be."""
    db.execute(update(Town).where(Town.code == "chengdong").values(name=HOSTILE))
    db.commit()


def inert(content: bytes) -> list[str]:
    """Every text cell of the workbook, after checking that none is or looks like a formula."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    texts = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_TRIGGERS), cell.value
                    texts.append(cell.value)
    return texts


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        (HOSTILE, "'" + HOSTILE),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("王秀英", "王秀英"),
        ("32,400元", "32,400元"),
    ],
)
def test_text_starting_with_a_formula_trigger_is_escaped(text, stored):
    assert neutralise(text) == stored


def test_errors_xlsx_gives_formula_cells_back_as_text(client, staff_login):
    insurer = staff_login(role="department_staff", department="medical_insurance")
    rows = [OOP_HEADER, ["1", CMD, "X" + make_id_number()[1:], HOSTILE, "2026-03-05", "", 30000]]
    body = upload(client, insurer, "insurance_oop", xlsx(rows)).get_json()
    assert body["result"]["rejected"] == 1, body
    url = f"/api/v1/feeds/insurance_oop/batches/{body['id']}/errors.xlsx"
    texts = inert(client.get(url, headers=insurer.headers).data)
    assert "'" + CMD in texts and "'" + HOSTILE in texts


def test_the_monthly_workbook_stores_a_town_name_and_remarks_as_text(
    client,
    staff_login,
    hostile_town,
    at_time,
):
    at_time(2026, 12, 3, 9, 0)
    town = staff_login(role="town_staff", town="chengdong")
    resp = client.post(
        "/api/v1/reports/monthly/2026-11/submit", json={"remarks": CMD}, headers=town.headers
    )
    assert resp.status_code == 201, resp.get_json()
    reader = staff_login(role="center_staff")
    resp = client.get("/api/v1/reports/monthly.xlsx?month=2026-11", headers=reader.headers)
    texts = inert(resp.data)
    assert "'" + HOSTILE in texts and "'" + CMD in texts


def test_the_supervision_notice_stores_a_unit_name_as_text(client, noted, center, hostile_town):
    resp = client.get("/api/v1/supervision.xlsx?month=2026-11", headers=center.headers)
    assert "'" + HOSTILE in inert(resp.data)


def test_the_ledger_stores_names_and_needs_as_text(
    client,
    staff_login,
    villages,
    hostile_town,
):
    town = staff_login(role="town_staff", town="chengdong")
    household(client, town, "甲", visited=0, next_in=30)
    texts = inert(client.get("/api/v1/ledgers.xlsx", headers=town.headers).data)
    assert "'" + HOSTILE in texts


def test_the_queue_export_stores_a_town_name_as_text(client, staff_login, hostile_town):
    exporter = staff_login(role="center_staff", username="queue-exporter")
    make_lead(client, exporter)
    console_login(client, "queue-exporter", "correct-horse-9")
    resp = client.get("/console/leads/export.xlsx")
    assert resp.status_code == 200
    assert "'" + HOSTILE in inert(resp.data)
