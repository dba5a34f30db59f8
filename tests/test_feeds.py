"""Department feeds through the HTTP API: upload, comparison, one lead per person, refusals."""

from __future__ import annotations

import io
from datetime import date

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from server import clock
from server.models import (
    AuditEntry,
    Channel,
    Department,
    Lead,
    LeadEvidence,
    LeadStatus,
    RosterEntry,
    RuleLedger,
)
from server.services.feeds import reader
from server.services.kernel.access import SYSTEM
from server.services.leads import matching
from server.services.leads.core import Signal, record_signal
from tests.builders import error_code, make_id_number
from tests.feedfiles import OOP_HEADER, csv_bytes, upload, xlsx

FULL = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
SERIAL_2026_03_05 = (date(2026, 3, 5) - date(1899, 12, 30)).days  # 46086


def oop_row(name, id_number, amount, *, admitted="2026-03-05", hospital="博山区医院"):
    return [1, name, id_number, hospital, admitted, "2026-03-15", amount]


@pytest.fixture
def insurer(staff_login):
    return staff_login(role="department_staff", department="medical_insurance")


@pytest.fixture
def center(staff_login):
    return staff_login(role="center_staff")


def _leads(db):
    db.expire_all()
    return list(db.scalars(select(Lead).order_by(Lead.id)))


def _evidence_count(db):
    return db.scalar(select(func.count()).select_from(LeadEvidence))


@pytest.mark.parametrize("streamed", [False, True], ids=["sheet-loaded", "sheet-streamed"])
def test_a_messy_file_is_read_title_row_reordered_columns_fullwidth_serial_date_and_yuan(
    client, insurer, db, runtime, monkeypatch, streamed
):
    """Header below a title row, columns in another order, full-width ID digits, an Excel
    serial date and "32,400元" all normalise into one lead with an explained priority, whether
    the sheet is loaded whole or (as very large ones are) streamed."""
    if streamed:
        monkeypatch.setattr(reader, "STREAM_ABOVE_ROWS", 0)
    person = make_id_number(birth="19660312")
    rows = [
        ["个人负担合规费用（元）", "入院日期", "证件号码", "姓名", "医疗机构"],
        ["32,400元", SERIAL_2026_03_05, person.translate(FULL), "王 秀英", "博山区中医院"],
    ]
    resp = upload(client, insurer, "insurance_oop", xlsx(rows, title="2026年3月大额自付住院人员"))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "done" and body["header_row"] == 3
    assert body["result"]["read"] == 1 and body["result"]["accepted"] == 1
    assert body["result"]["leads_created"] == 1
    (lead,) = _leads(db)
    assert lead.name == "王秀英"
    assert lead.person_hash == runtime.pii.hash(person)
    assert runtime.pii.open(lead.id_number_enc) == person
    assert lead.priority_reasons == ["医保: 单次自付 ¥32,400"]
    assert lead.categories == ["illness", "dibao"]
    assert lead.channel.value == "feed" and lead.status is LeadStatus.NEW
    # Keys for matching hotline reports by name (pinyin, look-alike characters) are filled.
    assert lead.name_key == matching.name_key("王秀英")
    assert lead.name_shape == matching.shape_key("王秀英")
    (evidence,) = lead.evidence
    assert evidence.event_date == date(2026, 3, 5)
    assert evidence.facts["oop"] == "32400.00" and evidence.row_number == 4
    assert evidence.feed_code == "insurance_oop" and evidence.batch_id == body["id"]


def test_rows_just_below_the_threshold_are_counted_and_rows_at_it_raise_a_lead(client, insurer, db):
    at, below = make_id_number(), make_id_number()
    rows = [OOP_HEADER, oop_row("甲", at, 20000), oop_row("乙", below, "19,999.99")]
    body = upload(client, insurer, "insurance_oop", xlsx(rows)).get_json()
    assert body["result"]["below_threshold"] == 1
    assert body["result"]["leads_created"] == 1
    assert [lead.name for lead in _leads(db)] == ["甲"]


def test_a_csv_in_gb18030_with_dates_as_text_is_accepted(client, insurer, db):
    rows = [OOP_HEADER, oop_row("李四", make_id_number(), "25000", admitted="2026年3月5日")]
    content = csv_bytes(rows, encoding="gb18030")
    body = upload(client, insurer, "insurance_oop", content, "feed.csv").get_json()
    assert body["result"]["leads_created"] == 1
    assert _leads(db)[0].evidence[0].event_date == date(2026, 3, 5)


