"""The holiday table: staff load years the library does not know; due dates say how certain.

The 2027 schedules below are synthetic test data (the real one is published by the State Council);
only their shape matters here.
"""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from server import clock
from server.cli import main
from server.models import AuditEntry, CalendarDay, CalendarYear
from server.services.calendar.holidays import EXPECTED_GAPS, parse_date, year_status
from server.services.calendar.workdays import WorkCalendar, library_range
from tests.builders import error_code

HEADER = "日期,类型,名称\n"
SCHEDULE_2027 = (
    HEADER
    + "2027-01-01,holiday,元旦\n"
    + "2027-02-06,workday,春节\n"
    + "2027-02-10,holiday,春节\n"
    + "2027-02-11,holiday,春节\n"
    + "2027-10-01,holiday,国庆节\n"
    + "2027-10-09,workday,国庆节\n"
)


def admin(staff_login) -> dict[str, str]:
    """Headers of a new system administrator, who loads the calendar (三员分立)."""
    return staff_login(role="system_admin").headers


def upload(client, headers, content: bytes | str, *, name="2027.csv", source=None):
    data = content.encode() if isinstance(content, str) else content
    form: dict = {"file": (io.BytesIO(data), name)}
    if source is not None:
        form["source"] = source
    return client.post(
        "/api/v1/calendar/holidays",
        data=form,
        headers=headers,
        content_type="multipart/form-data",
    )


# --- the freshness check (GOV.UK Notify keeps one like it) ------------------------------------


def test_expected_gaps_name_only_years_the_library_does_not_know():
    """A gap marker for a year the library knows is stale: remove it when upgrading."""
    first, last = library_range()
    assert [y for y in EXPECTED_GAPS if first <= y <= last] == []


@pytest.mark.parametrize(
    ("year", "loaded", "today", "expected"),
    [
        (2026, {}, date(2026, 11, 28), "library"),
        (2027, {2027: "国办发明电"}, date(2026, 11, 28), "loaded"),
        (2027, {}, date(2026, 12, 20), "awaited"),
        (2027, {}, date(2026, 12, 21), "missing"),
        (2031, {}, date(2030, 6, 1), "missing"),  # never announced at all
    ],
)
def test_a_year_is_loaded_known_awaited_or_missing(year, loaded, today, expected):
    gaps = {2027: date(2026, 12, 20)}
    assert year_status(year, loaded=loaded, today=today, gaps=gaps).status == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-01", date(2027, 1, 1)),
        ("2027/1/1", date(2027, 1, 1)),
        ("2027.10.9", date(2027, 10, 9)),
        ("2027年2月6日", date(2027, 2, 6)),
        ("２０２７－０１－０１", date(2027, 1, 1)),
        ("20270101", date(2027, 1, 1)),
        ("46388", date(2027, 1, 1)),  # Excel serial number
        ("2027-01-01T00:00:00", date(2027, 1, 1)),
        ("2027-02-30", None),
        ("元旦", None),
        ("", None),
    ],
)
def test_dates_are_read_in_the_forms_offices_write_them(text, expected):
    assert parse_date(text) == expected


# --- loading through the API ------------------------------------------------------------------


def test_center_loads_a_year_and_due_dates_across_new_year_become_certain(client, staff_login, db):
    center = staff_login()
    before = client.get(
        "/api/v1/calendar/workdays?from=2026-12-30&days=5", headers=center.headers
    ).get_json()
    assert before["certain"] is False and before["uncertain_years"] == [2027]
    assert before["due"] == "2027-01-06"  # weekdays only: 31 Dec, 1, 4, 5, 6 Jan

    loader = staff_login(role="system_admin")
    resp = upload(client, loader.headers, SCHEDULE_2027, source="测试安排")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["years"] == [
        {"year": 2027, "source": "测试安排", "holidays": 4, "workdays": 2, "replaced": None}
    ]

    after = client.get(
        "/api/v1/calendar/workdays?from=2026-12-30&days=5", headers=center.headers
    ).get_json()
    # 1 January is now a holiday: 31 Dec, 4, 5, 6, 7 Jan.
    assert after["due"] == "2027-01-07" and after["certain"] is True
    assert after["counted"] == [
        "2026-12-31",
        "2027-01-04",
        "2027-01-05",
        "2027-01-06",
        "2027-01-07",
    ]
    assert db.get(CalendarYear, 2027).loaded_by == loader.user_id


def test_a_loaded_make_up_saturday_counts_and_a_loaded_holiday_does_not(client, staff_login):
    center = staff_login()
    assert upload(client, admin(staff_login), SCHEDULE_2027).status_code == 200
    # Thu 4 Feb 2027 → Fri 5, Sat 6 (make-up), Mon 8, Tue 9, then 10–11 off → Fri 12.
    body = client.get(
        "/api/v1/calendar/workdays?from=2027-02-04&days=5", headers=center.headers
    ).get_json()
    assert body["counted"] == ["2027-02-05", "2027-02-06", "2027-02-08", "2027-02-09", "2027-02-12"]
    assert body["certain"] is True


