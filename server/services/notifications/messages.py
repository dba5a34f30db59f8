"""What residents hear: WeChat subscribe messages through the outbox, and the in-app inbox.

A state change calls `notify_application_event` in its own transaction; that writes one outbox row
(sent later by the worker, see worker/outbox.py) and one inbox row with the same content, both
under a deduplication key, so a change reported twice still makes one message. Template fields
are formatted here to WeChat's rules, so a send is never refused for a long name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.config import Config
from server.errors import NotFound
from server.models import (
    Application,
    ApplicationStatus,
    Channel,
    InboxMessage,
    OutboxMessage,
    OutboxState,
    Role,
    Subscription,
    SubscriptionStatus,
    User,
)
from server.services.kernel.access import Actor, require_role
from server.services.kernel.outcomes import TYPE_LABELS, outcome_text

#: WeChat's field limits (characters), by the keyword's type prefix.
LIMITS: dict[str, int] = {
    "thing": 20,
    "name": 10,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "phrase": 5,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_NOT_CJK = re.compile(r"[^\u4e00-\u9fff]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x21-\x7e]")
ELLIPSIS = "…"

#: Channels where staff filed for a person (窗口办, 电话办): no one to message in WeChat; the
#: person is told through an inform task (services/notifications/informing.py).
STAFF_FILED = frozenset({Channel.WINDOW, Channel.PHONE})

#: The mini-program page that shows one application.
APPLICATION_PAGE = "pages/detail/detail"


def format_field(keyword: str, value: Any) -> str:
    """`value` made acceptable for template field `keyword` (e.g. "thing1"), cut where too long.

    `thing`/`name` keep their start and end with "…"; `phrase` (≤ 5 Chinese characters, nothing
    else) and `character_string` (visible ASCII) are cut without an ellipsis, which they forbid;
    `time` and `date` take datetimes and dates.
    """
    kind = keyword.rstrip("0123456789")
    if kind == "time":
        return f"{value:%Y年%m月%d日 %H:%M}"
    if kind == "date":
        return f"{value:%Y年%m月%d日}"
    text = _CONTROL.sub(" ", str(value)).strip() or "-"
    limit = LIMITS.get(kind)
    if kind == "phrase":
        return (_NOT_CJK.sub("", text) or "更新")[:limit]
    if kind == "character_string":
        return (_NOT_PRINTABLE_ASCII.sub("", text) or "-")[:limit]
    if kind == "number":
        digits = re.sub(r"[^\d.]", "", text) or "0"
        return digits[:limit]
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text


@dataclass(frozen=True, slots=True)
class Template:
    event: str
    template_id: str
    #: What the mini-program shows when asking for the subscription.
    title: str
    long_term: bool


def templates(config: Config) -> list[Template]:
    long_term = {t.strip() for t in config.wechat_long_term_templates.split(",") if t.strip()}
    pairs = [
        ("received", config.wechat_template_received, "申请受理通知"),
        ("status", config.wechat_template_status, "办理进度通知"),
        ("result", config.wechat_template_result, "办理结果通知"),
        ("revisit", config.wechat_template_revisit, "回访评价提醒"),
    ]
    return [Template(e, tid, title, tid in long_term) for e, tid, title in pairs]


def template_for(config: Config, event: str) -> Template:
    return next(t for t in templates(config) if t.event == event)


#: Status word for each step (phrase: ≤ 5 Chinese characters).
_STATUS_PHRASE: dict[ApplicationStatus, str] = {
    ApplicationStatus.SUBMITTED: "已提交",
    ApplicationStatus.ACCEPTED: "已受理",
    ApplicationStatus.INVESTIGATING: "调查核实中",
    ApplicationStatus.DECIDED: "已办结",
}


def _application_number(application: Application) -> str:
    return f"SQ{application.id:08d}"


def _content(
    application: Application, status: ApplicationStatus, *, now: datetime
) -> tuple[str, dict[str, Any], str, str]:
    """(event, raw template fields, inbox title, inbox body) for an application's new status.

    A helper who filed on someone's behalf reads whose application it is ("您为张三代办的…")."""
    kind = f"{TYPE_LABELS[application.type]}申请"
    number = _application_number(application)
    whose = f"您为{application.name}代办的" if application.on_behalf else "您的"
    thing = f"{application.name}的{kind}" if application.on_behalf else kind
    if status is ApplicationStatus.SUBMITTED:
        tip = "我们会尽快受理，请留意后续通知"
        fields = {"thing1": thing, "character_string2": number, "time3": now, "thing4": tip}
        return "received", fields, "申请已提交", f"{whose}{kind}（{number}）已提交。{tip}。"
    if status is ApplicationStatus.DECIDED:
        amount = f"{application.amount.normalize():f}" if application.amount is not None else None
        result = outcome_text(application.outcome or "", application.outcome_reason, amount)
        fields = {"thing1": thing, "phrase2": "已办结", "thing3": result, "time4": now}
        return "result", fields, "申请已办结", f"{whose}{kind}（{number}）已办结：{result}。"
    phrase = _STATUS_PHRASE[status]
    note = (
        "工作人员可能与您联系入户核实"
        if status is ApplicationStatus.INVESTIGATING
        else "请耐心等待"
    )
    fields = {"thing1": thing, "phrase2": phrase, "time3": now, "thing4": note}
    return "status", fields, f"申请{phrase}", f"{whose}{kind}（{number}）{phrase}。{note}。"


