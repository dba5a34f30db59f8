"""The child process that opens an untrusted spreadsheet (`server/services/feeds/sheets.py` starts
it).

Run as a script (`python -I sheet_child.py ARGS`), it first limits its own address space and CPU
time (`resource.setrlimit`), then checks the file before any parser sees it:

- the zip: members, total uncompressed size, inflate ratio (Apache POI's zip-bomb rule), and
  that each part we read inflates to exactly the size its directory declares;
- the first sheet's extent, declared (`<dimension>`) and real (every `<row r>` and `<c r>` in
  the sheet's XML, scanned as it inflates, in bounded memory): rows, columns, and no run of text
  or tag longer than `max_text_bytes` there or in the shared strings; no DTD;

and only then reads the rows: python-calamine for ordinary sheets, a streamed expat reader for
very long ones (flat memory). Rows go back to the parent as JSON lines, in chunks. A refusal is
one JSON line naming the limit; anything worse (a parser that aborts, runs out of memory or
time) kills only this process, and the parent refuses the file.

This module imports nothing of `server` (it runs with `-I`, outside the package) and nothing
beyond the standard library at import time, so the parent may import it for its helpers.
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import IO, Any
from xml.etree import ElementTree

#: Rows per JSON line sent to the parent.
CHUNK_ROWS = 1000
_READ = 256 * 1024
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"


class Refused(Exception):
    """The file breaks one of the limits: `code`, a Chinese `message`, the `limit` broken."""

    def __init__(self, code: str, message: str, limit: str) -> None:
        super().__init__(message)
        self.code, self.message, self.limit = code, message, limit


# --- the zip ------------------------------------------------------------------------------


def check_zip(book: zipfile.ZipFile, limits: dict[str, Any]) -> None:
    """Members, total declared size and inflate ratio, from the central directory."""
    infos = book.infolist()
    if len(infos) > limits["max_members"]:
        raise Refused(
            "file_zip_members",
            f"文件包含 {len(infos)} 个部件，超过上限 {limits['max_members']}，拒绝导入",
            "max_members",
        )
    total = sum(i.file_size for i in infos)
    if total > limits["max_uncompressed_bytes"]:
        raise Refused(
            "file_zip_size",
            f"文件解压后共 {_mb(total)}，超过上限 {_mb(limits['max_uncompressed_bytes'])}，"
            "疑似压缩炸弹，拒绝导入",
            "max_uncompressed_bytes",
        )
    for info in infos:
        if info.file_size <= limits["ratio_grace_bytes"]:
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits["max_ratio"]:
            raise Refused(
                "file_zip_ratio",
                f"文件部件 {info.filename[:60]} 的压缩比为 {ratio:.0f}:1，超过上限 "
                f"{limits['max_ratio']}:1，疑似压缩炸弹，拒绝导入",
                "max_ratio",
            )


def inflate(book: zipfile.ZipFile, raw: IO[bytes], info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's bytes, inflated here (not by zipfile, which stops at the declared size)
    so that a member whose stream holds more than its directory declares is refused, not
    silently cut short for us while another parser reads all of it."""
    raw.seek(info.header_offset)
    header = raw.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    raw.seek(info.header_offset + 30 + name_len + extra_len)
    left, produced = info.compress_size, 0
    if info.compress_type == zipfile.ZIP_STORED:
        inflater = None
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
    else:
        raise zipfile.BadZipFile("unsupported compression")
    while left > 0 or (inflater is not None and inflater.unconsumed_tail):
        if inflater is not None and inflater.unconsumed_tail:
            data = inflater.unconsumed_tail
        else:
            data = raw.read(min(_READ, left))
            if not data:
                raise zipfile.BadZipFile("truncated member")
            left -= len(data)
        out = data if inflater is None else inflater.decompress(data, _READ)
        produced += len(out)
        if produced > info.file_size:
            raise Refused(
                "file_zip_size",
                f"文件部件 {info.filename[:60]} 解压后大于其声明的大小，拒绝导入",
                "declared_size",
            )
        if out:
            yield out
    if produced != info.file_size:
        raise zipfile.BadZipFile("member shorter than declared")


