"""Demo data for households and the social forces (called by demo/seed.py `seed_demo`):
households built from everything seeded before, three organisations (a volunteer team, a social
organisation, an enterprise) with a volunteer who reports a lead, donations received and
allocated, and services assigned and given. Everything goes through the services' public
functions, at the `now` given; all of it clearly synthetic (演示)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.models import Family, FamilyMember, Lead, Role, User, Village
from server.services.households.building import rebuild
from server.services.kernel.access import Actor
from server.services.kernel.pii import PersonalData
from server.services.social import donations, orgs, reports, services

#: The demo's organisations: (name, kind, towns served).
DEMO_ORGS = (
    ("博山区爱心志愿服务队（演示）", "volunteer_team", ["chengdong", "baita"]),
    ("博山心语社会工作服务中心（演示）", "social_org", ["chengdong", "baita"]),
    ("博山某热电有限公司（演示）", "enterprise", ["chengdong"]),
)


def seed_social(
    db: Session,
    *,
    pii: PersonalData,
    center: Actor,
    now: datetime,
    openid_for: Callable[[str], str] | None,
) -> dict[str, int]:
    """Fill households, organisations, a volunteer, donations and services; the counts."""
    rebuild(db, pii=pii, now=now)
    registered = [
        orgs.register_org(
            db,
            body={
                "name": name,
                "kind": kind,
                "contact_name": "演示联系人",
                "contact_phone": "13000000000",
                "towns": towns,
            },
            pii=pii,
            actor=center,
            now=now,
        )
        for name, kind, towns in DEMO_ORGS
    ]
    team, social_org, enterprise = registered
    volunteer = _demo_volunteer(db, team.id, pii=pii, center=center, now=now, openid_for=openid_for)
    families = _families_with_leads(db)
    _demo_donations(db, enterprise, team, families, pii=pii, center=center, now=now)
    _demo_services(db, social_org, team, families, volunteer, center=center, now=now)
    return {"organisations": len(registered), "households": len(families)}


def _demo_volunteer(
    db: Session,
    org_id: int,
    *,
    pii: PersonalData,
    center: Actor,
    now: datetime,
    openid_for: Callable[[str], str] | None,
) -> Actor | None:
    """A WeChat user invited into the volunteer team, who reports one lead."""
    if openid_for is None:
        return None
    user = User(
        role=Role.RESIDENT, openid=openid_for("vera"), display_name="演示-vera", created_at=now
    )
    db.add(user)
    db.flush()
    invitation = orgs.create_invitation(db, org_id, actor=center, now=now)
    resident = Actor(user_id=user.id, role=Role.RESIDENT)
    orgs.redeem(db, code=invitation.code, actor=resident, now=now)
    volunteer = Actor(user_id=user.id, role=Role.VOLUNTEER)
    village = db.scalar(select(Village).order_by(Village.id))
    assert village is not None
    reports.report_lead(
        db,
        body={
            "name": "演示孙大娘",
            "phone": "13800002222",
            "village": village.code,
            "summary": "演示数据：独居老人，冬季取暖困难，行动不便",
            "categories": ["left_behind"],
        },
        pii=pii,
        actor=volunteer,
        now=now,
    )
    return volunteer


def _families_with_leads(db: Session) -> list[tuple[Family, Lead]]:
    """Households whose head has an open lead, oldest first (the demo's recipients)."""
    rows = db.execute(
        select(Family, Lead)
        .join(FamilyMember, FamilyMember.family_id == Family.id)
        .join(Lead, Lead.person_hash == FamilyMember.id_hash)
        .where(FamilyMember.is_head.is_(True), FamilyMember.left_at.is_(None), Lead.is_open)
        .order_by(Family.id)
    )
    return [(family, lead) for family, lead in rows]


def _demo_donations(
    db: Session,
    enterprise: object,
    team: object,
    families: list[tuple[Family, Lead]],
    *,
    pii: PersonalData,
    center: Actor,
    now: datetime,
) -> None:
    today = now.astimezone(TZ).date()
    money = donations.receive_donation(
        db,
        body={
            "donor": {
                "name": "博山某热电有限公司（演示）",
                "kind": "enterprise",
                "org_id": enterprise.id,
            },  # type: ignore[attr-defined]
            "kind": "money",
            "amount": Decimal("20000"),
            "received_on": today - timedelta(days=3),
            "purpose": "助学",
        },
        pii=pii,
        actor=center,
        now=now,
    )
    goods = donations.receive_donation(
        db,
        body={
            "donor": {
                "name": "博山区爱心志愿服务队（演示）",
                "kind": "organisation",
                "org_id": team.id,
            },  # type: ignore[attr-defined]
            "kind": "goods",
            "items": "棉被",
            "quantity": Decimal("50"),
            "unit": "床",
            "received_on": today - timedelta(days=2),
        },
        pii=pii,
        actor=center,
        now=now,
    )
    donations.receive_donation(
        db,
        body={
            "donor": {"name": "演示爱心人士"},
            "kind": "money",
            "amount": Decimal("3000"),
            "received_on": today,
        },
        pii=pii,
        actor=center,
        now=now,
    )
    for (family, _lead), (donation, quantity) in zip(
        families,
        [(money, Decimal("2000")), (goods, Decimal("2")), (goods, Decimal("3"))],
        strict=False,
    ):
        donations.allocate(
            db,
            donation.id,
            quantity=quantity,
            family_id=family.id,
            fund=None,
            note="演示分配",
            actor=center,
            now=now,
        )
    donations.allocate(
        db,
        money.id,
        quantity=Decimal("5000"),
        family_id=None,
        fund="临时救助备用金",
        note="演示",
        actor=center,
        now=now,
    )


def _demo_services(
    db: Session,
    social_org: object,
    team: object,
    families: list[tuple[Family, Lead]],
    volunteer: Actor | None,
    *,
    center: Actor,
    now: datetime,
) -> None:
    if not families:
        return
    today = now.astimezone(TZ).date()
    _family, lead = families[0]
    counselling = services.assign_service(
        db,
        body={
            "lead_id": lead.id,
            "org_id": social_org.id,  # type: ignore[attr-defined]
            "kind": "counselling",
            "instructions": "演示：老人情绪低落，请上门心理疏导",
            "due_on": today + timedelta(days=7),
        },
        actor=center,
        now=now,
    )
    services.record_service(
        db,
        body={
            "assignment_id": counselling.id,
            "served_on": today,
            "duration_minutes": 90,
            "notes": "演示：上门陪伴聊天，情绪好转",
        },
        actor=center,
        now=now,
    )
    care = services.assign_service(
        db,
        body={
            "lead_id": lead.id,
            "org_id": team.id,  # type: ignore[attr-defined]
            "kind": "humanistic_care",
            "instructions": "演示：冬季送温暖，检查取暖",
            "due_on": today + timedelta(days=10),
        },
        actor=center,
        now=now,
    )
    if volunteer is not None and len(families) > 1:
        services.record_service(
            db,
            body={
                "assignment_id": care.id,
                "served_on": today,
                "duration_minutes": 60,
                "notes": "演示：送去棉被两床，检查炉具安全",
            },
            actor=volunteer,
            now=now,
        )
