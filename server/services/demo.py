"""Clearly synthetic demo data, so `make run` shows a living system. Benchmarks reuse the
generators (`synthetic_id_number`, `synthetic_name`)."""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Channel, Role, Town, User, Village
from server.services.access import SYSTEM
from server.services.idnumber import check_digit
from server.services.leads import Signal, record_signal
from server.services.pii import PersonalData
from server.services.staff import create_staff

DEMO_PASSWORD = "demo-password-2026"
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"

#: (username, role, town, department)
DEMO_STAFF: tuple[tuple[str, Role, str | None, str | None], ...] = (
    ("center", Role.CENTER_STAFF, None, None),
    ("leader", Role.LEADER, None, None),
    ("chengdong", Role.TOWN_STAFF, "chengdong", None),
    ("baita", Role.TOWN_STAFF, "baita", None),
    ("yibao", Role.DEPARTMENT_STAFF, None, "medical_insurance"),
    ("canlian", Role.DEPARTMENT_STAFF, None, "disabled_federation"),
)


def synthetic_id_number(rng: random.Random, *, region: str = "370304") -> str:
    """A checksummed ID number in a sequence block real IDs of this region do not use (9xx)."""
    body = (
        f"{region}{rng.randint(1935, 2015)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        f"9{rng.randint(0, 99):02d}"
    )
    return body + check_digit(body)


def synthetic_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randint(1, 2)))


def seed_demo(
    db: Session, *, pii: PersonalData, now: datetime, seed: int = 2021
) -> list[tuple[str, str, str]]:
    """Add demo staff, villages and leads to a database without them; returns the logins."""
    if db.scalar(select(User.id).where(User.username == "center")) is not None:
        return []
    rng = random.Random(seed)
    logins = []
    for username, role, town, dept in DEMO_STAFF:
        create_staff(
            db,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            town_code=town,
            department_code=dept,
            display_name=f"演示-{username}",
            now=now,
            actor=SYSTEM,
        )
        logins.append((username, DEMO_PASSWORD, role.value))
    villages = _demo_villages(db)
    for i in range(30):
        village = rng.choice(villages)
        id_number = synthetic_id_number(rng)
        record_signal(
            db,
            Signal(
                channel=rng.choice([Channel.HOTLINE, Channel.VOLUNTEER, Channel.POLICE_110]),
                name=f"演示{synthetic_name(rng)}",
                summary="演示数据：群众反映家庭生活困难",
                dedup_key=f"demo:{i}",
                person_hash=pii.hash(id_number),
                id_number_enc=pii.seal(id_number),
                town_id=village.town_id,
                village_id=village.id,
                categories=[rng.choice(["illness", "accident", "disabled", "left_behind"])],
                priority=rng.randint(1, 5),
                priority_reason="演示：热线反映",
            ),
            actor=SYSTEM,
            now=now,
        )
    return logins


def _demo_villages(db: Session) -> list[Village]:
    villages = []
    for town in db.scalars(select(Town).order_by(Town.sort_order)):
        for n in range(1, 4):
            code = f"demo-{town.code}-{n}"
            village = db.scalar(select(Village).where(Village.code == code))
            if village is None:
                village = Village(code=code, name=f"{town.name[:2]}演示村{n}", town_id=town.id)
                db.add(village)
            villages.append(village)
    db.flush()
    return villages
