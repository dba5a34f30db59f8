"""Errors in console pages answer as HTML pages, with the services' Chinese messages."""

from __future__ import annotations

import logging

from flask import Blueprint, g, render_template, request
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from server.db import database_unreachable
from server.errors import DomainError

log = logging.getLogger("server.console")

_HTTP_MESSAGES = {
    400: "请求有误",
    403: "您没有权限查看此页面",
    404: "未找到相关内容",
    405: "不支持该操作",
    413: "上传的内容过大",
}
CSRF_MESSAGE = "页面已过期或来源不明，操作未执行。请刷新页面后重试。"


def _page(status: int, message: str, errors: dict | None = None) -> tuple[str, int]:
    template = "console/_error_fragment.html" if request.headers.get("HX-Request") else None
    return (
        render_template(
            template or "console/error.html", status=status, message=message, errors=errors or {}
        ),
        status,
    )


def register(blp: Blueprint) -> None:
    @blp.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
        g.keep_changes = exc.keep_changes
        page, status = _page(exc.status, exc.message, exc.errors)
        if exc.retry_after is not None:
            return page, status, {"Retry-After": str(exc.retry_after)}
        return page, status

    @blp.errorhandler(StaleDataError)
    def stale(_exc: StaleDataError) -> tuple[str, int]:
        return _page(409, "记录已被他人修改，请刷新后重试")

    @blp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        status = exc.code or 500
        if status == 400 and exc.description == "csrf":
            return _page(400, CSRF_MESSAGE)
        return _page(status, _HTTP_MESSAGES.get(status, "请求未能完成"))

    @blp.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
        if database_unreachable(exc):
            log.warning("database unreachable (request %s)", g.get("request_id"))
            page, status = _page(503, "系统暂时无法连接数据库，请稍后刷新重试")
            return page, status, {"Retry-After": "5"}
        log.exception("console error (request %s)", g.get("request_id"))
        return _page(500, "系统出现问题，请稍后再试")