# --- the sheet's extent -----------------------------------------------------------------------

#: A row's number (the `row` tag with any namespace prefix, `r` anywhere in the tag).
_ROW_REF = re.compile(rb"row\b[^>]*?\sr=[\"'](\d+)")
#: Cell references past column Z, or in column A–Z with a row number of 7 digits or more: the
#: only ones that can break a limit, found without a match per ordinary cell (a match per
#: cell cost as much as calamine's whole read). Groups: letters and digits, or digits.
_FAR_CELL = re.compile(rb"r=[\"'](?:([A-Za-z]{2,})(\d+)|[A-Za-z](\d{7,}))")
_LAST_CELL = re.compile(rb"r=[\"'][A-Za-z]+(\d+)")
_DIMENSION_REF = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\b[^>]*?\sref\s*=\s*[\"']([^\"']*)")
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
#: Bytes kept from one chunk to the next so a tag cut in two is still seen whole.
_OVERLAP = 4096


@dataclass
class Extent:
    """What the scan found: the last row, and the highest column used past Z (26 when none
    is: an upper bound, which is all the choice between loading and streaming needs)."""

    rows: int = 0
    last_column: int = 26


def column_number(letters: str) -> int:
    """Column letters as a number: A is 1, XFD is 16384."""
    number = 0
    for char in letters.upper():
        number = number * 26 + ord(char) - 64
    return number


def scan_part(chunks: Iterator[bytes], limits: dict[str, Any], extent: Extent | None) -> None:
    """Scan a part of the workbook as it inflates: no DTD, no text or tag longer than
    `max_text_bytes`, and (for the sheet, `extent` given) every row and cell reference inside
    the limits. Memory: one chunk and a small overlap."""
    tail, gap, first = b"", 0, True
    for chunk in chunks:
        lt = chunk.rfind(b"<")
        gap = gap + len(chunk) if lt < 0 else len(chunk) - 1 - lt
        if gap > limits["max_text_bytes"]:
            raise Refused(
                "file_text_too_long",
                f"表格中有一段超过 {_mb(limits['max_text_bytes'])} 的文字（单元格文字上限为 "
                "32767 个字符），拒绝导入",
                "max_text_bytes",
            )
        window = tail + chunk
        if _DTD.search(window):
            raise Refused("file_dtd", "表格文件中含有 DTD 声明，拒绝导入", "no_dtd")
        if extent is not None:
            _scan_refs(window, limits, extent, first=first)
        first = False
        tail = window[-_OVERLAP:]


def _scan_refs(window: bytes, limits: dict[str, Any], extent: Extent, *, first: bool) -> None:
    if first:
        dimension = _DIMENSION_REF.search(window)
        if dimension is not None:
            _check_dimension(dimension[1].decode("ascii", "replace"), limits, extent)
    rows = _ROW_REF.findall(window)
    if rows:
        deepest = max(rows, key=_numeric)
        _check_row(deepest, limits)
        extent.rows = max(extent.rows, int(deepest))
    far = _FAR_CELL.findall(window)
    if far:
        letters = {f[0].upper() for f in far if f[0]}
        if letters:
            widest = max(letters, key=lambda s: (len(s), s)).decode("ascii")
            _check_column(widest, limits)
            extent.last_column = max(extent.last_column, column_number(widest))
        deepest = max((f[1] or f[2] for f in far), key=_numeric)
        _check_row(deepest, limits)
        extent.rows = max(extent.rows, int(deepest))
    last = _LAST_CELL.search(window, max(window.rfind(b"r="), 0))
    if last is not None:
        extent.rows = max(extent.rows, int(last[1]))


def _numeric(digits: bytes) -> tuple[int, bytes]:
    """Order decimal digits as numbers without converting them."""
    significant = digits.lstrip(b"0")
    return len(significant), significant


