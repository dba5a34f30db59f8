"""Log in, log out."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, session, url_for

from server.console.deps import client_ip, db, now, runtime
from server.console.security import end_session, safe_next, start_session
from server.console.views import blp
from server.errors import DomainError
from server.services import auth


@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The staff login: the API's login service, its throttling and its tokens."""
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")[:256]
    target = request.form.get("next", "")
    if not username or not password:
        return _refused("请输入用户名和密码", username, target, 422)
    config = runtime().config
    try:
        issued = auth.staff_login(
            db(),
            username=username,
            password=password,
            ip=client_ip(),
            now=now(),
            ttl=config.staff_token_ttl,
            policy=auth.ThrottlePolicy.from_config(config),
        )
    except DomainError as exc:
        g.keep_changes = exc.keep_changes  # a counted failure is kept
        return _refused(exc.message, username, target, exc.status)
    user = issued.user
    start_session(issued.token, display_name=user.display_name or user.username or "")
    return redirect(safe_next(target), code=303)


def _refused(message: str, username: str, target: str, status: int) -> tuple[str, int]:
    return (
        render_template("console/login.html", error=message, username=username, next=target),
        status,
    )


@blp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Revoke the session's token and forget the cookie."""
    if session.get("token"):
        end_session()
        flash("您已安全退出", "info")
    return redirect(url_for("console.login"), code=303)
