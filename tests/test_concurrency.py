"""Two staff acting on the same slip or lead at once: one succeeds, the other gets 409, and
nothing of the loser's work is written. Proven on PostgreSQL with real parallel connections:
two threads, two sessions, a barrier that lets both read before either writes.

SQLite serialises every write on one file lock, so a real race cannot happen there; these tests
are skipped on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server import clock
from server.errors import Conflict
from server.models import (
    AuditEntry,
    Dispatch,
    DispatchCounter,
    Lead,
    Revisit,
    Role,
    Town,
)
from server.services.calendar.workdays import WorkCalendar
from server.services.dispatches import access, revisits, transfers
from server.services.kernel.access import Actor
from tests.builders.dispatches import feedback_body, issued, make_lead, post

pytestmark = pytest.mark.usefixtures("long_lived_tokens")


@pytest.fixture(autouse=True)
def _postgresql_only(engine_name: str) -> None:
    if engine_name != "postgresql":
        pytest.skip("a real race needs parallel connections: PostgreSQL only")


def race(
    runtime: Any,
    prepare: Callable[[Session], Any],
    act: Callable[[Session, Any, int], Any],
    *,
    parties: int = 2,
) -> list[str]:
    """Run `act` in `parties` threads, each in its own session, after every thread has done
    `prepare` (its reads). Each thread commits; returns each thread's outcome."""
    barrier = threading.Barrier(parties, timeout=30)
    outcomes: list[str] = ["" for _ in range(parties)]

    def run(i: int) -> None:
        with runtime.session_factory() as db:
            try:
                state = prepare(db)
                barrier.wait()
                act(db, state, i)
                db.commit()
                outcomes[i] = "ok"
            except StaleDataError:
                db.rollback()
                outcomes[i] = "stale"
            except Conflict as exc:
                db.rollback()
                outcomes[i] = f"conflict:{exc.code}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(parties)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def town_actor(db: Session, login: Any, code: str = "chengdong") -> Actor:
    town_id = db.scalar(select(Town.id).where(Town.code == code))
    return Actor(user_id=login.user_id, role=Role.TOWN_STAFF, town_id=town_id)


def center_actor(login: Any) -> Actor:
    return Actor(user_id=login.user_id, role=Role.CENTER_STAFF)


def audit_count(db: Session, action: str) -> int:
    return db.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
    )


def test_two_staff_signing_one_slip_at_once_one_wins_the_other_is_stale(
    runtime, client, center, chengdong, staff_login, db
):
    slip = issued(client, center, make_lead(client, center))
    colleague = staff_login(role="town_staff", town="chengdong")
    actors = [town_actor(db, chengdong), town_actor(db, colleague)]

    def prepare(session: Session) -> Dispatch:
        # Both read the slip (state issued, version 1) before either writes.
        return access.access_dispatch_by_id(session, slip["id"], actor=actors[0])

    def act(session: Session, _loaded: Dispatch, i: int) -> None:
        transfers.sign(session, slip["id"], actor=actors[i], now=clock.now())

    outcomes = race(runtime, prepare, act)
    assert sorted(outcomes) == ["ok", "stale"]
    db.expire_all()
    signed = db.get(Dispatch, slip["id"])
    winner = actors[outcomes.index("ok")]
    assert (signed.state.value, signed.signed_by_id, signed.version) == (
        "signed",
        winner.user_id,
        2,
    )
    assert audit_count(db, "dispatch.signed") == 1  # the loser's audit row was rolled back


def test_two_staff_issuing_on_one_lead_at_once_one_gets_a_conflict(
    runtime, client, center, staff_login, db
):
    lead_id = make_lead(client, center)
    colleague = staff_login(role="center_staff")
    actors = [center_actor(center), center_actor(colleague)]

    def prepare(session: Session) -> Lead:
        return session.get(Lead, lead_id)  # both hold the lead at version 1

    def act(session: Session, _lead: Lead, i: int) -> None:
        transfers.issue(
            session,
            lead_id,
            unit_kind=transfers.UnitKind.TOWN,
            unit_code="chengdong",
            instructions="请核实",
            calendar=WorkCalendar.load(session),
            actor=actors[i],
            now=clock.now(),
        )

    outcomes = race(runtime, prepare, act)
    assert sorted(outcomes) == ["ok", "stale"]
    db.expire_all()
    slips = db.scalars(select(Dispatch).where(Dispatch.lead_id == lead_id)).all()
    assert len(slips) == 1
    assert slips[0].serial == 1
    # The loser took no number: the counter moved once.
    assert db.scalar(select(DispatchCounter.last_number)) == 1
    assert audit_count(db, "dispatch.issued") == 1
    assert audit_count(db, "lead.dispatched") == 1


