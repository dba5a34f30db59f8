"""The holiday table staff load for years the `chinesecalendar` library does not know yet.

A file (csv or xlsx) has one row per exception to Monday–Friday, with three columns:

| 日期 (date)  | 类型 (kind)            | 名称 (name) |
|--------------|------------------------|-------------|
| 2027-01-01   | holiday / 休 / 放假     | 元旦        |
| 2027-02-07   | workday / 班 / 调休上班 | 春节        |

A file is all or nothing: if any row is wrong, nothing is loaded and every error is reported with
its row and column. Each year present in the file replaces that whole year in the database (and,
for that year, the library's data too: see services/calendar/workdays.py).

When next year is unknown, `EXPECTED_GAPS` says until when that is acceptable; after that date
`e-rescue check-calendar` (run it from cron: it reads the production table, which the test suite
cannot see) exits 1 and `GET /api/v1/calendar/years` shows the year as missing. The suite itself
never depends on today's date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.orm import Session

from server.db import Precompiled
from server.errors import ValidationFailed
from server.models import CalendarDay, CalendarYear
from server.services.calendar.workdays import WorkCalendar, library_range
from server.services.feeds.reader import read_table
from server.services.kernel.access import Actor
from server.services.kernel.audit import record
from server.services.kernel.workbooks import find_header_row

#: Years we know are missing from both the library and our data, and the date by which their
#: official schedule (国务院办公厅关于节假日安排的通知, usually published in November) must be
#: loaded with `e-rescue load-holidays` or the admin endpoint. The date is chosen so that no
#: slip is issued with an uncertain due date: from about 24 December, 5 working days reach into
#: January. After the date `e-rescue check-calendar` fails.
EXPECTED_GAPS: dict[int, date] = {
    2027: date(2026, 12, 20),
}

#: A year's schedule is a few dozen rows; anything much larger is the wrong file.
MAX_ROWS = 2000
FIRST_YEAR, LAST_YEAR = 2000, 2100

_DATE_HEADERS = ("日期", "date", "day")
_KIND_HEADERS = ("类型", "kind", "type", "性质")
_NAME_HEADERS = ("名称", "name", "节日", "节假日", "假日名称")

_HOLIDAY_WORDS = {"holiday", "休", "放假", "假", "休息", "节假日", "假日", "off"}
_WORKDAY_WORDS = {"workday", "班", "上班", "补班", "调休上班", "工作日", "work"}

_DATE_PATTERN = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_EXCEL_EPOCH = date(1899, 12, 30)


@dataclass(frozen=True)
class ParsedDay:
    row: int
    day: date
    is_workday: bool
    name: str


@dataclass
class YearLoaded:
    year: int
    source: str
    holidays: int
    workdays: int
    #: The source of the schedule this load replaced, if the year was loaded before.
    replaced: str | None


@dataclass
class HolidayLoadResult:
    years: list[YearLoaded] = field(default_factory=list)


# --- parsing --------------------------------------------------------------------------------


def parse_date(text: str) -> date | None:
    """ISO dates, 2027/1/1, 2027.1.1, 2027年1月1日, 20270101, or an Excel serial number."""
    text = text.strip().translate(_FULL_WIDTH)
    if not text:
        return None
    if "T" in text or " " in text:
        head = text.replace("T", " ").split(" ", 1)[0]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", head):
            text = head
    match = _DATE_PATTERN.match(text)
    try:
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
        if re.fullmatch(r"\d{8}", text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if re.fullmatch(r"\d{5}(\.0+)?", text):
            return _EXCEL_EPOCH + timedelta(days=int(float(text)))
    except (ValueError, OverflowError):
        return None
    return None


def parse_kind(text: str) -> bool | None:
    """True for a make-up working day, False for a holiday, None when unrecognised."""
    word = text.strip().lower()
    if word in _WORKDAY_WORDS:
        return True
    if word in _HOLIDAY_WORDS:
        return False
    return None


_FULL_WIDTH = str.maketrans("０１２３４５６７８９－／．　", "0123456789-/. ")


def parse_holiday_rows(rows: list[list[str]]) -> tuple[list[ParsedDay], list[dict[str, Any]]]:
    """Rows of a table (its header among the first 20) → the days, and every error by row and
    column."""
    if not any(c.strip() for row in rows for c in row):
        raise ValidationFailed("文件为空", code="file_empty")
    found = find_header_row(
        rows, {"date": _DATE_HEADERS, "kind": _KIND_HEADERS, "name": _NAME_HEADERS}
    )
    if found.missing:
        raise ValidationFailed(
            "文件缺少必要的列：日期、类型、名称",
            code="holidays_header_missing",
            errors={"file": [f"missing column: {m}" for m in found.missing]},
        )
    header_idx, header, columns = found.index, found.header, found.columns
    if len(rows) - header_idx - 1 > MAX_ROWS:
        raise ValidationFailed(
            f"文件行数过多（最多 {MAX_ROWS} 行），请只上传节假日安排", code="too_many_rows"
        )
    labels = {key: header[index] for key, index in columns.items()}
    days: list[ParsedDay] = []
    errors: list[dict[str, Any]] = []
    first_row_of: dict[date, int] = {}

    def fail(row: int, key: str, code: str, message: str) -> None:
        errors.append({"row": row, "column": labels[key], "code": code, "message": message})

    for row_number, row in enumerate(rows[header_idx + 1 :], start=header_idx + 2):
        cells = {key: _cell(row, index) for key, index in columns.items()}
        if not any(cells.values()):
            continue
        day = parse_date(cells["date"])
        is_workday = parse_kind(cells["kind"])
        name = cells["name"]
        ok = True
        if day is None:
            fail(row_number, "date", "invalid_date", f"第{row_number}行日期无法识别，如 2027-01-01")
            ok = False
        elif not FIRST_YEAR <= day.year <= LAST_YEAR:
            fail(row_number, "date", "year_out_of_range", f"第{row_number}行年份超出范围")
            ok = False
        elif day in first_row_of:
            fail(
                row_number,
                "date",
                "duplicate_date",
                f"第{row_number}行日期与第{first_row_of[day]}行重复",
            )
            ok = False
        if is_workday is None:
            fail(
                row_number,
                "kind",
                "invalid_kind",
                f"第{row_number}行类型应为 holiday（休）或 workday（班）",
            )
            ok = False
        elif is_workday and day is not None and day.weekday() < 5:
            fail(
                row_number,
                "kind",
                "workday_not_weekend",
                f"第{row_number}行：调休上班日应为周六或周日，{day.isoformat()} 本就是工作日",
            )
            ok = False
        if not name:
            fail(row_number, "name", "name_required", f"第{row_number}行缺少名称（如 春节）")
            ok = False
        elif len(name) > 50:
            fail(row_number, "name", "name_too_long", f"第{row_number}行名称过长（最多50字）")
            ok = False
        if day is not None and day not in first_row_of:
            first_row_of[day] = row_number
        if ok and day is not None and is_workday is not None:
            days.append(ParsedDay(row_number, day, is_workday, name))
    if not errors:
        errors.extend(_years_without_holidays(days, labels["date"]))
    if not days and not errors:
        raise ValidationFailed("文件中没有节假日数据", code="holidays_empty")
    return days, errors


def _years_without_holidays(days: list[ParsedDay], column: str) -> list[dict[str, Any]]:
    """A year with make-up days but no holiday is half a schedule: refuse it."""
    first_row: dict[int, int] = {}
    with_holiday: set[int] = set()
    for d in days:
        first_row.setdefault(d.day.year, d.row)
        if not d.is_workday:
            with_holiday.add(d.day.year)
    return [
        {
            "row": row,
            "column": column,
            "code": "year_without_holidays",
            "message": f"{year}年只有调休上班日、没有节假日，请上传该年完整的安排",
        }
        for year, row in sorted(first_row.items())
        if year not in with_holiday
    ]


def _cell(row: list[str], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    return str(row[index]).strip()


# --- loading --------------------------------------------------------------------------------


def load_holidays(
    db: Session,
    *,
    content: bytes,
    filename: str,
    source: str | None,
    actor: Actor,
    now: datetime,
) -> HolidayLoadResult:
    """Replace every year present in the file with the file's schedule (all or nothing)."""
    days, errors = parse_holiday_rows(read_table(content, filename))
    if errors:
        raise ValidationFailed(
            f"节假日表有 {len(errors)} 处错误，未载入任何数据",
            code="holidays_invalid",
            errors={"rows": errors},
        )
    by_year: dict[int, list[ParsedDay]] = {}
    for d in days:
        by_year.setdefault(d.day.year, []).append(d)
    source_text = (source or "").strip()[:200] or (filename or "上传文件")[:200]
    result = HolidayLoadResult()
    for year in sorted(by_year):
        result.years.append(
            replace_year(db, year, by_year[year], source=source_text, actor=actor, now=now)
        )
    db.flush()
    return result