def notify_application_event(
    db: Session, application: Application, status: ApplicationStatus, *, now: datetime
) -> OutboxMessage | None:
    """Queue the WeChat message and write the inbox entry for an application's new status.

    Goes to whoever filed it: the resident, or the helper who filed on their behalf. A withdrawal
    is the filer's own act and sends nothing.
    """
    if status is ApplicationStatus.WITHDRAWN or application.channel in STAFF_FILED:
        return None
    event, raw, title, body = _content(application, status, now=now)
    page = f"{APPLICATION_PAGE}?id={application.id}"
    return _enqueue(
        db,
        user_id=application.filed_by_id,
        dedup_key=f"application:{application.id}:{status.value}",
        event=event,
        raw=raw,
        page=page,
        title=title,
        body=body,
        application_id=application.id,
        now=now,
    )


def notify_papers_requested(
    db: Session, application: Application, what: str, *, event_id: int, now: datetime
) -> OutboxMessage | None:
    """Tell the filer which documents staff need for their application (one message per ask)."""
    if application.channel in STAFF_FILED:
        return None
    kind = f"{TYPE_LABELS[application.type]}申请"
    number = _application_number(application)
    whose = f"您为{application.name}代办的" if application.on_behalf else "您的"
    thing = f"{application.name}的{kind}" if application.on_behalf else kind
    raw = {"thing1": thing, "phrase2": "请补充材料", "time3": now, "thing4": what}
    return _enqueue(
        db,
        user_id=application.filed_by_id,
        dedup_key=f"application:{application.id}:papers:{event_id}",
        event="status",
        raw=raw,
        page=f"{APPLICATION_PAGE}?id={application.id}",
        title="请补充申请材料",
        body=f"{whose}{kind}（{number}）需要补充材料：{what}。请在小程序中该申请下上传照片。",
        application_id=application.id,
        now=now,
    )


def notify_revisit_request(
    db: Session, application: Application, *, now: datetime
) -> OutboxMessage | None:
    """Ask the filer to rate how their application was handled (回访评价)."""
    raw = {"thing1": "救助服务回访", "thing2": "请对本次救助服务进行评价", "time3": now}
    return _enqueue(
        db,
        user_id=application.filed_by_id,
        dedup_key=f"application:{application.id}:revisit",
        event="revisit",
        raw=raw,
        page=f"{APPLICATION_PAGE}?id={application.id}&rate=1",
        title="请评价本次救助服务",
        body="您的申请已办结，请在小程序中对本次服务进行评价，您的意见对我们很重要。",
        application_id=application.id,
        now=now,
    )


