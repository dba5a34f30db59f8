"""Reading small tabular uploads (xlsx or csv) into rows of strings: the village and holiday
loaders.

Spreadsheets go through `services/feeds/sheets.py` like department files (checked, then parsed by
python-calamine in a child process with memory and time limits), so a hostile workbook is a
422 naming the limit it broke; csv is decoded as UTF-8 (with or without BOM) or GB18030, which
is what Chinese offices export.
"""

from __future__ import annotations

import codecs
import csv
import io
from datetime import date, datetime

from server.errors import ValidationFailed
from server.services.feeds import sheets

#: Villages and holiday tables are a few thousand rows at most: loaded whole, in memory.
LIMITS = sheets.with_limits(max_rows=100_000, cpu_seconds=30)


def read_table(content: bytes, filename: str) -> list[list[str]]:
    if not content:
        raise ValidationFailed("文件为空", code="file_empty")
    if sheets.is_spreadsheet(content):
        return _read_xlsx(content)
    if filename.lower().endswith((".xlsx", ".xls")):
        raise ValidationFailed("文件不是有效的 Excel 表格", code="file_not_spreadsheet")
    return _read_csv(content)


def _read_xlsx(content: bytes) -> list[list[str]]:
    sheet = sheets.open_sheet(content, limits=LIMITS)
    try:
        return [[_cell(v) for v in row] for row in sheet.rows]
    finally:
        sheet.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def decodes_whole(raw: bytes, encoding: str, *, chunk: int = 1 << 20) -> bool:
    """Whether all of `raw` decodes in `encoding`, ending on a whole character (a GB18030 lead
    byte left alone at the end is not), a megabyte at a time so no second copy is held."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for start in range(0, len(raw), chunk):
            decoder.decode(raw[start : start + chunk], final=False)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(content: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        if decodes_whole(content, encoding):
            text = content.decode(encoding)
            break
    else:
        raise ValidationFailed(
            "无法识别文件编码，请另存为 UTF-8 CSV 或 Excel", code="file_encoding"
        )
    if "\x00" in text:
        raise ValidationFailed("文件不是表格文件", code="file_not_spreadsheet")
    return [row for row in csv.reader(io.StringIO(text))]


def table_workbook(
    title: str, header: list[str], rows: list[list[object]], *, sheet: str = "统计"
) -> bytes:
    """One table as an xlsx workbook: a title row, the header, the rows (aggregates; no
    personal data). Text is never read as a formula."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    bold = book.add_format({"bold": True})
    page = book.add_worksheet(sheet[:31])
    page.set_column(0, 0, 26)
    page.set_column(1, max(1, len(header) - 1), 13)
    page.write(0, 0, title, book.add_format({"bold": True, "font_size": 13}))
    page.write_row(2, 0, header, bold)
    for i, row in enumerate(rows, start=3):
        page.write_row(i, 0, row)
    book.close()
    return buffer.getvalue()
