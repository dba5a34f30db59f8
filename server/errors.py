"""Domain errors. Services raise them; the API renders them in the one error shape.

Every error has a stable machine `code`, a Chinese `message` a resident can read and optional
per-field `errors`.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"
    message = "请求有误"
    #: Seconds a client is asked to wait before trying again (sent as `Retry-After`), for
    #: refusals that pass by themselves (a busy resource); None for the others.
    retry_after: int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, Any] | None = None,
        status: int | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.errors = errors or {}
        if status is not None:
            self.status = status
        #: Commit what the service wrote before refusing (e.g. a counted login failure).
        self.keep_changes = keep_changes


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    message = "提交的信息有误，请检查后重试"


def invalid(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    """A refusal of one field: its message is the error's and the field's."""
    return ValidationFailed(message, code=code, errors={field: [message]})


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    message = "请先登录"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "您没有权限进行此操作"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "未找到相关记录"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "记录已被他人修改，请刷新后重试"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"
    message = "操作过于频繁，请稍后再试"


class UpstreamUnavailable(DomainError):
    status = 503
    code = "upstream_unavailable"
    message = "服务暂时不可用，请稍后再试"
