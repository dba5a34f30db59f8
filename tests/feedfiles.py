"""Building real xlsx and csv department files in tests."""

from __future__ import annotations

import csv
import io
from typing import Any

import xlsxwriter

OOP_HEADER = [
    "序号",
    "姓名",
    "公民身份号码",
    "定点医疗机构",
    "入院日期",
    "出院日期",
    "个人负担合规费用",
]


def xlsx(rows: list[list[Any]], *, title: str | None = None, date_cells: bool = False) -> bytes:
    """An xlsx whose first sheet holds `rows` (optionally below a merged title row)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("Sheet1")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    start = 0
    if title:
        sheet.merge_range(0, 0, 0, max(len(rows[0]) - 1, 1), title)
        start = 2  # a title row, then an empty row, then the header
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if date_cells and hasattr(value, "isoformat") and not isinstance(value, str):
                from datetime import datetime

                sheet.write_datetime(
                    start + r, c, datetime(value.year, value.month, value.day), date_format
                )
            elif isinstance(value, int | float):
                sheet.write_number(start + r, c, value)
            elif value is None:
                continue
            else:
                sheet.write_string(start + r, c, str(value))
    book.close()
    return buffer.getvalue()


def csv_bytes(rows: list[list[Any]], *, encoding: str = "utf-8-sig") -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return text.getvalue().encode(encoding)


def upload(client: Any, login: Any, code: str, content: bytes, filename: str = "feed.xlsx") -> Any:
    return client.post(
        f"/api/v1/feeds/{code}/batches",
        headers=login.headers,
        data={"file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )
