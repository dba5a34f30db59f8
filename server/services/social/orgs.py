"""Organisations and their members: registered by the center, joined by invitation.

The center registers a volunteer team, social organisation or enterprise with the towns it
serves, and invites its members: a one-time code (shown once, stored as a hash, valid 7 days;
the helpers' code rules and QR codes) that a WeChat user redeems to become the organisation's
`volunteer`. Revoking a member makes them a resident again. Every change is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.errors import Conflict, Forbidden, NotFound, invalid
from server.models import (
    Channel,
    OrgKind,
    Role,
    SocialMember,
    SocialOrg,
    SocialOrgInvitation,
    SocialOrgTown,
    Town,
    User,
)
from server.services.accounts import invitations
from server.services.accounts.invitations import InvitationUnusable, NewInvitation
from server.services.kernel import idnumber
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.pii import PersonalData

KIND_LABELS = {
    OrgKind.VOLUNTEER_TEAM: "志愿服务队",
    OrgKind.SOCIAL_ORG: "社会组织",
    OrgKind.ENTERPRISE: "企事业单位",
}
#: The lead channel of an organisation's reports.
CHANNELS = {
    OrgKind.VOLUNTEER_TEAM: Channel.VOLUNTEER,
    OrgKind.SOCIAL_ORG: Channel.SOCIAL_ORG,
    OrgKind.ENTERPRISE: Channel.ENTERPRISE,
}
#: Who reads organisations (every one: they are public partners, not cases).
READERS = (Role.CENTER_STAFF, Role.LEADER, Role.TOWN_STAFF)
#: The mini-program page that redeems a volunteer invitation.
REDEEM_PAGE = "pages/volunteer/redeem"


def _towns(db: Session, codes: list[str]) -> list[Town]:
    codes = list(dict.fromkeys(codes))
    if not codes:
        raise invalid("towns", "请选择服务的镇街")
    towns = list(db.scalars(select(Town).where(Town.code.in_(codes))))
    if len(towns) != len(codes):
        missing = sorted(set(codes) - {t.code for t in towns})
        raise invalid("towns", f"未找到镇街：{'、'.join(missing)}", "town_not_found")
    return towns


def register_org(
    db: Session, *, body: dict[str, Any], pii: PersonalData, actor: Actor, now: datetime
) -> SocialOrg:
    """The center registers an organisation: name (unique), kind, contact, towns served."""
    require_role(actor, Role.CENTER_STAFF)
    name = body["name"].strip()
    if not name:
        raise invalid("name", "请填写名称")
    if db.scalar(select(SocialOrg.id).where(SocialOrg.name == name)) is not None:
        raise Conflict("该名称已登记", code="org_exists", errors={"name": ["该名称已登记"]})
    towns = _towns(db, body["towns"])
    org = SocialOrg(
        name=name,
        kind=OrgKind(body["kind"]),
        contact_name=body["contact_name"].strip(),
        contact_phone_enc=pii.seal(
            idnumber.checked_phone(
                body.get("contact_phone"), field="contact_phone", rule="any_number"
            )
        ),
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
        towns=[SocialOrgTown(town_id=t.id) for t in towns],
    )
    db.add(org)
    db.flush()
    record(
        db,
        actor=actor,
        action="social_org.registered",
        target_type="social_org",
        target_id=org.id,
        now=now,
        detail={"kind": org.kind.value, "towns": sorted(t.code for t in towns)},
    )
    return org


def access_org_by_id(db: Session, org_id: int, *, actor: Actor) -> SocialOrg:
    require_role(actor, *READERS)
    org = db.get(SocialOrg, org_id) if 0 < org_id < 2**63 else None
    if org is None:
        raise NotFound("未找到该组织", code="org_not_found")
    return org


def edit_org(
    db: Session,
    org_id: int,
    *,
    body: dict[str, Any],
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> SocialOrg:
    """The center changes the contact, the towns served, or deactivates an organisation."""
    require_role(actor, Role.CENTER_STAFF)
    org = access_org_by_id(db, org_id, actor=actor)
    changed: dict[str, Any] = {}
    if body.get("contact_name"):
        org.contact_name = body["contact_name"].strip()
        changed["contact_name"] = True
    if "contact_phone" in body:
        org.contact_phone_enc = pii.seal(
            idnumber.checked_phone(body["contact_phone"], field="contact_phone", rule="any_number")
        )
        changed["contact_phone"] = True
    if body.get("towns") is not None:
        towns = _towns(db, body["towns"])
        org.towns = [SocialOrgTown(town_id=t.id) for t in towns]
        changed["towns"] = sorted(t.code for t in towns)
    if body.get("is_active") is not None:
        org.is_active = body["is_active"]
        changed["is_active"] = org.is_active
    org.updated_at = now
    db.flush()
    record(
        db,
        actor=actor,
        action="social_org.edited",
        target_type="social_org",
        target_id=org.id,
        now=now,
        detail=changed,
    )
    return org


def list_orgs(db: Session, *, actor: Actor, kind: str | None = None) -> list[SocialOrg]:
    require_role(actor, *READERS)
    query = select(SocialOrg).order_by(SocialOrg.id)
    if kind:
        query = query.where(SocialOrg.kind == OrgKind(kind))
    return list(db.scalars(query))


def org_view(db: Session, org: SocialOrg, *, pii: PersonalData) -> dict[str, Any]:
    towns = db.scalars(select(Town).where(Town.id.in_([t.town_id for t in org.towns])))
    members = db.scalar(
        select(func.count())
        .select_from(SocialMember)
        .where(SocialMember.org_id == org.id, SocialMember.revoked_at.is_(None))
    )
    return {
        "id": org.id,
        "name": org.name,
        "kind": org.kind.value,
        "kind_label": KIND_LABELS[org.kind],
        "contact_name": org.contact_name,
        "contact_phone": idnumber.mask_phone(pii.open(org.contact_phone_enc)),
        "towns": [{"code": t.code, "name": t.name} for t in sorted(towns, key=lambda t: t.id)],
        "is_active": org.is_active,
        "members": members or 0,
        "created_at": org.created_at,
    }


# --- Invitations and members -------------------------------------------------------------


def create_invitation(db: Session, org_id: int, *, actor: Actor, now: datetime) -> NewInvitation:
    """The center invites a member of an active organisation (a one-time code, 7 days)."""
    require_role(actor, Role.CENTER_STAFF)
    assert actor.user_id is not None
    org = access_org_by_id(db, org_id, actor=actor)
    if not org.is_active:
        raise Conflict("该组织已停用", code="org_inactive")
    invitation = SocialOrgInvitation(org_id=org.id, created_by_id=actor.user_id, created_at=now)
    new = invitations.issue(invitation, redeem_page=REDEEM_PAGE, now=now)
    db.add(invitation)
    db.flush()
    record(
        db,
        actor=actor,
        action="social_invitation.created",
        target_type="social_org",
        target_id=org.id,
        now=now,
        detail={"invitation": invitation.id},
    )
    return new


def open_invitation_code(
    db: Session, invitation_id: int, *, code: str, actor: Actor, now: datetime
) -> str:
    """The normalised code of an open invitation, for the center to draw its QR code."""
    require_role(actor, Role.CENTER_STAFF)
    invitation = db.get(SocialOrgInvitation, invitation_id) if 0 < invitation_id < 2**63 else None
    return invitations.open_code(invitation, code, now=now)


def redeem(db: Session, *, code: str, actor: Actor, now: datetime) -> SocialMember:
    """A WeChat resident redeems a code and becomes the organisation's volunteer."""
    invitation = invitations.redeem(
        db,
        SocialOrgInvitation,
        code,
        actor=actor,
        already=Role.VOLUNTEER,
        already_message="您已是志愿者，如需更换组织请联系区社会救助综合服务中心",
        already_code="already_a_volunteer",
        now=now,
    )
    org = db.get(SocialOrg, invitation.org_id)
    if org is None or not org.is_active:
        raise InvitationUnusable()
    user = db.get(User, actor.user_id)
    assert user is not None
    user.role = Role.VOLUNTEER
    member = SocialMember(
        org_id=org.id, user_id=user.id, invitation_id=invitation.id, joined_at=now
    )
    db.add(member)
    db.flush()
    record(
        db,
        actor=actor,
        action="volunteer.joined",
        target_type="user",
        target_id=user.id,
        now=now,
        detail={"org": org.id, "invitation": invitation.id},
    )
    return member


