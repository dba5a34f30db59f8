"""Clearly synthetic demo data, so `make run` shows a living system: staff, villages,
applications with photos and visits here; the casework in `casework`, households and the social
forces in `social`. Benchmarks reuse the generators (`synthetic`).

Everything goes through the services' public functions, as the API and the worker would call
them: department files are uploaded with `feeds.batches.submit_batch`, slips are issued, signed,
returned and answered with `dispatches`, deadlines are checked with `supervision`. All times
derive from the `now` passed in (see `demo_casework` for the timeline).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.demo.casework import demo_casework
from server.demo.social import seed_social
from server.demo.synthetic import synthetic_id_number, synthetic_name
from server.models import ApplicationStatus, Channel, Role, Town, User, Village
from server.services.accounts.staff import create_staff
from server.services.applications import filing, handling
from server.services.field.visits import record_visit
from server.services.kernel.access import SYSTEM, Actor
from server.services.kernel.pii import PersonalData
from server.services.leads.core import Signal, record_signal
from server.storage import Storage

DEMO_PASSWORD = "demo-password-2026"

#: (username, role, town, department)
DEMO_STAFF: tuple[tuple[str, Role, str | None, str | None], ...] = (
    ("center", Role.CENTER_STAFF, None, None),
    ("leader", Role.LEADER, None, None),
    ("chengdong", Role.TOWN_STAFF, "chengdong", None),
    ("baita", Role.TOWN_STAFF, "baita", None),
    ("yibao", Role.DEPARTMENT_STAFF, None, "medical_insurance"),
    ("canlian", Role.DEPARTMENT_STAFF, None, "disabled_federation"),
    ("minzheng", Role.DEPARTMENT_STAFF, None, "civil_affairs"),
)


def seed_demo(
    db: Session,
    *,
    pii: PersonalData,
    now: datetime,
    storage: Storage | None = None,
    openid_for: Callable[[str], str] | None = None,
    seed: int = 2021,
) -> list[tuple[str, str, str]]:
    """Add demo staff, villages, leads, department feed batches, transfer slips in each state,
    a revisit and (given `storage` and `openid_for`, the fake WeChat server's openid for a
    user name) applications, then households, organisations (a volunteer given `openid_for`),
    donations and services (demo/social.py) to a database without them; returns the
    logins.

    Idempotent: a database that already has the demo's `center` account is left as it is (the
    whole seed runs in the caller's one transaction, so it is all there or not at all)."""
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
            must_change_password=False,
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
    actors = _staff_actors(db)
    _demo_visits(db, villages, pii=pii, actor=actors["center"], now=now, rng=rng)
    demo_casework(db, villages, pii=pii, actors=actors, now=now, rng=rng)
    if storage is not None and openid_for is not None:
        _demo_applications(
            db, villages, pii=pii, now=now, storage=storage, openid_for=openid_for, rng=rng
        )
        logins.append(("wechat code demo-alice", "-", Role.RESIDENT.value))
    seed_social(db, pii=pii, center=actors["center"], now=now, openid_for=openid_for)
    if openid_for is not None:
        logins.append(("wechat code demo-vera", "-", Role.VOLUNTEER.value))
    return logins


#: (application type, steps the town has taken, outcome) for the demo resident's applications.
_DEMO_APPLICATIONS: tuple[tuple[str, tuple[ApplicationStatus, ...], str | None], ...] = (
    ("dibao", (), None),
    ("temporary", (ApplicationStatus.ACCEPTED, ApplicationStatus.INVESTIGATING), None),
    (
        "medical",
        (ApplicationStatus.ACCEPTED, ApplicationStatus.INVESTIGATING, ApplicationStatus.DECIDED),
        "medical_aid",
    ),
)
#: Amounts of the demo's decisions (医疗救助 carries one).
_DEMO_AMOUNTS: dict[str | None, Decimal] = {"medical_aid": Decimal("6000")}


