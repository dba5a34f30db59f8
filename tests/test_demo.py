"""The demo data shows a living system: staff, leads, a resident with applications, department
feeds, transfer slips in each state, supervision, a revisit and the month's figures."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import func, select

from server import clock
from server.clock import TZ
from server.demo.casework import HOTLINE_HEARD
from server.demo.seed import DEMO_PASSWORD, seed_demo
from server.models import (
    Application,
    AuditEntry,
    Dispatch,
    DispatchAlert,
    DispatchState,
    FeedBatch,
    FeedRejectedRow,
    Lead,
    LeadEvidence,
    LeadStatus,
    Revisit,
    RosterEntry,
    SupervisionNotice,
    User,
    Visit,
)
from server.services.reports.statistics import monthly_statistics, parse_month
from server.wechat.fake_state import fake_openid


def _seed(db, runtime, now: datetime | None = None) -> list[tuple[str, str, str]]:
    logins = seed_demo(
        db,
        pii=runtime.pii,
        now=now or clock.now(),
        storage=runtime.storage,
        openid_for=fake_openid,
    )
    db.commit()
    return logins


def _headers(client, username: str) -> dict[str, str]:
    resp = client.post(
        "/api/v1/auth/staff-login", json={"username": username, "password": DEMO_PASSWORD}
    )
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['token']}"}


def test_demo_resident_logs_in_and_sees_applications_at_each_step(client, db, runtime):
    _seed(db, runtime)
    token = client.post("/api/v1/auth/wechat-login", json={"code": "demo-alice"}).get_json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    items = client.get("/api/v1/applications", headers=headers).get_json()["items"]
    assert sorted(a["status"] for a in items) == ["decided", "investigating", "submitted"]
    decided = next(a for a in items if a["status"] == "decided")
    assert decided["outcome_label"] == "给予医疗救助 6000 元"
    assert decided["number"] == f"SQ{decided['id']:08d}"


def test_demo_feed_batches_show_results_and_rejected_rows(client, db, runtime):
    _seed(db, runtime)
    yibao = _headers(client, "yibao")
    batches = client.get("/api/v1/feeds/insurance_oop/batches", headers=yibao).get_json()["items"]
    assert len(batches) == 1
    batch = batches[0]
    assert batch["status"] == "done"
    assert {k: batch["result"][k] for k in ("read", "accepted", "rejected")} == {
        "read": 12,
        "accepted": 11,
        "rejected": 1,
    }
    assert batch["result"]["below_threshold"] == 2
    assert batch["result"]["leads_created"] == 8
    assert batch["result"]["leads_updated"] == 1  # someone the federation's file raised too
    assert [r["code"] for r in batch["rejected"]] == ["id_checksum"]
    errors = client.get(
        f"/api/v1/feeds/insurance_oop/batches/{batch['id']}/errors.xlsx", headers=yibao
    )
    assert errors.status_code == 200 and errors.data[:2] == b"PK"

    minzheng = _headers(client, "minzheng")
    roster = client.get("/api/v1/feeds/civil_affairs_new/batches", headers=minzheng).get_json()
    assert roster["items"][0]["result"]["roster_added"] == 3
    assert db.scalar(select(func.count()).select_from(RosterEntry)) == 3


def test_demo_feeds_fill_the_queue_with_a_roster_member_and_a_person_in_two_feeds(
    client, db, runtime
):
    _seed(db, runtime)
    center = _headers(client, "center")

    def ids(query: str) -> set[int]:
        items = client.get(f"/api/v1/leads?limit=100&{query}", headers=center).get_json()["items"]
        return {i["id"] for i in items}

    insurance, disability = ids("feed=insurance_oop"), ids("feed=disability_new")
    assert len(insurance) >= 6 and len(disability) >= 3
    assert insurance & disability  # one person in two department files, one lead
    on_roster = db.scalar(
        select(LeadEvidence).where(
            LeadEvidence.feed_code == "insurance_oop", LeadEvidence.summary.like("%已享低保%")
        )
    )
    assert on_roster is not None and on_roster.facts["suggested_aid"] == "医疗救助"
    # The department sees the leads its own file raised.
    yibao = client.get("/api/v1/leads?limit=100", headers=_headers(client, "yibao")).get_json()
    assert {i["id"] for i in yibao["items"]} == insurance


def test_demo_hotline_report_without_id_number_is_a_merge_candidate_of_a_feed_lead(
    client, db, runtime
):
    _seed(db, runtime)
    center = _headers(client, "center")
    hotline = client.get("/api/v1/leads?channel=hotline&limit=100", headers=center).get_json()
    report = next(i for i in hotline["items"] if i["name"] == HOTLINE_HEARD[1])
    assert report["has_id_number"] is False
    candidates = client.get(f"/api/v1/leads/{report['id']}/candidates", headers=center).get_json()[
        "candidates"
    ]
    assert candidates[0]["name"] == HOTLINE_HEARD[0]
    assert candidates[0]["has_id_number"] is True
    feed_lead = db.get(Lead, candidates[0]["lead_id"])
    assert {e.feed_code for e in feed_lead.evidence} == {"insurance_oop"}


def test_demo_slips_in_each_state_with_an_overdue_one_marked_and_escalated(client, db, runtime):
    _seed(db, runtime)
    center = _headers(client, "center")
    body = client.get("/api/v1/dispatches?per_page=50", headers=center).get_json()
    slips = body["items"]
    assert Counter(s["state"] for s in slips) == {
        "issued": 2,
        "signed": 1,
        "answered": 2,
        "returned": 1,
    }
    overdue = [s for s in slips if s["deadline"]["state"] == "overdue"]
    assert len(overdue) == 1 and overdue[0]["state"] == "issued"
    assert overdue[0]["escalation_level"] >= 1
    alerts = client.get(f"/api/v1/dispatches/{overdue[0]['id']}", headers=center).get_json()
    assert {"overdue", "escalate_head"} <= {a["kind"] for a in alerts["alerts"]}
    answered = {s["outcome"]: s for s in slips if s["state"] == "answered"}
    assert answered["temporary_aid"]["outcome_label"] == "给予临时救助 3000 元"
    assert answered["medical_aid"]["answered_on_time"] is True
    returned = next(s for s in slips if s["state"] == "returned")
    assert returned["return_reason"]
    notices = client.get("/api/v1/supervision", headers=center).get_json()["items"]
    assert [(n["unit"]["code"], n["overdue_count"]) for n in notices] == [("baita", 1)]
    # The receiving units see their own slips and can act on them.
    town = client.get("/api/v1/dispatches", headers=_headers(client, "chengdong")).get_json()
    assert {s["state"] for s in town["items"]} == {"issued", "signed", "answered"}


def test_demo_revisit_closes_a_lead_and_another_waits_for_it(db, runtime):
    _seed(db, runtime)
    revisit = db.scalar(select(Revisit))
    assert revisit is not None and revisit.satisfaction == 5
    assert db.get(Lead, revisit.lead_id).status is LeadStatus.CLOSED
    waiting = db.scalars(select(Lead).where(Lead.status == LeadStatus.AWAITING_REVISIT)).all()
    assert len(waiting) == 1


def test_demo_monthly_report_of_the_current_month_is_not_empty(client, db, runtime):
    now = clock.now()
    _seed(db, runtime, now)
    report = client.get(
        f"/api/v1/reports/monthly?month={now:%Y-%m}", headers=_headers(client, "leader")
    ).get_json()
    assert report["leads"]["total"] > 0
    assert any(f["code"] == "insurance_oop" for f in report["leads"]["by_feed"])
    slips = report["slips"]
    assert slips["issued"] >= 5 and slips["answered_on_time"] == 2 and slips["returned"] == 1
    assert slips["still_open"] == 3
    outcomes = {o["code"]: o["amount"] for o in report["outcomes"]}
    # Each application's own decision counts beside the slips' outcomes: the demo decides the
    # resident's 医疗救助 application (6,000) and answers a department slip with 8,000.
    assert outcomes == {"temporary_aid": "3000.00", "medical_aid": "14000.00"}
    assert report["satisfaction"]["count"] == 1 and report["satisfaction"]["average"] == 5.0


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 10, 1, 0, 5, tzinfo=TZ),  # first minutes of a month, in a long holiday
        datetime(2026, 2, 24, 9, 0, tzinfo=TZ),  # the first working day after Spring Festival
        datetime(2031, 3, 3, 10, 0, tzinfo=TZ),  # a year the calendar does not know yet
    ],
    ids=["month-start-holiday", "after-spring-festival", "unknown-year"],
)
def test_demo_at_any_moment_has_an_overdue_slip_and_figures_for_the_month(db, runtime, now):
    _seed(db, runtime, now)
    overdue = db.scalars(select(Dispatch).where(Dispatch.overdue_at.is_not(None))).all()
    assert len(overdue) == 1 and overdue[0].state is DispatchState.ISSUED
    assert overdue[0].overdue_days >= 3
    figures = monthly_statistics(db, period=parse_month(f"{now:%Y-%m}"), town=None, now=now)
    assert figures["leads"]["total"] > 0
    assert figures["slips"]["answered_on_time"] == 2 and figures["slips"]["returned"] == 1
    assert figures["satisfaction"]["count"] == 1


_COUNTED = (
    User,
    Lead,
    LeadEvidence,
    FeedBatch,
    FeedRejectedRow,
    RosterEntry,
    Dispatch,
    DispatchAlert,
    SupervisionNotice,
    Revisit,
    Application,
    Visit,
    AuditEntry,
)


def test_demo_seed_runs_once(db, runtime):
    def counts() -> dict[str, int]:
        return {
            model.__name__: db.scalar(select(func.count()).select_from(model)) for model in _COUNTED
        }

    assert _seed(db, runtime)
    first = counts()
    assert first["FeedBatch"] == 3 and first["Dispatch"] == 6 and first["Revisit"] == 1
    assert _seed(db, runtime) == []
    assert counts() == first


def test_demo_fills_households_a_volunteer_donations_and_services(client, db, runtime):
    now = clock.now()
    _seed(db, runtime, now)
    center = _headers(client, "center")
    households = client.get("/api/v1/households?per_page=100", headers=center).get_json()
    assert households["total"] >= 5
    token = client.post("/api/v1/auth/wechat-login", json={"code": "demo-vera"}).get_json()
    vera = {"Authorization": f"Bearer {token['token']}"}
    assert token["user"]["role"] == "volunteer"
    (report,) = client.get("/api/v1/volunteer/reports", headers=vera).get_json()["items"]
    assert report["status_text"] == "已收到，工作人员正在核实"
    books = client.get("/api/v1/donations/books", headers=center).get_json()
    purposes = {line["key"]: line for line in books["by_purpose"] if line["kind"] == "money"}
    assert (purposes["助学"]["received"], purposes["助学"]["left"]) == ("20000.00", "13000.00")
    counts = client.get("/api/v1/services/counts", headers=center).get_json()
    assert {c["kind"] for c in counts} == {"counselling", "humanistic_care"}
    public = client.get("/api/v1/public/donations").get_json()["items"]
    assert sum(float(i["money_received"]) for i in public) == 23000
    report = client.get(
        f"/api/v1/reports/monthly?month={now:%Y-%m}", headers=_headers(client, "leader")
    ).get_json()
    assert report["help"]["households_helped"] >= 2
    assert report["help"]["services"]["services"] == 2
    assert report["help"]["aid"]["amount"] != "0.00"
