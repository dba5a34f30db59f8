"""Opening a department's file: spreadsheet or not, where the header is, and its rows one by one.

xlsx (and old xls) are read with python-calamine, csv with the standard library (UTF-8 with or
without BOM, else GB18030). Rows are yielded one at a time so the importer can work in chunks;
the header is searched in the first rows, below any title rows ("2026年3月住院大额自付人员名单").
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from server.errors import ValidationFailed
from server.services.feeds.normalise import header_key
from server.services.feeds.registry import Feed
from server.services.tabular import decodes_whole

#: Title rows above the header that are searched before giving up.
HEADER_SEARCH_ROWS = 20
#: Sheets that declare more rows than this are streamed rather than loaded whole: python-
#: calamine is ≈ 3× faster but holds the whole sheet (≈ 80 MB per 100,000 rows of 7 columns),
#: so the worker's memory would grow with the file; streamed, it stays flat.
STREAM_ABOVE_ROWS = 200_000
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


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


def peek_table(content: bytes, filename: str, feed: Feed) -> Table:
    """`open_table` for the upload request of a large file: the same refusals, read from the
    first rows only. For xlsx the first HEADER_SEARCH_ROWS rows are streamed (a few KB)
    instead of the sheet loaded whole (0.6 s and 150 MB for 100,000 rows), the row count comes
    from the sheet's `<dimension>` (None when the file has none; the worker then counts), and
    the shared strings are read only up to the last one those rows use. Anything unusual (old
    xls, a layout this reader does not expect) goes through `open_table`, so a file is never
    refused here that the full read would accept. The Table it returns has no rows: the
    worker reads them."""
    if content[:4] != b"PK\x03\x04":
        table = open_table(content, filename, feed)
    else:
        try:
            first_rows, total = _xlsx_first_rows(content)
        except (zipfile.BadZipFile, KeyError, IndexError, ElementTree.ParseError, ValueError):
            table = open_table(content, filename, feed)
        else:
            table = _find_header(iter(first_rows), total, feed)
    table._rows = iter(())
    return table


#: A used range as `<dimension ref="B3:G100003">` declares it: first column, last row.
_DIMENSION = re.compile(r"^([A-Z]+)\d+:[A-Z]+(\d+)$")


def _xlsx_first_rows(content: bytes) -> tuple[list[list[Any]], int | None]:
    """The first HEADER_SEARCH_ROWS rows of the first sheet (as calamine orders sheets), and
    the number of rows its dimension declares. Only the shared strings up to the last one
    these rows use are read (a header's strings usually come first)."""
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        path = _first_sheet_path(book)
        head = _sheet_head(book, path)
        with closing(_sheet_rows(book, path, head, strings=None, date_styles=frozenset())) as rows:
            first = list(islice(rows, HEADER_SEARCH_ROWS))
        wanted = [cell.index for row in first for cell in row if cell.__class__ is _Shared]
        if wanted:
            strings = _shared_strings(book, last=max(wanted))
            first = [
                [strings[cell.index] if cell.__class__ is _Shared else cell for cell in row]
                for row in first
            ]
    return first, head.last_row


@dataclass(frozen=True, slots=True)
class _Shared:
    """A cell that holds an index into the shared strings table (not read yet)."""

    index: int


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _first_sheet_path(book: zipfile.ZipFile) -> str:
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    sheet = next(e for e in workbook.iter() if _local(e.tag) == "sheet")
    rel_id = next(v for k, v in sheet.attrib.items() if _local(k) == "id")
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(e.get("Target", "") for e in rels if e.get("Id") == rel_id)
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _column_index(reference: str) -> int:
    index = 0
    for char in reference:
        if not char.isalpha():
            break
        index = index * 26 + ord(char.upper()) - 64
    return index - 1


def _shared_strings(book: zipfile.ZipFile, *, last: int | None = None) -> list[str]:
    """The shared strings in order: all of them, or up to index `last`."""
    strings: list[str] = []
    if "xl/sharedStrings.xml" not in book.namelist():
        return strings
    with book.open("xl/sharedStrings.xml") as stream:
        for _event, element in ElementTree.iterparse(stream, events=("end",)):
            if _local(element.tag) != "si":
                continue
            strings.append("".join(_si_texts(element)))
            element.clear()
            if last is not None and len(strings) > last:
                break
    return strings


def _si_texts(item: ElementTree.Element) -> Iterator[str]:
    """The text runs of a shared string, without phonetic guides (`rPh`)."""
    for child in item:
        tag = _local(child.tag)
        if tag == "t":
            yield child.text or ""
        elif tag == "r":
            yield from (t.text or "" for t in child if _local(t.tag) == "t")


def _streamed_if_large(source: bytes | Path) -> tuple[Iterator[list[Any]], int] | None:
    """The rows of the first sheet, streamed, when its `<dimension>` declares more than
    STREAM_ABOVE_ROWS rows; None otherwise (and for anything this reader does not expect)."""
    try:
        book = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError):
        return None
    try:
        path = _first_sheet_path(book)
        head = _sheet_head(book, path)
        if head.last_row is None or head.last_row <= STREAM_ABOVE_ROWS:
            book.close()
            return None
        strings, date_styles = _shared_strings(book), _date_styles(book)
    except (KeyError, StopIteration, ElementTree.ParseError, ValueError):
        book.close()
        return None
    rows = _sheet_rows(book, path, head, strings=strings, date_styles=date_styles)
    return _closing_book(book, rows), head.last_row


