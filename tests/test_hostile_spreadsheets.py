"""Untrusted spreadsheets cannot take a process down (issue 17).

Each hostile workbook is built in a few lines (tests/hostile_files.py) and uploaded over HTTP
as a department file, a village list or a holiday table; each is a 422 whose message names the
limit it broke, answered fast, and the server goes on serving.
"""

from __future__ import annotations

import io
import random
import time

import pytest

from server.errors import ValidationFailed
from server.services.feeds import sheets
from tests.builders import error_code, make_id_number
from tests.feedfiles import OOP_HEADER, upload, xlsx
from tests.hostile_files import HEADER_ROW, declare_size, repeat, workbook

FAR_CELL = workbook(HEADER_ROW + '<row r="100000"><c r="XFD100000"><v>1</v></c></row>')
#: Seconds a refusal may take here (2 shared cores); measured 0.25–0.4 s.
FAST = 5.0


@pytest.fixture
def insurer(staff_login):
    return staff_login(role="department_staff", department="medical_insurance")


def _refused(client, login, content, code, *, limit_text):
    started = time.perf_counter()
    resp = upload(client, login, "insurance_oop", content)
    elapsed = time.perf_counter() - started
    body = resp.get_json()
    assert resp.status_code == 422, body
    assert body["code"] == code and limit_text in body["message"], body
    assert body["errors"]["file"] == [body["message"]]
    assert elapsed < FAST, elapsed
    return body


@pytest.mark.parametrize(
    "cell", ["XFD100000", "ZZZZZZZ1"], ids=["last-excel-column", "beyond-excel"]
)
def test_a_cell_beyond_the_column_limit_is_refused_naming_it(client, insurer, cell):
    content = workbook(HEADER_ROW + f'<row r="2"><c r="{cell}"><v>1</v></c></row>')
    assert len(content) < 2000
    _refused(client, insurer, content, "sheet_too_many_columns", limit_text="256 列")


def test_rows_jumping_past_the_row_limit_are_refused(client, insurer):
    content = workbook(HEADER_ROW + '<row r="2000000000"><c r="A2000000000"><v>1</v></c></row>')
    _refused(client, insurer, content, "sheet_too_many_rows", limit_text="1048576 行")


def test_a_declared_extent_beyond_the_limits_is_refused(client, insurer):
    content = workbook(HEADER_ROW, dimension="A1:XFD1048576")
    _refused(client, insurer, content, "sheet_too_many_columns", limit_text="256 列")


def test_a_200_mb_shared_string_is_refused_before_it_is_read(client, insurer):
    one = '<row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    content = workbook(
        HEADER_ROW + one, shared=[b"<si><t>", *repeat(b"A" * (1 << 20), 200), b"</t></si>"]
    )
    _refused(client, insurer, content, "file_zip_ratio", limit_text="100:1")


def test_a_text_longer_than_any_cell_holds_is_refused(client, insurer):
    rnd = random.Random(17)
    text = "".join(chr(rnd.randrange(0x4E00, 0x9FA5)) for _ in range(400_000)).encode()
    one = '<row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    content = workbook(HEADER_ROW + one, shared=[b"<si><t>", text, b"</t></si>"])
    _refused(client, insurer, content, "file_text_too_long", limit_text="32767 个字符")


def test_a_zip_bomb_is_refused_by_its_total_size(client, insurer):
    """Parts of 1 MB each pass the ratio rule; 600 of them (declared) do not fit the total."""
    parts = {f"xl/media/z{i}.bin": [b"\0" * 1000] for i in range(600)}
    content = workbook(HEADER_ROW, extra=parts)
    for i in range(600):
        content = declare_size(content, f"xl/media/z{i}.bin", 1 << 20)
    _refused(client, insurer, content, "file_zip_size", limit_text="512 MB")


def test_a_zip_bomb_is_refused_by_its_ratio(client, insurer):
    content = workbook(HEADER_ROW, extra={"xl/media/z.bin": repeat(b"\0" * (1 << 20), 20)})
    _refused(client, insurer, content, "file_zip_ratio", limit_text="100:1")


def test_a_part_that_inflates_past_its_declared_size_is_refused(client, insurer):
    content = declare_size(FAR_CELL, "xl/worksheets/sheet1.xml", 300)
    _refused(client, insurer, content, "file_zip_size", limit_text="声明的大小")


def test_an_800k_row_file_small_enough_for_the_request_is_never_imported_in_it(client, insurer):
    """800,000 rows fit in the 256 KB of an inline upload only at a bomb's ratio."""
    rows = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 800_000
    content = workbook([HEADER_ROW.encode(), rows])
    assert len(content) <= 256 * 1024
    _refused(client, insurer, content, "file_zip_ratio", limit_text="100:1")


def test_a_small_file_of_many_rows_goes_to_the_worker(client, insurer, monkeypatch):
    """Inline means small in bytes and in rows (the sheet's real extent)."""
    from server.services.feeds import batches

    monkeypatch.setattr(batches, "INLINE_MAX_ROWS", 50)
    row = ["甲", make_id_number(), "博山区医院", "2026-03-05", "2026-03-09", 30000]
    resp = upload(client, insurer, "insurance_oop", xlsx([OOP_HEADER[1:], *([row] * 60)]))
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["rows_total"] == 60


def test_a_parser_out_of_memory_costs_one_refused_file_not_the_server(client, insurer):
    """Cells without a reference are not seen by the extent check; calamine then asks for
    ≈ 30 GB and aborts, in its child. The upload is refused and the next one is served."""
    wide = b'<row r="1">' + b"<c><v>1</v></c>" * 20_000 + b"</row>"
    rows = (f'<row r="{i}"><c r="A{i}"><v>1</v></c></row>'.encode() for i in range(2, 50_001))
    _refused(client, insurer, workbook([wide, *rows]), "file_parse_memory", limit_text="1024 MB")
    content = xlsx(
        [OOP_HEADER, ["1", "甲", make_id_number(), "博山区医院", "2026-03-05", "", 30000]]
    )
    assert upload(client, insurer, "insurance_oop", content).status_code == 201


def test_a_parser_out_of_time_costs_one_refused_file():
    rows = (f'<row r="{i}"><c r="A{i}"><v>1</v></c></row>'.encode() for i in range(1, 300_001))
    with pytest.raises(ValidationFailed) as refused:
        sheet = sheets.open_sheet(workbook(rows), limits=sheets.with_limits(cpu_seconds=1))
        list(sheet.rows)
    assert refused.value.code == "file_parse_time" and "1 秒" in refused.value.message


def test_the_village_loader_refuses_a_hostile_workbook(client, staff_login):
    resp = client.post(
        "/api/v1/villages/import",
        headers=staff_login(role="system_admin").headers,
        data={"file": (io.BytesIO(FAR_CELL), "villages.xlsx")},
    )
    assert resp.status_code == 422 and error_code(resp) == "sheet_too_many_columns"


def test_the_holiday_loader_refuses_a_hostile_workbook(client, staff_login):
    content = workbook(HEADER_ROW + '<row r="2000000000"><c r="A2000000000"><v>1</v></c></row>')
    resp = client.post(
        "/api/v1/calendar/holidays",
        headers=staff_login(role="system_admin").headers,
        data={"file": (io.BytesIO(content), "2027.xlsx")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422 and error_code(resp) == "sheet_too_many_rows"
