"""The demo's casework: people the department files and the hotline report, the files uploaded
(roster, disability, insurance), the leads they open, and transfer slips in every state (one of
them overdue), so the queue, the slips and supervision have something to show.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.clock import TZ
from server.demo.synthetic import synthetic_id_number, synthetic_name
from server.models import Channel, Lead, Town, Village
from server.services.kernel.access import Actor
from server.services.kernel.pii import PersonalData

if TYPE_CHECKING:
    from server.services.calendar.workdays import WorkCalendar


@dataclass(frozen=True)
class _Person:
    """Someone the demo's department files mention (synthetic name and ID number)."""

    name: str
    id_number: str
    town: str  # the town's Chinese name, as departments write it
    village: str  # the village's name


#: The person a hotline caller reports without an ID number, and the name as the operator
#: heard it (张/章 sound the same): the queue offers the feed's lead as a merge candidate.
HOTLINE_HEARD = ("演示张桂兰", "演示章桂兰")


#: Working days the demo's overdue slip is late today (2 or more also escalates it).
OVERDUE_DEMO_DAYS = 3


_INSTRUCTIONS = (
    "请于5个工作日内入户核实家庭经济状况和困难情形，符合条件的按规定给予救助，并反馈办理结果。"
)


def demo_casework(
    db: Session,
    villages: list[Village],
    *,
    pii: PersonalData,
    actors: dict[str, Actor],
    now: datetime,
    rng: random.Random,
) -> None:
    """A few weeks of casework ending at `now`.

    Timeline: the civil-affairs roster update and the disabled persons' federation's weekly
    file arrive some weeks ago, and one of its leads is sent to 白塔镇 then (never answered: today
    it is overdue, and the deadline check marks and escalates it). In the last two days (never
    before the first day of `now`'s month, so the month's report counts it): the medical insurance
    office's monthly file (a dozen rows: two below the 20,000-yuan threshold, one rejected, one
    person on the roster, one already in the federation's file), a hotline report without an ID
    number, and slips just issued, signed, returned, and answered (one revisited and closed).
    """
    from server.services.calendar.workdays import WorkCalendar
    from server.services.dispatches.supervision import check_deadlines
    from server.services.dispatches.transfers import DUE_WORKING_DAYS

    calendar = WorkCalendar.load(db)
    now = now.astimezone(TZ)
    month_start = datetime.combine(now.date().replace(day=1), time(), TZ)
    recent = max(now - timedelta(days=2), month_start)

    def at(fraction: float) -> datetime:
        """A moment between `recent` and `now`, so the steps happen in order."""
        return recent + (now - recent) * fraction

    # The overdue slip: issued far enough back to be OVERDUE_DEMO_DAYS working days late today,
    # whatever holidays lie in between.
    overdue_issued = now - timedelta(days=7)
    for _ in range(90):
        due = calendar.due_date(overdue_issued, DUE_WORKING_DAYS).value
        if calendar.working_days_between(due, now.date()).days >= OVERDUE_DEMO_DAYS:
            break
        overdue_issued -= timedelta(days=1)

    people = _demo_people(db, villages, rng)
    _upload(
        db,
        "civil_affairs_new",
        _roster_csv(people, day=(overdue_issued - timedelta(days=5)).date()),
        "民政新增救助对象（演示）.csv",
        pii=pii,
        actor=actors["minzheng"],
        now=overdue_issued - timedelta(days=3),
    )
    _upload(
        db,
        "disability_new",
        _disability_csv(people, day=(overdue_issued - timedelta(days=1)).date()),
        "新认定残疾人员（演示）.csv",
        pii=pii,
        actor=actors["canlian"],
        now=overdue_issued - timedelta(days=1),
    )
    _upload(
        db,
        "insurance_oop",
        _insurance_xlsx(people, month_start=month_start.date(), rng=rng),
        "医保大额自付住院人员（演示）.xlsx",
        pii=pii,
        actor=actors["yibao"],
        now=recent,
    )

    def lead_of(key: str) -> int:
        lead_id = db.scalar(
            select(Lead.id).where(
                Lead.person_hash == pii.hash(people[key].id_number), Lead.is_open.is_(True)
            )
        )
        assert lead_id is not None, key
        return lead_id

    _demo_hotline_report(db, people["f"], pii=pii, actor=actors["center"], now=at(0.3), rng=rng)
    _demo_slips(
        db,
        lead_of,
        calendar=calendar,
        actors=actors,
        now=now,
        at=at,
        overdue_issued=overdue_issued,
    )
    check_deadlines(db, calendar, now)


