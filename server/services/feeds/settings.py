"""Feed settings: the registry's defaults plus what center staff changed (aliases, threshold)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import AuditEntry, Department, FeedSetting, Role, User
from server.services.feeds.normalise import header_key
from server.services.feeds.registry import BY_CODE, Feed, effective
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record

MAX_ALIASES_PER_COLUMN = 30


def feed_by_code(code: str) -> Feed:
    feed = BY_CODE.get(code)
    if feed is None:
        raise NotFound("未找到该数据项", code="feed_not_found")
    return feed


def department_code(db: Session, actor: Actor) -> str | None:
    if actor.department_id is None:
        return None
    return db.scalar(select(Department.code).where(Department.id == actor.department_id))


def access_feed(db: Session, code: str, *, actor: Actor, upload: bool = False) -> Feed:
    """The feed if `actor` may see it (center, leaders; department staff: their own feeds).

    Department staff asking about another department's feed get 404 when reading and 403 when
    uploading (the list of feeds is no secret; sending another department's data is refused).
    """
    feed = feed_by_code(code)
    if actor.role is Role.CENTER_STAFF:
        return feed
    if actor.role is Role.SYSTEM_ADMIN and not upload:
        return feed  # configures the feeds' settings
    if actor.role is Role.LEADER and not upload:
        return feed
    if actor.role is Role.DEPARTMENT_STAFF and department_code(db, actor) == feed.department:
        return feed
    if upload or actor.role is not Role.DEPARTMENT_STAFF:
        raise Forbidden(
            "只有本部门工作人员或区社会救助综合服务中心可以报送该数据", code="forbidden"
        )
    raise NotFound("未找到该数据项", code="feed_not_found")


def setting_for(db: Session, code: str) -> FeedSetting | None:
    return db.scalar(select(FeedSetting).where(FeedSetting.code == code))


def effective_feed(db: Session, code: str) -> Feed:
    """The registry's feed with the stored aliases and threshold applied."""
    feed = feed_by_code(code)
    setting = setting_for(db, code)
    if setting is None:
        return feed
    return effective(feed, aliases=setting.column_aliases, threshold=setting.threshold)


def settings_view(db: Session, code: str) -> dict[str, Any]:
    feed = feed_by_code(code)
    setting = setting_for(db, code)
    extra: dict[str, list[str]] = dict(setting.column_aliases) if setting else {}
    threshold = setting.threshold if setting and setting.threshold is not None else None
    return {
        "code": feed.code,
        "name": feed.name,
        "columns": [
            {
                "field": c.field,
                "label": c.label,
                "kind": c.kind.value,
                "required": c.required,
                "aliases": list(c.aliases),
                "extra_aliases": list(extra.get(c.field, [])),
            }
            for c in feed.columns
        ],
        "threshold_field": feed.threshold_field,
        "default_threshold": feed.threshold,
        "threshold": threshold if threshold is not None else feed.threshold,
        "updated_at": setting.updated_at if setting else None,
    }


def update_settings(
    db: Session,
    code: str,
    *,
    column_aliases: dict[str, list[str]] | None = None,
    threshold: Decimal | None = None,
    reset_threshold: bool = False,
    actor: Actor,
    now: datetime,
) -> FeedSetting:
    """The system administrator changes a feed's extra column aliases and/or its threshold
    (configuration, 三员分立; audited)."""
    require_role(actor, Role.SYSTEM_ADMIN)
    feed = feed_by_code(code)
    setting = setting_for(db, code)
    if setting is None:
        setting = FeedSetting(code=code, column_aliases={}, threshold=None, updated_at=now)
        db.add(setting)
    old = {"column_aliases": dict(setting.column_aliases), "threshold": _str(setting.threshold)}
    if column_aliases is not None:
        setting.column_aliases = _checked_aliases(feed, column_aliases)
    if threshold is not None or reset_threshold:
        if feed.threshold_field is None:
            raise ValidationFailed(
                "该数据项没有金额门槛",
                code="feed_has_no_threshold",
                errors={"threshold": ["无门槛"]},
            )
        setting.threshold = None if reset_threshold else threshold
    setting.updated_at, setting.updated_by = now, actor.user_id
    db.flush()
    record(
        db,
        actor=actor,
        action="feed.settings_changed",
        target_type="feed_setting",
        target_id=setting.id,
        now=now,
        detail={
            "feed": code,
            "old": old,
            "new": {
                "column_aliases": dict(setting.column_aliases),
                "threshold": _str(setting.threshold),
            },
        },
    )
    return setting


def _checked_aliases(feed: Feed, aliases: dict[str, list[str]]) -> dict[str, list[str]]:
    known = {c.field for c in feed.columns}
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, list[str]] = {}
    taken = {header_key(a): c.field for c in feed.columns for a in c.aliases}
    for name, values in aliases.items():
        if name not in known:
            errors[name] = [f"未知的列：{name}"]
            continue
        unique: list[str] = []
        for value in values:
            text = value.strip()
            owner = taken.get(header_key(text))
            if not header_key(text):
                errors.setdefault(name, []).append("列名不能为空")
            elif owner is not None and owner != name:
                errors.setdefault(name, []).append(f"“{text}”已是其他列的名称")
            elif text not in unique:
                unique.append(text)
        if len(unique) > MAX_ALIASES_PER_COLUMN:
            errors.setdefault(name, []).append(f"每列最多 {MAX_ALIASES_PER_COLUMN} 个别名")
        if unique:
            cleaned[name] = unique
    if errors:
        raise ValidationFailed("列名设置有误", code="feed_aliases_invalid", errors=errors)
    return cleaned


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def settings_history(
    db: Session, code: str, *, actor: Actor, limit: int = 50
) -> list[dict[str, Any]]:
    """The feed's settings changes, newest first: when, who, and the old and new values, from
    the audit trail's `feed.settings_changed` entries (configuration history, readable by whoever
    may read the settings)."""
    access_feed(db, code, actor=actor)
    setting = setting_for(db, code)
    if setting is None:
        return []
    rows = db.execute(
        select(AuditEntry, User)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(
            AuditEntry.action == "feed.settings_changed",
            AuditEntry.target_type == "feed_setting",
            AuditEntry.target_id == setting.id,
        )
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "at": entry.at,
            "by": (user.display_name or user.username) if user else None,
            "old": entry.detail.get("old", {}),
            "new": entry.detail.get("new", {}),
        }
        for entry, user in rows
    ]
