"""Reading small tabular uploads (xlsx or csv) into rows of strings.

python-calamine reads xlsx about 7× faster than openpyxl's read-only mode (FACTS.md); csv is
decoded as UTF-8 (with or without BOM) or GB18030, which is what Chinese offices export.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime

from server.errors import ValidationFailed


def read_table(content: bytes, filename: str) -> list[list[str]]:
    if not content:
        raise ValidationFailed("文件为空", code="file_empty")
    if content[:4] == b"PK\x03\x04" and zipfile.is_zipfile(io.BytesIO(content)):
        return _read_xlsx(content)
    if filename.lower().endswith((".xlsx", ".xls")):
        raise ValidationFailed("文件不是有效的 Excel 表格", code="file_not_spreadsheet")
    return _read_csv(content)


def _read_xlsx(content: bytes) -> list[list[str]]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(content))
        sheet = book.get_sheet_by_index(0)
        return [[_cell(v) for v in row] for row in sheet.to_python(skip_empty_area=False)]
    except Exception as exc:  # calamine raises several error types for broken files
        raise ValidationFailed("文件不是有效的 Excel 表格", code="file_not_spreadsheet") from exc


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _read_csv(content: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
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