def _closing_book(book: zipfile.ZipFile, rows: Iterator[list[Any]]) -> Iterator[list[Any]]:
    try:
        yield from rows
    finally:
        book.close()


@dataclass(frozen=True, slots=True)
class _SheetHead:
    """What a sheet's first bytes say: its main namespace (as the `{…}` tag prefix, for
    transitional or strict OOXML) and the used range its `<dimension>` declares, if any."""

    namespace: str
    first_column: int
    last_row: int | None


def _sheet_head(book: zipfile.ZipFile, path: str) -> _SheetHead:
    parser = ElementTree.XMLPullParser(events=("start",))
    namespace: str | None = None
    with book.open(path) as stream:
        while chunk := stream.read(4096):
            parser.feed(chunk)
            for _event, element in parser.read_events():
                if namespace is None:  # the root element's
                    namespace = element.tag.rpartition("}")[0] + "}" if "}" in element.tag else ""
                tag = _local(element.tag)
                if tag == "dimension":
                    match = _DIMENSION.match(element.get("ref", ""))
                    if match is None:
                        return _SheetHead(namespace, 0, None)
                    return _SheetHead(namespace, _column_index(match[1]), int(match[2]))
                if tag == "sheetData":
                    return _SheetHead(namespace, 0, None)
    return _SheetHead(namespace or "", 0, None)