def _demo_applications(
    db: Session,
    villages: list[Village],
    *,
    pii: PersonalData,
    now: datetime,
    storage: Storage,
    openid_for: Callable[[str], str],
    rng: random.Random,
) -> None:
    """A resident "alice" (log in with WeChat code `demo-alice` on the fake server) with three
    applications at different steps, and a helper filing on someone's behalf."""
    from server.services.applications import decisions, photos

    village = villages[0]
    town_code = db.get(Town, village.town_id).code  # type: ignore[union-attr]
    alice = _demo_user(db, "alice", Role.RESIDENT, openid_for=openid_for, now=now)
    helper = _demo_user(
        db, "helper", Role.HELPER, openid_for=openid_for, now=now, village_id=village.id
    )
    for n, (kind, steps, outcome) in enumerate(_DEMO_APPLICATIONS):
        actor = Actor(user_id=alice.id, role=Role.RESIDENT)
        photo = photos.upload_photo(
            db,
            content=_demo_photo(n),
            storage=storage,
            max_bytes=10_000_000,
            actor=actor,
            now=now,
        )
        body = _demo_body(kind, photo.id, town_code, village.code, rng, today=now.date())
        filed = filing.file_application(
            db, body=body, idempotency_key=f"demo-{n}", pii=pii, actor=actor, now=now
        )
        for step in steps:
            if step is ApplicationStatus.DECIDED:
                decision = decisions.Decision(outcome or "", amount=_DEMO_AMOUNTS.get(outcome))
                decisions.record_decision(db, filed.application, decision, actor=SYSTEM, now=now)
            else:
                handling.take_step(db, filed.application, step, actor=SYSTEM, now=now)
    helper_actor = Actor(user_id=helper.id, role=Role.HELPER, village_id=village.id)
    photo = photos.upload_photo(
        db,
        content=_demo_photo(9),
        storage=storage,
        max_bytes=10_000_000,
        actor=helper_actor,
        now=now,
    )
    body = _demo_body("tekun", photo.id, town_code, village.code, rng, today=now.date())
    body["on_behalf"] = {
        "relationship": "村协理员",
        "consent_method": "verbal",
        "witness_name": "演示见证人",
        "applicant_phone": "13800000000",
    }
    filing.file_application(
        db, body=body, idempotency_key="demo-helper", pii=pii, actor=helper_actor, now=now
    )
    db.flush()


def _demo_user(
    db: Session,
    name: str,
    role: Role,
    *,
    openid_for: Callable[[str], str],
    now: datetime,
    village_id: int | None = None,
) -> User:
    user = User(
        role=role,
        openid=openid_for(name),
        display_name=f"演示-{name}",
        village_id=village_id,
        created_at=now,
    )
    db.add(user)
    db.flush()
    return user


def _demo_body(
    kind: str, photo_id: int, town: str, village: str, rng: random.Random, *, today: date
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "applicant": {
            "name": f"演示{synthetic_name(rng)}",
            "id_number": synthetic_id_number(rng),
            "phone": f"138{rng.randint(0, 99_999_999):08d}",
            "town": town,
            "village": village,
            "address": "演示地址：幸福路1号",
        },
        "household": [{"name": f"演示{synthetic_name(rng)}", "relation": "配偶"}],
        "monthly_income": Decimal("600.00"),
        "reason": "演示数据：家中老人长期患病，收入微薄。",
        "photo_ids": [photo_id],
    }
    if kind == "medical":
        body["medical"] = {
            "hospital": "演示人民医院",
            "admission_date": today - timedelta(days=40),
            "discharge_date": today - timedelta(days=28),
            "total_cost": Decimal("58000.00"),
            "out_of_pocket": Decimal("32400.00"),
        }
    if kind == "temporary":
        body["temporary"] = {
            "what_happened": "演示：房屋漏雨受损",
            "happened_on": today - timedelta(days=20),
        }
    return body


def _demo_photo(n: int) -> bytes:
    """A small, clearly synthetic "document photo"."""
    image = Image.new("RGB", (800, 600), (230, 230 - n * 10, 210))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def _demo_visits(
    db: Session,
    villages: list[Village],
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    rng: random.Random,
) -> None:
    """Visits in the first village of each town: a ledger with overdue households and a few
    severe findings in the towns' queues."""
    for village in villages[::3]:
        for _ in range(4):
            ago = rng.choice([0, 3, 20, 45])
            visited = now.date() - timedelta(days=ago)
            record_visit(
                db,
                body={
                    "village": village.code,
                    "head": {
                        "name": f"演示{synthetic_name(rng)}",
                        "id_number": synthetic_id_number(rng),
                    },
                    "kind": rng.choice(["visit", "phone"]),
                    "health": rng.choice(["frail", "chronic", "serious", "disabled"]),
                    "labour_capacity": rng.choice(["partial", "none"]),
                    "hardship": rng.choice(["none", "general", "general", "severe"]),
                    "causes": [rng.choice(["illness", "disability", "elderly_alone"])],
                    "categories": [rng.choice(["dibao", "disabled", "left_behind"])],
                    "needs": "演示数据：希望了解救助政策",
                    "visited_on": visited,
                    "next_visit_on": visited + timedelta(days=30),
                },
                pii=pii,
                actor=actor,
                now=now,
            )


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


# --- department feeds, the queue, transfer slips, supervision and revisits -------------------


def _staff_actors(db: Session) -> dict[str, Actor]:
    """The demo staff accounts as actors, by user name: each step is done by whoever would."""
    from server.services.accounts.auth import actor_for

    names = [s[0] for s in DEMO_STAFF]
    return {
        u.username: actor_for(u) for u in db.scalars(select(User).where(User.username.in_(names)))
    }