def test_the_same_file_twice_creates_nothing_new(client, insurer, db):
    content = xlsx([OOP_HEADER, *[oop_row(f"人{i}", make_id_number(), 30000) for i in range(5)]])
    first = upload(client, insurer, "insurance_oop", content).get_json()
    again = upload(client, insurer, "insurance_oop", content).get_json()
    assert first["result"]["leads_created"] == 5
    assert again["result"]["leads_created"] == 0 and again["result"]["leads_updated"] == 0
    assert again["result"]["duplicates"] == 5
    assert len(_leads(db)) == 5 and _evidence_count(db) == 5
    assert all(lead.priority_reasons == ["医保: 单次自付 ¥30,000"] for lead in _leads(db))


def test_two_overlapping_files_add_no_duplicate_evidence(client, insurer, db):
    people = [make_id_number() for _ in range(4)]
    march = [OOP_HEADER, *[oop_row(f"人{i}", p, 30000) for i, p in enumerate(people[:3])]]
    # The second file repeats two rows (with the amount written differently) and adds one.
    april = [
        OOP_HEADER,
        oop_row("人1", people[1], "30,000元"),
        oop_row("人2", people[2], 30000.0),
        oop_row("人3", people[3], 41000),
    ]
    upload(client, insurer, "insurance_oop", xlsx(march))
    body = upload(client, insurer, "insurance_oop", xlsx(april)).get_json()
    assert body["result"]["duplicates"] == 2 and body["result"]["leads_created"] == 1
    assert _evidence_count(db) == 4 and len(_leads(db)) == 4


def test_a_second_stay_of_the_same_person_raises_the_priority_again(client, insurer, db):
    person = make_id_number()
    upload(client, insurer, "insurance_oop", xlsx([OOP_HEADER, oop_row("张三", person, 30000)]))
    later = [OOP_HEADER, oop_row("张三", person, 45000, admitted="2026-04-01")]
    body = upload(client, insurer, "insurance_oop", xlsx(later)).get_json()
    assert body["result"]["leads_updated"] == 1 and body["result"]["leads_created"] == 0
    (lead,) = _leads(db)
    assert lead.priority == 6 and lead.version == 2
    assert lead.priority_reasons == ["医保: 单次自付 ¥30,000", "医保: 单次自付 ¥45,000"]


def test_a_roster_member_with_a_big_medical_bill_becomes_a_medical_aid_lead_not_dibao(
    client, center, db
):
    member, other = make_id_number(), make_id_number()
    roster = [
        ["姓名", "身份证号", "救助类别", "批准日期"],
        ["赵大", member, "农村低保", "2025-01-10"],
    ]
    body = upload(client, center, "civil_affairs_new", csv_bytes(roster), "roster.csv").get_json()
    assert body["result"]["roster_added"] == 1 and body["result"]["leads_created"] == 0
    rows = [OOP_HEADER, oop_row("赵大", member, 32400), oop_row("钱二", other, 32400)]
    body = upload(client, center, "insurance_oop", xlsx(rows)).get_json()
    assert body["result"]["leads_created"] == 2
    on_roster, off_roster = _leads(db)
    assert on_roster.categories == ["illness"]
    assert "dibao" in off_roster.categories
    evidence = on_roster.evidence[0]
    assert evidence.facts["on_roster"] == "dibao"
    assert evidence.facts["suggested_aid"] == "医疗救助"
    assert evidence.summary == "医保: 单次自付 ¥32,400（已享低保，建议医疗救助）"


def test_the_roster_feed_updates_people_already_on_it(client, center, db):
    person = make_id_number()
    header = ["姓名", "身份证号", "救助类别"]
    upload(
        client,
        center,
        "civil_affairs_new",
        csv_bytes([header, ["孙三", person, "临时救助"]]),
        "a.csv",
    )
    body = upload(
        client,
        center,
        "civil_affairs_new",
        csv_bytes([header, ["孙三", person, "特困供养"]]),
        "b.csv",
    ).get_json()
    assert body["result"]["roster_updated"] == 1 and body["result"]["roster_added"] == 0
    entry = db.scalar(select(RosterEntry))
    assert entry.programme.value == "tekun"


def test_relapse_leads_about_people_on_the_roster_are_already_covered(client, center, db):
    member, other = make_id_number(), make_id_number()
    upload(
        client,
        center,
        "civil_affairs_new",
        csv_bytes([["姓名", "身份证号", "救助类别"], ["周", member, "低保"]]),
        "c.csv",
    )
    rows = [
        ["姓名", "身份证号", "走访日期", "风险类型"],
        ["周", member, "2026-03-01", "因病"],
        ["吴", other, "2026-03-01", "失业"],
    ]
    body = upload(client, center, "relapse_watch", csv_bytes(rows), "r.csv").get_json()
    assert body["result"]["already_covered"] == 1 and body["result"]["leads_created"] == 1


