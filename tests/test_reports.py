"""Monthly statistics and the towns' monthly summaries.

The report test builds a random data set (seeded) with edge cases at the month's borders, then
computes every expected figure here in plain Python from the data it generated, following the
counting rules written in server/services/reports/statistics.py, and compares with the API.
"""

from __future__ import annotations

import io
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from server import clock
from server.models import (
    AuditEntry,
    Channel,
    Department,
    Dispatch,
    DispatchState,
    Lead,
    LeadEvidence,
    LeadStatus,
    Revisit,
    RevisitSource,
    Town,
    UnitKind,
)

TZ = clock.TZ
MONTH_START = datetime(2026, 11, 1, tzinfo=TZ)
MONTH_END = datetime(2026, 12, 1, tzinfo=TZ)
FEEDS = ["hospital_oop", "disability_new", "fire"]
CATEGORIES = ["dibao", "disabled", "illness", "orphan", "accident"]
CHANNELS = [Channel.MINIPROGRAM, Channel.VISIT, Channel.FEED, Channel.HOTLINE, Channel.ON_BEHALF]
OUTCOMES = ["dibao", "temporary_aid", "medical_aid", "not_eligible", "referred"]


def moment(rng: random.Random, first: datetime, last: datetime) -> datetime:
    return first + timedelta(seconds=rng.randrange(int((last - first).total_seconds())))


def in_month(at: datetime | None) -> bool:
    return at is not None and MONTH_START <= at < MONTH_END


@dataclass
class DataSet:
    leads: list[Lead] = field(default_factory=list)
    evidence: list[LeadEvidence] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    revisits: list[Revisit] = field(default_factory=list)
    towns: dict[int, Town] = field(default_factory=dict)
    departments: dict[int, Department] = field(default_factory=dict)