def _check_row(digits: bytes, limits: dict[str, Any]) -> None:
    if len(digits.lstrip(b"0")) > 9 or int(digits) > limits["max_rows"]:
        shown = digits.lstrip(b"0")[:12].decode("ascii") or "0"
        raise Refused(
            "sheet_too_many_rows",
            f"表格的行号 {shown} 超过上限 {limits['max_rows']} 行，拒绝导入",
            "max_rows",
        )


def _check_column(letters: str, limits: dict[str, Any]) -> None:
    if len(letters) > 3 or column_number(letters) > limits["max_columns"]:
        raise Refused(
            "sheet_too_many_columns",
            f"表格使用了第 {letters[:8].upper()} 列，超过上限 {limits['max_columns']} 列，拒绝导入",
            "max_columns",
        )


_DIMENSION = re.compile(r"^\s*([A-Za-z]+)(\d+)(?::([A-Za-z]+)(\d+))?\s*$")


def _check_dimension(ref: str, limits: dict[str, Any], extent: Extent) -> None:
    match = _DIMENSION.match(ref)
    if match is None:
        return  # calamine ignores what it cannot read; so do we (the cells are checked)
    last_letters, last_row = match[3] or match[1], match[4] or match[2]
    _check_column(match[1], limits)
    _check_column(last_letters, limits)
    _check_row(last_row.encode(), limits)


# --- opening the workbook ---------------------------------------------------------------------


def first_sheet_path(book: zipfile.ZipFile) -> str:
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    sheet = next(e for e in workbook.iter() if _local(e.tag) == "sheet")
    rel_id = next(v for k, v in sheet.attrib.items() if _local(k) == "id")
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(e.get("Target", "") for e in rels if e.get("Id") == rel_id)
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def check_xlsx(content: bytes, limits: dict[str, Any]) -> Extent:
    """Every check above, on an xlsx file; the first sheet's extent."""
    raw = io.BytesIO(content)
    with zipfile.ZipFile(raw) as book:
        check_zip(book, limits)
        for small in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"):
            if small in book.NameToInfo:
                scan_part(inflate(book, raw, book.getinfo(small)), limits, None)
        path = first_sheet_path(book)
        extent = Extent()
        scan_part(inflate(book, raw, book.getinfo(path)), limits, extent)
        if "xl/sharedStrings.xml" in book.NameToInfo:
            scan_part(inflate(book, raw, book.getinfo("xl/sharedStrings.xml")), limits, None)
    return extent


# --- reading rows (streamed) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shared:
    """A cell that holds an index into the shared strings table (not read yet)."""

    index: int


@dataclass(frozen=True, slots=True)
class SheetHead:
    """What a sheet's first bytes say: its main namespace (as the `{…}` tag prefix, for
    transitional or strict OOXML) and the used range its `<dimension>` declares, if any."""

    namespace: str
    first_column: int
    last_row: int | None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def column_index(reference: str) -> int:
    index = 0
    for char in reference:
        if not char.isalpha():
            break
        index = index * 26 + ord(char.upper()) - 64
    return index - 1


def shared_strings(book: zipfile.ZipFile, *, last: int | None = None) -> list[str]:
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


_HEAD_DIMENSION = re.compile(r"^([A-Z]+)\d+:[A-Z]+(\d+)$")


def sheet_head(book: zipfile.ZipFile, path: str) -> SheetHead:
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
                    match = _HEAD_DIMENSION.match(element.get("ref", ""))
                    if match is None:
                        return SheetHead(namespace, 0, None)
                    return SheetHead(namespace, column_index(match[1]), int(match[2]))
                if tag == "sheetData":
                    return SheetHead(namespace, 0, None)
    return SheetHead(namespace or "", 0, None)


