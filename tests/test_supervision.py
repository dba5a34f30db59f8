"""Deadlines and supervision: reminders one working day ahead, overdue marking, escalation,
supervision notices per unit and month, and a check that is safe to run twice."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from server import clock
from server.models import AuditEntry, Dispatch, DispatchAlert, InboxMessage, Job, SupervisionNotice
from server.services.dispatches import supervision
from server.services.kernel import jobs
from server.worker import runner
from tests.builders import dispatches as slips
from tests.builders import supervision as notices
from tests.builders.dispatches import feedback_body, issued, make_lead, post
from tests.builders.supervision import moment, run_check

pytestmark = pytest.mark.usefixtures("long_lived_tokens")
at_time = slips.at_time
noted = notices.noted


def counts(db) -> tuple[int, int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(DispatchAlert)),
        db.scalar(select(func.count()).select_from(SupervisionNotice)),
        db.scalar(select(func.count()).select_from(InboxMessage)),
    )


@pytest.fixture
def slip(client, center, chengdong, at_time):
    """A slip to 城东街道 issued Mon 16 Nov 2026, due Mon 23 Nov."""
    at_time(2026, 11, 16, 10, 0)
    body = issued(client, center, make_lead(client, center))
    assert body["due_date"] == "2026-11-23"
    return body


def test_nothing_happens_while_a_slip_has_two_working_days_or_more(runtime, slip, db):
    result = run_check(runtime, 2026, 11, 19, 8, 0)  # Thursday: Friday and Monday left
    assert (result.reminded, result.marked_overdue) == (0, 0)
    assert counts(db) == (0, 0, 0)


def test_the_unit_is_reminded_one_working_day_before_the_due_date_once(
    runtime, client, slip, chengdong, db
):
    first = run_check(runtime, 2026, 11, 20, 8, 0)  # Friday: only Monday left
    assert first.reminded == 1
    again = run_check(runtime, 2026, 11, 20, 9, 0)
    weekend = run_check(runtime, 2026, 11, 22, 8, 0)
    assert (again.reminded, weekend.reminded) == (0, 0)
    alerts = db.scalars(select(DispatchAlert)).all()
    assert [(a.kind.value, a.recipient) for a in alerts] == [("reminder", "城东街道经办人员")]
    inbox = client.get("/api/v1/messages", headers=chengdong.headers).get_json()
    messages = inbox["items"] if isinstance(inbox, dict) else inbox
    assert len(messages) == 1
    assert slip["number"] in messages[0]["title"]
    assert "到期" in messages[0]["body"]


def test_an_overdue_slip_is_marked_and_noted_once_however_often_the_check_runs(runtime, slip, db):
    first = run_check(runtime, 2026, 11, 24, 8, 0)
    assert (first.marked_overdue, first.notices_created) == (1, 1)
    before = counts(db)
    second = run_check(runtime, 2026, 11, 24, 8, 0)
    third = run_check(runtime, 2026, 11, 24, 18, 0)
    assert (second.marked_overdue, second.notices_created, second.notices_updated) == (0, 0, 0)
    assert third.marked_overdue == 0
    assert counts(db) == before
    notice = db.scalar(select(SupervisionNotice))
    assert (notice.month, notice.unit_key, notice.overdue_count, notice.max_overdue_days) == (
        "2026-11",
        f"town:{db.get(Dispatch, slip['id']).town_id}",
        1,
        1,
    )
    dispatch = db.get(Dispatch, slip["id"])
    assert (dispatch.overdue_days, dispatch.escalation_level) == (1, 0)
    assert dispatch.overdue_at == moment(2026, 11, 24, 8, 0)


def test_what_stays_overdue_goes_to_the_units_head_then_the_leading_group(
    runtime, client, slip, staff_login, db
):
    leader = staff_login(role="leader")
    run_check(runtime, 2026, 11, 24, 8, 0)  # 1 working day late
    head = run_check(runtime, 2026, 11, 25, 8, 0)  # 2: the unit's head
    assert (head.escalated_head, head.escalated_group) == (1, 0)
    assert run_check(runtime, 2026, 11, 27, 8, 0).escalated_head == 0  # 4: nothing new
    group = run_check(runtime, 2026, 12, 1, 8, 0)  # 6 working days: the leading group
    assert group.escalated_group == 1
    assert run_check(runtime, 2026, 12, 2, 8, 0).escalated_group == 0
    kinds = db.scalars(select(DispatchAlert.kind).order_by(DispatchAlert.id)).all()
    assert [k.value for k in kinds] == ["overdue", "escalate_head", "escalate_group"]
    dispatch = db.get(Dispatch, slip["id"])
    assert (dispatch.escalation_level, dispatch.overdue_days) == (2, 7)
    inbox = client.get("/api/v1/messages", headers=leader.headers).get_json()
    messages = inbox["items"] if isinstance(inbox, dict) else inbox
    assert [m["title"] for m in messages] == [f"提级督办（领导小组）：{slip['number']}"]
    # Still overdue in December: December's notice lists it too; November's keeps its worst.
    notices = {n.month: n for n in db.scalars(select(SupervisionNotice))}
    assert (notices["2026-11"].overdue_count, notices["2026-11"].max_overdue_days) == (1, 4)
    assert (notices["2026-12"].overdue_count, notices["2026-12"].max_overdue_days) == (1, 7)


def test_a_check_that_ran_late_does_not_send_a_stale_reminder(runtime, slip, db):
    result = run_check(runtime, 2026, 11, 26, 8, 0)  # never ran before; 3 days late already
    assert (result.reminded, result.marked_overdue, result.escalated_head) == (0, 1, 1)


def test_answered_and_returned_slips_are_left_alone(
    runtime, client, center, chengdong, insurance, at_time, db
):
    at_time(2026, 11, 16, 10, 0)
    lead_id = make_lead(client, center)
    answered = issued(client, center, lead_id)
    returned = issued(
        client, center, lead_id, unit_kind="department", unit_code="medical_insurance"
    )
    post(client, chengdong, f"/api/v1/dispatches/{answered['id']}/sign")
    post(client, chengdong, f"/api/v1/dispatches/{answered['id']}/feedback", feedback_body())
    post(client, insurance, f"/api/v1/dispatches/{returned['id']}/return", {"reason": "非本部门"})
    result = run_check(runtime, 2026, 11, 30, 8, 0)
    assert (result.checked, result.marked_overdue) == (0, 0)
    assert counts(db) == (0, 0, 0)


def test_notices_are_per_unit_and_month(runtime, client, center, at_time, db):
    at_time(2026, 11, 16, 10, 0)
    for _ in range(2):
        issued(client, center, make_lead(client, center))
    issued(client, center, make_lead(client, center), unit_kind="department", unit_code="health")
    result = run_check(runtime, 2026, 11, 24, 8, 0)
    assert (result.marked_overdue, result.notices_created, result.notices_updated) == (3, 2, 1)
    rows = {
        n.unit_key.split(":")[0]: n.overdue_count for n in db.scalars(select(SupervisionNotice))
    }
    assert rows == {"town": 2, "department": 1}


# --- reading the notices -----------------------------------------------------------------------


def test_the_center_lists_every_notice_and_units_their_own(
    client, noted, center, chengdong, staff_login
):
    everything = client.get("/api/v1/supervision", headers=center.headers).get_json()["items"]
    assert sorted(n["unit"]["name"] for n in everything) == ["区卫生健康局", "城东街道"]
    town = client.get("/api/v1/supervision", headers=chengdong.headers).get_json()["items"]
    assert [(n["unit"]["code"], n["dispatch_numbers"]) for n in town] == [
        ("chengdong", [noted["town"]["number"]])
    ]
    health = staff_login(role="department_staff", department="health")
    assert [
        n["unit"]["code"]
        for n in client.get("/api/v1/supervision", headers=health.headers).get_json()["items"]
    ] == ["health"]
    baita = staff_login(role="town_staff", town="baita")
    assert client.get("/api/v1/supervision", headers=baita.headers).get_json()["items"] == []
    leader = staff_login(role="leader")
    assert len(client.get("/api/v1/supervision", headers=leader.headers).get_json()["items"]) == 2


def test_notices_filter_by_month(client, noted, center):
    assert (
        len(client.get("/api/v1/supervision?month=2026-11", headers=center.headers).json["items"])
        == 2
    )
    assert (
        client.get("/api/v1/supervision?month=2026-10", headers=center.headers).json["items"] == []
    )
    assert (
        client.get("/api/v1/supervision?month=2026-13", headers=center.headers).status_code == 422
    )


def test_residents_cannot_read_notices(client, resident_login):
    assert client.get("/api/v1/supervision").status_code == 401
    headers = resident_login("r").headers
    assert client.get("/api/v1/supervision", headers=headers).status_code == 403
    assert client.get("/api/v1/supervision.xlsx", headers=headers).status_code == 403


def test_notices_export_as_xlsx(client, noted, center, db):
    resp = client.get("/api/v1/supervision.xlsx?month=2026-11", headers=center.headers)
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    assert "supervision-2026-11.xlsx" in resp.headers["Content-Disposition"]
    book = CalamineWorkbook.from_filelike(io.BytesIO(resp.data))
    rows = book.get_sheet_by_name("超期通报").to_python()
    assert rows[2][:5] == ["月份", "单位类型", "单位", "超期件数", "最长超期（工作日）"]
    body = {row[2]: row for row in rows[3:5]}
    assert body["城东街道"][3] == 1
    assert body["城东街道"][5] == noted["town"]["number"]
    assert body["区卫生健康局"][1] == "部门"
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "supervision.exported"))


def test_a_slip_shows_the_reminders_and_escalations_sent_about_it(client, noted, center, at_time):
    at_time(2026, 11, 24, 9, 0)
    shown = client.get(
        f"/api/v1/dispatches/{noted['town']['id']}", headers=center.headers
    ).get_json()
    assert [a["kind"] for a in shown["alerts"]] == ["overdue"]
    assert shown["deadline"]["state"] == "overdue"


# --- the command and the worker ----------------------------------------------------------------


def test_the_check_deadlines_command_is_idempotent(runtime, slip, database_url, monkeypatch, db):
    from click.testing import CliRunner

    from server.cli import main

    monkeypatch.setattr(clock, "now", lambda: moment(2026, 11, 24, 8, 0))
    monkeypatch.setenv("DATABASE_URL", database_url)
    first = CliRunner().invoke(main, ["check-deadlines"])
    assert first.exit_code == 0, first.output
    assert "marked_overdue: 1" in first.output
    second = CliRunner().invoke(main, ["check-deadlines"])
    assert "marked_overdue: 0" in second.output
    assert counts(db)[:2] == (1, 1)


def _pass(runtime, at: datetime) -> int:
    """One pass of the worker's loop at `at`: queue what the schedule says is due, run it."""
    from server.worker import schedule

    with runtime.session_factory() as session:
        schedule.queue_due(session, now=at)
        session.commit()
    return runner.run_due(
        runtime.session_factory, worker_id="w1", clock=lambda: at, deps=runtime.job_deps()
    )