def build_data_set(db, *, seed: int = 2026) -> DataSet:
    rng = random.Random(seed)
    data = DataSet()
    towns = list(db.scalars(select(Town).order_by(Town.id)))
    departments = list(db.scalars(select(Department).order_by(Department.id)))
    data.towns = {t.id: t for t in towns}
    data.departments = {d.id: d for d in departments}
    town_choices = [towns[0], towns[1], towns[2], None]

    # Leads, with the month's four borders spelled out.
    borders = [
        MONTH_START - timedelta(seconds=1),
        MONTH_START,
        MONTH_END - timedelta(seconds=1),
        MONTH_END,
    ]
    times = borders + [
        moment(rng, datetime(2026, 10, 10, tzinfo=TZ), datetime(2026, 12, 10, tzinfo=TZ))
        for _ in range(70)
    ]
    for i, created in enumerate(times):
        status = rng.choice(
            [LeadStatus.NEW, LeadStatus.DISPATCHED, LeadStatus.CLOSED, LeadStatus.MERGED]
        )
        town = rng.choice(town_choices)
        lead = Lead(
            person_hash=f"h{i:04d}",
            name=f"测试{i}",
            status=status,
            is_open=status in (LeadStatus.NEW, LeadStatus.DISPATCHED),
            channel=rng.choice(CHANNELS),
            categories=rng.sample(CATEGORIES, rng.randrange(0, 3)),
            town_id=town.id if town else None,
            created_at=created,
            updated_at=created,
        )
        data.leads.append(lead)
    db.add_all(data.leads)
    db.flush()

    for lead in data.leads:
        for n in range(rng.randrange(0, 3)):
            data.evidence.append(
                LeadEvidence(
                    lead_id=lead.id,
                    channel=Channel.FEED,
                    feed_code=rng.choice([*FEEDS, None]),
                    summary="测试证据",
                    dedup_key=f"e{lead.id}-{n}",
                    created_at=moment(
                        rng, datetime(2026, 10, 20, tzinfo=TZ), datetime(2026, 12, 5, tzinfo=TZ)
                    ),
                )
            )
    db.add_all(data.evidence)

    for i in range(50):
        lead = rng.choice(data.leads)
        issued = moment(rng, datetime(2026, 10, 5, tzinfo=TZ), datetime(2026, 12, 3, tzinfo=TZ))
        if i == 0:
            issued = MONTH_END - timedelta(seconds=1)  # issued in the month, answered after it
        to_town = rng.random() < 0.4
        fate = "answered" if i == 0 else rng.choice(["open", "answered", "answered", "returned"])
        closed_at = issued + timedelta(hours=rng.randrange(2, 24 * 20))
        if i == 0:
            closed_at = MONTH_END + timedelta(hours=2)
        outcome = rng.choice(OUTCOMES) if fate == "answered" else None
        dispatch = Dispatch(
            number=f"BSJZ-2026-{i + 1:06d}",
            year=2026,
            serial=i + 1,
            lead_id=lead.id,
            unit_kind=UnitKind.TOWN if to_town else UnitKind.DEPARTMENT,
            town_id=rng.choice(list(data.towns)[:3]) if to_town else None,
            department_id=None if to_town else rng.choice(list(data.departments)[:3]),
            lead_town_id=lead.town_id,
            instructions="请核实",
            state={
                "open": DispatchState.SIGNED,
                "answered": DispatchState.ANSWERED,
                "returned": DispatchState.RETURNED,
            }[fate],
            due_date=(issued + timedelta(days=7)).date(),
            due_certain=True,
            issued_at=issued,
            answered_at=closed_at if fate == "answered" else None,
            answered_on_time=(rng.random() < 0.6) if fate == "answered" else None,
            returned_at=closed_at if fate == "returned" else None,
            return_reason="非本单位职责" if fate == "returned" else None,
            outcome=outcome,
            amount=(
                Decimal(rng.randrange(500, 5000)) + Decimal("0.50")
                if outcome in ("temporary_aid", "medical_aid")
                else None
            ),
            updated_at=issued,
        )
        data.dispatches.append(dispatch)
    db.add_all(data.dispatches)

    for _ in range(25):
        data.revisits.append(
            Revisit(
                lead_id=rng.choice(data.leads).id,
                source=RevisitSource.CENTER,
                informed=True,
                satisfaction=rng.randrange(1, 6),
                created_at=moment(
                    rng, datetime(2026, 10, 25, tzinfo=TZ), datetime(2026, 12, 5, tzinfo=TZ)
                ),
            )
        )
    db.add_all(data.revisits)
    db.commit()
    return data


def expected_figures(data: DataSet, town_id: int | None = None) -> dict:
    """The month's figures, from the generated objects, in plain Python."""

    def lead_in_scope(lead: Lead) -> bool:
        return town_id is None or lead.town_id == town_id

    leads_by_id = {lead.id: lead for lead in data.leads}
    counted = [
        lead
        for lead in data.leads
        if in_month(lead.created_at) and lead.status != LeadStatus.MERGED and lead_in_scope(lead)
    ]
    by_town: Counter = Counter(
        data.towns[lead.town_id].code if lead.town_id else None for lead in counted
    )
    feeds: dict[str, set[int]] = defaultdict(set)
    for e in data.evidence:
        lead = leads_by_id[e.lead_id]
        if (
            e.feed_code
            and in_month(e.created_at)
            and lead.status != LeadStatus.MERGED
            and lead_in_scope(lead)
        ):
            feeds[e.feed_code].add(e.lead_id)

    slips = [d for d in data.dispatches if town_id is None or d.lead_town_id == town_id]

    def slip_counts(items: list[Dispatch]) -> dict[str, int]:
        return {
            "issued": sum(in_month(d.issued_at) for d in items),
            "answered_on_time": sum(in_month(d.answered_at) and d.answered_on_time for d in items),
            "answered_late": sum(
                in_month(d.answered_at) and d.answered_on_time is False for d in items
            ),
            "returned": sum(in_month(d.returned_at) for d in items),
            "still_open": sum(
                d.issued_at < MONTH_END
                and (d.answered_at is None or d.answered_at >= MONTH_END)
                and (d.returned_at is None or d.returned_at >= MONTH_END)
                for d in items
            ),
        }

    units: dict[tuple[str, int], list[Dispatch]] = defaultdict(list)
    for d in slips:
        key = (d.unit_kind.value, d.town_id if d.unit_kind == UnitKind.TOWN else d.department_id)
        units[key].append(d)
    by_unit = {key: slip_counts(items) for key, items in units.items()}
    by_unit = {key: counts for key, counts in by_unit.items() if any(counts.values())}

    outcomes: dict[str, list] = {}
    for d in slips:
        if in_month(d.answered_at) and d.outcome:
            entry = outcomes.setdefault(d.outcome, [0, Decimal("0")])
            entry[0] += 1
            entry[1] += d.amount or 0
    scores = [
        r.satisfaction
        for r in data.revisits
        if in_month(r.created_at) and lead_in_scope(leads_by_id[r.lead_id])
    ]
    return {
        "total": len(counted),
        "by_channel": dict(Counter(lead.channel.value for lead in counted)),
        "by_town": dict(by_town),
        "by_category": dict(Counter(c for lead in counted for c in lead.categories)),
        "by_feed": {code: len(ids) for code, ids in feeds.items()},
        "slips": slip_counts(slips),
        "by_unit": by_unit,
        "outcomes": {code: (n, f"{amount:.2f}") for code, (n, amount) in outcomes.items()},
        "satisfaction": (len(scores), round(sum(scores) / len(scores), 2) if scores else None),
        "by_score": [scores.count(s) for s in range(1, 6)],
    }