def replace_year(
    db: Session,
    year: int,
    days: list[ParsedDay],
    *,
    source: str,
    actor: Actor,
    now: datetime,
) -> YearLoaded:
    """Make `days` the whole schedule of `year`, replacing whatever was loaded before."""
    existing = db.get(CalendarYear, year, with_for_update=True)
    replaced = existing.source if existing is not None else None
    db.execute(delete(CalendarDay).where(CalendarDay.year == year))
    if existing is None:
        existing = CalendarYear(year=year, source=source, loaded_at=now, loaded_by=actor.user_id)
        db.add(existing)
    else:
        existing.source, existing.loaded_at, existing.loaded_by = source, now, actor.user_id
    db.flush()
    db.add_all(
        CalendarDay(day=d.day, year=year, is_workday=d.is_workday, name=d.name) for d in days
    )
    loaded = YearLoaded(
        year=year,
        source=source,
        holidays=sum(not d.is_workday for d in days),
        workdays=sum(d.is_workday for d in days),
        replaced=replaced,
    )
    record(
        db,
        actor=actor,
        action="calendar.year_loaded",
        target_type="calendar_year",
        target_id=year,
        now=now,
        detail={
            "source": source,
            "holidays": loaded.holidays,
            "workdays": loaded.workdays,
            "replaced": replaced,
        },
    )
    return loaded


