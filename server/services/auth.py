"""Logging in (WeChat for residents and helpers, password for staff), tokens and throttling."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from server.config import Config
from server.db import Precompiled
from server.errors import DomainError, TooManyRequests, Unauthorized, UpstreamUnavailable
from server.models import AuthToken, LoginThrottle, Role, User
from server.services.access import Actor
from server.services.crypto import token_hash
from server.services.pii import PersonalData
from server.wechat.errors import WeChatError

#: argon2id (RFC 9106) via argon2-cffi: the password-hashing competition winner, maintained and
#: with sane defaults; we tune nothing ourselves.
_hasher = PasswordHasher()

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
class ThrottlePolicy:
    max_failures: int
    ip_max_failures: int
    window: timedelta

    @classmethod
    def from_config(cls, config: Config) -> ThrottlePolicy:
        """The one policy every staff login (the API's and the console's) applies."""
        return cls(
            max_failures=config.login_max_failures,
            ip_max_failures=config.login_ip_max_failures,
            window=timedelta(seconds=config.login_window_seconds),
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def wechat_login(
    db: Session,
    *,
    code: str,
    gateway,
    pii: PersonalData,
    now: datetime,
    ttl: int,  # noqa: ANN001
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
    policy: ThrottlePolicy,
) -> IssuedToken:
    """Password login with throttling per account and per address."""
    keys = (f"user:{username.lower()}", f"ip:{ip}")
    _refuse_if_locked(db, keys, now=now)
    user = db.scalar(select(User).where(User.username == username))
    if user is None or not user.password_hash or not _verify(user.password_hash, password):
        _count_failure(db, keys[0], limit=policy.max_failures, policy=policy, now=now)
        _count_failure(db, keys[1], limit=policy.ip_max_failures, policy=policy, now=now)
        raise Unauthorized("用户名或密码错误", code="bad_credentials", keep_changes=True)
    if not user.is_active:
        raise Unauthorized("账号已停用，请联系管理员", code="account_disabled")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    throttle = db.get(LoginThrottle, keys[0])
    if throttle is not None:
        db.delete(throttle)
    user.last_login_at = now
    db.flush()
    return issue_token(db, user=user, now=now, ttl=ttl)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def _refuse_if_locked(db: Session, keys: tuple[str, ...], *, now: datetime) -> None:
    for key in keys:
        row = db.get(LoginThrottle, key)
        if row and row.locked_until and row.locked_until > now:
            minutes = max(1, int((row.locked_until - now).total_seconds() // 60) + 1)
            raise TooManyRequests(f"登录失败次数过多，请 {minutes} 分钟后再试", code="login_locked")


def _count_failure(
    db: Session, key: str, *, limit: int, policy: ThrottlePolicy, now: datetime
) -> None:
    row = db.get(LoginThrottle, key, with_for_update=True)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=now)
        db.add(row)
    elif now - row.window_started_at > policy.window:
        row.failures, row.window_started_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= limit:
        row.locked_until = now + policy.window
    db.flush()


def issue_token(db: Session, *, user: User, now: datetime, ttl: int) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl)
    db.add(
        AuthToken(
            token_hash=token_hash(token), user_id=user.id, created_at=now, expires_at=expires_at
        )
    )
    db.flush()
    return IssuedToken(token=token, expires_at=expires_at, user=user)


def authenticate(conn: Connection, *, token: str, now: datetime, ip: str | None) -> Actor:
    """The caller behind a bearer token, from one indexed row (every request pays for this)."""
    rows = _TOKEN_LOOKUP.rows(conn, {"token_hash": token_hash(token)})
    if not rows or rows[0][0] is not None:  # unknown, or revoked
        raise Unauthorized("登录已失效，请重新登录", code="token_invalid")
    _revoked, expires_at, user_id, role, town_id, village_id, department_id, is_active = rows[0]
    if expires_at <= now:
        raise Unauthorized("登录已过期，请重新登录", code="token_expired")
    if not is_active:
        raise Unauthorized("账号已停用，请联系工作人员", code="account_disabled")
    return Actor(
        user_id=user_id,
        role=role,
        town_id=town_id,
        village_id=village_id,
        department_id=department_id,
        ip=ip,
    )


#: Columns only, no ORM objects, compiled once per dialect (every request runs it).
_TOKEN_LOOKUP = Precompiled(
    select(
        AuthToken.revoked_at,
        AuthToken.expires_at,
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