def actual_figures(body: dict) -> dict:
    leads, slips = body["leads"], body["slips"]
    return {
        "total": leads["total"],
        "by_channel": {i["code"]: i["count"] for i in leads["by_channel"]},
        "by_town": {i["code"]: i["count"] for i in leads["by_town"]},
        "by_category": {i["code"]: i["count"] for i in leads["by_category"]},
        "by_feed": {i["code"]: i["count"] for i in leads["by_feed"]},
        "slips": {
            k: slips[k]
            for k in ("issued", "answered_on_time", "answered_late", "returned", "still_open")
        },  # fmt: skip
        "by_unit": {
            (u["kind"], u["id"]): {
                k: u[k]
                for k in ("issued", "answered_on_time", "answered_late", "returned", "still_open")
            }
            for u in slips["by_unit"]
        },
        "outcomes": {o["code"]: (o["count"], o["amount"]) for o in body["outcomes"]},
        "satisfaction": (body["satisfaction"]["count"], body["satisfaction"]["average"]),
        "by_score": [s["count"] for s in body["satisfaction"]["by_score"]],
    }


@pytest.fixture
def at_time(monkeypatch):
    """Fix the application's clock: `at_time(datetime(...))`."""

    def set_to(moment_: datetime) -> None:
        monkeypatch.setattr(clock, "now", lambda: moment_)

    return set_to


# --- the statistics ---------------------------------------------------------------------------


