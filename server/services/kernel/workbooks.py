"""Every workbook we write (errors.xlsx, the monthly statistics, the queue export, the
supervision 通报, ledgers, the demo feed file) is made and filled through this module.

Text is stored as text: xlsxwriter's `write()` would turn a string starting with `=` into a
live formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0` from a department's or town's text) and
a URL into a hyperlink, so the workbook is opened with those conversions off, and every string
goes through `neutralise`: one starting with `=`, `+`, `-`, `@`, a tab or a carriage return is
prefixed with `'`, as OWASP recommends for CSV/formula injection, so it stays inert even when a
user edits the cell or saves the sheet as CSV. Numbers, dates and booleans are written as such.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_OPTIONS = {
    "in_memory": True,
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
}


@dataclass(frozen=True)
class HeaderRow:
    #: The header's index among the rows given (0: the first).
    index: int
    header: list[str]
    #: Each named column's index in the row.
    columns: dict[str, int]
    #: The columns it does not name (empty when it names them all).
    missing: list[str]


def find_header_row(
    rows: list[list[str]], columns: Mapping[str, tuple[str, ...]], *, search_rows: int = 20
) -> HeaderRow:
    """Where a staff-made table's header is: the first of its first `search_rows` rows that
    names every column of `columns` (each by one of its aliases, in any case; a title or blank
    rows above it are fine), else the row naming most of them (its `missing` says what lacks;
    every column when no row names any). The villages and holidays files use it; department
    files, with their per-feed aliases and partial matches, have their own (feeds/reader.py)."""
    best: HeaderRow | None = None
    for index, row in enumerate(rows[:search_rows]):
        header = [str(c).strip() for c in row]
        keys = [h.lower() for h in header]
        found = {
            key: keys.index(alias.lower())
            for key, aliases in columns.items()
            for alias in reversed(aliases)  # the first alias listed wins
            if alias.lower() in keys
        }
        candidate = HeaderRow(index, header, found, [k for k in columns if k not in found])
        if not candidate.missing:
            return candidate
        if found and (best is None or len(found) > len(best.columns)):
            best = candidate
    return best or HeaderRow(0, [], {}, list(columns))


def new_workbook(out: IO[bytes]) -> xlsxwriter.Workbook:
    """A workbook written to `out` in memory, with text never turned into formulas or links."""
    return xlsxwriter.Workbook(out, dict(_OPTIONS))


def neutralise(text: str) -> str:
    """`text` made inert as a cell: a leading formula trigger is escaped with `'`."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def write(sheet: Worksheet, row: int, col: int, value: Any, fmt: Format | None = None) -> None:
    """One cell: text as neutralised text, numbers, dates and booleans as themselves, None
    as a blank."""
    if value is None:
        sheet.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value, fmt)
    elif isinstance(value, int | float | Decimal):
        sheet.write_number(row, col, float(value) if isinstance(value, Decimal) else value, fmt)
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, value.replace(tzinfo=None), fmt)
    elif isinstance(value, date):
        sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), fmt)
    else:
        sheet.write_string(row, col, neutralise(str(value)), fmt)


def write_row(
    sheet: Worksheet, row: int, col: int, values: Iterable[Any], fmt: Format | None = None
) -> None:
    for offset, value in enumerate(values):
        write(sheet, row, col + offset, value, fmt)


def merge(
    sheet: Worksheet,
    first: tuple[int, int],
    last: tuple[int, int],
    text: str,
    fmt: Format | None = None,
) -> None:
    """A merged range holding neutralised text."""
    sheet.merge_range(*first, *last, neutralise(text), fmt)


def table_workbook(
    title: str, header: list[str], rows: list[list[object]], *, sheet: str = "统计"
) -> bytes:
    """One table as an xlsx workbook: a title row, the header, the rows (aggregates; no
    personal data). Text is never read as a formula."""
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
