"""Aid granted (救助台账): what a decision granted a household, and its reviews (复核).

`grant_aid` is called by `services/applications/decisions.record_decision` (the one place an
application is decided) for every outcome that grants aid (`outcomes.GRANTS_AID`): kind, monthly or
one-off amount, start date and review date, against the applicant's household (opened if they belong
to none). A review date that has passed puts the grant on its town's worklist until staff record the
review (`review_aid`), which sets the next review date or ends the review cycle.
`grant_aid_by_slip` does the same for a slip's one outcome on a lead without applications."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.errors import NotFound, invalid
from server.models import AidGrant, AidPeriod, Application, Dispatch, Family, Lead, Role
from server.services.households.building import absorb_application, absorb_lead
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.outcomes import GRANTS_AID, OUTCOMES

#: Outcomes paid every month until reviewed; every other grant is paid once.
MONTHLY = frozenset({"dibao", "tekun"})
#: A monthly grant's default review: a year after it starts (低保 and 特困 are reviewed yearly).
DEFAULT_REVIEW_MONTHS = 12
PERIOD_LABELS = {AidPeriod.MONTHLY: "每月", AidPeriod.ONE_OFF: "一次性"}
#: Who reads grants and records reviews.
READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF)
REVIEWERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def checked_dates(
    outcome: str, start_on: date | None, review_on: date | None, *, field: str = ""
) -> tuple[date | None, date | None]:
    """A decision's aid dates as given; 422 naming the field when the review precedes the
    start, or when dates come with an outcome that grants nothing."""
    if outcome not in GRANTS_AID and (start_on or review_on):
        raise invalid(f"{field}aid", "该结果不涉及救助发放")
    if start_on and review_on and review_on < start_on:
        raise invalid(f"{field}aid.review_on", "复核日期不能早于发放开始日期")
    return start_on, review_on


def grant_aid(
    db: Session,
    application: Application,
    *,
    start_on: date | None,
    review_on: date | None,
    actor: Actor,
    now: datetime,
) -> AidGrant | None:
    """Record what the decision of `application` granted (nothing for outcomes granting none).
    Monthly grants are reviewed a year after they start unless a review date is given."""
    outcome = application.outcome or ""
    if outcome not in GRANTS_AID:
        return None
    family = absorb_application(db, application, pii=None, now=now)
    grant = AidGrant(
        application_id=application.id,
        family_id=family.id,
        name=application.name,
        id_hash=application.id_hash,
        town_id=application.town_id,
        amount=application.amount,
    )
    return _granted(db, grant, outcome, start_on, review_on, actor=actor, now=now)


def grant_aid_by_slip(
    db: Session,
    dispatch: Dispatch,
    lead: Lead,
    *,
    start_on: date | None,
    review_on: date | None,
    actor: Actor,
    now: datetime,
) -> AidGrant | None:
    """Record what a slip's one outcome granted the person of a lead without applications (a
    department file's, a report's), as an application's decision would. Nothing when the
    outcome grants none, or when the lead names no ID number or town: the ledger is of
    identified households, and the slip itself still says what was given."""
    outcome = dispatch.outcome or ""
    if outcome not in GRANTS_AID:
        return None
    family = absorb_lead(db, lead, now=now)
    if family is None or lead.person_hash is None or lead.town_id is None:
        return None
    grant = AidGrant(
        dispatch_id=dispatch.id,
        family_id=family.id,
        name=lead.name,
        id_hash=lead.person_hash,
        town_id=lead.town_id,
        amount=dispatch.amount,
    )
    return _granted(db, grant, outcome, start_on, review_on, actor=actor, now=now)


def _granted(
    db: Session,
    grant: AidGrant,
    outcome: str,
    start_on: date | None,
    review_on: date | None,
    *,
    actor: Actor,
    now: datetime,
) -> AidGrant:
    period = AidPeriod.MONTHLY if outcome in MONTHLY else AidPeriod.ONE_OFF
    start = start_on or now.astimezone(TZ).date()
    if review_on is None and period is AidPeriod.MONTHLY:
        review_on = add_months(start, DEFAULT_REVIEW_MONTHS)
    grant.kind = outcome
    grant.period = period
    grant.start_on = start
    grant.review_on = review_on
    grant.granted_by_id = actor.user_id
    grant.granted_at = now
    db.add(grant)
    db.flush()
    record(
        db,
        actor=actor,
        action="aid.granted",
        target_type="household",
        target_id=grant.family_id,
        now=now,
        detail={
            "grant_id": grant.id,
            "application_id": grant.application_id,
            "dispatch_id": grant.dispatch_id,
            "kind": outcome,
            "period": period.value,
            "amount": f"{grant.amount:f}" if grant.amount is not None else None,
            "start_on": start.isoformat(),
            "review_on": review_on.isoformat() if review_on else None,
        },
    )
    return grant


def aid_text(grant: AidGrant) -> str:
    """ "纳入低保，每月 800 元，自 2026-11-01 起" in plain Chinese."""
    parts = [OUTCOMES.get(grant.kind, grant.kind)]
    if grant.amount is not None:
        parts.append(f"{PERIOD_LABELS[grant.period]} {grant.amount.normalize():f} 元")
    else:
        parts.append(PERIOD_LABELS[grant.period])
    parts.append(f"自 {grant.start_on.isoformat()} 起")
    return "，".join(parts)


def _scoped(query: Select, actor: Actor) -> Select:
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF:
        return query.where(AidGrant.town_id == actor.town_id)
    return query.where(false())


def due_reviews_query(actor: Actor, today: date) -> Select:
    """Grants in `actor`'s area whose review date has passed (the worklist's 复核到期)."""
    return _scoped(
        select(AidGrant).where(AidGrant.review_on.is_not(None), AidGrant.review_on < today),
        actor,
    )


def count_due_reviews(db: Session, *, actor: Actor, today: date) -> int:
    query = due_reviews_query(actor, today)
    return db.scalar(select(func.count()).select_from(query.subquery())) or 0


def list_grants(
    db: Session,
    *,
    actor: Actor,
    today: date,
    due: bool = False,
    page: int = 1,
    per_page: int = 20,
) -> tuple[list[AidGrant], int]:
    """Grants in `actor`'s area, newest first; `due`: only those whose review has passed,
    the longest overdue first."""
    require_role(actor, *READERS)
    if due:
        query = due_reviews_query(actor, today).order_by(AidGrant.review_on, AidGrant.id)
    else:
        query = _scoped(select(AidGrant), actor).order_by(AidGrant.id.desc())
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    return list(db.scalars(query.limit(per_page).offset((page - 1) * per_page))), total


def review_aid(
    db: Session,
    grant_id: int,
    *,
    next_review_on: date | None,
    note: str,
    actor: Actor,
    now: datetime,
) -> AidGrant:
    """Record a review (复核) of a grant in the reviewer's town: the next review date, or none
    (the aid ends or needs no further review). Audited."""
    require_role(actor, *REVIEWERS)
    grant = db.scalar(_scoped(select(AidGrant).where(AidGrant.id == grant_id), actor))
    if grant is None:
        raise NotFound("未找到该救助记录", code="aid_not_found")
    today = now.astimezone(TZ).date()
    if next_review_on is not None and next_review_on <= today:
        raise invalid("next_review_on", "下次复核日期应晚于今天")
    text = (note or "").strip()
    if not text:
        raise invalid("note", "请填写复核情况")
    old = grant.review_on
    grant.review_on = next_review_on
    grant.reviewed_at = now
    grant.review_note = text[:500]
    db.flush()
    record(
        db,
        actor=actor,
        action="aid.reviewed",
        target_type="household",
        target_id=grant.family_id,
        now=now,
        detail={
            "grant_id": grant.id,
            "old_review_on": old.isoformat() if old else None,
            "next_review_on": next_review_on.isoformat() if next_review_on else None,
        },
    )
    return grant


def grant_view(db: Session, grant: AidGrant, *, today: date) -> dict[str, Any]:
    family = db.get(Family, grant.family_id)
    return {
        "id": grant.id,
        "household_id": grant.family_id,
        "household_version": family.version if family else None,
        "application_id": grant.application_id,
        "dispatch_id": grant.dispatch_id,
        "name": grant.name,
        "kind": grant.kind,
        "kind_label": OUTCOMES.get(grant.kind, grant.kind),
        "period": grant.period.value,
        "amount": grant.amount,
        "start_on": grant.start_on,
        "review_on": grant.review_on,
        "review_due": grant.review_on is not None and grant.review_on < today,
        "reviewed_at": grant.reviewed_at,
        "review_note": grant.review_note,
        "granted_at": grant.granted_at,
        "text": aid_text(grant),
    }


def monthly_figures(
    db: Session, *, start: datetime, end: datetime, town_id: int | None = None
) -> dict[str, Any]:
    """Aid granted in [start, end): grants, households and amounts by kind."""
    where = [AidGrant.granted_at >= start, AidGrant.granted_at < end]
    if town_id is not None:
        where.append(AidGrant.town_id == town_id)
    query = (
        select(
            AidGrant.kind,
            AidGrant.period,
            func.count(),
            func.count(AidGrant.family_id.distinct()),
            func.coalesce(func.sum(AidGrant.amount), 0),
        )
        .where(*where)
        .group_by(AidGrant.kind, AidGrant.period)
        .order_by(AidGrant.kind)
    )
    by_kind = [
        {
            "kind": kind,
            "label": OUTCOMES.get(kind, kind),
            "period": period.value,
            "grants": grants,
            "households": households,
            "amount": Decimal(amount),
        }
        for kind, period, grants, households, amount in db.execute(query)
    ]
    households = db.scalar(select(func.count(AidGrant.family_id.distinct())).where(*where)) or 0
    return {"households": households, "by_kind": by_kind}
