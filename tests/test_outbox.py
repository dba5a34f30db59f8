"""The outbox: WeChat messages are never lost and never sent twice (beyond the documented window).

Everything goes through wechatpy to the fake WeChat server over loopback HTTP; faults are the
fake's own (`add_fault`, `expire_tokens`).
"""

from __future__ import annotations

import itertools
import random
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server import clock
from server.models import (
    InboxMessage,
    OutboxMessage,
    OutboxState,
    Role,
    Subscription,
    SubscriptionStatus,
    User,
)
from server.services.notifications.messages import _enqueue
from server.wechat.fake_state import fake_openid
from server.worker import outbox

SEND = "cgi-bin/message/subscribe/send"
RECEIVED = "tmpl-application-received"
_names = itertools.count(1)


class Clock:
    """A clock the test moves by hand, so backoff and leases need no sleeping."""

    def __init__(self) -> None:
        self.now = clock.now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def at() -> Clock:
    return Clock()


def subscriber(db, *, quota: int = 1, long_term: bool = False) -> User:
    name = f"sub{next(_names)}"
    user = User(role=Role.RESIDENT, openid=fake_openid(name), created_at=clock.now())
    db.add(user)
    db.flush()
    db.add(
        Subscription(
            user_id=user.id,
            template_id=RECEIVED,
            status=SubscriptionStatus.ACCEPT,
            quota=quota,
            long_term=long_term,
            updated_at=clock.now(),
        )
    )
    db.commit()
    return user


def queue(db, user: User, n: int = 1, *, at: Clock) -> list[OutboxMessage]:
    """`n` "received" messages for `user`, each reporting a different change."""
    rows = []
    for _ in range(n):
        i = next(_names)
        rows.append(
            _enqueue(
                db,
                user_id=user.id,
                dedup_key=f"test:{i}",
                event="received",
                raw={"thing1": f"消息{i}", "character_string2": f"SQ{i:08d}", "time3": clock.now()},
                page="pages/detail/detail?id=1",
                title="测试",
                body="测试消息",
                application_id=None,
                now=at.now,
            )
        )
    db.commit()
    return rows


def deliver(runtime, at: Clock, **kwargs: Any) -> outbox.DeliveryReport:
    return outbox.deliver_due(
        runtime.session_factory,
        runtime.gateway,
        config=runtime.config,
        clock=at,
        rng=random.Random(7),
        **kwargs,
    )


def sends(fake) -> list[dict[str, Any]]:
    return fake.calls(SEND)