def test_the_worker_runs_the_daily_check_from_its_schedule_without_anyone_queuing_it(
    runtime, slip, db
):
    _pass(runtime, moment(2026, 11, 24, 7, 59))  # a worker started today: yesterday's run
    _pass(runtime, moment(2026, 11, 24, 7, 59, 30))  # the next pass queues nothing more
    _pass(runtime, moment(2026, 11, 24, 8, 0))  # today's, at 08:00
    db.expire_all()
    assert db.get(Dispatch, slip["id"]).overdue_at is not None
    checks = db.scalars(select(Job).where(Job.kind == supervision.JOB_KIND).order_by(Job.id))
    assert [(j.dedup_key, j.status) for j in checks] == [
        ("supervision.check_deadlines:2026-11-23", "done"),
        ("supervision.check_deadlines:2026-11-24", "done"),
    ]


def test_a_days_check_is_queued_and_run_once_however_many_passes_and_workers(runtime, slip, db):
    from server.worker import schedule

    at = moment(2026, 11, 24, 9, 0)
    for _ in range(3):
        with runtime.session_factory() as session:
            schedule.queue_due(session, now=at)
            session.commit()
    assert _pass(runtime, at) == len(schedule.SCHEDULE)
    assert _pass(runtime, at) == 0
    assert db.scalar(select(func.count()).where(Job.kind == supervision.JOB_KIND)) == 1