# --- coverage -------------------------------------------------------------------------------


@dataclass(frozen=True)
class YearStatus:
    year: int
    #: "loaded" (staff table), "library" (chinesecalendar), "awaited" (in EXPECTED_GAPS and the
    #: deadline not passed) or "missing".
    status: str
    source: str | None
    #: For an awaited or missing year: the date by which it must be loaded.
    due_by: date | None

    @property
    def known(self) -> bool:
        return self.status in ("loaded", "library")


def year_status(
    year: int,
    *,
    loaded: dict[int, str],
    today: date,
    gaps: dict[int, date] | None = None,
) -> YearStatus:
    """Where `year`'s schedule comes from, or until when its absence is acceptable."""
    gaps = EXPECTED_GAPS if gaps is None else gaps
    if year in loaded:
        return YearStatus(year, "loaded", loaded[year], None)
    first, last = library_range()
    if first <= year <= last:
        return YearStatus(year, "library", "chinesecalendar", None)
    due_by = gaps.get(year)
    if due_by is not None and today <= due_by:
        return YearStatus(year, "awaited", None, due_by)
    return YearStatus(year, "missing", None, due_by)


def coverage(db: Session, *, today: date) -> dict[str, Any]:
    """What the calendar knows: the library's years, the loaded years, and next year's state."""
    counts = {
        (year, is_workday): n
        for year, is_workday, n in db.execute(
            select(CalendarDay.year, CalendarDay.is_workday, func.count()).group_by(
                CalendarDay.year, CalendarDay.is_workday
            )
        )
    }
    loaded_rows = list(db.scalars(select(CalendarYear).order_by(CalendarYear.year)))
    loaded = {y.year: y.source for y in loaded_rows}
    first, last = library_range()
    this_year = year_status(today.year, loaded=loaded, today=today)
    next_year = year_status(today.year + 1, loaded=loaded, today=today)
    return {
        "library": {"first_year": first, "last_year": last},
        "loaded": [
            {
                "year": y.year,
                "source": y.source,
                "loaded_at": y.loaded_at,
                "holidays": counts.get((y.year, False), 0),
                "workdays": counts.get((y.year, True), 0),
            }
            for y in loaded_rows
        ],
        "this_year": _status_view(this_year),
        "next_year": _status_view(next_year),
    }


