"""Hostile workbooks built by hand, a few lines each: a minimal xlsx around any sheet XML."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterable

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
        'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
        'worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<?xml version="1.0"?><Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
        f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0"?><workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0"?><Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
        f'Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}
HEADER_ROW = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>公民身份号码</t></is></c></row>'
)


def sheet_xml(rows: str, *, dimension: str | None = None) -> str:
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0"?><worksheet xmlns="{_MAIN}">{dim}'
        f"<sheetData>{rows}</sheetData></worksheet>"
    )


def workbook(
    rows: str | Iterable[bytes],
    *,
    dimension: str | None = None,
    shared: Iterable[bytes] | None = None,
    extra: dict[str, Iterable[bytes]] | None = None,
) -> bytes:
    """An xlsx whose first sheet's `<sheetData>` is `rows` (a string, or chunks of bytes
    streamed into the zip so that huge parts cost no memory), with optional shared strings
    and extra parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, text in PARTS.items():
            book.writestr(name, text)
        if isinstance(rows, str):
            book.writestr("xl/worksheets/sheet1.xml", sheet_xml(rows, dimension=dimension))
        else:
            head, tail = sheet_xml("|", dimension=dimension).split("|")
            _stream(book, "xl/worksheets/sheet1.xml", [head.encode(), *rows, tail.encode()])
        if shared is not None:
            _stream(
                book,
                "xl/sharedStrings.xml",
                [f'<?xml version="1.0"?><sst xmlns="{_MAIN}">'.encode(), *shared, b"</sst>"],
            )
        for name, chunks in (extra or {}).items():
            _stream(book, name, chunks)
    return buffer.getvalue()


def _stream(book: zipfile.ZipFile, name: str, chunks: Iterable[bytes]) -> None:
    with book.open(name, "w") as part:
        for chunk in chunks:
            part.write(chunk)


def repeat(chunk: bytes, times: int) -> Iterable[bytes]:
    return (chunk for _ in range(times))


def declare_size(content: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s uncompressed size declared as `size` (directory and local header):
    a part that says it inflates to more, or less, than it does."""
    data = bytearray(content)
    encoded = name.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == encoded:
            struct.pack_into("<I", data, at + 24, size)
            local = struct.unpack_from("<I", data, at + 42)[0]
            struct.pack_into("<I", data, local + 22, size)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)