def test_a_file_for_a_year_replaces_that_whole_year(client, staff_login, db):
    assert upload(client, admin(staff_login), SCHEDULE_2027, source="第一版").status_code == 200
    second = HEADER + "2027-01-01,holiday,元旦\n2027-05-03,holiday,劳动节\n"
    resp = upload(client, admin(staff_login), second, source="第二版")
    assert resp.status_code == 200
    assert resp.get_json()["years"][0]["replaced"] == "第一版"
    days = {d.day: d.name for d in db.scalars(select(CalendarDay).where(CalendarDay.year == 2027))}
    assert days == {date(2027, 1, 1): "元旦", date(2027, 5, 3): "劳动节"}
    assert db.get(CalendarYear, 2027).source == "第二版"
    actions = db.scalars(
        select(AuditEntry.detail)
        .where(AuditEntry.action == "calendar.year_loaded")
        .order_by(AuditEntry.id)
    ).all()
    assert [a["source"] for a in actions] == ["第一版", "第二版"]


def test_a_loaded_year_replaces_the_librarys_data_for_that_year(client, staff_login):
    """2026 is known to the library; a staff file for 2026 wins (the design's order)."""
    center = staff_login()
    resp = upload(client, admin(staff_login), HEADER + "2026-11-30,holiday,测试假日\n")
    assert resp.status_code == 200
    body = client.get(
        "/api/v1/calendar/workdays?from=2026-11-27&days=1", headers=center.headers
    ).get_json()
    assert body["due"] == "2026-12-01" and body["certain"] is True


def test_an_xlsx_with_date_cells_and_chinese_kinds_loads(client, staff_login, db):
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, ["日期", "类型", "名称"])
    for i, (day, kind, name) in enumerate(
        [(date(2027, 1, 1), "休", "元旦"), (date(2027, 2, 6), "班", "春节")], start=1
    ):
        sheet.write_datetime(i, 0, day, fmt)
        sheet.write_string(i, 1, kind)
        sheet.write_string(i, 2, name)
    book.close()
    resp = upload(client, admin(staff_login), buffer.getvalue(), name="2027.xlsx")
    assert resp.status_code == 200, resp.get_json()
    assert db.get(CalendarDay, date(2027, 2, 6)).is_workday is True
    assert db.get(CalendarDay, date(2027, 1, 1)).is_workday is False


def test_a_file_with_wrong_rows_loads_nothing_and_names_each_row_and_column(
    client, staff_login, db
):
    bad = (
        HEADER
        + "2027-01-01,holiday,元旦\n"  # row 2 fine
        + "2027-13-01,holiday,春节\n"  # row 3 bad date
        + "2027-02-10,rest,春节\n"  # row 4 bad kind
        + "2027-02-11,holiday,\n"  # row 5 no name
        + "2027-01-01,holiday,元旦\n"  # row 6 duplicate of row 2
        + "2027-02-08,workday,春节\n"  # row 7 a Monday cannot be a make-up day
    )
    resp = upload(client, admin(staff_login), bad)
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "holidays_invalid"
    found = {(e["row"], e["column"], e["code"]) for e in body["errors"]["rows"]}
    assert found == {
        (3, "日期", "invalid_date"),
        (4, "类型", "invalid_kind"),
        (5, "名称", "name_required"),
        (6, "日期", "duplicate_date"),
        (7, "类型", "workday_not_weekend"),
    }
    assert all(e["message"] for e in body["errors"]["rows"])
    assert db.scalars(select(CalendarYear)).all() == []


def test_a_year_with_make_up_days_but_no_holiday_is_refused(client, staff_login):
    resp = upload(client, admin(staff_login), HEADER + "2027-02-06,workday,春节\n")
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["rows"][0]["code"] == "year_without_holidays"


def test_a_file_without_the_three_columns_is_refused(client, staff_login):
    resp = upload(client, admin(staff_login), "日子,说明\n2027-01-01,元旦\n")
    assert resp.status_code == 422 and error_code(resp) == "holidays_header_missing"


def test_english_headers_are_accepted(client, staff_login):
    resp = upload(client, admin(staff_login), "date,kind,name\n2027-01-01,holiday,New Year\n")
    assert resp.status_code == 200


def test_a_title_row_above_the_header_is_read_past(client, staff_login):
    content = "2027年部分节假日安排,,\n,,\n" + HEADER + "2027-01-01,休,元旦\n"
    resp = upload(client, admin(staff_login), content)
    assert resp.status_code == 200, resp.get_json()


