"""Logging in (WeChat for residents and helpers, password for staff), tokens and throttling.

The staff login rules live here once (`staff_login`, `change_staff_password`,
`check_staff_credentials`): the API and the console both call them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.orm import Session

from server.db import Precompiled, insert_if_missing
from server.errors import (
    DomainError,
    Forbidden,
    TooManyRequests,
    Unauthorized,
    UpstreamUnavailable,
)
from server.models import STAFF_ROLES, AuthToken, LoginThrottle, Role, User
from server.services.accounts import passwords
from server.services.accounts.passwords import PasswordPolicy
from server.services.kernel.access import Actor
from server.services.kernel.audit import record_event
from server.services.kernel.crypto import token_hash
from server.services.kernel.pii import PersonalData
from server.wechat.interface import WeChatError, WeChatGateway

#: WeChat login errors → (HTTP status, our code, Chinese message).
_WECHAT_LOGIN_ERRORS: dict[int | None, tuple[int, str, str]] = {
    40029: (400, "wechat_code_invalid", "登录凭证无效，请重新打开小程序后再试"),
    40163: (400, "wechat_code_used", "登录凭证已使用，请重新登录"),
    45011: (429, "wechat_rate_limited", "登录过于频繁，请一分钟后再试"),
    40226: (403, "wechat_risky_user", "该微信账号存在安全风险，暂时无法登录，请联系社区工作人员"),
    -1: (503, "wechat_busy", "微信服务繁忙，请稍后再试"),
    None: (503, "wechat_unreachable", "暂时无法连接微信服务，请检查网络后重试"),
}


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    user: User


@dataclass(frozen=True)
class LoginPolicy:
    """The staff login rules, from `Config` (see `from_config`)."""

    max_failures: int = 5
    lock: timedelta = timedelta(minutes=15)
    ip_max_failures: int = 30
    #: Seconds each further failure from an address over its limit waits before its answer.
    ip_slowdown: float = 2.0
    window: timedelta = timedelta(minutes=15)
    passwords: PasswordPolicy = PasswordPolicy()

    @classmethod
    def from_config(cls, config) -> LoginPolicy:  # noqa: ANN001
        return cls(
            max_failures=config.login_max_failures,
            lock=timedelta(seconds=config.login_lock_seconds),
            ip_max_failures=config.login_ip_max_failures,
            ip_slowdown=config.login_ip_slowdown_seconds,
            window=timedelta(seconds=config.login_window_seconds),
            passwords=PasswordPolicy.from_config(config),
        )


class PasswordChangeRequired(Forbidden):
    code = "password_change_required"
    message = "请先修改密码"


def wechat_login(
    db: Session,
    *,
    code: str,
    gateway: WeChatGateway,
    pii: PersonalData,
    now: datetime,
    ttl: int,
) -> IssuedToken:
    """Exchange a `wx.login` code for our bearer token; create the resident on first login."""
    try:
        session = gateway.code_to_session(code)
    except WeChatError as exc:
        raise _login_error(exc) from exc
    user = db.scalar(select(User).where(User.openid == session.openid))
    if user is None:
        user = User(role=Role.RESIDENT, openid=session.openid, created_at=now, is_active=True)
        db.add(user)
    if not user.is_active:
        raise Unauthorized("账号已停用，请联系工作人员", code="account_disabled")
    if session.unionid:
        user.unionid = session.unionid
    # session_key may rotate at each login: overwrite it, sealed.
    user.session_key_enc = pii.seal(session.session_key)
    user.last_login_at = now
    db.flush()
    return issue_token(db, user=user, now=now, ttl=ttl)


def _login_error(exc: WeChatError) -> DomainError:
    status, code, message = _WECHAT_LOGIN_ERRORS.get(
        exc.errcode,
        (502, "wechat_error", f"微信登录失败（错误码 {exc.errcode}），请稍后再试"),
    )
    if status == 429:
        return TooManyRequests(message, code=code)
    if status >= 500:
        return UpstreamUnavailable(message, code=code, status=status)
    return DomainError(message, code=code, status=status)


def staff_login(
    db: Session,
    *,
    username: str,
    password: str,
    ip: str,
    now: datetime,
    ttl: int,
    policy: LoginPolicy,
    sleep: Callable[[float], None] | None = None,
) -> IssuedToken:
    """Password login (the API's and the console's): the credentials checked under the
    throttling rules, then a token, unless the password must be changed first (403
    `password_change_required`: the caller sends the password and a new one to
    `change_staff_password`, which logs in)."""
    user = check_staff_credentials(
        db, username=username, password=password, ip=ip, now=now, policy=policy, sleep=sleep
    )
    reason = passwords.change_due(user, now=now, policy=policy.passwords)
    if reason is not None:
        raise PasswordChangeRequired(reason, keep_changes=True)
    return _logged_in(db, user=user, password=password, ip=ip, now=now, ttl=ttl)


def change_staff_password(
    db: Session,
    *,
    username: str,
    password: str,
    new_password: str,
    ip: str,
    now: datetime,
    ttl: int,
    policy: LoginPolicy,
    sleep: Callable[[float], None] | None = None,
) -> IssuedToken:
    """A staff member sets a new password with their current one (a forced change at login,
    or any time) and is logged in. The current password is checked like any login."""
    user = check_staff_credentials(
        db, username=username, password=password, ip=ip, now=now, policy=policy, sleep=sleep
    )
    try:
        passwords.check_new_password(
            db,
            user=user,
            username=user.username or "",
            password=new_password,
            policy=policy.passwords,
        )
    except DomainError as exc:
        exc.keep_changes = True  # the proven password still clears the failure count
        raise
    passwords.set_password(
        db, user=user, password=new_password, now=now, policy=policy.passwords, chosen_by_user=True
    )
    record_event(
        db,
        actor_id=user.id,
        actor_role=user.role.value,
        action="password.changed",
        target_type="user",
        target_id=user.id,
        now=now,
        ip=ip,
    )
    db.flush()
    return _logged_in(db, user=user, password=new_password, ip=ip, now=now, ttl=ttl)


def check_staff_credentials(
    db: Session,
    *,
    username: str,
    password: str,
    ip: str,
    now: datetime,
    policy: LoginPolicy,
    sleep: Callable[[float], None] | None = None,
) -> User:
    """The staff member behind a username and password, or a refusal.

    - The account name's attempt is counted (in its own committed transaction) *before* the
      password is checked, so of any number of simultaneous guesses exactly `max_failures` are
      checked; the failure that reaches the limit locks the name for `lock`. Names nobody has
      are counted and locked the same way, and checked against a dummy argon2 hash, so neither
      the answer nor its time says whether a name exists.
    - An address over `ip_max_failures` is slowed down, not refused: each further failure
      from it waits `ip_slowdown` seconds, while a right password for an account that is not
      itself locked still logs in at once (one address may be a whole office behind a proxy).
    """
    name_key, ip_key = f"user:{username.lower()}", f"ip:{ip}"
    _reserve_attempt(db, name_key, now=now, policy=policy)
    user = db.scalar(select(User).where(User.username == username))
    known = user is not None and user.role in STAFF_ROLES
    if not passwords.verify(user.password_hash if known else None, password):
        address_failures = _count_address_failure(db, ip_key, now=now, policy=policy)
        _lock_if_spent(db, name_key, now=now, policy=policy)
        record_event(
            db,
            actor_id=user.id if known else None,
            actor_role=user.role.value if known else "anonymous",
            action="login.failed",
            target_type="user",
            target_id=user.id if known else None,
            now=now,
            ip=ip,
            detail={"username": username[:64]},
        )
        if address_failures > policy.ip_max_failures and policy.ip_slowdown > 0:
            (sleep or time.sleep)(policy.ip_slowdown)
        raise Unauthorized("用户名或密码错误", code="bad_credentials", keep_changes=True)
    if not user.is_active:
        raise Unauthorized("账号已停用，请联系管理员", code="account_disabled")
    db.execute(delete(LoginThrottle).where(LoginThrottle.key == name_key))
    return user


def _logged_in(
    db: Session, *, user: User, password: str, ip: str, now: datetime, ttl: int
) -> IssuedToken:
    if user.password_hash and passwords.hasher.check_needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = now
    record_event(
        db,
        actor_id=user.id,
        actor_role=user.role.value,
        action="login.succeeded",
        target_type="user",
        target_id=user.id,
        now=now,
        ip=ip,
    )
    db.flush()
    return issue_token(db, user=user, now=now, ttl=ttl)


def _reserve_attempt(db: Session, key: str, *, now: datetime, policy: LoginPolicy) -> None:
    """Count one attempt for an account name, or refuse it as locked. Commits on its own
    connection before any password is checked: the row lock (PostgreSQL) or the write lock
    (SQLite) is held only for this, and every later guess sees the count."""
    with Session(db.get_bind()) as own:
        row = _locked_row(own, key, now=now)
        lapsed = row.locked_until is not None and row.locked_until <= now
        if lapsed or now - row.window_started_at > policy.window:
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        locked_until = row.locked_until
        spent = row.failures >= policy.max_failures
        if locked_until is None and not spent:
            row.failures += 1
        own.commit()
    if locked_until is not None or spent:
        wait = (locked_until - now) if locked_until is not None else policy.lock
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        raise TooManyRequests(f"登录失败次数过多，请 {minutes} 分钟后再试", code="login_locked")


def _lock_if_spent(db: Session, key: str, *, now: datetime, policy: LoginPolicy) -> None:
    """The failure that used the last permitted attempt locks the name."""
    with Session(db.get_bind()) as own:
        own.execute(
            update(LoginThrottle)
            .where(
                LoginThrottle.key == key,
                LoginThrottle.failures >= policy.max_failures,
                LoginThrottle.locked_until.is_(None),
            )
            .values(locked_until=now + policy.lock)
        )
        own.commit()


def _count_address_failure(db: Session, key: str, *, now: datetime, policy: LoginPolicy) -> int:
    """One more failure from an address; returns its count in the window. Committed on its own
    so that no lock is held while a slowed-down answer waits."""
    with Session(db.get_bind()) as own:
        row = _locked_row(own, key, now=now)
        if now - row.window_started_at > policy.window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        failures = row.failures
        own.commit()
    return failures


def _locked_row(own: Session, key: str, *, now: datetime) -> LoginThrottle:
    """The throttle row for `key`, created if missing (two first failures at once both find
    it) and locked for this transaction."""
    insert_if_missing(
        own, LoginThrottle, {"key": key, "failures": 0, "window_started_at": now}, key="key"
    )
    row = own.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
    assert row is not None
    return row


def issue_token(db: Session, *, user: User, now: datetime, ttl: int) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl)
    db.add(
        AuthToken(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=expires_at,
            last_seen_at=now,
        )
    )
    db.flush()
    return IssuedToken(token=token, expires_at=expires_at, user=user)


#: A staff token's last use is written back at most this often: the idle timeout is exact to
#: within a minute, and a busy client costs one UPDATE a minute instead of one per request.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Authenticated:
    actor: Actor
    #: The token's row id when its last use should be written back (see `touch_token`).
    touch_token_id: int | None


def authenticate(
    conn: Connection,
    *,
    token: str,
    now: datetime,
    ip: str | None,
    staff_idle_timeout: int,
) -> Authenticated:
    """The caller behind a bearer token, from one indexed row (every request pays for this).

    Staff tokens also expire `staff_idle_timeout` seconds after their last use (sliding)."""
    rows = _TOKEN_LOOKUP.rows(conn, {"token_hash": token_hash(token)})
    if not rows or rows[0][0] is not None:  # unknown, or revoked
        raise Unauthorized("登录已失效，请重新登录", code="token_invalid")
    (
        _revoked,
        expires_at,
        token_id,
        last_seen_at,
        user_id,
        role,
        town_id,
        village_id,
        department_id,
        is_active,
    ) = rows[0]
    if expires_at <= now:
        raise Unauthorized("登录已过期，请重新登录", code="token_expired")
    touch = None
    if role in STAFF_ROLES:
        idle = now - (last_seen_at or now - TOUCH_INTERVAL)  # null: a token from before 0011
        if idle > timedelta(seconds=staff_idle_timeout):
            raise Unauthorized("长时间未操作，登录已失效，请重新登录", code="token_idle")
        if idle >= TOUCH_INTERVAL:
            touch = token_id
    if not is_active:
        raise Unauthorized("账号已停用，请联系工作人员", code="account_disabled")
    actor = Actor(
        user_id=user_id,
        role=role,
        town_id=town_id,
        village_id=village_id,
        department_id=department_id,
        ip=ip,
    )
    return Authenticated(actor=actor, touch_token_id=touch)


def touch_token(conn: Connection, *, token_id: int, now: datetime) -> None:
    """Record a staff token's use (an autocommit connection: the mark does not wait for, or
    roll back with, the request's own transaction)."""
    conn.execute(
        update(AuthToken)
        .where(AuthToken.id == token_id, AuthToken.last_seen_at < now - TOUCH_INTERVAL)
        .values(last_seen_at=now)
    )


#: Columns only, no ORM objects, compiled once per dialect (every request runs it).
_TOKEN_LOOKUP = Precompiled(
    select(
        AuthToken.revoked_at,
        AuthToken.expires_at,
        AuthToken.id,
        AuthToken.last_seen_at,
        User.id.label("user_id"),
        User.role,
        User.town_id,
        User.village_id,
        User.department_id,
        User.is_active,
    )
    .join(User, User.id == AuthToken.user_id)
    .where(AuthToken.token_hash == bindparam("token_hash"))
)


def actor_for(user: User, *, ip: str | None = None) -> Actor:
    return Actor(
        user_id=user.id,
        role=user.role,
        town_id=user.town_id,
        village_id=user.village_id,
        department_id=user.department_id,
        ip=ip,
    )


def revoke_token(db: Session, *, token: str, now: datetime) -> None:
    row = db.scalar(select(AuthToken).where(AuthToken.token_hash == token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
        db.flush()