def test_monthly_figures_match_an_independent_count_of_a_random_data_set(client, staff_login, db):
    data = build_data_set(db)
    expected = expected_figures(data)
    assert expected["total"] > 10 and expected["slips"]["issued"] > 5  # the set is not trivial
    center = staff_login()
    resp = client.get("/api/v1/reports/monthly?month=2026-11", headers=center.headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert actual_figures(body) == expected
    assert body["town"] is None and body["period"]["first_day"] == "2026-11-01"
    answered = expected["slips"]["answered_on_time"] + expected["slips"]["answered_late"]
    assert body["slips"]["on_time_rate"] == round(
        expected["slips"]["answered_on_time"] / answered, 4
    )


def test_a_towns_figures_count_only_that_towns_leads_and_slips(client, staff_login, db):
    data = build_data_set(db, seed=7)
    town = next(iter(data.towns.values()))
    expected = expected_figures(data, town_id=town.id)
    center = staff_login()
    body = client.get(
        f"/api/v1/reports/monthly?month=2026-11&town={town.code}", headers=center.headers
    ).get_json()
    assert actual_figures(body) == expected
    assert body["town"] == {"code": town.code, "name": town.name}

    own = staff_login(role="town_staff", town=town.code)
    mine = client.get("/api/v1/reports/monthly?month=2026-11", headers=own.headers).get_json()
    assert actual_figures(mine) == expected


def test_leads_on_the_months_borders_count_in_the_month_they_began(client, staff_login, db):
    for i, created in enumerate(
        [
            datetime(2026, 10, 31, 23, 59, 59, tzinfo=TZ),
            datetime(2026, 11, 1, 0, 0, 0, tzinfo=TZ),
            datetime(2026, 11, 30, 23, 59, 59, tzinfo=TZ),
            datetime(2026, 12, 1, 0, 0, 0, tzinfo=TZ),
        ]
    ):
        db.add(
            Lead(
                person_hash=f"b{i}",
                name="边界",
                status=LeadStatus.NEW,
                channel=Channel.HOTLINE,
                categories=["dibao"],
                created_at=created,
                updated_at=created,
            )
        )
    db.commit()
    center = staff_login()
    for month, total in (("2026-10", 1), ("2026-11", 2), ("2026-12", 1)):
        body = client.get(f"/api/v1/reports/monthly?month={month}", headers=center.headers)
        assert body.get_json()["leads"]["total"] == total, month


def test_an_empty_month_reports_zeros_and_no_average(client, staff_login):
    center = staff_login()
    body = client.get("/api/v1/reports/monthly?month=2030-02", headers=center.headers).get_json()
    assert body["leads"]["total"] == 0 and body["leads"]["by_channel"] == []
    assert body["slips"]["issued"] == 0 and body["slips"]["on_time_rate"] is None
    assert body["satisfaction"] == {
        "count": 0,
        "average": None,
        "by_score": [{"score": s, "count": 0} for s in range(1, 6)],
    }


def test_the_xlsx_export_carries_the_same_figures(client, staff_login, db):
    import openpyxl

    data = build_data_set(db, seed=11)
    expected = expected_figures(data)
    center = staff_login()
    resp = client.get("/api/v1/reports/monthly.xlsx?month=2026-11", headers=center.headers)
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    assert "monthly-2026-11.xlsx" in resp.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(resp.data))
    assert book.sheetnames == ["概况", "线索", "转办单", "办理结果", "救助帮扶", "镇街小结"]
    overview = {row[0]: row[1] for row in book["概况"].iter_rows(min_row=4, values_only=True)}
    assert overview["新增线索"] == expected["total"]
    assert overview["转办单：本月签发"] == expected["slips"]["issued"]
    assert overview["转办单：本月按期反馈"] == expected["slips"]["answered_on_time"]
    assert overview["转办单：本月逾期反馈"] == expected["slips"]["answered_late"]
    assert overview["转办单：月末仍在办理"] == expected["slips"]["still_open"]
    assert overview["平均满意度（1–5）"] == expected["satisfaction"][1]
    outcome_rows = list(book["办理结果"].iter_rows(min_row=2, values_only=True))
    assert sum(r[1] for r in outcome_rows) == sum(n for n, _ in expected["outcomes"].values())
    towns = [r[0] for r in book["镇街小结"].iter_rows(min_row=2, values_only=True)]
    assert len(towns) == len(data.towns)


