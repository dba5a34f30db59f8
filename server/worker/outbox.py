"""Delivering the outbox: every queued message reaches WeChat once, or ends with its reason.

Each round claims up to 100 due rows in one short transaction (one SELECT joined with the
recipient's openid, `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers share the table,
SQLite runs one worker; then one UPDATE gives them a lease), with Core statements, not ORM
objects. The messages are then sent one after another outside any transaction, over a kept
HTTP connection (server/wechat/transport.py), and each `sent` mark is one autocommit UPDATE on
a connection kept for the whole run: a single round trip, committed before the next send.

At-least-once window: one message per worker crash. A worker that dies after WeChat accepted
a message and before its mark committed (one round trip, or up to the read timeout when WeChat
answers slowly) leaves that one row SENDING; when its lease runs out another worker sends it
again. It cannot leave two: the next send starts only after the mark committed, and a worker
sends nothing concurrently (N sends in flight would make the window N messages; throughput
comes from more worker processes instead). Marks of refusals and retries are outside the
window (a refused message reached nobody). WeChat's send API has no idempotency key, so that
one message may arrive twice. Nothing else can duplicate a message: the dedup key makes each
change enqueue once, and a claimed row is invisible to other workers until its lease expires.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.config import Config
from server.metrics import OUTBOX
from server.models import (
    OutboxMessage,
    OutboxState,
    Subscription,
    SubscriptionStatus,
    User,
)
from server.services.kernel.backoff import backoff
from server.services.notifications.messages import template_for
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
    """A message's wait before its next send (`kernel.backoff`: 10 s, doubling, up to an hour)."""
    return backoff(attempts, base=BASE_DELAY, cap=MAX_DELAY, rng=rng)


def deliver_due(
    session_factory: sessionmaker[Session],
    gateway: WeChatGateway,
    *,
    config: Config,
    clock: Callable[[], datetime],
    batch: int = 100,
    max_rounds: int | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Send what is due until nothing is left (or `max_rounds` batches); returns the counts."""
    rng = rng or random.Random()
    report = DeliveryReport()
    engine = _engine(session_factory)
    rounds = 0
    # One connection in autocommit for every `sent` mark of this run: one round trip each.
    with engine.connect() as marks:
        marks.execution_options(isolation_level="AUTOCOMMIT")
        while max_rounds is None or rounds < max_rounds:
            rounds += 1
            claimed = _claim(engine, config=config, now=clock(), batch=batch, report=report)
            if not claimed:
                break
            for message in claimed:
                _send(
                    marks,
                    session_factory,
                    gateway,
                    message,
                    config=config,
                    clock=clock,
                    rng=rng,
                    report=report,
                )
    _count(report)
    return report


def _count(report: DeliveryReport) -> None:
    for outcome in ("sent", "skipped", "failed", "retried"):
        if value := getattr(report, outcome):
            OUTBOX.labels(outcome).inc(value)


def _engine(session_factory: sessionmaker[Session]) -> Engine:
    bind = session_factory.kw.get("bind")
    if isinstance(bind, Engine):
        return bind
    with session_factory() as db:
        return db.get_bind().engine  # type: ignore[union-attr]


_OUT = OutboxMessage.__table__
_USERS = User.__table__
#: The claim: due rows with their recipient, locked (PostgreSQL; skipped if another worker
#: holds them). SQLite ignores FOR UPDATE: one worker, and its writes are serialised anyway.
_DUE_COLUMNS = (
    _OUT.c.id,
    _OUT.c.user_id,
    _OUT.c.event,
    _OUT.c.data,
    _OUT.c.page,
    _OUT.c.attempts,
    _OUT.c.state,
    _USERS.c.openid,
)
_MARK_SENT = (
    update(_OUT)
    .where(_OUT.c.id == bindparam("m_id"), _OUT.c.state == OutboxState.SENDING)
    .values(state=OutboxState.SENT, sent_at=bindparam("m_at"), lease_until=None, last_error=None)
)
_SETTLE = (
    update(_OUT)
    .where(_OUT.c.id == bindparam("m_id"))
    .values(state=bindparam("m_state"), last_error=bindparam("m_reason"), lease_until=None)
)


def _claim(
    engine: Engine,
    *,
    config: Config,
    now: datetime,
    batch: int,
    report: DeliveryReport,
) -> list[_Claimed]:
    """Take up to `batch` due rows in one short transaction (one SELECT, one UPDATE for the
    lease); settle at once those that cannot be sent (no WeChat identity, no quota)."""
    due = or_(
        (_OUT.c.state == OutboxState.PENDING) & (_OUT.c.next_attempt_at <= now),
        # A worker died holding these: its lease ran out (the at-least-once window).
        (_OUT.c.state == OutboxState.SENDING) & (_OUT.c.lease_until < now),
    )
    claimed: list[_Claimed] = []
    settled: list[dict[str, Any]] = []
    with engine.begin() as conn:
        rows = conn.execute(
            select(*_DUE_COLUMNS)
            .join_from(_OUT, _USERS, _USERS.c.id == _OUT.c.user_id)
            .where(due)
            .order_by(_OUT.c.next_attempt_at, _OUT.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True, of=_OUT)
        ).all()
        for row in rows:
            template = template_for(config, row.event)
            if not row.openid:
                settled.append(_settled(row.id, OutboxState.FAILED, "该用户没有微信身份"))
                report.failed += 1
                continue
            reclaimed = row.state is OutboxState.SENDING  # still holds its reservation
            if not (template.long_term or reclaimed) and not _reserve_quota(
                conn, row.user_id, template.template_id
            ):
                settled.append(_settled(row.id, OutboxState.SKIPPED, "未订阅该消息"))
                report.skipped += 1
                continue
            claimed.append(
                _Claimed(
                    id=row.id,
                    user_id=row.user_id,
                    openid=row.openid,
                    template_id=template.template_id,
                    long_term=template.long_term,
                    data=dict(row.data),
                    page=row.page,
                    attempts=row.attempts + 1,
                )
            )
        if settled:
            conn.execute(_SETTLE, settled)
        if claimed:
            conn.execute(
                update(_OUT)
                .where(_OUT.c.id.in_([m.id for m in claimed]))
                .values(
                    state=OutboxState.SENDING,
                    lease_until=now + LEASE,
                    attempts=_OUT.c.attempts + 1,
                )
            )
    return claimed


def _settled(message_id: int, state: OutboxState, reason: str) -> dict[str, Any]:
    return {"m_id": message_id, "m_state": state, "m_reason": reason}


def _reserve_quota(db: Session | Connection, user_id: int, template_id: str) -> bool:
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
    marks: Connection,
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
    # The at-least-once window is this statement's round trip: it commits before the next send.
    marks.execute(_MARK_SENT, {"m_id": message.id, "m_at": clock()})
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
