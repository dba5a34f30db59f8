"""Browser sessions for staff: a signed cookie, CSRF tokens, the idle timeout, page roles.

The cookie (HttpOnly, SameSite=Lax, Secure in production, path /console) holds the staff
member's token from `services.auth.staff_login` — the same token and the same check
(`auth.authenticate`, with its sliding idle timeout) as the API's bearer header — and the CSRF
token. Logging out revokes the token, and an idle token is dead in the database, so a copied
cookie dies with the session.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, abort, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from server.console.deps import client_ip, connection, db, now, runtime
from server.errors import Forbidden, Unauthorized
from server.models import Role
from server.services.accounts import auth

#: Staff roles that do casework in the console (residents and helpers use the mini-program).
CASEWORK_ROLES = frozenset({Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF, Role.DEPARTMENT_STAFF})
#: The three administrators of 三员分立: each has only their own room, never a case.
ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})
CONSOLE_ROLES = CASEWORK_ROLES | ADMIN_ROLES
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session for console paths only: the API authenticates with bearer
    tokens, so its requests open no session and build no signer."""

    def open_session(self, app: Flask, request: Request) -> Any:
        if not request.path.startswith("/console"):
            return None
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if session is None:
            return None
        return super().save_session(app, session, response)


def csrf_token() -> str:
    """This browser session's CSRF token (made on first use, renewed at login)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a state-changing request without this session's token (form field or header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get("csrf")
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(400, description="csrf")


def start_session(token: str, *, display_name: str) -> None:
    """After a good login: a new session (new CSRF token), so nothing from before carries."""
    session.clear()
    session["token"] = token
    session["name"] = display_name
    session["csrf"] = secrets.token_urlsafe(32)


def end_session() -> None:
    token = session.get("token")
    if token:
        g.read_only = False
        auth.revoke_token(db(), token=token, now=now())
    session.clear()


def page(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare who may open a console page. Not logged in (or timed out): to the login page;
    logged in with another role: 403. Without roles: the casework roles (never the
    administrators). The allowed roles are kept on the view for tests."""
    allowed = frozenset(roles or CASEWORK_ROLES)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refusal = _authenticate()
            if refusal is not None:
                return refusal
            if g.actor.role not in allowed:
                raise Forbidden()
            return view(*args, **kwargs)

        wrapper.allowed_roles = allowed  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _authenticate() -> Response | None:
    """The API's own check of the session's token (`auth.authenticate`): revoked, expired, or
    idle for `STAFF_IDLE_TIMEOUT` (sliding, written back at most once a minute, as for the
    API's bearer tokens) all end the session and lead to the login page."""
    token = session.get("token")
    if not token:
        return _to_login(None)
    rt = runtime()
    try:
        found = auth.authenticate(
            connection(),
            token=token,
            now=now(),
            ip=client_ip(),
            staff_idle_timeout=rt.config.staff_idle_timeout,
        )
    except Unauthorized as exc:
        session.clear()
        if exc.code == "token_idle":
            minutes = rt.config.staff_idle_timeout // 60
            return _to_login(f"您已超过{minutes}分钟未操作，为保护信息安全已自动退出，请重新登录")
        return _to_login(exc.message)
    if found.touch_token_id is not None:
        with rt.read_engine.connect() as autocommit:
            auth.touch_token(autocommit, token_id=found.touch_token_id, now=now())
    if found.actor.role not in CONSOLE_ROLES:
        session.clear()
        raise Forbidden("该账号不能使用工作台", code="not_console_role")
    g.actor = found.actor
    return None


def _to_login(message: str | None) -> Response:
    if message:
        flash(message, "warning")
    target = request.full_path if request.method == "GET" else None
    response = redirect(
        url_for("console.login", next=target) if target else url_for("console.login")
    )
    if request.headers.get("HX-Request"):
        # htmx follows redirects inside the swap; ask it to load the login page whole instead.
        response.headers["HX-Redirect"] = response.headers["Location"]
    return response


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path inside the console (never another site)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console/"):
            return target
    return url_for("console.home")