def test_who_may_read_the_monthly_report(client, staff_login, resident_login):
    url = "/api/v1/reports/monthly?month=2026-11"
    assert client.get(url).status_code == 401
    assert client.get(url + "&town=chengdong").status_code == 401
    for login in (staff_login(role="department_staff"), resident_login("rae")):
        assert client.get(url, headers=login.headers).status_code == 403
        assert (
            client.get(url.replace("monthly", "monthly.xlsx"), headers=login.headers).status_code
            == 403
        )
    leader = staff_login(role="leader")
    assert client.get(url + "&town=chengxi", headers=leader.headers).status_code == 200
    town = staff_login(role="town_staff", town="chengdong")
    assert client.get(url + "&town=chengdong", headers=town.headers).status_code == 200
    # Another town's report does not exist for a town's staff.
    assert client.get(url + "&town=chengxi", headers=town.headers).status_code == 404
    assert (
        client.get(url.replace("monthly", "monthly.xlsx") + "&town=chengxi", headers=town.headers)
    ).status_code == 404
    center = staff_login()
    assert client.get(url + "&town=nowhere", headers=center.headers).status_code == 404


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-11", "1999-12", "abc"])
def test_a_month_must_be_written_yyyy_mm(client, staff_login, month):
    center = staff_login()
    resp = client.get(f"/api/v1/reports/monthly?month={month}", headers=center.headers)
    assert resp.status_code == 422 and "month" in resp.get_json()["errors"]


# --- the towns' summaries ---------------------------------------------------------------------


