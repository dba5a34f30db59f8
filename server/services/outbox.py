"""Delivering the outbox: every queued message reaches WeChat once, or ends with its reason.

Each round claims a batch of due rows in a short transaction (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several workers share the table; SQLite runs one worker), marks them SENDING with a
lease, and commits. Each message is then sent outside any transaction, and its result written in
another short transaction right away.

At-least-once window: if a worker dies after WeChat accepted a message and before that last
commit (a few milliseconds, or up to the read timeout when WeChat answers slowly), the row is
still SENDING; when its lease runs out another worker sends it again. WeChat's send API has no
idempotency key, so that one message may arrive twice. Nothing else can duplicate a message: the
dedup key makes each change enqueue once, and a claimed row is invisible to other workers until
its lease expires.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.config import Config
from server.models import OutboxMessage, OutboxState, Subscription, SubscriptionStatus, User
from server.services.notifications import template_for
from server.wechat.interface import WeChatError, WeChatGateway

#: How long a claimed row stays with its worker; longer than the slowest WeChat answer.
LEASE = timedelta(seconds=60)
#: Retry delays grow 10 s, 20 s, 40 s ... up to an hour, with jitter; then the message fails.
BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 15
#: 43101: the user has no quota for this template (never subscribed, or used it up).
NO_QUOTA = 43101
NO_QUOTA_REASON = "未订阅或订阅次数已用完 (43101)"


@dataclass
class DeliveryReport:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.skipped + self.failed + self.retried


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    user_id: int
    openid: str
    template_id: str
    long_term: bool
    data: dict[str, Any]
    page: str | None
    attempts: int


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter (50–100 % of the step), so retries do not march in step."""
    step = min(BASE_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)
    return step * rng.uniform(0.5, 1.0)


