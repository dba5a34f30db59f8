"""The request guard: what every API request must satisfy before a view or a schema sees it.

- A JSON body parses, is nested at most `MAX_JSON_DEPTH` deep (JSON 100,000 levels deep is a
  400, not a RecursionError), holds no integer beyond BIGINT (a 5,000-digit integer is a 422,
  not Python's digit-limit ValueError) and no NaN or Infinity.
- Every string in the body (keys too), the query and the path passes the text rule
  (`services/kernel/text.py`): one 422 `text_invalid` naming each refused field.
- Integers in paths (`<int:id>`) are bounded to BIGINT: a larger id is the 404 of any unknown id.

The schemas still check each field's own length, range and form; this guard makes sure that no
input reaches them, a service or the database in a shape that can only end in a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from server.errors import ValidationFailed
from server.fields import INT64_MAX
from server.services.kernel import text

#: The deepest JSON body any endpoint takes is 3 levels; 32 leaves room and stops abuse early.
MAX_JSON_DEPTH = 32


class BadJson(ValidationFailed):
    status = 400
    code = "bad_json"
    message = "请求内容不是有效的 JSON"


class JsonTooDeep(BadJson):
    code = "json_too_deep"
    message = f"请求内容嵌套层数过多（最多{MAX_JSON_DEPTH}层）"


class NumberOutOfRange(ValidationFailed):
    code = "number_out_of_range"


class BoundedIntConverter(IntegerConverter):
    """werkzeug's `int` converter, at most BIGINT's largest value unless the rule says less."""

    def __init__(self, map: Any, *args: Any, max: int | None = None, **kwargs: Any) -> None:  # noqa: A002
        super().__init__(map, *args, max=INT64_MAX if max is None else max, **kwargs)


def install(app: Flask) -> None:
    """Bound path integers (before any route is added) and guard every /api request."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(guard_request)


def guard_request() -> None:
    if not request.path.startswith("/api/"):
        return
    problems: dict[str, str] = {}
    for key, value in (request.view_args or {}).items():
        _check_string(problems, key, value, single_line=True)
    for key, value in request.args.items(multi=True):
        _check_string(problems, key, key, single_line=True)
        _check_string(problems, key, value, single_line=True)
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for key, value in request.form.items(multi=True):
            _check_string(problems, key, value, single_line=False)
    if request.is_json and request.content_length != 0:
        for path, value in _walk(_parse_json(request.get_data(cache=True))):
            if isinstance(value, str):
                _check_string(problems, path, value, single_line=False)
            elif _is_int(value) and abs(value) > INT64_MAX:
                problems.setdefault(path, f"“{text.label(path)}”数值超出范围")
    if problems:
        raise text.refused(problems)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_string(problems: dict[str, str], field: str, value: Any, *, single_line: bool) -> None:
    if isinstance(value, str) and field not in problems:
        message = text.describe(value, field=field, single_line=single_line)
        if message is not None:
            problems[field] = message


def _refuse_constant(name: str) -> Any:
    raise BadJson(f"请求内容含有 JSON 不允许的数值 {name}")


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise JsonTooDeep() from None
    except ValueError as exc:  # bad JSON, bad UTF-8, or an integer past Python's digit limit
        if isinstance(exc, ValidationFailed):
            raise
        if "digits" in str(exc):
            raise NumberOutOfRange("请求内容中的数字位数过多") from None
        raise BadJson() from None


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise NumberOutOfRange(f"请求内容中的数字 {literal[:20]} 超出范围")
    return value


def _walk(document: Any) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every key and leaf, without recursion; JsonTooDeep past the
    limit (the parser's own recursion limit is far higher than any endpoint needs)."""
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise JsonTooDeep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in items:
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    yield child_path, key
                stack.append((child_path, child, depth + 1))
        else:
            yield path or "body", value
