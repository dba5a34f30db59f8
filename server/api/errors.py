"""The one error shape: `{"code", "message", "errors", "request_id"}` for every 4xx and 5xx."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify
from marshmallow import Schema, fields
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from server.db import database_unreachable
from server.errors import DomainError

log = logging.getLogger("server.api")

#: Werkzeug's HTTP errors → (our code, Chinese message).
_HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "您没有权限进行此操作"),
    404: ("not_found", "未找到相关内容"),
    405: ("method_not_allowed", "不支持该请求方式"),
    409: ("conflict", "记录已被他人修改，请刷新后重试"),
    413: ("payload_too_large", "上传的内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    422: ("validation_error", "提交的信息有误，请检查后重试"),
    428: ("precondition_required", "缺少必要的请求头"),
    429: ("too_many_requests", "操作过于频繁，请稍后再试"),
    500: ("internal_error", "系统出现问题，请稍后再试"),
    503: ("unavailable", "服务暂时不可用，请稍后再试"),
}


class ErrorSchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable machine code"})
    message = fields.String(required=True, metadata={"description": "中文说明"})
    errors = fields.Dict(metadata={"description": "per-field details"})
    request_id = fields.String()


def error_body(status: int, code: str, message: str, errors: Any = None) -> tuple[Any, int]:
    body = {
        "code": code,
        "message": message,
        "errors": errors or {},
        "request_id": g.get("request_id", ""),
    }
    return jsonify(body), status


def handle_domain_error(exc: DomainError) -> tuple[Any, int]:
    g.keep_changes = exc.keep_changes
    body, status = error_body(exc.status, exc.code, exc.message, exc.errors)
    if exc.retry_after is not None:
        body.headers["Retry-After"] = str(exc.retry_after)
    return body, status


def handle_http_exception(exc: HTTPException) -> tuple[Any, int]:
    status = exc.code or 500
    code, message = _HTTP_MESSAGES.get(status, ("http_error", "请求未能完成"))
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages") or {}
    # webargs nests errors by location ({"json": {...}}); flatten a single location.
    if isinstance(errors, dict) and len(errors) == 1:
        ((location, inner),) = errors.items()
        if location in ("json", "query", "form", "files", "headers", "path") and isinstance(
            inner, dict
        ):
            errors = inner
    body, status = error_body(status, code, data.get("message", message), errors)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        body.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return body, status


def handle_stale(exc: StaleDataError) -> tuple[Any, int]:
    return error_body(409, "conflict", "记录已被他人修改，请刷新后重试")


#: Seconds a client is asked to wait before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = 5


def unavailable() -> tuple[Any, int]:
    body, status = error_body(503, "unavailable", "服务暂时不可用，请稍后再试")
    body.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return body, status


def handle_lost_connection(exc: DBAPIError) -> tuple[Any, int]:
    """503 with Retry-After while the database is unreachable; anything else is a real error."""
    if not database_unreachable(exc):
        return handle_unexpected(exc)
    log.warning(
        "database unreachable (request %s): %s", g.get("request_id"), type(exc.orig).__name__
    )
    return unavailable()


def handle_unexpected(exc: Exception) -> tuple[Any, int]:
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error (request %s)", g.get("request_id"))
    return error_body(500, "internal_error", "系统出现问题，请稍后再试")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(StaleDataError, handle_stale)
    app.register_error_handler(DBAPIError, handle_lost_connection)
    app.register_error_handler(Exception, handle_unexpected)