def states(db) -> list[str]:
    db.expire_all()
    return [m.state.value for m in db.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def test_a_queued_message_is_sent_once_and_uses_one_acceptance(db, runtime, fake_wechat, at):
    user = subscriber(db, quota=1)
    queue(db, user, at=at)
    assert deliver(runtime, at).sent == 1
    assert states(db) == ["sent"]
    assert db.scalar(select(Subscription.quota)) == 0
    assert deliver(runtime, at).handled == 0
    assert len(sends(fake_wechat)) == 1


def test_without_quota_the_message_is_skipped_and_kept_in_the_inbox(db, runtime, fake_wechat, at):
    user = subscriber(db, quota=1)
    queue(db, user, 2, at=at)
    report = deliver(runtime, at)
    assert (report.sent, report.skipped) == (1, 1)
    assert sorted(states(db)) == ["sent", "skipped"]
    assert db.scalar(select(InboxMessage.id).where(InboxMessage.user_id == user.id)) is not None
    assert len(sends(fake_wechat)) == 1


def test_a_long_term_subscription_allows_every_message(db, runtime, fake_wechat, at):
    user = subscriber(db, quota=0, long_term=True)
    queue(db, user, 3, at=at)
    config = runtime.config.with_overrides(wechat_long_term_templates=RECEIVED)
    report = outbox.deliver_due(runtime.session_factory, runtime.gateway, config=config, clock=at)
    assert report.sent == 3


def test_wechat_down_for_a_while_then_back_delivers_every_message_exactly_once(
    db, runtime, fake_wechat, at
):
    users = [subscriber(db) for _ in range(5)]
    for user in users:
        queue(db, user, at=at)
    fake_wechat.add_fault(SEND, http_status=503, times=5)  # the first round fails entirely
    first = deliver(runtime, at)
    assert first.retried == 5 and first.sent == 0
    assert deliver(runtime, at).handled == 0  # nothing is due before its backoff
    at.advance(minutes=1)
    assert deliver(runtime, at).sent == 5
    assert states(db) == ["sent"] * 5
    delivered = [c for c in sends(fake_wechat)][5:]  # after the five refused attempts
    assert sorted(c["json"]["touser"] for c in delivered) == sorted(u.openid for u in users)


def test_system_busy_is_retried_with_growing_delays(db, runtime, fake_wechat, at):
    queue(db, subscriber(db), at=at)
    fake_wechat.add_fault(SEND, errcode=-1, errmsg="system error", times=3)
    waits = []
    for _ in range(3):
        assert deliver(runtime, at).retried == 1
        db.expire_all()
        row = db.scalar(select(OutboxMessage))
        waits.append((row.next_attempt_at - at.now).total_seconds())
        at.now = row.next_attempt_at
    assert waits[0] < waits[1] < waits[2]
    assert deliver(runtime, at).sent == 1


def test_retry_delays_double_with_jitter_up_to_an_hour():
    rng = random.Random(1)
    for attempts in range(1, 20):
        step = min(10 * 2 ** (attempts - 1), 3600)
        delay = outbox.retry_delay(attempts, rng).total_seconds()
        assert step / 2 <= delay <= step


def test_a_slow_answer_beyond_the_timeout_is_retried_and_the_window_is_visible(
    db, runtime, fake_wechat, at
):
    """The read timeout is 2 s in the tests; the fake answers after 2.5 s. WeChat may still have
    delivered that first attempt: this is the documented at-least-once window."""
    queue(db, subscriber(db), at=at)
    fake_wechat.add_fault(SEND, delay=2.5, times=1)
    assert deliver(runtime, at).retried == 1
    at.advance(minutes=1)
    assert deliver(runtime, at).sent == 1
    assert states(db) == ["sent"]
    assert len(sends(fake_wechat)) == 2


def test_an_expired_access_token_is_refreshed_and_the_send_retried_once(
    db, runtime, fake_wechat, at
):
    user = subscriber(db, quota=2)
    queue(db, user, at=at)
    assert deliver(runtime, at).sent == 1
    fake_wechat.expire_tokens()
    queue(db, user, at=at)
    assert deliver(runtime, at).sent == 1
    assert len(sends(fake_wechat)) == 3  # the refused one, then the retry with a new token
    assert (
        len(fake_wechat.calls("cgi-bin/stable_token")) + len(fake_wechat.calls("cgi-bin/token"))
        == 2
    )


def test_43101_marks_the_message_skipped_and_clears_the_quota(db, runtime, fake_wechat, at):
    queue(db, subscriber(db, quota=3), at=at)
    fake_wechat.add_fault(SEND, errcode=43101, errmsg="user refuse to accept the msg")
    assert deliver(runtime, at).skipped == 1
    db.expire_all()
    row = db.scalar(select(OutboxMessage))
    assert row.state is OutboxState.SKIPPED and "43101" in row.last_error
    assert db.scalar(select(Subscription.quota)) == 0
    at.advance(hours=2)
    assert deliver(runtime, at).handled == 0


@pytest.mark.parametrize("errcode", [47003, 40003, 41030])
def test_refused_data_fails_with_its_reason_and_is_never_retried(
    db, runtime, fake_wechat, at, errcode
):
    queue(db, subscriber(db), at=at)
    fake_wechat.add_fault(SEND, errcode=errcode, errmsg="argument invalid! data.thing1.value")
    assert deliver(runtime, at).failed == 1
    db.expire_all()
    row = db.scalar(select(OutboxMessage))
    assert row.state is OutboxState.FAILED and str(errcode) in row.last_error
    at.advance(hours=2)
    assert deliver(runtime, at).handled == 0
    assert len(sends(fake_wechat)) == 1


def test_a_user_without_wechat_identity_fails_at_once(db, runtime, fake_wechat, at):
    user = subscriber(db)
    user.openid = None
    db.commit()
    queue(db, user, at=at)
    assert deliver(runtime, at).failed == 1
    assert sends(fake_wechat) == []


def test_a_worker_killed_between_sending_and_marking(db, runtime, fake_wechat, at):
    """The dead worker sent but never marked. Until its lease runs out nobody touches the row;
    then it is sent once more (the documented window) and never again."""
    queue(db, subscriber(db), at=at)
    report = outbox.DeliveryReport()
    claimed = outbox._claim(
        runtime.session_factory, config=runtime.config, now=at.now, batch=10, report=report
    )
    for message in claimed:  # what the worker did before it died
        runtime.gateway.send_subscribe_message(
            openid=message.openid,
            template_id=message.template_id,
            data=message.data,
            page=message.page,
        )
    assert states(db) == ["sending"]
    at.advance(seconds=30)
    assert deliver(runtime, at).handled == 0  # still leased to the dead worker
    at.advance(seconds=31)
    assert deliver(runtime, at).sent == 1
    at.advance(hours=1)
    assert deliver(runtime, at).handled == 0
    assert len(sends(fake_wechat)) == 2


def test_the_dedup_key_makes_a_repeated_change_queue_nothing(db, runtime, fake_wechat, at):
    user = subscriber(db, quota=5)
    first = _enqueue(
        db,
        user_id=user.id,
        dedup_key="application:1:accepted",
        event="received",
        raw={"thing1": "x", "character_string2": "SQ1", "time3": at.now},
        page=None,
        title="t",
        body="b",
        application_id=None,
        now=at.now,
    )
    again = _enqueue(
        db,
        user_id=user.id,
        dedup_key="application:1:accepted",
        event="received",
        raw={"thing1": "x", "character_string2": "SQ1", "time3": at.now},
        page=None,
        title="t",
        body="b",
        application_id=None,
        now=at.now,
    )
    db.commit()
    assert first is not None and again is None
    assert deliver(runtime, at).sent == 1
    assert len(sends(fake_wechat)) == 1


def test_two_workers_on_postgresql_never_send_the_same_message(
    db, runtime, fake_wechat, at, engine_name
):
    if engine_name != "postgresql":
        pytest.skip("SKIP LOCKED sharing is a PostgreSQL feature; SQLite runs one worker")
    for _ in range(40):
        queue(db, subscriber(db), at=at)
    barrier = threading.Barrier(2)
    reports: list[outbox.DeliveryReport] = []

    def worker() -> None:
        barrier.wait()
        reports.append(deliver(runtime, at, batch=5))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in reports) == 40
    assert all(r.sent > 0 for r in reports), "both workers took part"
    texts = [c["json"]["data"]["thing1"]["value"] for c in sends(fake_wechat)]
    assert len(texts) == 40 and len(set(texts)) == 40
