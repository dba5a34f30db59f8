"""Log in, log out."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, session, url_for

from server.console.deps import client_ip, db, now, runtime
from server.console.security import end_session, safe_next, start_session
from server.console.views import blp
from server.errors import DomainError
from server.services.accounts import auth


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
            policy=auth.LoginPolicy.from_config(config),
        )
    except auth.PasswordChangeRequired as exc:
        g.keep_changes = exc.keep_changes
        return _change_form(username, target, notice=exc.message, status=200)
    except DomainError as exc:
        g.keep_changes = exc.keep_changes  # a counted failure is kept
        return _refused(exc.message, username, target, exc.status)
    return _logged_in(issued, target)


@blp.route("/password", methods=["POST"])
def change_password() -> Any:
    """A forced (first login, 90 days) or chosen password change: the current password is
    checked like a login (`auth.change_staff_password`), then the new one must meet the
    policy; success logs in."""
    username = request.form.get("username", "").strip()[:64]
    target = request.form.get("next", "")
    new_password = request.form.get("new_password", "")[:256]
    if new_password != request.form.get("new_password_again", "")[:256]:
        return _change_form(username, target, error="两次输入的新密码不一致", status=422)
    config = runtime().config
    try:
        issued = auth.change_staff_password(
            db(),
            username=username,
            password=request.form.get("password", "")[:256],
            new_password=new_password,
            ip=client_ip(),
            now=now(),
            ttl=config.staff_token_ttl,
            policy=auth.LoginPolicy.from_config(config),
        )
    except DomainError as exc:
        g.keep_changes = exc.keep_changes
        return _change_form(username, target, error=exc.message, status=exc.status)
    flash("密码已修改", "success")
    return _logged_in(issued, target)


def _logged_in(issued: auth.IssuedToken, target: str) -> Any:
    user = issued.user
    start_session(issued.token, display_name=user.display_name or user.username or "")
    return redirect(safe_next(target), code=303)


def _change_form(
    username: str, target: str, *, notice: str = "", error: str = "", status: int
) -> tuple[str, int]:
    return (
        render_template(
            "console/password.html", username=username, next=target, notice=notice, error=error
        ),
        status,
    )


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
