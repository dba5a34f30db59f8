"""Village helpers (村居协理员): invited by staff with a one-time code, redeemed from WeChat.

A town's staff invite helpers for their own villages, the center for any village. The code is
shown once (as text and as a QR code of the mini-program page that redeems it) and stored only
as a hash. Redeeming turns the WeChat user into that village's helper; revoking turns them back
into a resident. Every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import Application, Channel, HelperInvitation, Role, User, Village, Visit
from server.services.accounts import invitations
from server.services.accounts.invitations import NewInvitation
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record

#: The mini-program page that redeems an invitation; the QR code carries it with the code.
REDEEM_PAGE = "pages/helper/redeem"


def _villages_in_scope(query: Select, actor: Actor) -> Select:
    """Limit a query joined to Village to the villages `actor` administers."""
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF:
        return query.where(Village.town_id == actor.town_id)
    return query.where(false())


def _village_in_scope(db: Session, village_code: str, actor: Actor) -> Village:
    query = _villages_in_scope(select(Village).where(Village.code == village_code), actor)
    village = db.scalar(query)
    if village is None:
        raise NotFound("未找到该村（社区）")
    return village


def create_invitation(
    db: Session, *, village_code: str, actor: Actor, now: datetime
) -> NewInvitation:
    """Town staff invite a helper for one of their villages; the center for any village."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF)
    assert actor.user_id is not None
    village = _village_in_scope(db, village_code, actor)
    invitation = HelperInvitation(
        village_id=village.id, created_by_id=actor.user_id, created_at=now
    )
    new = invitations.issue(invitation, redeem_page=REDEEM_PAGE, now=now)
    db.add(invitation)
    db.flush()
    record(
        db,
        actor=actor,
        action="helper_invitation.created",
        target_type="helper_invitation",
        target_id=invitation.id,
        now=now,
        detail={"village": village.code},
    )
    return new


def open_invitation_code(
    db: Session, invitation_id: int, *, code: str, actor: Actor, now: datetime
) -> str:
    """The normalised code of an invitation still open in `actor`'s villages, to draw its QR
    code or 小程序码 again (`invitations.open_code`)."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF)
    invitation = db.scalar(
        _villages_in_scope(
            select(HelperInvitation)
            .join(Village, Village.id == HelperInvitation.village_id)
            .where(HelperInvitation.id == invitation_id),
            actor,
        )
    )
    return invitations.open_code(invitation, code, now=now)


def redeem_page(code: str) -> str:
    """What the QR code carries: the mini-program page that redeems `code`."""
    return invitations.redeem_link(REDEEM_PAGE, code)


def list_invitations(db: Session, *, actor: Actor, now: datetime) -> list[HelperInvitation]:
    """Invitations still usable (not redeemed, revoked or expired) in `actor`'s villages."""
    query = _villages_in_scope(
        select(HelperInvitation).join(Village, Village.id == HelperInvitation.village_id), actor
    ).where(
        HelperInvitation.redeemed_at.is_(None),
        HelperInvitation.revoked_at.is_(None),
        HelperInvitation.expires_at > now,
    )
    return list(db.scalars(query.order_by(HelperInvitation.id.desc())))


def revoke_invitation(
    db: Session, invitation_id: int, *, actor: Actor, now: datetime
) -> HelperInvitation:
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF)
    query = _villages_in_scope(
        select(HelperInvitation)
        .join(Village, Village.id == HelperInvitation.village_id)
        .where(HelperInvitation.id == invitation_id),
        actor,
    )
    invitation = db.scalar(query)
    if invitation is None:
        raise NotFound("未找到该邀请")
    if invitation.redeemed_at is None and invitation.revoked_at is None:
        invitation.revoked_at = now
        record(
            db,
            actor=actor,
            action="helper_invitation.revoked",
            target_type="helper_invitation",
            target_id=invitation.id,
            now=now,
        )
    db.flush()
    return invitation


def redeem(db: Session, *, code: str, actor: Actor, now: datetime) -> User:
    """A WeChat user redeems a code and becomes that village's helper (once per code)."""
    invitation = invitations.redeem(
        db,
        HelperInvitation,
        code,
        actor=actor,
        already=Role.HELPER,
        already_message="您已是协理员，如需更换村（社区）请联系镇街工作人员先解除现有身份",
        already_code="already_a_helper",
        now=now,
    )
    user = db.get(User, actor.user_id)
    assert user is not None
    village = db.get(Village, invitation.village_id)
    assert village is not None
    user.role = Role.HELPER
    user.village_id = village.id
    user.town_id = village.town_id
    db.flush()
    record(
        db,
        actor=actor,
        action="helper.appointed",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"village": village.code, "invitation": invitation.id},
    )
    return user


def _helpers_query(actor: Actor) -> Select:
    return _villages_in_scope(
        select(User).join(Village, Village.id == User.village_id).where(User.role == Role.HELPER),
        actor,
    )


def list_helpers(
    db: Session, *, actor: Actor, village_code: str | None = None
) -> list[tuple[User, Village]]:
    """The helpers of `actor`'s villages (a town's, or all for the center and leaders)."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
    query = _helpers_query(actor).add_columns(Village)
    if village_code:
        village = _village_in_scope(db, village_code, actor)
        query = query.where(Village.id == village.id)
    return [(user, village) for user, village in db.execute(query.order_by(Village.code, User.id))]


def revoke_helper(db: Session, user_id: int, *, actor: Actor, now: datetime) -> User:
    """The helper goes back to being a resident; their own applications stay theirs."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF)
    user = db.scalar(_helpers_query(actor).where(User.id == user_id))
    if user is None:
        raise NotFound("未找到该协理员")
    old_village = user.village_id
    user.role = Role.RESIDENT
    user.village_id = None
    user.town_id = None
    db.flush()
    record(
        db,
        actor=actor,
        action="helper.revoked",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"village_id": old_village},
    )
    return user


def list_filings(
    db: Session, *, actor: Actor, page: int, per_page: int
) -> tuple[list[Application], int]:
    """A helper's filings on behalf of others, newest first."""
    require_role(actor, Role.HELPER)
    mine = (Application.filed_by_id == actor.user_id) & (Application.channel == Channel.ON_BEHALF)
    total = db.scalar(select(func.count()).select_from(Application).where(mine)) or 0
    rows = db.scalars(
        select(Application)
        .where(mine)
        .order_by(Application.created_at.desc(), Application.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def villages_in_scope(db: Session, *, actor: Actor) -> list[Village]:
    """The villages `actor` may invite helpers for (a town's own; the center: all)."""
    require_role(actor, Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
    return list(db.scalars(_villages_in_scope(select(Village), actor).order_by(Village.code)))


@dataclass(frozen=True, slots=True)
class HelperActivity:
    filings: int
    visits: int


def activity(db: Session, user_ids: list[int]) -> dict[int, HelperActivity]:
    """How many applications each helper filed on behalf of others, and visits recorded."""
    if not user_ids:
        return {}
    filings = dict(
        db.execute(
            select(Application.filed_by_id, func.count())
            .where(Application.filed_by_id.in_(user_ids), Application.channel == Channel.ON_BEHALF)
            .group_by(Application.filed_by_id)
        ).all()
    )
    visits = dict(
        db.execute(
            select(Visit.recorded_by_id, func.count())
            .where(Visit.recorded_by_id.in_(user_ids))
            .group_by(Visit.recorded_by_id)
        ).all()
    )
    return {
        uid: HelperActivity(filings=filings.get(uid, 0), visits=visits.get(uid, 0))
        for uid in user_ids
    }
