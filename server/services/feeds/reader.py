"""Opening a department's file: spreadsheet or not, where the header is, and its rows one by one.

xlsx (and old xls) are read by `services/feeds/sheets.py` (checked, then parsed by python-calamine
in a limited child process), csv with the standard library (UTF-8 with or
without BOM, else GB18030). Rows are yielded one at a time so the importer can work in chunks;
the header is searched in the first rows, below any title rows ("2026年3月住院大额自付人员名单").

Small tables (the village and holiday loaders) are read whole by `read_table`: xlsx through the
same limited child process, csv as UTF-8 (with or without BOM) or GB18030, which is what Chinese
offices export.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from server.errors import ValidationFailed
from server.services.feeds import sheets
from server.services.feeds.normalise import header_key
from server.services.feeds.registry import Feed

#: Title rows above the header that are searched before giving up.
HEADER_SEARCH_ROWS = 20
#: Sheets with more rows than this are streamed rather than loaded whole: python-
#: calamine is ≈ 3× faster but holds the whole sheet (≈ 80 MB per 100,000 rows of 7 columns),
#: so the worker's memory would grow with the file; streamed, it stays flat.
STREAM_ABOVE_ROWS = 200_000


class FileRefused(ValidationFailed):
    """The file as a whole cannot be imported; `code` says why."""


@dataclass
class Table:
    """A file whose header was found: `columns` maps each known field to its cell index."""

    header_row: int  # 1-based
    header: list[str]
    columns: dict[str, int]
    #: Data rows below the header (trailing empty rows included); None until counted.
    rows_total: int | None
    _rows: Iterator[list[Any]]

    def close(self) -> None:
        """End the child process reading the file, if it is still running."""
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()

    def data_rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(1-based row number as Excel shows it, cells), skipping fully empty rows."""
        number = self.header_row
        for cells in self._rows:
            number += 1
            if len(cells) > cells.count("") + cells.count(None):
                yield number, cells


def open_table(
    source: bytes | Path, filename: str, feed: Feed, *, head_only: bool = False
) -> Table:
    """Open `source`, find `feed`'s header, and return the table ready to iterate.

    Refuses the whole file (FileRefused, 422) when it is empty, not a spreadsheet, breaks a
    limit of `sheets.SheetLimits` (named in the message), or has no recognisable header. A
    spreadsheet is read by a limited child process (`services/feeds/sheets.py`); close the table
    (or read it to the end) to end that process. With `head_only`, only the rows the header
    search needs are read.
    """
    head = _head(source)
    if not head:
        raise FileRefused("文件为空", code="file_empty")
    if sheets.is_spreadsheet(head):
        rows, total = _xlsx_rows(source, head_only=head_only)
    elif filename.lower().endswith((".xlsx", ".xls", ".xlsm")):
        raise FileRefused(
            "文件不是有效的 Excel 表格（可能是改了扩展名的其他文件），请从原系统重新导出",
            code="file_not_spreadsheet",
        )
    else:
        rows, total = _csv_rows(source)
    try:
        return _find_header(rows, total, feed)
    except BaseException:
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # ends the child process now, not when the traceback is dropped
        raise


def _head(source: bytes | Path) -> bytes:
    if isinstance(source, bytes):
        return source[:8]
    with source.open("rb") as fh:
        return fh.read(8)


def peek_table(content: bytes, filename: str, feed: Feed) -> Table:
    """`open_table` for the upload request of a large file: the same checks and refusals
    (the child checks the whole file), but only the first HEADER_SEARCH_ROWS rows are read
    (streamed: a few ms and KB for 100,000 rows where loading the sheet took 0.6 s and
    150 MB) and the row count is the sheet's real extent. The Table it returns has no rows:
    the worker reads them."""
    table = open_table(content, filename, feed, head_only=True)
    table.close()
    table._rows = iter(())
    return table


def _xlsx_rows(source: bytes | Path, *, head_only: bool) -> tuple[Iterator[list[Any]], int | None]:
    try:
        sheet = sheets.open_sheet(
            source,
            head=HEADER_SEARCH_ROWS if head_only else None,
            stream_above_rows=STREAM_ABOVE_ROWS,
        )
    except ValidationFailed as exc:
        if exc.code == "file_not_spreadsheet":
            raise FileRefused(
                "文件不是有效的 Excel 表格，请从原系统重新导出", code="file_not_spreadsheet"
            ) from exc
        raise FileRefused(exc.message, code=exc.code, errors=exc.errors) from exc
    return sheet.rows, sheet.rows_total


def _csv_rows(source: bytes | Path) -> tuple[Iterator[list[Any]], int]:
    raw = source if isinstance(source, bytes) else source.read_bytes()
    if b"\x00" in raw:
        raise FileRefused("文件不是表格文件（xlsx 或 csv）", code="file_not_spreadsheet")
    encoding = _encoding(raw)
    total = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    text = io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, newline="")
    return (list(row) for row in csv.reader(text)), total


def _encoding(raw: bytes) -> str:
    """UTF-8 (with or without BOM) or GB18030, checked over the whole file before a single row
    is read: a bad byte past the first megabyte, or a lone lead byte at the very end, refuses
    the file here instead of failing its batch after thousands of rows are in."""
    for encoding in ("utf-8-sig", "gb18030"):
        if decodes_whole(raw, encoding):
            return encoding
    raise FileRefused("无法识别文件编码，请另存为 UTF-8 CSV 或 Excel", code="file_encoding")


def _find_header(rows: Iterator[list[Any]], total: int | None, feed: Feed) -> Table:
    aliases = {
        header_key(alias): column.field for column in feed.columns for alias in column.aliases
    }
    required = [c for c in feed.columns if c.required]
    best: tuple[int, list[str], dict[str, int]] | None = None
    seen_any = False
    for number in range(1, HEADER_SEARCH_ROWS + 1):
        cells = next(rows, None)
        if cells is None:
            break
        header = ["" if c is None else str(c).strip() for c in cells]
        seen_any = seen_any or any(header)
        columns: dict[str, int] = {}
        for index, cell in enumerate(header):
            field = _match(header_key(cell), aliases)
            if field is not None and field not in columns:
                columns[field] = index
        if all(c.field in columns for c in required):
            rows_total = None if total is None else max(total - number, 0)
            return Table(number, header, columns, rows_total, rows)
        if len(columns) >= 2 and (best is None or len(columns) > len(best[2])):
            best = (number, header, columns)
    if not seen_any:
        raise FileRefused("文件中没有任何数据", code="file_empty")
    if best is not None:
        missing = [c.label for c in required if c.field not in best[2]]
        raise FileRefused(
            f"第{best[0]}行像是表头，但缺少必需的列：{'、'.join(missing)}",
            code="feed_header_incomplete",
            errors={"file": [f"缺少列：{m}" for m in missing]},
        )
    expected = "、".join(c.label for c in required)
    raise FileRefused(
        f"在前{HEADER_SEARCH_ROWS}行中未找到可识别的表头，需要包含：{expected}",
        code="feed_header_missing",
    )


def _match(key: str, aliases: dict[str, str]) -> str | None:
    if not key:
        return None
    field = aliases.get(key)
    if field is None and key.endswith("）") and "（" in key:
        field = aliases.get(key[: key.rindex("（")])  # "个人负担合规费用（元）"
    return field


# --- small tables (villages, holidays), read whole -----------------------------------------


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
