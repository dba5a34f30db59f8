"""Two staff acting on the same application or slip at once, on both engines: exactly one wins,
the other gets 409, and nothing of the loser's is written (no second timeline step, no second
message, no second audit row)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import clock
from server.models import (
    Application,
    ApplicationEvent,
    AuditEntry,
    Dispatch,
    InboxMessage,
    OutboxMessage,
    Role,
    Town,
)
from server.services.applications import decisions, filing, handling, reading
from server.services.dispatches import access, transfers
from server.services.kernel.access import Actor
from tests.builders.decisions import file_kinds, investigated, signed_slip
from tests.builders.dispatches import decisions_body
from tests.concurrent import Call, race, race_http

pytestmark = pytest.mark.usefixtures("long_lived_tokens")


@pytest.fixture
def alice(client, resident_login, db):
    from tests.builders.applications import village

    village(db)
    return resident_login("alice")


def town_actor(db: Session, login: Any) -> Actor:
    town_id = db.scalar(select(Town.id).where(Town.code == "chengdong"))
    return Actor(user_id=login.user_id, role=Role.TOWN_STAFF, town_id=town_id)


def count(db: Session, model: Any, *conditions: Any) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model).where(*conditions))


def steps(db: Session, application_id: int, status: str) -> int:
    return count(
        db,
        ApplicationEvent,
        ApplicationEvent.application_id == application_id,
        ApplicationEvent.status == status,
    )


def results(db: Session) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(InboxMessage.body).where(InboxMessage.title == "申请已办结")))


def test_two_staff_deciding_one_application_at_once_one_wins_and_the_resident_reads_its_outcome(
    runtime, client, alice, staff_login, db
):
    """Both read the application before either writes; the loser's outcome, step and message
    vanish, so what the resident reads is what is stored."""
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    first, second = (staff_login(role="town_staff", town="chengdong") for _ in range(2))
    investigated(client, first, app_id)
    actors = [town_actor(db, first), town_actor(db, second)]
    wanted = [
        decisions.Decision("dibao"),
        decisions.Decision("not_eligible", "家庭收入高于低保标准"),
    ]

    def prepare(session: Session) -> Application:
        return reading.access_application_by_id(session, app_id, actor=actors[0])

    def act(session: Session, _loaded: Application, i: int) -> None:
        decisions.decide_directly(session, app_id, wanted[i], actor=actors[i], now=clock.now())

    outcomes = race(runtime, prepare, act)
    assert sorted(outcomes) == ["ok", "stale"]
    winner = outcomes.index("ok")
    db.expire_all()
    stored = db.get(Application, app_id)
    assert (stored.outcome, stored.decided_by_id) == (
        wanted[winner].outcome,
        actors[winner].user_id,
    )
    assert steps(db, app_id, "decided") == 1
    assert results(db) == [f"您的最低生活保障申请（SQ{app_id:08d}）已办结：{wanted[winner].text}。"]
    assert count(db, AuditEntry, AuditEntry.action == "application.decision") == 1


def test_two_staff_accepting_one_application_at_once_one_wins(
    runtime, client, alice, staff_login, db
):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    logins = [staff_login(role="town_staff", town="chengdong") for _ in range(2)]
    actors = [town_actor(db, login) for login in logins]

    def prepare(session: Session) -> Application:
        return reading.access_application_by_id(session, app_id, actor=actors[0])

    def act(session: Session, _loaded: Application, i: int) -> None:
        handling.handle(
            session,
            app_id,
            filing.ApplicationStatus.ACCEPTED,
            actor=actors[i],
            now=clock.now(),
        )

    assert sorted(race(runtime, prepare, act)) == ["ok", "stale"]
    assert steps(db, app_id, "accepted") == 1
    assert count(db, OutboxMessage, OutboxMessage.event == "status") == 1


def test_two_staff_answering_one_slip_at_once_one_wins_and_each_application_is_decided_once(
    runtime, client, alice, center, chengdong, staff_login, db
):
    ids = file_kinds(client, alice, ("dibao", "temporary"))
    _, slip = signed_slip(client, center, chengdong, db, ids["dibao"])
    colleague = staff_login(role="town_staff", town="chengdong")
    actors = [town_actor(db, chengdong), town_actor(db, colleague)]
    answers = (
        transfers.Answer(ids["dibao"], decisions.Decision("dibao")),
        transfers.Answer(
            ids["temporary"], decisions.Decision("temporary_aid", amount=Decimal(3000))
        ),
    )

    def prepare(session: Session) -> Dispatch:
        return access.access_dispatch_by_id(session, slip["id"], actor=actors[0])

    def act(session: Session, _loaded: Dispatch, i: int) -> None:
        feedback = transfers.Feedback(findings=f"核实情况 {i}", answers=answers)
        transfers.give_feedback(session, slip["id"], feedback, actor=actors[i], now=clock.now())

    outcomes = race(runtime, prepare, act)
    # SQLite: the version check (stale); PostgreSQL: the lead lock, then the slip re-read (409).
    assert sorted(outcomes) in (["ok", "stale"], ["conflict:dispatch_state", "ok"])
    winner = outcomes.index("ok")
    db.expire_all()
    assert db.get(Dispatch, slip["id"]).findings == f"核实情况 {winner}"
    assert steps(db, ids["dibao"], "decided") == steps(db, ids["temporary"], "decided") == 1
    assert len(results(db)) == 2
    assert count(db, AuditEntry, AuditEntry.action == "dispatch.answered") == 1


def test_over_http_two_simultaneous_decisions_give_one_200_and_one_409(
    app, client, alice, staff_login, db
):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    first, second = (staff_login(role="town_staff", town="chengdong") for _ in range(2))
    investigated(client, first, app_id)
    path = f"/api/v1/applications/{app_id}/decide"
    responses = race_http(
        app,
        [
            Call(first.headers, path, {"outcome": "dibao"}),
            Call(second.headers, path, {"outcome": "not_eligible", "reason": "收入超标"}),
        ],
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert steps(db, app_id, "decided") == 1
    winner = next(r for r in responses if r.status_code == 200).get_json()
    assert results(db) == [
        f"您的最低生活保障申请（SQ{app_id:08d}）已办结：{winner['timeline'][-1]['title'][3:]}。"
    ]


def test_over_http_two_simultaneous_accepts_give_one_200_and_one_409(
    app, client, alice, staff_login, db
):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    logins = [staff_login(role="town_staff", town="chengdong") for _ in range(2)]
    path = f"/api/v1/applications/{app_id}/accept"
    responses = race_http(app, [Call(login.headers, path) for login in logins])
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert steps(db, app_id, "accepted") == 1
    assert count(db, OutboxMessage, OutboxMessage.event == "status") == 1


def test_over_http_two_simultaneous_feedbacks_give_one_200_and_one_409(
    app, client, alice, center, chengdong, staff_login, db
):
    app_id = file_kinds(client, alice, ("dibao",))["dibao"]
    _, slip = signed_slip(client, center, chengdong, db, app_id)
    colleague = staff_login(role="town_staff", town="chengdong")
    path = f"/api/v1/dispatches/{slip['id']}/feedback"
    body = decisions_body((app_id, "dibao"))
    responses = race_http(
        app, [Call(chengdong.headers, path, body), Call(colleague.headers, path, body)]
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert steps(db, app_id, "decided") == 1
    assert len(results(db)) == 1
    assert count(db, AuditEntry, AuditEntry.action == "dispatch.answered") == 1
