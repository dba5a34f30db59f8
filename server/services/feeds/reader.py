"""Opening a department's file: spreadsheet or not, where the header is, and its rows one by one.

xlsx (and old xls) are read with python-calamine, csv with the standard library (UTF-8 with or
without BOM, else GB18030). Rows are yielded one at a time so the importer can work in chunks;
the header is searched in the first rows, below any title rows ("2026年3月住院大额自付人员名单").
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import ValidationFailed
from server.services.feeds.normalise import header_key
from server.services.feeds.registry import Feed

#: Title rows above the header that are searched before giving up.
HEADER_SEARCH_ROWS = 20
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


class FileRefused(ValidationFailed):
    """The file as a whole cannot be imported; `code` says why."""


@dataclass
class Table:
    """A file whose header was found: `columns` maps each known field to its cell index."""

    header_row: int  # 1-based
    header: list[str]
    columns: dict[str, int]
    rows_total: int  # data rows below the header (trailing empty rows included)
    _rows: Iterator[list[Any]]

    def data_rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(1-based row number as Excel shows it, cells), skipping fully empty rows."""
        number = self.header_row
        for cells in self._rows:
            number += 1
            if len(cells) > cells.count("") + cells.count(None):
                yield number, cells


def open_table(source: bytes | Path, filename: str, feed: Feed) -> Table:
    """Open `source`, find `feed`'s header, and return the table ready to iterate.

    Refuses the whole file (FileRefused, 422) when it is empty, not a spreadsheet, or has no
    recognisable header.
    """
    head = _head(source)
    if not head:
        raise FileRefused("文件为空", code="file_empty")
    if head[:4] == b"PK\x03\x04" or head[:4] == _XLS_MAGIC:
        rows, total = _xlsx_rows(source)
    elif filename.lower().endswith((".xlsx", ".xls", ".xlsm")):
        raise FileRefused(
            "文件不是有效的 Excel 表格（可能是改了扩展名的其他文件），请从原系统重新导出",
            code="file_not_spreadsheet",
        )
    else:
        rows, total = _csv_rows(source)
    return _find_header(rows, total, feed)


def _head(source: bytes | Path) -> bytes:
    if isinstance(source, bytes):
        return source[:8]
    with source.open("rb") as fh:
        return fh.read(8)


def _xlsx_rows(source: bytes | Path) -> tuple[Iterator[list[Any]], int]:
    from python_calamine import CalamineWorkbook

    try:
        if isinstance(source, bytes):
            if source[:4] == b"PK\x03\x04" and not zipfile.is_zipfile(io.BytesIO(source)):
                raise ValueError("broken zip")
            book = CalamineWorkbook.from_filelike(io.BytesIO(source))
        else:
            book = CalamineWorkbook.from_path(str(source))
        sheet = book.get_sheet_by_index(0)
        total = sheet.height
        rows = sheet.iter_rows()
    except Exception as exc:  # calamine raises several error types for broken files
        raise FileRefused(
            "文件不是有效的 Excel 表格，请从原系统重新导出", code="file_not_spreadsheet"
        ) from exc
    return rows, total


def _csv_rows(source: bytes | Path) -> tuple[Iterator[list[Any]], int]:
    raw = source if isinstance(source, bytes) else source.read_bytes()
    if b"\x00" in raw[:65536]:
        raise FileRefused("文件不是表格文件（xlsx 或 csv）", code="file_not_spreadsheet")
    encoding = _encoding(raw)
    total = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    text = io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, newline="")
    return (list(row) for row in csv.reader(text)), total


def _encoding(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(raw[:1_000_000], final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    raise FileRefused("无法识别文件编码，请另存为 UTF-8 CSV 或 Excel", code="file_encoding")


def _find_header(rows: Iterator[list[Any]], total: int, feed: Feed) -> Table:
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
            return Table(number, header, columns, max(total - number, 0), rows)
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