def _enqueue(
    db: Session,
    *,
    user_id: int,
    dedup_key: str,
    event: str,
    raw: dict[str, Any],
    page: str,
    title: str,
    body: str,
    application_id: int | None,
    now: datetime,
) -> OutboxMessage | None:
    if db.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)):
        return None  # this change was already reported
    message = OutboxMessage(
        dedup_key=dedup_key,
        user_id=user_id,
        event=event,
        data={key: format_field(key, value) for key, value in raw.items()},
        page=page,
        application_id=application_id,
        state=OutboxState.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.add(message)
    db.add(
        InboxMessage(
            dedup_key=dedup_key,
            user_id=user_id,
            title=title,
            body=body,
            page=page,
            application_id=application_id,
            created_at=now,
        )
    )
    db.flush()
    return message


# --- subscriptions ---------------------------------------------------------------------------


def record_subscriptions(
    db: Session, results: dict[str, str], *, config: Config, actor: Actor, now: datetime
) -> list[Subscription]:
    """Record what `wx.requestSubscribeMessage` answered: each accept allows one more send."""
    assert actor.user_id is not None
    known = {t.template_id: t for t in templates(config)}
    rows = []
    for template_id, answer in results.items():
        if template_id not in known:
            continue  # an old mini-program asking for a retired template
        rows.append(
            _apply_answer(
                db,
                actor.user_id,
                template_id,
                SubscriptionStatus(answer),
                long_term=known[template_id].long_term,
                now=now,
                increment=True,
            )
        )
    db.flush()
    return rows


def _apply_answer(
    db: Session,
    user_id: int,
    template_id: str,
    status: SubscriptionStatus,
    *,
    long_term: bool,
    now: datetime,
    increment: bool,
) -> Subscription:
    row = db.scalar(
        select(Subscription).where(
            Subscription.user_id == user_id, Subscription.template_id == template_id
        )
    )
    if row is None:
        row = Subscription(user_id=user_id, template_id=template_id, quota=0, updated_at=now)
        db.add(row)
    row.status = status
    row.long_term = long_term
    row.updated_at = now
    if status is SubscriptionStatus.ACCEPT:
        # The mini-program's report adds one send; WeChat's own popup event (which reports the
        # same tap) only makes sure there is at least one, so a tap is never counted twice.
        row.quota = row.quota + 1 if increment else max(row.quota, 1)
    else:
        row.quota = 0
    return row


def record_wechat_event(
    db: Session, *, openid: str, items: list[dict[str, Any]], config: Config, now: datetime
) -> int:
    """Apply WeChat's subscribe_msg_popup_event / subscribe_msg_change_event for one user."""
    user = db.scalar(select(User).where(User.openid == openid))
    if user is None:
        return 0
    long_term = {t.template_id for t in templates(config) if t.long_term}
    applied = 0
    for item in items:
        template_id = str(item.get("TemplateId") or "")
        answer = str(item.get("SubscribeStatusString") or "").lower()
        if not template_id or answer not in {s.value for s in SubscriptionStatus}:
            continue
        _apply_answer(
            db,
            user.id,
            template_id,
            SubscriptionStatus(answer),
            long_term=template_id in long_term,
            now=now,
            increment=False,
        )
        applied += 1
    db.flush()
    return applied


# --- inbox -----------------------------------------------------------------------------------


def list_inbox(
    db: Session, *, actor: Actor, unread_only: bool, page: int, per_page: int
) -> tuple[list[InboxMessage], int, int]:
    """(messages newest first, total, unread) for the calling user."""
    mine = InboxMessage.user_id == actor.user_id
    query = select(InboxMessage).where(mine)
    if unread_only:
        query = query.where(InboxMessage.read_at.is_(None))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    unread = db.scalar(select(func.count()).where(mine, InboxMessage.read_at.is_(None))) or 0
    rows = db.scalars(
        query.order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total, unread


def mark_read(db: Session, message_id: int, *, actor: Actor, now: datetime) -> InboxMessage:
    message = db.scalar(
        select(InboxMessage).where(
            InboxMessage.id == message_id, InboxMessage.user_id == actor.user_id
        )
    )
    if message is None:
        raise NotFound("未找到该消息")
    if message.read_at is None:
        message.read_at = now
        db.flush()
    return message


# --- what the application's timeline shows ---------------------------------------------------

NOTICE_LABELS: dict[OutboxState, str] = {
    OutboxState.PENDING: "微信通知发送中",
    OutboxState.SENDING: "微信通知发送中",
    OutboxState.SENT: "已通过微信通知",
    OutboxState.SKIPPED: "未订阅微信通知，可在小程序消息中查看",
    OutboxState.FAILED: "微信通知发送失败，可在小程序消息中查看",
}


def notices_for(db: Session, application_id: int) -> dict[str, str]:
    """Step status → what became of its WeChat message, for the application's timeline."""
    rows = db.execute(
        select(OutboxMessage.dedup_key, OutboxMessage.state).where(
            OutboxMessage.application_id == application_id
        )
    )
    return {key.rsplit(":", 1)[1]: NOTICE_LABELS[state] for key, state in rows}


# --- the center's view -----------------------------------------------------------------------


def outbox_stats(db: Session, *, now: datetime) -> dict[str, Any]:
    counts = dict.fromkeys((s.value for s in OutboxState), 0)
    for state, n in db.execute(
        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    ):
        counts[state.value] = n
    oldest = db.scalar(
        select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.state.in_([OutboxState.PENDING, OutboxState.SENDING])
        )
    )
    return {
        "pending": counts["pending"] + counts["sending"],
        "sent": counts["sent"],
        "skipped": counts["skipped"],
        "failed": counts["failed"],
        "oldest_pending_seconds": int((now - oldest).total_seconds()) if oldest else None,
    }


def outbox_status(db: Session, *, actor: Actor, now: datetime) -> dict[str, Any]:
    """The outbox at a glance for the system administrator: messages by state, the oldest
    still waiting and how long it has waited, and the latest failures' reasons."""
    require_role(actor, Role.SYSTEM_ADMIN)
    counts = dict(
        db.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    )
    oldest = db.scalar(
        select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.state.in_((OutboxState.PENDING, OutboxState.SENDING))
        )
    )
    failures = db.execute(
        select(OutboxMessage.event, OutboxMessage.last_error, OutboxMessage.created_at)
        .where(OutboxMessage.state == OutboxState.FAILED)
        .order_by(OutboxMessage.id.desc())
        .limit(10)
    ).all()
    return {
        "counts": {s.value: int(counts.get(s, 0)) for s in OutboxState},
        "oldest_pending_at": oldest,
        "oldest_pending_minutes": int((now - oldest).total_seconds() // 60) if oldest else None,
        "failures": [
            {"event": e, "reason": (r or "")[:300], "created_at": at} for e, r, at in failures
        ],
    }