def test_two_center_staff_revisiting_one_lead_at_once_one_gets_a_conflict(
    runtime, client, center, chengdong, staff_login, db
):
    lead_id = make_lead(client, center)
    slip = issued(client, center, lead_id)
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/sign")
    post(client, chengdong, f"/api/v1/dispatches/{slip['id']}/feedback", feedback_body())
    colleague = staff_login(role="center_staff")
    actors = [center_actor(center), center_actor(colleague)]

    def prepare(session: Session) -> Lead:
        return session.get(Lead, lead_id)

    def act(session: Session, _lead: Lead, i: int) -> None:
        revisits.record_revisit(
            session,
            lead_id,
            revisits.RevisitInput(satisfaction=4 + i),
            actor=actors[i],
            now=clock.now(),
        )

    outcomes = race(runtime, prepare, act)
    assert sorted(outcomes) == ["ok", "stale"]
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Revisit)) == 1
    assert db.get(Lead, lead_id).status.value == "closed"
    assert audit_count(db, "lead.revisited") == 1


def test_two_units_answering_two_slips_of_one_lead_at_once_both_succeed_and_the_lead_moves_on(
    runtime, client, center, chengdong, insurance, db
):
    """Answers lock the lead: the second waits, then sees the first answer, so the lead does not
    stay DISPATCHED with every slip answered."""
    lead_id = make_lead(client, center)
    town = issued(client, center, lead_id)
    dept = issued(client, center, lead_id, unit_kind="department", unit_code="medical_insurance")
    post(client, chengdong, f"/api/v1/dispatches/{town['id']}/sign")
    post(client, insurance, f"/api/v1/dispatches/{dept['id']}/sign")
    insurance_id = db.get(Dispatch, dept["id"]).department_id
    actors = [
        town_actor(db, chengdong),
        Actor(user_id=insurance.user_id, role=Role.DEPARTMENT_STAFF, department_id=insurance_id),
    ]
    slip_ids = [town["id"], dept["id"]]

    def prepare(session: Session) -> Lead:
        return session.get(Lead, lead_id)

    def act(session: Session, _lead: Lead, i: int) -> None:
        transfers.give_feedback(
            session,
            slip_ids[i],
            transfers.Feedback(findings="已核实", outcome="dibao"),
            actor=actors[i],
            now=clock.now(),
        )

    assert race(runtime, prepare, act) == ["ok", "ok"]
    db.expire_all()
    assert db.get(Lead, lead_id).status.value == "awaiting_revisit"


def test_slip_numbers_stay_unique_and_gapless_under_parallel_issuing(runtime, client, center, db):
    leads = [make_lead(client, center) for _ in range(6)]
    actor = center_actor(center)

    def prepare(session: Session) -> None:
        return None

    def act(session: Session, _state: None, i: int) -> None:
        transfers.issue(
            session,
            leads[i],
            unit_kind=transfers.UnitKind.TOWN,
            unit_code="chengdong",
            instructions="请核实",
            calendar=WorkCalendar.load(session),
            actor=actor,
            now=clock.now(),
        )

    assert race(runtime, prepare, act, parties=6) == ["ok"] * 6
    db.expire_all()
    serials = sorted(db.scalars(select(Dispatch.serial)))
    assert serials == [1, 2, 3, 4, 5, 6]


def test_over_http_two_simultaneous_signs_give_one_200_and_one_409(
    app, client, center, chengdong, staff_login, db
):
    slip = issued(client, center, make_lead(client, center))
    colleague = staff_login(role="town_staff", town="chengdong")
    barrier = threading.Barrier(2, timeout=30)
    statuses: list[int] = [0, 0]

    def sign(i: int, headers: dict[str, str]) -> None:
        own_client = app.test_client()
        barrier.wait()
        statuses[i] = own_client.post(
            f"/api/v1/dispatches/{slip['id']}/sign", headers=headers
        ).status_code

    threads = [
        threading.Thread(target=sign, args=(0, chengdong.headers)),
        threading.Thread(target=sign, args=(1, colleague.headers)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [200, 409]
    db.expire_all()
    assert audit_count(db, "dispatch.signed") == 1