def test_one_person_in_three_feeds_has_one_lead_whose_priority_explains_each(
    client, staff_login, db
):
    person = make_id_number()
    insurer = staff_login(role="department_staff", department="medical_insurance")
    federation = staff_login(role="department_staff", department="disabled_federation")
    brigade = staff_login(role="department_staff", department="fire_rescue")
    upload(client, insurer, "insurance_oop", xlsx([OOP_HEADER, oop_row("郑五", person, 32400)]))
    disability = [
        ["姓名", "身份证号", "残疾类别", "残疾等级", "发证日期"],
        ["郑五", person, "肢体", "二级", "2026-03-20"],
    ]
    upload(client, federation, "disability_new", xlsx(disability))
    fire = [
        ["姓名", "身份证号码", "起火日期", "直接经济损失", "镇街"],
        ["郑五", person, "2026/3/25", "8.5万元", "白塔镇"],
    ]
    body = upload(client, brigade, "fire", csv_bytes(fire), "fire.csv").get_json()
    assert body["result"]["leads_updated"] == 1
    (lead,) = _leads(db)
    assert lead.priority_reasons == [
        "医保: 单次自付 ¥32,400",
        "残联: 新认定二级肢体残疾",
        "消防: 火灾损失 ¥85,000",
    ]
    assert lead.priority == 3 + 2 + 3
    assert set(lead.categories) == {"illness", "dibao", "disabled", "disaster", "temporary"}
    assert lead.town_id is not None  # filled from the fire brigade's 镇街 column
    assert len(lead.evidence) == 3


def test_a_feed_row_lands_in_an_existing_open_lead_and_a_closed_one_is_continued(
    client, insurer, db, runtime
):
    open_person, closed_person = make_id_number(), make_id_number()
    now = clock.now()
    for person in (open_person, closed_person):
        record_signal(
            db,
            Signal(
                channel=Channel.HOTLINE,
                name="热线",
                summary="热线来电",
                dedup_key=f"hotline:{person}",
                person_hash=runtime.pii.hash(person),
            ),
            actor=SYSTEM,
            now=now,
        )
    closed = db.scalar(select(Lead).where(Lead.person_hash == runtime.pii.hash(closed_person)))
    closed.status, closed.is_open = LeadStatus.CLOSED, False
    db.commit()
    rows = [OOP_HEADER, oop_row("甲", open_person, 30000), oop_row("乙", closed_person, 30000)]
    body = upload(client, insurer, "insurance_oop", xlsx(rows)).get_json()
    assert body["result"]["leads_updated"] == 1 and body["result"]["leads_created"] == 1
    newest = _leads(db)[-1]
    assert newest.previous_lead_id == closed.id and newest.is_open


def test_the_yearly_rule_raises_a_person_once_per_year_across_two_files(client, insurer, db):
    person = make_id_number()
    header = ["姓名", "身份证号", "年度", "年度累计个人负担合规费用"]
    first = upload(
        client, insurer, "insurance_annual_oop", xlsx([header, ["冯六", person, "2026", 42000]])
    ).get_json()
    second = upload(
        client, insurer, "insurance_annual_oop", xlsx([header, ["冯六", person, "2026年", 55000]])
    ).get_json()
    assert first["result"]["leads_created"] == 1
    assert second["result"]["already_covered"] == 1
    assert second["result"]["leads_updated"] == 0 and second["result"]["leads_created"] == 0
    (lead,) = _leads(db)
    assert lead.priority_reasons == ["医保: 2026年累计自付 ¥42,000"]
    next_year = upload(
        client, insurer, "insurance_annual_oop", xlsx([header, ["冯六", person, "2025", 41000]])
    ).get_json()
    assert next_year["result"]["leads_updated"] == 1
    periods = sorted(db.scalars(select(RuleLedger.period)))
    assert periods == ["2025", "2026"]