def _status_view(status: YearStatus) -> dict[str, Any]:
    messages = {
        "loaded": f"{status.year}年节假日安排已由工作人员载入",
        "library": f"{status.year}年节假日安排来自 chinesecalendar 数据",
        "awaited": (
            f"{status.year}年节假日安排尚未载入，请在"
            f"{status.due_by.isoformat() if status.due_by else ''}前载入"
        ),
        "missing": f"{status.year}年节假日安排缺失，涉及该年的期限只按周一至周五推算，请尽快载入",
    }
    return {
        "year": status.year,
        "status": status.status,
        "known": status.known,
        "source": status.source,
        "due_by": status.due_by,
        "message": messages[status.status],
    }


# --- due dates ------------------------------------------------------------------------------

COUNTING_RULE = "签发当日不计（无论几点），自其后第一个工作日起算，第N个工作日下班前到期"


def working_days_from(db: Session, *, start: date, days: int) -> dict[str, Any]:
    """The `days`-th working day after `start`, which days were counted, and how certain."""
    calendar = WorkCalendar.load(db)
    counted = calendar.counted_days(start, days)
    due = counted[-1][0] if counted else start
    uncertain = sorted(
        {day.year for day in _days_between(start, due) if not calendar.knows_year(day.year)}
    )
    certain = not uncertain
    message = (
        "到期日依据正式节假日安排计算"
        if certain
        else (
            f"{'、'.join(str(y) for y in uncertain)}年的节假日安排尚未载入，"
            "此日期只按周一至周五推算，可能不准确"
        )
    )
    return {
        "start": start,
        "days": days,
        "due": due,
        "certain": certain,
        "uncertain_years": uncertain,
        "counted": [d for d, _ in counted],
        "rule": COUNTING_RULE,
        "message": message,
    }


def _days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range(1, (end - start).days + 1)]


#: Every console page asks it: compiled once, run as driver SQL on the page's connection.
_LOADED_YEARS = Precompiled(select(CalendarYear.year, CalendarYear.source))


def next_year_notice(conn: Connection, *, today: date) -> dict[str, Any] | None:
    """The banner every console page shows while next year's schedule is unknown (neither
    loaded nor in the library): the year and what it means for deadlines. One small query."""
    loaded = dict(_LOADED_YEARS.rows(conn, {}))
    status = year_status(today.year + 1, loaded=loaded, today=today)
    if status.known:
        return None
    return _status_view(status)


def preview_rows(content: bytes, filename: str) -> dict[str, Any]:
    """What loading `content` would do, without writing: the days by year (holidays, working
    days moved onto a weekend) and every error by row and column."""
    days, errors = parse_holiday_rows(read_table(content, filename))
    years: dict[int, list[ParsedDay]] = {}
    for d in days:
        years.setdefault(d.day.year, []).append(d)
    return {
        "days": days,
        "errors": errors,
        "years": [
            {
                "year": year,
                "holidays": sum(not d.is_workday for d in found),
                "workdays": sum(d.is_workday for d in found),
            }
            for year, found in sorted(years.items())
        ],
    }
