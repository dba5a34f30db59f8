"""Request-scoped access for views: the session, the acting user, the runtime, the time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from server import clock
from server.errors import DomainError, Forbidden, Unauthorized, ValidationFailed
from server.models import Role, User
from server.runtime import Runtime
from server.services.accounts import auth
from server.services.calendar.workdays import WorkCalendar
from server.services.kernel.access import Actor
from server.services.kernel.idempotency import MAX_KEY_LENGTH

ALL_ROLES = tuple(Role)
STAFF = (Role.TOWN_STAFF, Role.DEPARTMENT_STAFF, Role.CENTER_STAFF, Role.LEADER)


def runtime() -> Runtime:
    return current_app.extensions["e_rescue"]


def db() -> Session:
    """The request's session; committed once after the view (see server/__init__.py)."""
    if "db_session" not in g:
        rt = runtime()
        factory = rt.read_session_factory if g.get("read_only") else rt.session_factory
        g.db_session = factory()
    return g.db_session


def connection() -> Connection:
    """A connection for reading: the request session's, or in a `read_only` view one straight
    from the autocommit engine (no session to open, track and close on the hot path)."""
    if not g.get("read_only"):
        return db().connection()
    if "db_connection" not in g:
        g.db_connection = runtime().read_engine.connect()
    return g.db_connection


def read_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a hot view that never writes (not even an audit row): its statements run without a
    transaction. Put it above `@requires` so the login check runs that way too."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.read_only = True
        return view(*args, **kwargs)

    return wrapper


def now() -> datetime:
    """The request's 'now', fixed once per request so every rule sees the same moment."""
    if "now" not in g:
        g.now = clock.now()
    return g.now


def work_calendar() -> WorkCalendar:
    """The working-day calendar, loaded once per request: a page of slips asks it of every row
    (two statements each, 0.2-1.2 s a page under the soak test's load)."""
    if "work_calendar" not in g:
        g.work_calendar = WorkCalendar.load(db())
    return g.work_calendar


def client_ip() -> str:
    """The caller's address: the TCP peer, or with `PROXY_HOPS` set the address that many
    trusted proxies saw (werkzeug's ProxyFix, wired in `create_app`)."""
    return request.remote_addr or "unknown"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:
        raise Unauthorized()
    return actor


def current_user() -> User:
    """The caller's account row, loaded on demand (most requests need only the actor)."""
    user = db().get(User, g.actor.user_id)
    if user is None:
        raise Unauthorized()
    return user


def requires(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare who may call an endpoint. Others get 401 (no/expired token) or 403 (wrong role).

    The allowed roles are also written into the OpenAPI description of the endpoint.
    """
    allowed = frozenset(roles or ALL_ROLES)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token()
            if token is None:
                raise Unauthorized()
            rt = runtime()
            found = auth.authenticate(
                connection(),
                token=token,
                now=now(),
                ip=client_ip(),
                staff_idle_timeout=rt.config.staff_idle_timeout,
            )
            if found.touch_token_id is not None:
                with rt.read_engine.connect() as autocommit:
                    auth.touch_token(autocommit, token_id=found.touch_token_id, now=now())
            actor = found.actor
            if actor.role not in allowed:
                raise Forbidden()
            g.actor = actor
            return view(*args, **kwargs)

        apidoc = getattr(wrapper, "_apidoc", {})
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        manual = apidoc.setdefault("manual_doc", {})
        manual.setdefault("security", [{"bearerAuth": []}])
        manual["x-roles"] = [r.value for r in ALL_ROLES if r in allowed]
        wrapper.allowed_roles = allowed  # type: ignore[attr-defined]
        return wrapper

    return decorate


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint as callable without login (documented as `x-public` with no security)."""
    apidoc = getattr(view, "_apidoc", {})
    view._apidoc = apidoc  # type: ignore[attr-defined]
    manual = apidoc.setdefault("manual_doc", {})
    manual["security"] = []
    manual["x-public"] = True
    view.allowed_roles = None  # type: ignore[attr-defined]
    return view


def roles(*names: Iterable[Role]) -> tuple[Role, ...]:
    return tuple(r for group in names for r in group)


#: OpenAPI description of the header, for `@blp.doc(parameters=[...])`.
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
    "description": "A key the client makes once per form and repeats on every retry: a repeat "
    "returns the first record instead of creating a second.",
}


class IdempotencyKeyInvalid(ValidationFailed):
    code = "idempotency_key_invalid"
    message = "请求编号（Idempotency-Key）格式有误，请更新小程序后重试"


class IdempotencyKeyMissing(DomainError):
    status = 428
    code = "idempotency_key_required"
    message = "缺少请求编号（Idempotency-Key），请更新小程序后重试"


def idempotency_key(*, required: bool = False) -> str | None:
    """The request's Idempotency-Key header: the one reader and the one limit
    (`MAX_KEY_LENGTH` characters; longer is 422 `idempotency_key_invalid`). Without one, None,
    or 428 `idempotency_key_required` where the endpoint requires it (the mini-program's
    applications: a resident on a weak connection must never file twice)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        if required:
            raise IdempotencyKeyMissing()
        return None
    if len(key) > MAX_KEY_LENGTH:
        message = f"最多{MAX_KEY_LENGTH}个字符"
        raise IdempotencyKeyInvalid(errors={"Idempotency-Key": [message]})
    return key
