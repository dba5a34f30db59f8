"""The one way we open an untrusted spreadsheet (xlsx, old xls): in a child process.

A 1.8 KB xlsx with one cell at `XFD100000` makes python-calamine ask for tens of GB and Rust
aborts the whole process. So the file is checked and parsed in a child
(`server/services/feeds/sheet_child.py`) whose address space and CPU time are limited: its checks
refuse a zip bomb or a sheet reaching beyond our rows and columns before calamine sees it, and
any parser bug we did not foresee costs that child, not the web process or the worker. Every
refusal is a 422 whose message names the limit. Feed files (`feeds/reader.py`), villages and
the holiday table (`reader.read_table`) all come through `open_sheet`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from server.errors import ValidationFailed
from server.services.feeds import sheet_child

_CHILD = str(Path(sheet_child.__file__).resolve())


@dataclass(frozen=True)
class SheetLimits:
    """What an untrusted spreadsheet may cost. README § Security lists them."""

    #: Rows of the first sheet (Excel's own limit).
    max_rows: int = 1_048_576
    #: Columns (IV, the old xls limit; feeds use fewer than 20).
    max_columns: int = 256
    #: Cells calamine may load at once; longer sheets are streamed (flat memory) instead.
    max_loaded_cells: int = 5_000_000
    #: One text node or tag in the sheet or its shared strings (a cell holds ≤ 32,767 characters).
    max_text_bytes: int = 1 << 20
    #: Parts in the zip, their declared total once inflated, and the inflate ratio allowed
    #: for a part above `ratio_grace_bytes` (Apache POI's zip-bomb rule: 1 % minimum).
    max_members: int = 1000
    max_uncompressed_bytes: int = 512 << 20
    max_ratio: int = 100
    ratio_grace_bytes: int = 1 << 20
    #: The child's address space and CPU time.
    memory_bytes: int = 1 << 30
    cpu_seconds: int = 120


LIMITS = SheetLimits()


@dataclass
class Sheet:
    """An open sheet: its row count (from row 1, as calamine counts) and its rows, read from
    the child as they are consumed. Close it (or exhaust it) to end the child."""

    rows_total: int
    engine: str
    rows: Iterator[list[Any]]

    def close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def is_spreadsheet(head: bytes) -> bool:
    """Whether the file's first bytes are a zip (xlsx) or an OLE compound file (old xls)."""
    return head[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


def open_sheet(
    source: bytes | Path,
    *,
    head: int | None = None,
    stream_above_rows: int = 200_000,
    limits: SheetLimits = LIMITS,
) -> Sheet:
    """Open the first sheet of `source` in a limited child. With `head`, only the first
    `head` rows are read (streamed, cheap), though the whole file is still checked.

    Refuses (ValidationFailed, 422) a file that breaks a limit, that the child could not
    parse within its memory or time, or that is not a readable spreadsheet."""
    args: dict[str, Any] = {
        "limits": asdict(limits),
        "head": head,
        "stream_above_rows": stream_above_rows,
    }
    if isinstance(source, Path):
        args["path"] = str(source.resolve())
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the child, in _end)
    process = subprocess.Popen(
        [sys.executable, "-I", _CHILD, json.dumps(args)],
        stdin=subprocess.DEVNULL if isinstance(source, Path) else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        close_fds=True,
    )
    try:
        if not isinstance(source, Path):
            assert process.stdin is not None
            try:
                process.stdin.write(source)
                process.stdin.close()
            except BrokenPipeError:
                pass
        first = _message(process)
        if first is None or "open" not in first:
            raise _refusal(process, first, limits)
    except BaseException:
        _end(process, stderr)
        raise
    return Sheet(int(first["rows"]), str(first["engine"]), _rows(process, stderr, limits))


def _message(process: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        return None
    return json.loads(line, object_hook=_decode)


def _rows(
    process: subprocess.Popen[bytes], stderr: Any, limits: SheetLimits
) -> Iterator[list[Any]]:
    try:
        while True:
            message = _message(process)
            if message is not None and "r" in message:
                yield from message["r"]
                continue
            if message is not None and "end" in message:
                return
            raise _refusal(process, message, limits)
    finally:
        _end(process, stderr)


def _end(process: subprocess.Popen[bytes], stderr: Any) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()
    stderr.close()


def _refusal(
    process: subprocess.Popen[bytes], message: dict[str, Any] | None, limits: SheetLimits
) -> ValidationFailed:
    """Why the child did not answer with rows, as the 422 the caller raises."""
    if message is not None and message.get("refused") and message.get("message"):
        return _refused(message["message"], message["refused"])
    if message is None:
        process.wait()
    code = process.returncode
    if code == -signal.SIGXCPU or (message or {}).get("limit") == "cpu_seconds":
        return _refused(
            f"解析表格超过 {limits.cpu_seconds} 秒的时限，拒绝导入；请拆分文件后重新上传",
            "file_parse_time",
        )
    if message is None or message.get("limit") == "memory_bytes":
        return _refused(
            f"解析表格所需内存超过 {limits.memory_bytes >> 20} MB 的上限（或文件已损坏），"
            "拒绝导入；请检查文件后重新导出",
            "file_parse_memory",
        )
    return ValidationFailed(
        "文件不是有效的 Excel 表格，请从原系统重新导出", code="file_not_spreadsheet"
    )


def _refused(message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, errors={"file": [message]})


def _decode(obj: dict[str, Any]) -> Any:
    """Dates, times and durations come from the child as one-key objects."""
    if len(obj) == 1:
        ((key, value),) = obj.items()
        if key == "d":
            return date.fromisoformat(value)
        if key == "t":
            return datetime.fromisoformat(value)
        if key == "h":
            return time.fromisoformat(value)
        if key == "s":
            return timedelta(seconds=value)
    return obj


def with_limits(**changes: Any) -> SheetLimits:
    """The default limits with some changed (tests, the CLI)."""
    return replace(LIMITS, **changes)
