"""Log lines: plain text (the default) or one JSON object per line (`LOG_FORMAT=json`) for the
district's log platform, each with the request id it belongs to (`X-Request-Id`, made up when
the client sent none) and nothing that names a person.

Personal data stays out at the source (the request line carries the method, path, route pattern,
status and time, never the query string or a body; engines are built with `hide_parameters`, so
a database error's message holds no values), and as a last guard every line, traceback
included, has anything shaped like an ID or mobile number masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
#: Fields a log call may add with `extra=` that go into the JSON line as they are.
EXTRA_FIELDS = ("method", "path", "route", "status", "ms", "job", "kind", "batch", "worker")


def redact(text: str) -> str:
    """Mask anything shaped like a resident ID number or a mobile number."""
    return _MOBILE.sub("[phone]", _ID_NUMBER.sub("[id-number]", text))


class RequestIdFilter(logging.Filter):
    """Put the current request's id (or `-`) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import g, has_request_context

        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in EXTRA_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exc_type"] = getattr(record.exc_info[0], "__name__", "?")
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be text or json, not {log_format!r}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(
    log_format: str, level: str, *, logger: str = "server", stream: IO[str] | None = None
) -> logging.Handler | None:
    """Give `logger` one handler in `log_format` (idempotent: a second call changes nothing).
    `logger=""` configures the root logger (the CLI and the worker)."""
    target = logging.getLogger(logger)
    if any(getattr(h, "_e_rescue", False) for h in target.handlers):
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._e_rescue = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter(log_format))
    target.addHandler(handler)
    target.setLevel(level)
    if logger:
        # Our handler prints request ids; do not print each line again through the root logger.
        target.propagate = False
    return handler