def _demo_people(db: Session, villages: list[Village], rng: random.Random) -> dict[str, _Person]:
    """The people of the department files, keyed by their part in the story:

    a: slip just issued · b: in two feeds, slip signed · c: slip answered (临时救助), awaiting
    the revisit · r: on the 低保 roster, slip answered (医疗救助), revisited and closed ·
    e: slip returned · d: slip overdue · f: a hotline report's candidate · the rest: waiting.
    """
    town_names = dict(db.execute(select(Town.id, Town.name)).all())
    by_code = {v.code: v for v in villages}
    places = {
        "a": "chengdong-1",
        "b": "chengdong-2",
        "c": "chengdong-2",
        "f": "chengdong-1",
        "r": "baita-1",
        "e": "baita-2",
        "d": "baita-1",
        "x1": "shantou-1",
        "x2": "yuanquan-1",
        "x3": "chishang-2",
        "x4": "boshan-1",
        "x5": "chengxi-1",
        "y1": "kaifaqu-1",
        "y2": "yucheng-2",
        "z1": "chengxi-2",
        "z2": "badou-1",
        "low1": "shima-1",
        "low2": "chengdong-3",
        "bad": "baita-3",
    }
    people = {}
    for key, place in places.items():
        village = by_code[f"demo-{place}"]
        name = HOTLINE_HEARD[0] if key == "f" else f"演示{synthetic_name(rng)}"
        people[key] = _Person(
            name, synthetic_id_number(rng), town_names[village.town_id], village.name
        )
    return people