def sheet_rows(
    book: zipfile.ZipFile,
    path: str,
    head: SheetHead,
    *,
    strings: list[str] | None,
    date_styles: frozenset[str],
) -> Iterator[list[Any]]:
    """Every row from row 1, as calamine yields them: cells from the used range's first
    column, numbers as floats, date-formatted numbers as dates, booleans, empty cells as None
    (rows are not padded; the importer reads missing cells as empty). Shared-string cells are
    `Shared` placeholders when `strings` is None. Memory stays flat: each row is dropped from
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
                        column = columns[letters] = column_index(letters) - head.first_column
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
                    cells.append(Shared(int(text)) if strings is None else strings[int(text)])
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


def date_styles(book: zipfile.ZipFile) -> frozenset[str]:
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


def first_rows(content: bytes, count: int) -> list[list[Any]]:
    """The first `count` rows of the first sheet, streamed, reading the shared strings only
    up to the last one these rows use (a header's strings usually come first)."""
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        path = first_sheet_path(book)
        head = sheet_head(book, path)
        with closing(sheet_rows(book, path, head, strings=None, date_styles=frozenset())) as rows:
            first = list(islice(rows, count))
        wanted = [cell.index for row in first for cell in row if cell.__class__ is Shared]
        if wanted:
            strings = shared_strings(book, last=max(wanted))
            first = [
                [strings[cell.index] if cell.__class__ is Shared else cell for cell in row]
                for row in first
            ]
    return first


def streamed_rows(content: bytes) -> Iterator[list[Any]]:
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        path = first_sheet_path(book)
        head = sheet_head(book, path)
        strings, styles = shared_strings(book), date_styles(book)
        yield from sheet_rows(book, path, head, strings=strings, date_styles=styles)


def calamine_rows(content: bytes) -> tuple[Iterator[list[Any]], int]:
    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0)
    # Rows are yielded from the sheet's first row, empty ones above the used range too.
    return sheet.iter_rows(), (sheet.start or (0, 0))[0] + sheet.height


# --- talking to the parent ----------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, time):
        return {"h": value.isoformat()}
    if isinstance(value, timedelta):
        return {"s": value.total_seconds()}
    return value


def _send(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message, ensure_ascii=False, default=_encode))
    out.write("\n")


def _limit_self(limits: dict[str, Any]) -> None:
    import resource

    memory = int(limits["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _mb(size: int) -> str:
    return f"{size / 1048576:.0f} MB" if size >= 1048576 else f"{size // 1024} KB"


def run(args: dict[str, Any], content: bytes, out: IO[str]) -> None:
    """Check the file, then send `open` (the row count and engine), the rows in chunks and
    `end`; or one `refused`."""
    limits = args["limits"]
    head = args.get("head")
    try:
        if content[:4] == _XLS_MAGIC:  # old xls: no zip to check, the limits still hold
            rows, total = calamine_rows(content)
            engine = "calamine"
        else:
            extent = check_xlsx(content, limits)
            total = extent.rows
            columns = extent.last_column
            if head is not None:
                rows, engine = iter(first_rows(content, int(head))), "stream"
            elif total > args["stream_above_rows"] or total * columns > limits["max_loaded_cells"]:
                rows, engine = streamed_rows(content), "stream"
            else:
                rows, total = calamine_rows(content)
                engine = "calamine"
    except Refused as refused:
        _send(out, {"refused": refused.code, "message": refused.message, "limit": refused.limit})
        return
    except MemoryError:
        raise
    except Exception as exc:  # a broken file: calamine and zipfile raise many kinds
        _send(out, {"broken": type(exc).__name__})
        return
    _send(out, {"open": True, "rows": total, "engine": engine})
    sent = 0
    try:
        while chunk := list(islice(rows, CHUNK_ROWS)):
            _send(out, {"r": chunk})
            sent += len(chunk)
            if head is not None and sent >= int(head):
                break
    except Exception as exc:  # broken in the middle (the header was fine)
        _send(out, {"broken": type(exc).__name__})
        return
    _send(out, {"end": True})


def main() -> None:
    args = json.loads(sys.argv[1])
    _limit_self(args["limits"])
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", write_through=False)
    try:
        path = args.get("path")
        if path:
            with open(path, "rb") as fh:
                content = fh.read()
        else:
            content = sys.stdin.buffer.read()
        run(args, content, out)
    except MemoryError:
        _send(out, {"refused": "file_parse_memory", "message": "", "limit": "memory_bytes"})
    out.flush()


if __name__ == "__main__":
    main()