def test_a_failing_run_does_not_stop_the_next_days(runtime, slip, db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(supervision, "check_deadlines", broken)
    day = moment(2026, 11, 24, 8, 0)
    for minutes in range(0, 24 * 60, 30):  # every retry of the day fails
        _pass(runtime, day + timedelta(minutes=minutes))
    (failed,) = db.scalars(select(Job).where(Job.kind == supervision.JOB_KIND)).all()
    assert failed.status == "failed"
    monkeypatch.undo()
    _pass(runtime, moment(2026, 11, 25, 8, 0))
    db.expire_all()
    runs = db.scalars(select(Job).where(Job.kind == supervision.JOB_KIND).order_by(Job.id)).all()
    assert [(j.dedup_key, j.status) for j in runs] == [
        ("supervision.check_deadlines:2026-11-24", "failed"),
        ("supervision.check_deadlines:2026-11-25", "done"),
    ]
    assert db.get(Dispatch, slip["id"]).overdue_at is not None


def test_a_worker_that_was_down_catches_up_with_the_latest_missed_run_only(runtime, slip, db):
    _pass(runtime, moment(2026, 11, 27, 10, 0))  # down since before the 24th's 08:00
    keys = db.scalars(select(Job.dedup_key).where(Job.kind == supervision.JOB_KIND)).all()
    assert keys == ["supervision.check_deadlines:2026-11-27"]


def test_every_scheduled_job_has_a_registered_handler() -> None:
    from server.worker import registry, schedule

    registry.load_job_handlers()
    assert {entry.kind for entry in schedule.SCHEDULE} <= set(jobs.registered_kinds())
    assert set(registry.HANDLERS) <= set(jobs.registered_kinds())