def test_a_town_submits_its_summary_with_remarks_and_the_figures_are_kept(
    client, staff_login, db, at_time
):
    at_time(datetime(2026, 12, 3, 9, 0, tzinfo=TZ))
    build_data_set(db, seed=3)
    town = db.scalar(select(Town).where(Town.code == "chengdong"))
    own = staff_login(role="town_staff", town="chengdong")
    live = client.get("/api/v1/reports/monthly?month=2026-11", headers=own.headers).get_json()
    assert live["summaries"]["items"][0]["status"] == "pending"

    resp = client.post(
        "/api/v1/reports/monthly/2026-11/submit",
        json={"remarks": "本月走访困难家庭12户，1户因病致贫已转办"},
        headers=own.headers,
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "submitted" and body["town"]["code"] == "chengdong"
    assert body["due_date"] == "2026-12-07"  # the 5th is a Saturday: the next working day
    assert body["figures"]["leads"] == live["leads"] and body["figures"]["slips"] == live["slips"]
    assert db.scalar(
        select(AuditEntry).where(AuditEntry.action == "town_summary.submitted")
    ).detail == {"town": "chengdong", "month": "2026-11", "late": False}

    # Later changes to the data do not change what was submitted.
    db.add(
        Lead(
            person_hash="late-arrival",
            name="补录",
            status=LeadStatus.NEW,
            channel=Channel.VISIT,
            categories=[],
            town_id=town.id,
            created_at=datetime(2026, 11, 15, tzinfo=TZ),
            updated_at=datetime(2026, 11, 15, tzinfo=TZ),
        )
    )
    db.commit()
    listed = client.get("/api/v1/reports/monthly/2026-11/summaries", headers=own.headers)
    (item,) = listed.get_json()["items"]
    assert item["figures"]["leads"]["total"] == live["leads"]["total"]
    assert item["remarks"].startswith("本月走访")

    again = client.post(
        "/api/v1/reports/monthly/2026-11/submit", json={"remarks": "再次提交"}, headers=own.headers
    )
    assert again.status_code == 409 and again.get_json()["code"] == "summary_submitted"


def test_a_summary_cannot_be_submitted_before_the_month_is_over(client, staff_login, at_time):
    at_time(datetime(2026, 11, 30, 23, 0, tzinfo=TZ))
    own = staff_login(role="town_staff", town="chengdong")
    resp = client.post(
        "/api/v1/reports/monthly/2026-11/submit", json={"remarks": "提前"}, headers=own.headers
    )
    assert resp.status_code == 422 and resp.get_json()["code"] == "month_not_over"


def test_after_the_fifth_the_center_sees_which_towns_are_late(client, staff_login, db, at_time):
    at_time(datetime(2026, 12, 4, 10, 0, tzinfo=TZ))
    chengdong = staff_login(role="town_staff", town="chengdong")
    assert (
        client.post(
            "/api/v1/reports/monthly/2026-11/submit",
            json={"remarks": "按时"},
            headers=chengdong.headers,
        ).status_code
        == 201
    )
    center = staff_login()
    before = client.get("/api/v1/reports/monthly/2026-11/summaries", headers=center.headers)
    assert before.get_json()["late_towns"] == []  # the 5th has not passed

    at_time(datetime(2026, 12, 8, 8, 0, tzinfo=TZ))  # due Monday the 7th (the 5th: a Saturday)
    chengxi = staff_login(role="town_staff", town="chengxi")
    late = client.post(
        "/api/v1/reports/monthly/2026-11/submit", json={"remarks": "晚了"}, headers=chengxi.headers
    )
    assert late.status_code == 201 and late.get_json()["status"] == "submitted_late"

    center = staff_login()
    body = client.get(
        "/api/v1/reports/monthly/2026-11/summaries", headers=center.headers
    ).get_json()
    towns = db.scalars(select(Town).order_by(Town.sort_order, Town.code)).all()
    statuses = {i["town"]["code"]: i["status"] for i in body["items"]}
    assert statuses["chengdong"] == "submitted" and statuses["chengxi"] == "submitted_late"
    expected_late = [t.code for t in towns if t.code != "chengdong"]
    assert [t["code"] for t in body["late_towns"]] == expected_late
    assert all(t["status"] == "late" for t in body["late_towns"] if t["code"] != "chengxi")
    # The monthly report carries the same list for the center.
    report = client.get("/api/v1/reports/monthly?month=2026-11", headers=center.headers).get_json()
    assert report["summaries"]["late_towns"] == body["late_towns"]


def test_only_a_towns_staff_submit_and_each_sees_only_their_town(
    client, staff_login, resident_login, at_time
):
    at_time(datetime(2026, 12, 2, 10, 0, tzinfo=TZ))
    url = "/api/v1/reports/monthly/2026-11/submit"
    assert client.post(url, json={"remarks": "x"}).status_code == 401
    for login in (
        staff_login(),
        staff_login(role="leader"),
        staff_login(role="department_staff"),
        resident_login("sue"),
    ):
        assert client.post(url, json={"remarks": "x"}, headers=login.headers).status_code == 403
    town = staff_login(role="town_staff", town="shantou")
    listed = client.get("/api/v1/reports/monthly/2026-11/summaries", headers=town.headers)
    assert [i["town"]["code"] for i in listed.get_json()["items"]] == ["shantou"]
    dept = staff_login(role="department_staff")
    assert (
        client.get("/api/v1/reports/monthly/2026-11/summaries", headers=dept.headers).status_code
        == 403
    )
    blank = client.post(url, json={"remarks": "   "}, headers=town.headers)
    assert blank.status_code == 422


def test_submitted_on_the_fifth_is_on_time_and_on_the_sixth_is_late():
    from server.models import TownMonthlySummary
    from server.services.reports.statistics import parse_month
    from server.services.reports.town_summaries import summary_status

    period = parse_month("2026-12")
    assert period.due_date == date(2027, 1, 5)
    assert summary_status(None, period=period, today=date(2027, 1, 5)) == "pending"
    assert summary_status(None, period=period, today=date(2027, 1, 6)) == "late"
    on_time = TownMonthlySummary(late=False)
    assert summary_status(on_time, period=period, today=date(2027, 2, 1)) == "submitted"


def test_a_summary_due_on_a_day_off_is_due_the_next_working_day():
    """每月5日前: 5 October 2026 falls in the National Day holiday, so September's summaries are
    due on the first working day after it, as a feed's monthly file would be."""
    from server.services.calendar.workdays import WorkCalendar
    from server.services.reports.statistics import parse_month

    calendar = WorkCalendar.library_only()
    period = parse_month("2026-09", calendar=calendar)
    assert period.due_date > date(2026, 10, 5)
    assert calendar.is_workday(period.due_date)[0]
    assert not any(
        calendar.is_workday(date(2026, 10, day))[0] for day in range(5, period.due_date.day)
    )
    assert parse_month("2026-11", calendar=calendar).due_date == date(2026, 12, 7)  # a Monday