def test_invalid_rows_are_rejected_with_reasons_and_given_back_in_errors_xlsx(client, insurer, db):
    good = make_id_number()
    bad_checksum = good[:17] + ("0" if good[17] != "0" else "1")
    rows = [
        OOP_HEADER,
        oop_row("好", good, 30000),
        oop_row("坏", bad_checksum, 30000),
        oop_row("", make_id_number(), 30000),
        oop_row("钱", make_id_number(), "三万"),
        oop_row("日", make_id_number(), 30000, admitted="2026-02-30"),
    ]
    body = upload(client, insurer, "insurance_oop", xlsx(rows)).get_json()
    assert body["result"]["rejected"] == 4 and body["result"]["accepted"] == 1
    assert [(r["row"], r["code"]) for r in body["rejected"]] == [
        (3, "id_checksum"),
        (4, "required"),
        (5, "amount_format"),
        (6, "date_invalid"),
    ]
    assert body["rejected"][0]["column"] == "公民身份号码"
    resp = client.get(
        f"/api/v1/feeds/insurance_oop/batches/{body['id']}/errors.xlsx", headers=insurer.headers
    )
    assert resp.status_code == 200
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(resp.data)).get_sheet_by_index(0)
    table = sheet.to_python()
    assert table[0] == [*OOP_HEADER, "原行号", "错误说明"]
    assert table[1][2] == bad_checksum  # the ID number stays whole text
    assert table[1][-1].startswith("公民身份号码：身份证号码校验位不正确")
    assert len(table) == 5


def test_downloading_the_rejected_rows_is_recorded_as_an_unmasked_export(client, insurer, db):
    bad = make_id_number()
    bad = bad[:17] + ("0" if bad[17] != "0" else "1")
    rows = [OOP_HEADER, oop_row("好", make_id_number(), 30000), oop_row("坏", bad, 30000)]
    rows.append(oop_row("钱", make_id_number(), "三万"))
    body = upload(client, insurer, "insurance_oop", xlsx(rows)).get_json()
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(_exported)) == 0
    resp = client.get(
        f"/api/v1/feeds/insurance_oop/batches/{body['id']}/errors.xlsx", headers=insurer.headers
    )
    assert resp.status_code == 200
    db.expire_all()
    (entry,) = db.scalars(select(AuditEntry).where(_exported))
    assert entry.actor_id == insurer.user_id and entry.actor_role == "department_staff"
    assert (entry.target_type, entry.target_id) == ("feed_batch", body["id"])
    assert entry.detail["rows"] == 2 and "id_number" in entry.detail["fields"]
    assert entry.detail["filters"] == {"feed": "insurance_oop"}
    assert bad not in str(entry.detail)  # the trail records the export, not the numbers


_exported = AuditEntry.action == "pii.exported"


def test_evidence_from_a_feed_names_the_department_that_sent_it(client, insurer, center, db):
    person = make_id_number()
    upload(client, insurer, "insurance_oop", xlsx([OOP_HEADER, oop_row("甲", person, 30000)]))
    fire = [["姓名", "身份证号码", "起火日期", "直接经济损失"], ["甲", person, "2026/3/25", "8万"]]
    upload(client, center, "fire", csv_bytes(fire), "fire.csv")  # the center sends it for them
    departments = dict(db.execute(select(Department.code, Department.id)).all())
    by_feed = dict(db.execute(select(LeadEvidence.feed_code, LeadEvidence.department_id)).all())
    assert by_feed == {
        "insurance_oop": departments["medical_insurance"],
        "fire": departments["fire_rescue"],
    }


@pytest.mark.parametrize(
    ("content", "filename", "code"),
    [
        (b"this is just a note\nnot a table\n", "feed.xlsx", "file_not_spreadsheet"),
        (b"", "feed.xlsx", "file_empty"),
        (b"\x00\x01binary", "feed.csv", "file_not_spreadsheet"),
        ("甲,乙,丙\n1,2,3\n".encode(), "feed.csv", "feed_header_missing"),
        ("姓名,身份证号\n张三,1\n".encode(), "feed.csv", "feed_header_incomplete"),
    ],
    ids=["renamed-txt", "empty", "binary", "no-header", "missing-amount-column"],
)
def test_a_file_that_cannot_be_read_is_refused_as_a_whole(
    client, insurer, db, content, filename, code
):
    resp = upload(client, insurer, "insurance_oop", content, filename)
    assert resp.status_code == 422
    assert error_code(resp) == code
    assert resp.get_json()["message"]
    assert db.scalar(select(func.count()).select_from(Lead)) == 0


def test_an_empty_spreadsheet_is_refused(client, insurer):
    resp = upload(client, insurer, "insurance_oop", xlsx([[None]]))
    assert resp.status_code == 422 and error_code(resp) == "file_empty"