def _upload(
    db: Session,
    code: str,
    content: bytes,
    filename: str,
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> None:
    """Upload a department's file as `POST /api/v1/feeds/<code>/batches` does (small files are
    imported at once)."""
    from server.services.feeds.batches import submit_batch

    submit_batch(db, code, content=content, filename=filename, pii=pii, actor=actor, now=now)


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8-sig")  # as Excel saves "CSV UTF-8"


def _roster_csv(people: dict[str, _Person], *, day: date) -> bytes:
    """区民政局's weekly roster update: r becomes a 低保 recipient."""
    rows = [["姓名", "身份证号", "救助类别", "批准日期", "镇街"]]
    for key, programme in (("r", "城乡低保"), ("z1", "特困供养"), ("z2", "孤困儿童")):
        p = people[key]
        rows.append([p.name, p.id_number, programme, day.isoformat(), p.town])
    return _csv(rows)


def _disability_csv(people: dict[str, _Person], *, day: date) -> bytes:
    """区残联's weekly file of newly certified disabilities."""
    rows = [["姓名", "身份证号", "残疾类别", "残疾等级", "认定日期", "镇街", "村居"]]
    for n, (key, kind, grade) in enumerate(
        (
            ("d", "肢体", "一级"),
            ("b", "视力", "二级"),
            ("y1", "听力", "三级"),
            ("y2", "智力", "2级"),
        )
    ):
        p = people[key]
        certified = day - timedelta(days=2 + n)
        rows.append([p.name, p.id_number, kind, grade, f"{certified:%Y/%m/%d}", p.town, p.village])
    return _csv(rows)


def _insurance_xlsx(people: dict[str, _Person], *, month_start: date, rng: random.Random) -> bytes:
    """区医保分局's monthly file of last month's stays, as exported: a title row above the
    header, amounts written in several ways, two stays below the threshold and one ID number
    with a wrong check digit (the rejected row errors.xlsx gives back)."""
    from server.services.kernel.workbooks import new_workbook, write_row

    last_month = (month_start - timedelta(days=1)).replace(day=1)
    amounts = {
        "a": "32400",
        "b": "45,800.00",
        "c": "26750.5",
        "r": "5.2万",
        "e": "21300元",
        "f": "38900",
        "x1": "23100",
        "x2": "67420.8",
        "x3": "29999",
        "low1": "12800",
        "low2": "8650.4",
        "bad": "41000",
    }
    hospitals = ("演示区人民医院", "演示市中心医院", "演示中医院")
    buffer = io.BytesIO()
    book = new_workbook(buffer)
    sheet = book.add_worksheet("住院大额自付")
    write_row(sheet, 0, 0, [f"{last_month:%Y年%m月}医保大额自付住院人员名单（演示数据）"])
    header = [
        "序号",
        "参保人姓名",
        "公民身份号码",
        "定点医疗机构",
        "入院日期",
        "出院日期",
        "政策范围内个人自付",
        "所属镇街",
        "所属村居",
    ]
    write_row(sheet, 1, 0, header)
    for n, (key, amount) in enumerate(amounts.items(), start=1):
        p = people[key]
        id_number = p.id_number
        if key == "bad":  # a typo in the last digit: the check digit no longer matches
            id_number = id_number[:17] + ("0" if id_number[17] != "0" else "1")
        admitted = last_month + timedelta(days=rng.randint(0, 14))
        discharged = admitted + timedelta(days=rng.randint(5, 12))
        write_row(
            sheet,
            n + 1,
            0,
            [
                str(n),
                p.name,
                id_number,
                rng.choice(hospitals),
                admitted.isoformat(),
                f"{discharged.year}年{discharged.month}月{discharged.day}日",
                amount,
                p.town,
                p.village,
            ],
        )
    book.close()
    return buffer.getvalue()


def _demo_hotline_report(
    db: Session,
    person: _Person,
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
    rng: random.Random,
) -> None:
    """A call to the assistance hotline about `person`, name misheard and no ID number: it opens
    its own lead, and the feed's lead about her is offered as the merge candidate."""
    from server.services.leads.intake import Report, register_report

    village = db.scalar(select(Village).where(Village.name == person.village))
    assert village is not None
    town = db.get(Town, village.town_id)
    assert town is not None
    register_report(
        db,
        Report(
            channel=Channel.HOTLINE,
            name=HOTLINE_HEARD[1],
            summary="演示：邻居来电反映其出院后独自在家，行动不便，医药费负担重",
            phone=f"139{rng.randint(0, 99_999_999):08d}",
            town_code=town.code,
            village_code=village.code,
            categories=("illness",),
            event_date=now.date(),
            reporter_name="演示热心邻居",
            reporter_phone=f"137{rng.randint(0, 99_999_999):08d}",
        ),
        pii=pii,
        actor=actor,
        now=now,
    )


def _demo_slips(
    db: Session,
    lead_of: Callable[[str], int],
    *,
    calendar: WorkCalendar,
    actors: dict[str, Actor],
    now: datetime,
    at: Callable[[float], datetime],
    overdue_issued: datetime,
) -> None:
    """Transfer slips in each state (see `_demo_people` for who is who)."""
    from server.models import UnitKind
    from server.services.dispatches import revisits, transfers

    center = actors["center"]

    def issue(key: str, kind: UnitKind, unit: str, when: datetime) -> int:
        dispatch = transfers.issue(
            db,
            lead_of(key),
            unit_kind=kind,
            unit_code=unit,
            instructions=_INSTRUCTIONS,
            calendar=calendar,
            actor=center,
            now=when,
        )
        return dispatch.id

    town, department = UnitKind.TOWN, UnitKind.DEPARTMENT
    # Overdue: sent to 白塔镇 weeks ago, never signed for.
    issue("d", town, "baita", overdue_issued)
    # Returned: the federation says it is not theirs; the lead goes back to the center.
    returned = issue("e", department, "disabled_federation", at(0.1))
    transfers.return_to_center(
        db,
        returned,
        reason="演示：该人员非新认定残疾人，不属于本单位职责，建议转属地镇街核实",
        actor=actors["canlian"],
        now=at(0.5),
    )
    # Answered with 医疗救助, revisited: the lead is closed.
    closed_slip = issue("r", department, "medical_insurance", at(0.1))
    transfers.sign(db, closed_slip, actor=actors["yibao"], now=at(0.3))
    transfers.give_feedback(
        db,
        closed_slip,
        transfers.Feedback(
            findings="演示：已享城乡低保，住院个人自付费用属实，按规定给予医疗救助。",
            outcome="medical_aid",
            amount=Decimal("8000"),
        ),
        actor=actors["yibao"],
        now=at(0.7),
    )
    revisits.record_revisit(
        db,
        lead_of("r"),
        revisits.RevisitInput(satisfaction=5, comment="演示：已告知救助结果，群众表示满意"),
        actor=center,
        now=now,
    )
    # Answered with 临时救助: the lead waits for the center's revisit.
    answered = issue("c", town, "chengdong", at(0.2))
    transfers.sign(db, answered, actor=actors["chengdong"], now=at(0.4))
    transfers.give_feedback(
        db,
        answered,
        transfers.Feedback(
            findings="演示：入户核实，家庭收入低于低保标准两倍，住院自付费用负担重。",
            outcome="temporary_aid",
            amount=Decimal("3000"),
        ),
        actor=actors["chengdong"],
        now=at(0.8),
    )
    # Signed: 城东街道 is investigating.
    signed = issue("b", town, "chengdong", at(0.2))
    transfers.sign(db, signed, actor=actors["chengdong"], now=at(0.6))
    # Just issued.
    issue("a", town, "chengdong", now)