def membership_of(db: Session, actor: Actor) -> SocialMember:
    """The volunteer's current membership (403 for anyone else)."""
    require_role(actor, Role.VOLUNTEER)
    member = db.scalar(
        select(SocialMember).where(
            SocialMember.user_id == actor.user_id, SocialMember.revoked_at.is_(None)
        )
    )
    if member is None:
        raise Forbidden("您的志愿者身份已失效", code="not_a_volunteer")
    return member


def list_members(db: Session, org_id: int, *, actor: Actor) -> list[tuple[SocialMember, User]]:
    require_role(actor, Role.CENTER_STAFF, Role.LEADER)
    org = access_org_by_id(db, org_id, actor=actor)
    rows = db.execute(
        select(SocialMember, User)
        .join(User, User.id == SocialMember.user_id)
        .where(SocialMember.org_id == org.id, SocialMember.revoked_at.is_(None))
        .order_by(SocialMember.id)
    )
    return [(m, u) for m, u in rows]


def revoke_member(
    db: Session, org_id: int, user_id: int, *, actor: Actor, now: datetime
) -> SocialMember:
    """The center ends a membership: the user is a resident again (their reports stay)."""
    require_role(actor, Role.CENTER_STAFF)
    if not (0 < org_id < 2**63 and 0 < user_id < 2**63):
        raise NotFound("未找到该志愿者", code="volunteer_not_found")
    member = db.scalar(
        select(SocialMember).where(
            SocialMember.org_id == org_id,
            SocialMember.user_id == user_id,
            SocialMember.revoked_at.is_(None),
        )
    )
    if member is None:
        raise NotFound("未找到该志愿者", code="volunteer_not_found")
    member.revoked_at = now
    user = db.get(User, user_id)
    if user is not None and user.role is Role.VOLUNTEER:
        user.role = Role.RESIDENT
    db.flush()
    record(
        db,
        actor=actor,
        action="volunteer.revoked",
        target_type="user",
        target_id=user_id,
        now=now,
        detail={"org": org_id},
    )
    return member