def test_only_the_system_administrator_loads_holidays(client, staff_login, resident_login):
    assert upload(client, {}, SCHEDULE_2027).status_code == 401
    for login in (
        staff_login(role="center_staff"),
        staff_login(role="security_admin"),
        staff_login(role="town_staff"),
        staff_login(role="department_staff"),
        staff_login(role="leader"),
        resident_login("amy"),
    ):
        assert upload(client, login.headers, SCHEDULE_2027).status_code == 403


# --- due dates through the API ----------------------------------------------------------------


def test_due_date_the_day_before_national_day_skips_the_holiday(client, staff_login):
    town = staff_login(role="town_staff")
    body = client.get(
        "/api/v1/calendar/workdays?from=2026-09-30&days=5", headers=town.headers
    ).get_json()
    # 1–7 Oct off, 10 Oct (Saturday) a make-up working day.
    assert body["counted"] == ["2026-10-08", "2026-10-09", "2026-10-10", "2026-10-12", "2026-10-13"]
    assert body["due"] == "2026-10-13" and body["certain"] is True
    assert "签发当日不计" in body["rule"]


def test_due_date_from_a_friday_afternoon_before_a_holiday_starts_after_the_holiday(
    client, staff_login
):
    """The hour of issue does not matter: 16:00 on Friday 25 Sept is counted as 25 Sept."""
    center = staff_login()
    body = client.get(
        "/api/v1/calendar/workdays?from=2026-09-25&days=5", headers=center.headers
    ).get_json()
    assert body["due"] == "2026-10-09"


def test_a_due_date_beyond_every_known_year_is_given_and_marked_uncertain(client, staff_login):
    center = staff_login()
    resp = client.get("/api/v1/calendar/workdays?from=2030-03-01&days=5", headers=center.headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["due"] == "2030-03-08" and body["certain"] is False
    assert body["uncertain_years"] == [2030] and "2030" in body["message"]


def test_workdays_needs_a_valid_start_and_staff(client, staff_login, resident_login):
    center = staff_login()
    assert client.get("/api/v1/calendar/workdays", headers=center.headers).status_code == 422
    assert (
        client.get(
            "/api/v1/calendar/workdays?from=2026-09-30&days=0", headers=center.headers
        ).status_code
        == 422
    )
    resident = resident_login("bo")
    url = "/api/v1/calendar/workdays?from=2026-09-30"
    assert client.get(url, headers=resident.headers).status_code == 403
    assert client.get(url).status_code == 401


def test_calendar_years_show_the_library_the_loaded_years_and_next_year(
    client, staff_login, monkeypatch
):
    center = staff_login()
    assert upload(client, admin(staff_login), SCHEDULE_2027, source="测试安排").status_code == 200
    # Run in a year the library covers, whenever CI runs (the day goes back, never forward,
    # so the login stays valid).
    last_library_year = library_range()[1]
    this_year = min(clock.today().year, last_library_year)
    if clock.today().year > last_library_year:
        moment = datetime(last_library_year, 6, 15, 10, tzinfo=clock.TZ)
        monkeypatch.setattr(clock, "now", lambda: moment)
    body = client.get("/api/v1/calendar/years", headers=center.headers).get_json()
    assert body["library"]["last_year"] == last_library_year
    assert [(y["year"], y["holidays"], y["workdays"]) for y in body["loaded"]] == [(2027, 4, 2)]
    assert body["this_year"]["year"] == this_year and body["this_year"]["known"] is True
    assert body["next_year"]["year"] == this_year + 1


# --- the command line -------------------------------------------------------------------------


def test_load_holidays_command_loads_and_reports_row_errors(app, config, tmp_path, monkeypatch, db):
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    good = tmp_path / "2027.csv"
    good.write_text(SCHEDULE_2027, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["load-holidays", str(good), "--source", "命令行"])
    assert result.exit_code == 0, result.output
    assert "2027: 4 holidays, 2 make-up workdays" in result.output
    assert db.get(CalendarYear, 2027).source == "命令行"

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "2027-02-30,holiday,春节\n", encoding="utf-8")
    result = runner.invoke(main, ["load-holidays", str(bad)])
    assert result.exit_code != 0
    assert "row 2 日期" in result.output

    assert runner.invoke(main, ["check-calendar", "--on", "2026-12-28"]).exit_code == 0
    late = runner.invoke(main, ["check-calendar", "--on", "2027-12-28"])
    assert late.exit_code == 1 and "2028: missing" in late.output


def test_the_loaded_calendar_is_what_work_calendar_uses(client, staff_login, db):
    assert upload(client, admin(staff_login), SCHEDULE_2027).status_code == 200
    calendar = WorkCalendar.load(db)
    assert calendar.is_workday(date(2027, 2, 6)) == (True, True)
    assert calendar.is_workday(date(2027, 2, 10)) == (False, True)
    assert calendar.is_workday(date(2027, 3, 1)) == (True, True)