def deliver_due(
    session_factory: sessionmaker[Session],
    gateway: WeChatGateway,
    *,
    config: Config,
    clock: Callable[[], datetime],
    batch: int = 50,
    max_rounds: int | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Send what is due until nothing is left (or `max_rounds` batches); returns the counts."""
    rng = rng or random.Random()
    report = DeliveryReport()
    rounds = 0
    while max_rounds is None or rounds < max_rounds:
        rounds += 1
        claimed = _claim(session_factory, config=config, now=clock(), batch=batch, report=report)
        if not claimed:
            break
        for message in claimed:
            _send(
                session_factory,
                gateway,
                message,
                config=config,
                clock=clock,
                rng=rng,
                report=report,
            )
    return report


def _claim(
    session_factory: sessionmaker[Session],
    *,
    config: Config,
    now: datetime,
    batch: int,
    report: DeliveryReport,
) -> list[_Claimed]:
    """Take up to `batch` due rows; settle at once those that cannot be sent (no quota)."""
    claimed: list[_Claimed] = []
    with session_factory() as db, db.begin():
        due = or_(
            (OutboxMessage.state == OutboxState.PENDING) & (OutboxMessage.next_attempt_at <= now),
            # A worker died holding these: its lease ran out (the at-least-once window).
            (OutboxMessage.state == OutboxState.SENDING) & (OutboxMessage.lease_until < now),
        )
        rows = db.scalars(
            select(OutboxMessage)
            .where(due)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            template = template_for(config, row.event)
            openid = db.scalar(select(User.openid).where(User.id == row.user_id))
            if not openid:
                _settle(row, OutboxState.FAILED, "该用户没有微信身份", now=now)
                report.failed += 1
                continue
            reclaimed = row.state is OutboxState.SENDING  # still holds its reservation
            if not (template.long_term or reclaimed) and not _reserve_quota(
                db, row.user_id, template.template_id
            ):
                _settle(row, OutboxState.SKIPPED, "未订阅该消息", now=now)
                report.skipped += 1
                continue
            row.state = OutboxState.SENDING
            row.lease_until = now + LEASE
            row.attempts += 1
            claimed.append(
                _Claimed(
                    id=row.id,
                    user_id=row.user_id,
                    openid=openid,
                    template_id=template.template_id,
                    long_term=template.long_term,
                    data=dict(row.data),
                    page=row.page,
                    attempts=row.attempts,
                )
            )
    return claimed


def _reserve_quota(db: Session, user_id: int, template_id: str) -> bool:
    """Take one send from the user's one-time acceptances; False when none is left.

    Taken when the row is claimed (so a batch cannot overspend it), given back when WeChat
    refuses the send for another reason.
    """
    taken = db.execute(
        update(Subscription)
        .where(
            Subscription.user_id == user_id,
            Subscription.template_id == template_id,
            Subscription.status == SubscriptionStatus.ACCEPT,
            Subscription.quota > 0,
        )
        .values(quota=Subscription.quota - 1)
    ).rowcount
    return bool(taken)


def _return_quota(db: Session, user_id: int, template_id: str) -> None:
    db.execute(
        update(Subscription)
        .where(Subscription.user_id == user_id, Subscription.template_id == template_id)
        .values(quota=Subscription.quota + 1)
    )


def _settle(row: OutboxMessage, state: OutboxState, reason: str | None, *, now: datetime) -> None:
    row.state = state
    row.last_error = reason
    row.lease_until = None
    if state is OutboxState.SENT:
        row.sent_at = now


def _send(
    session_factory: sessionmaker[Session],
    gateway: WeChatGateway,
    message: _Claimed,
    *,
    config: Config,
    clock: Callable[[], datetime],
    rng: random.Random,
    report: DeliveryReport,
) -> None:
    try:
        gateway.send_subscribe_message(
            openid=message.openid,
            template_id=message.template_id,
            data=message.data,
            page=message.page,
            miniprogram_state=config.wechat_miniprogram_state,
        )
    except WeChatError as exc:
        _record_failure(session_factory, message, exc, now=clock(), rng=rng, report=report)
        return
    with session_factory() as db, db.begin():
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.state == OutboxState.SENDING)
            .values(state=OutboxState.SENT, sent_at=clock(), lease_until=None, last_error=None)
        )
    report.sent += 1


def _record_failure(
    session_factory: sessionmaker[Session],
    message: _Claimed,
    exc: WeChatError,
    *,
    now: datetime,
    rng: random.Random,
    report: DeliveryReport,
) -> None:
    reason = f"{exc.errcode}: {exc.errmsg}"[:500]
    with session_factory() as db, db.begin():
        row = db.get(OutboxMessage, message.id)
        if row is None or row.state is not OutboxState.SENDING:
            return
        if exc.errcode == NO_QUOTA:
            # WeChat knows better than our count: the user has no sends left for this template.
            db.execute(
                update(Subscription)
                .where(
                    Subscription.user_id == message.user_id,
                    Subscription.template_id == message.template_id,
                )
                .values(quota=0)
            )
            _settle(row, OutboxState.SKIPPED, NO_QUOTA_REASON, now=now)
            report.skipped += 1
        elif _worth_retrying(exc) and message.attempts < MAX_ATTEMPTS:
            _give_back(db, message)
            row.state = OutboxState.PENDING
            row.lease_until = None
            row.last_error = reason
            row.next_attempt_at = now + retry_delay(message.attempts, rng)
            report.retried += 1
        else:
            # 47003 bad data, 40003 bad openid, 41030 bad page, 40037 bad template, ...: the
            # same request would fail the same way; keep the reason for the center to read.
            _give_back(db, message)
            _settle(row, OutboxState.FAILED, reason, now=now)
            report.failed += 1
    report.errors.append(reason)


def _give_back(db: Session, message: _Claimed) -> None:
    if not message.long_term:
        _return_quota(db, message.user_id, message.template_id)


def _worth_retrying(exc: WeChatError) -> bool:
    """Network errors, timeouts, -1, token trouble (already retried once), rate limits."""
    return exc.retryable or exc.is_rate_limited
