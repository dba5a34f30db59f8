"""WeChat's server pushes (`/wechat/callback`): only fresh ones, each once.

The signature (checked first, from the query alone) proves a push came from WeChat, but not
when: a recorded push could be replayed forever. So a push is accepted only when its signed
`timestamp` lies within FRESH_SECONDS of our clock and its (timestamp, nonce) pair has not been
accepted before; the pairs are kept in `wechat_push_nonces` for the window and deleted after.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.errors import DomainError
from server.models import WeChatPushNonce

#: How far a push's timestamp may lie from our clock, either way.
FRESH_SECONDS = 300
#: Largest push body read (WeChat's subscription events are a few hundred bytes).
MAX_PUSH_BYTES = 64 * 1024
#: Longest nonce kept (WeChat's are about 10 digits).
MAX_NONCE_CHARS = 64


class PushRefused(DomainError):
    status = 403
    code = "bad_signature"
    message = "签名校验失败"


class PushTooLarge(DomainError):
    status = 413
    code = "push_too_large"
    message = f"推送消息超过 {MAX_PUSH_BYTES // 1024} KB，已拒绝"


def accept_push(db: Session, *, timestamp: str, nonce: str, now: datetime) -> None:
    """Record a signed push's (timestamp, nonce), refusing (403) a stale timestamp or a pair
    seen before; forget pairs older than the window. In the caller's transaction: of two
    identical pushes at once, the second waits for the first and is refused."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise PushRefused("推送的时间戳无效", code="push_stale")
    sent = int(timestamp)
    if abs(now.timestamp() - sent) > FRESH_SECONDS:
        raise PushRefused(
            f"推送的时间戳与服务器时间相差超过 {FRESH_SECONDS // 60} 分钟，已拒绝",
            code="push_stale",
        )
    if not nonce or len(nonce) > MAX_NONCE_CHARS:
        raise PushRefused("推送的随机数无效", code="push_replayed")
    db.execute(
        delete(WeChatPushNonce).where(
            WeChatPushNonce.seen_at < now - timedelta(seconds=2 * FRESH_SECONDS)
        )
    )
    seen = select(WeChatPushNonce.id).where(
        WeChatPushNonce.timestamp == sent, WeChatPushNonce.nonce == nonce
    )
    if db.scalar(seen) is not None:
        raise _replayed()
    try:
        with savepoint(db):
            db.add(WeChatPushNonce(timestamp=sent, nonce=nonce, seen_at=now))
            db.flush()
    except IntegrityError as exc:
        raise _replayed() from exc


def _replayed() -> PushRefused:
    return PushRefused("该推送已处理过（重放），已拒绝", code="push_replayed")