def _sheet_rows(
    book: zipfile.ZipFile,
    path: str,
    head: _SheetHead,
    *,
    strings: list[str] | None,
    date_styles: frozenset[str],
) -> Iterator[list[Any]]:
    """Every row from row 1, as calamine yields them: cells from the used range's first
    column, numbers as floats, date-formatted numbers as dates, booleans, empty cells as None
    (rows are not padded; the importer reads missing cells as empty). Shared-string cells are
    `_Shared` placeholders when `strings` is None. Memory stays flat: each row is dropped from
    the parsed tree once read."""
    main = head.namespace
    row_tag, cell_tag, value_tag = f"{main}row", f"{main}c", f"{main}v"
    sheet_data_tag = f"{main}sheetData"
    sheet_data: ElementTree.Element | None = None
    number = 0
    columns: dict[str, int] = {}  # "AB" → cell index, once per column
    with book.open(path) as stream:
        for event, element in ElementTree.iterparse(stream, events=("start", "end")):
            if event == "start":
                if element.tag == sheet_data_tag:
                    sheet_data = element
                continue
            if element.tag != row_tag:
                continue
            at = int(element.get("r") or number + 1)
            while number < at - 1:  # empty rows above this one
                number += 1
                yield []
            number = at
            cells: list[Any] = []
            for cell in element:
                if cell.tag != cell_tag:
                    continue
                ref = cell.get("r")
                if ref:
                    letters = ref.rstrip("0123456789")
                    column = columns.get(letters)
                    if column is None:
                        column = columns[letters] = _column_index(letters) - head.first_column
                    if column > len(cells):
                        cells.extend([None] * (column - len(cells)))
                kind = cell.get("t")
                if kind == "inlineStr":
                    cells.append("".join(cell.itertext()))
                    continue
                value = cell.find(value_tag)
                text = value.text if value is not None else None
                if text is None:
                    cells.append(None)
                elif kind == "s":
                    cells.append(_Shared(int(text)) if strings is None else strings[int(text)])
                elif kind in ("str", "e"):
                    cells.append(text)
                elif kind == "b":
                    cells.append(text == "1")
                elif cell.get("s") in date_styles:
                    cells.append(_excel_date(float(text)))
                else:
                    cells.append(float(text))
            if sheet_data is not None:
                sheet_data.clear()  # the rows read so far: memory stays flat
            yield cells


#: Excel's built-in number formats that show dates or times.
_BUILTIN_DATE_FORMATS = frozenset({*range(14, 23), 45, 46, 47})
_QUOTED_OR_BRACKETED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')


def _date_styles(book: zipfile.ZipFile) -> frozenset[str]:
    """The cell style indexes (`s`) whose number format shows a date."""
    if "xl/styles.xml" not in book.namelist():
        return frozenset()
    root = ElementTree.fromstring(book.read("xl/styles.xml"))
    custom: set[int] = set()
    for element in root.iter():
        if _local(element.tag) == "numFmt":
            code = _QUOTED_OR_BRACKETED.sub("", element.get("formatCode", "")).lower()
            if any(ch in code for ch in "ymd"):
                custom.add(int(element.get("numFmtId", "0")))
    dates = _BUILTIN_DATE_FORMATS | custom
    styles: set[str] = set()
    cell_xfs = next((e for e in root.iter() if _local(e.tag) == "cellXfs"), None)
    for index, xf in enumerate(cell_xfs if cell_xfs is not None else ()):
        if int(xf.get("numFmtId", "0")) in dates:
            styles.add(str(index))
    return frozenset(styles)


_EXCEL_EPOCH = datetime(1899, 12, 30)


def _excel_date(serial: float) -> Any:
    """A date-formatted cell as calamine gives it: a date, or a datetime with a time part."""
    if not 0 <= serial < 2958466:
        return serial
    moment = _EXCEL_EPOCH + timedelta(days=serial)
    return moment.date() if serial == int(serial) else moment


def _head(source: bytes | Path) -> bytes:
    if isinstance(source, bytes):
        return source[:8]
    with source.open("rb") as fh:
        return fh.read(8)


def _xlsx_rows(source: bytes | Path) -> tuple[Iterator[list[Any]], int | None]:
    streamed = _streamed_if_large(source)
    if streamed is not None:
        return streamed
    from python_calamine import CalamineWorkbook

    try:
        if isinstance(source, bytes):
            if source[:4] == b"PK\x03\x04" and not zipfile.is_zipfile(io.BytesIO(source)):
                raise ValueError("broken zip")
            book = CalamineWorkbook.from_filelike(io.BytesIO(source))
        else:
            book = CalamineWorkbook.from_path(str(source))
        sheet = book.get_sheet_by_index(0)
        # Rows are yielded from the sheet's first row, empty ones above the used range too.
        total = (sheet.start or (0, 0))[0] + sheet.height
        rows = sheet.iter_rows()
    except Exception as exc:  # calamine raises several error types for broken files
        raise FileRefused(
            "文件不是有效的 Excel 表格，请从原系统重新导出", code="file_not_spreadsheet"
        ) from exc
    return rows, total


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