def test_staff_of_another_department_cannot_upload_or_read_the_feed(client, staff_login, insurer):
    other = staff_login(role="department_staff", department="education")
    content = xlsx([OOP_HEADER, oop_row("甲", make_id_number(), 30000)])
    resp = upload(client, other, "insurance_oop", content)
    assert resp.status_code == 403 and error_code(resp) == "forbidden"
    batch = upload(client, insurer, "insurance_oop", content).get_json()
    for path in (f"/{batch['id']}", f"/{batch['id']}/errors.xlsx", ""):
        resp = client.get(f"/api/v1/feeds/insurance_oop/batches{path}", headers=other.headers)
        assert resp.status_code == 404, path
    mine = client.get("/api/v1/feeds", headers=other.headers).get_json()["items"]
    assert [f["code"] for f in mine] == ["education_aid"]


@pytest.mark.parametrize("role", ["town_staff", "resident"])
def test_town_staff_and_residents_have_no_access_to_feeds(
    client, staff_login, resident_login, role
):
    login = resident_login("r") if role == "resident" else staff_login(role=role)
    content = xlsx([OOP_HEADER, oop_row("甲", make_id_number(), 30000)])
    assert upload(client, login, "insurance_oop", content).status_code == 403
    assert client.get("/api/v1/feeds", headers=login.headers).status_code == 403
    assert (
        client.get("/api/v1/feeds/insurance_oop/batches/1", headers=login.headers).status_code
        == 403
    )


def test_without_a_token_feeds_answer_401(client):
    assert client.get("/api/v1/feeds").status_code == 401
    assert upload(client, type("L", (), {"headers": {}})(), "fire", b"x").status_code == 401


def test_leaders_read_batches_but_neither_upload_nor_download_rejected_rows(
    client, staff_login, insurer
):
    leader = staff_login(role="leader")
    content = xlsx([OOP_HEADER, oop_row("甲", make_id_number(), 30000)])
    batch = upload(client, insurer, "insurance_oop", content).get_json()
    assert upload(client, leader, "insurance_oop", content).status_code == 403
    url = f"/api/v1/feeds/insurance_oop/batches/{batch['id']}"
    assert client.get(url, headers=leader.headers).status_code == 200
    assert client.get(f"{url}/errors.xlsx", headers=leader.headers).status_code == 403


def test_an_unknown_feed_or_batch_is_404(client, center):
    assert upload(client, center, "nope", b"x").status_code == 404
    resp = client.get("/api/v1/feeds/fire/batches/999", headers=center.headers)
    assert resp.status_code == 404 and error_code(resp) == "batch_not_found"


def test_a_large_file_answers_202_and_the_worker_imports_it_with_progress(
    client, insurer, db, runtime, monkeypatch
):
    from server.services.feeds import batches, importer
    from server.worker.loop import run_worker

    monkeypatch.setattr(batches, "INLINE_MAX_BYTES", 0)
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    rows = [OOP_HEADER, *[oop_row(f"人{i}", make_id_number(), 30000 + i) for i in range(8)]]
    resp = upload(client, insurer, "insurance_oop", xlsx(rows))
    assert resp.status_code == 202
    queued = resp.get_json()
    assert queued["status"] == "queued" and queued["rows_total"] == 8 and queued["rows_done"] == 0
    seen = []
    original = importer.Importer._store

    def spy(self, checked):
        original(self, checked)
        seen.append(self.batch.rows_done)

    monkeypatch.setattr(importer.Importer, "_store", spy)
    run_worker(runtime, once=True)
    assert seen == [3, 6, 8]
    url = f"/api/v1/feeds/insurance_oop/batches/{queued['id']}"
    done = client.get(url, headers=insurer.headers).get_json()
    assert done["status"] == "done" and done["progress"] == 1.0
    assert done["result"]["leads_created"] == 8
    assert db.scalar(select(func.count()).select_from(Lead).where(Lead.name_key.is_(None))) == 0
    from server.models import FeedBatchFile

    assert db.scalar(select(func.count()).select_from(FeedBatchFile)) == 0


def test_a_queued_file_that_turns_out_broken_fails_with_a_reason(
    client, insurer, runtime, monkeypatch
):
    from server.services.feeds import batches
    from server.worker.loop import run_worker

    monkeypatch.setattr(batches, "INLINE_MAX_BYTES", 0)
    content = xlsx([OOP_HEADER, oop_row("甲", make_id_number(), 30000)])
    queued = upload(client, insurer, "insurance_oop", content).get_json()

    def broken(*_a, **_k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(batches.Importer, "run", broken)
    run_worker(runtime, once=True)
    url = f"/api/v1/feeds/insurance_oop/batches/{queued['id']}"
    body = client.get(url, headers=insurer.headers).get_json()
    assert body["status"] == "failed" and body["failure_code"] == "import_broke"
    assert "重新上传" in body["failure"]
