"""Pure feed rules, table-driven: cell normalisation, header detection, punctuality."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from server.services.calendar.workdays import WorkCalendar
from server.services.feeds import normalise as norm
from server.services.feeds.punctuality import State, punctuality
from server.services.feeds.reader import FileRefused, open_table, peek_table
from server.services.feeds.registry import BY_CODE, FEEDS, effective
from server.services.leads.core import CATEGORIES
from tests.builders import make_id_number
from tests.feedfiles import OOP_HEADER, csv_bytes, xlsx

TODAY = date(2026, 11, 28)
CAL = WorkCalendar.library_only()


def test_the_registry_has_the_twelve_feeds_of_the_work_plan():
    assert len(FEEDS) == 12
    from server.services.places.areas import DEPARTMENTS

    departments = {code for code, _ in DEPARTMENTS}
    for feed in FEEDS:
        assert feed.department in departments, feed.code
        assert {"name", "id_number"} <= {c.field for c in feed.columns}
        assert set(feed.categories) | set(feed.categories_off_roster) <= set(CATEGORIES)
    assert BY_CODE["insurance_oop"].threshold == Decimal(20000)
    assert BY_CODE["insurance_annual_oop"].threshold == Decimal(40000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("32,400元", Decimal("32400.00")),
        ("３２，４００元", Decimal("32400.00")),
        ("￥32,400.50", Decimal("32400.50")),
        (" 32400 ", Decimal("32400.00")),
        ("3.24万", Decimal("32400.00")),
        ("8.5万元", Decimal("85000.00")),
        (32400, Decimal("32400.00")),
        (19999.99, Decimal("19999.99")),
    ],
)
def test_amounts_are_read_however_they_are_written(raw, expected):
    assert norm.amount(raw) == expected


@pytest.mark.parametrize(("raw", "code"), [("三万", "amount_format"), ("-5", "amount_negative")])
def test_amounts_that_are_not_amounts_are_refused(raw, code):
    with pytest.raises(norm.CellError) as caught:
        norm.amount(raw)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "raw",
    [
        "2026-03-05",
        "2026/3/5",
        "2026.3.5",
        "2026年3月5日",
        "２０２６年３月５日",
        "20260305",
        46086,
        46086.0,
        "46086",
        date(2026, 3, 5),
        datetime(2026, 3, 5, 8, 30),
        " 2026-03-05 00:00:00",
    ],
)
def test_dates_come_as_text_serial_numbers_or_date_cells(raw):
    assert norm.a_date(raw, today=TODAY) == date(2026, 3, 5)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("2026-02-30", "date_invalid"),
        ("上个月", "date_format"),
        ("2099-01-01", "date_out_of_range"),
    ],
)
def test_impossible_dates_are_refused(raw, code):
    with pytest.raises(norm.CellError) as caught:
        norm.a_date(raw, today=TODAY)
    assert caught.value.code == code


def test_id_numbers_lose_full_width_digits_spaces_and_a_small_x():
    person = make_id_number(seq="123")
    spaced = " ".join([person[:6], person[6:14], person[14:]])
    full = person.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert norm.id_number(spaced, today=TODAY) == person
    assert norm.id_number(full, today=TODAY) == person
    with pytest.raises(norm.CellError):
        norm.id_number("370304198001011", today=TODAY)


@pytest.mark.parametrize(
    ("raw", "grade"), [("二级", 2), ("2级", 2), ("2", 2), (2.0, 2), ("Ⅳ级", 4)]
)
def test_disability_grades(raw, grade):
    assert norm.grade(raw) == grade


def test_names_lose_stray_spaces():
    assert norm.name(" 王\u3000秀 英 ") == "王秀英"


def test_the_header_is_found_below_title_rows_in_any_column_order():
    rows = [
        ["博山区2026年3月住院大额自付人员名单"],
        [],
        ["备注：单位元"],
        ["个人负担合规费用（元）", "入院 日期", "公民身份号码", "姓 名"],
        ["30000", "2026-03-05", make_id_number(), "甲"],
    ]
    table = open_table(csv_bytes(rows), "a.csv", BY_CODE["insurance_oop"])
    assert table.header_row == 4
    assert table.columns == {"oop": 0, "event_date": 1, "id_number": 2, "name": 3}
    assert [n for n, _ in table.data_rows()] == [5]


def _inline_string_xlsx(rows: list[list[str]], *, dimension: bool) -> bytes:
    """An xlsx as some exporters write it: inline strings, an absolute sheet path, and
    (optionally) no <dimension>."""
    import io
    import zipfile

    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    cells = "".join(
        f'<row r="{r}">'
        + "".join(
            f'<c r="{chr(65 + c)}{r}" t="inlineStr"><is><t>{v}</t></is></c>'
            for c, v in enumerate(row)
        )
        + "</row>"
        for r, row in enumerate(rows, start=2)  # row 1 left empty
    )
    size = f'<dimension ref="A2:G{len(rows) + 1}"/>' if dimension else ""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats'
            '-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
            'data.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
            'worksheet+xml"/></Types>',
        )
        book.writestr(
            "_rels/.rels",
            f'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" '
            f'Target="xl/workbook.xml"/></Relationships>',
        )
        book.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0"?><workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            f'<sheet name="名单" sheetId="1" r:id="rId7"/></sheets></workbook>',
        )
        book.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId7" Type="{rel}/worksheet" '
            f'Target="/xl/worksheets/data.xml"/></Relationships>',
        )
        book.writestr(
            "xl/worksheets/data.xml",
            f'<?xml version="1.0"?><worksheet xmlns="{main}">{size}<sheetData>{cells}'
            f"</sheetData></worksheet>",
        )
    return buffer.getvalue()


def _data_row() -> list[str]:
    return ["1", "甲", make_id_number(), "博山区医院", "2026-03-05", "2026-03-15", "30000"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(xlsx([OOP_HEADER, _data_row(), _data_row()]), id="header-first"),
        pytest.param(
            xlsx([OOP_HEADER, _data_row(), _data_row()], title="2026年3月名单"), id="title-rows"
        ),
        pytest.param(
            _inline_string_xlsx([["名单"], OOP_HEADER, _data_row()], dimension=True),
            id="inline-strings",
        ),
        pytest.param(
            _inline_string_xlsx([OOP_HEADER, _data_row()], dimension=False), id="no-dimension"
        ),
    ],
)
def test_a_large_upload_is_checked_from_its_first_rows_as_the_full_read_would(content):
    feed = BY_CODE["insurance_oop"]
    peeked, full = peek_table(content, "a.xlsx", feed), open_table(content, "a.xlsx", feed)
    assert (peeked.header_row, peeked.header) == (full.header_row, full.header)
    assert peeked.rows_total in (full.rows_total, None)
    assert list(peeked.data_rows()) == []


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (xlsx([["甲", "乙"], ["1", "2"]]), "feed_header_missing"),
        (xlsx([["姓名", "身份证号"], ["张三", "1"]]), "feed_header_incomplete"),
        (xlsx([[None]]), "file_empty"),
        (b"PK\x03\x04 a broken zip", "file_not_spreadsheet"),
    ],
    ids=["no-header", "missing-amount-column", "empty", "broken-zip"],
)
def test_a_large_upload_is_refused_from_its_first_rows_as_the_full_read_would(content, code):
    feed = BY_CODE["insurance_oop"]
    for read in (peek_table, open_table):
        with pytest.raises(FileRefused) as refused:
            read(content, "a.xlsx", feed)
        assert refused.value.code == code, read.__name__


def _every_kind_of_cell() -> bytes:
    """Shared strings, a merged title, a leading empty column, dates with and without a time,
    numbers, booleans, formula results, gaps and blank text."""
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    moment = book.add_format({"num_format": 'yyyy"年"m"月"d"日" hh:mm'})
    sheet.merge_range(2, 1, 2, 4, "2026年3月名单")
    sheet.write_row(4, 1, ["姓名", "公民身份号码", 1, 2.5, True, False])
    sheet.write_datetime(5, 1, datetime(2026, 3, 5), day)
    sheet.write_datetime(5, 2, datetime(2026, 3, 5, 10, 30), moment)
    sheet.write_formula(5, 3, "=1+1", None, 2)
    sheet.write_formula(5, 4, '="x"', None, "x")
    sheet.write(5, 7, "after a gap")
    sheet.write_number(7, 1, 46086)
    sheet.write_string(8, 2, "  ")
    book.close()
    return buffer.getvalue()


def _rows_as_calamine_gives_them(content: bytes) -> list[list[object]]:
    import io

    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0)
    return [_trimmed(row) for row in sheet.iter_rows()]


def _trimmed(row: list[object]) -> list[object]:
    """Empty cells as None and no trailing empties (calamine pads rows with "")."""
    cells = [None if cell == "" else cell for cell in row]
    while cells and cells[-1] is None:
        cells.pop()
    return cells


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_every_kind_of_cell(), id="every-kind-of-cell"),
        pytest.param(
            xlsx([OOP_HEADER, _data_row(), _data_row()], title="名单", date_cells=True),
            id="feed-file",
        ),
    ],
)
def test_a_streamed_sheet_gives_the_cells_a_loaded_one_gives(content):
    from server.services.feeds import sheets

    streamed = sheets.open_sheet(content, stream_above_rows=0)
    assert streamed.engine == "stream"
    assert [_trimmed(row) for row in streamed.rows] == _rows_as_calamine_gives_them(content)
    loaded = sheets.open_sheet(content, stream_above_rows=10**9)
    assert loaded.engine == "calamine"  # small sheets are loaded whole
    assert [_trimmed(row) for row in loaded.rows] == _rows_as_calamine_gives_them(content)


def test_aliases_added_by_the_center_are_recognised():
    rows = [
        ["参保人", "证件号", "入院日期", "统筹外自付"],
        ["甲", make_id_number(), "2026-03-05", "1"],
    ]
    feed = BY_CODE["insurance_oop"]
    with pytest.raises(FileRefused):
        open_table(csv_bytes(rows), "a.csv", feed)
    widened = effective(feed, aliases={"name": ["参保人"], "oop": ["统筹外自付"]}, threshold=None)
    assert open_table(csv_bytes(rows), "a.csv", widened).columns["oop"] == 3


MONTHLY = BY_CODE["insurance_oop"]
WEEKLY = BY_CODE["disability_new"]
YEARLY = BY_CODE["education_aid"]
EVENT = BY_CODE["fire"]


@pytest.mark.parametrize(
    ("feed", "today", "last_upload", "state", "next_due", "late_by"),
    [
        # Monthly, due by the 5th: sent on the 3rd → next due 5 December.
        (MONTHLY, date(2026, 11, 20), date(2026, 11, 3), State.ON_TIME, date(2026, 12, 7), 0),
        # 5 December 2026 is a Saturday: the due date moves to Monday 7 December.
        (MONTHLY, date(2026, 12, 3), date(2026, 11, 3), State.DUE_SOON, date(2026, 12, 7), 0),
        # Not sent since October: the 5 November due date is late by 16 working days.
        (MONTHLY, date(2026, 11, 27), date(2026, 10, 4), State.LATE, date(2026, 11, 5), 16),
        # Never sent: said plainly, with the coming due date (not "late since a due date
        # before the feed was expected").
        (MONTHLY, date(2026, 11, 27), None, State.NEVER_SENT, date(2026, 12, 7), 0),
        # Weekly, every Monday: sent Monday 23 November → next Monday 30 November.
        (WEEKLY, date(2026, 11, 25), date(2026, 11, 23), State.ON_TIME, date(2026, 11, 30), 0),
        (WEEKLY, date(2026, 11, 25), date(2026, 11, 16), State.LATE, date(2026, 11, 23), 2),
        (WEEKLY, date(2026, 11, 23), date(2026, 11, 16), State.DUE_SOON, date(2026, 11, 23), 0),
        # National Day 2026: Monday 5 October is a holiday; that week's due date is Thursday 8.
        (WEEKLY, date(2026, 10, 7), date(2026, 9, 28), State.DUE_SOON, date(2026, 10, 8), 0),
        # Yearly, by 31 December.
        (YEARLY, date(2026, 11, 28), date(2025, 12, 20), State.ON_TIME, date(2026, 12, 31), 0),
        (YEARLY, date(2026, 11, 28), date(2024, 12, 20), State.LATE, date(2025, 12, 31), 224),
    ],
)
def test_punctuality_of_scheduled_feeds(feed, today, last_upload, state, next_due, late_by):
    result = punctuality(
        feed, last_upload=last_upload, earliest_event=None, today=today, calendar=CAL
    )
    assert (result.state, result.next_due, result.late_by) == (state, next_due, late_by)


@pytest.mark.parametrize(
    ("event", "upload", "state", "late_by"),
    [
        (date(2026, 11, 23), date(2026, 11, 26), State.ON_TIME, 0),  # Mon → Thu: 3 working days
        (date(2026, 11, 20), date(2026, 11, 26), State.LATE, 1),  # Fri → Thu: 4 working days
        (None, None, State.NEVER_SENT, 0),
    ],
)
def test_event_feeds_are_late_when_a_row_came_more_than_3_working_days_after_its_event(
    event, upload, state, late_by
):
    result = punctuality(EVENT, last_upload=upload, earliest_event=event, today=TODAY, calendar=CAL)
    assert (result.state, result.late_by, result.next_due) == (state, late_by, None)


# --- the importer's fast paths give what the general functions give --------------------------


def _random_id_texts(count: int) -> list[str]:
    """Valid IDs, and IDs with one thing wrong or written oddly."""
    import random

    rng = random.Random(11)
    out = []
    for _ in range(count):
        birth = f"{rng.randint(1880, 2030)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
        person = make_id_number(birth=birth, seq=f"{rng.randint(0, 999):03d}")
        pick = rng.random()
        if pick < 0.1:
            person = person[:17] + rng.choice("0123456789Xx")
        elif pick < 0.2:
            person = person.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
        elif pick < 0.25:
            person = f" {person[:6]} {person[6:]}"
        elif pick < 0.3:
            person = person[:15]
        elif pick < 0.33:
            person = person[:10] + rng.choice("a٣²-") + person[11:]
        elif pick < 0.35:
            person = rng.choice(["", "   ", "X" * 18, person + "1"])
        out.append(person)
    return out


def test_the_quick_id_check_agrees_with_the_full_one():
    from server.services.kernel.idnumber import _WEIGHTS, check, check_digit, valid_value

    for raw in _random_id_texts(20_000):
        full = check(raw, today=TODAY)
        assert valid_value(raw, today=TODAY) == (full.value if full.ok else None), raw
        body = raw.strip()[:17]
        if len(body) == 17 and body.isascii() and body.isdigit():
            total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
            slow = "10X98765432"[total % 11]
            assert check_digit(body) == slow


def test_keyed_hash_and_sealing_are_those_of_the_crypto_module():
    from server.config import Config
    from server.services.kernel.crypto import keyed_hash
    from server.services.kernel.pii import PersonalData

    pii = PersonalData.from_spec(Config().field_encryption_key)
    for value in ["370304198001011234", "13812345678", "", "王秀英"]:
        assert pii.hash(value) == keyed_hash(pii.cipher.hash_key(), value)
        sealed = pii.seal(value)
        assert sealed.startswith(pii.cipher.current_kid + ":")
        assert pii.cipher.decrypt(sealed) == value and pii.seal(value) != sealed


def test_names_of_letters_only_skip_the_folding_but_come_out_the_same():
    import random

    rng = random.Random(3)
    chars = ["王", "秀", " ", "\u3000", "Ａ", "a", "·", "\u200b", "\ufeff", "1", "\U00020000", "é"]
    for _ in range(20_000):
        raw = "".join(rng.choice(chars) for _ in range(rng.randint(1, 6)))
        try:
            fast = norm.name(raw)
        except norm.CellError as exc:
            fast = exc.code
        text = norm.fold(raw).translate(norm._NO_SPACE)
        slow = "name_missing" if not text else "name_too_long" if len(text) > 50 else text
        assert fast == slow, raw
    with pytest.raises(norm.CellError, match="过长"):
        norm.name("王" * 51)


def test_the_importers_name_keys_are_those_of_matching():
    import random

    from server.services.feeds.namekeys import NameKeys, shape_key
    from server.services.leads import matching

    rng = random.Random(5)
    chars = [*"王李张秀英陈陳玉壬己已长重行乐曾单解查朝阳·•．. ", "a", "Z", "1", "\u3000", "Ａ"]
    keys = NameKeys()
    for _ in range(20_000):
        name = "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))
        assert keys(name) == matching.name_key(name), name
        assert shape_key(name) == matching.shape_key(name), name


def test_lists_of_texts_are_encoded_as_the_json_encoder_does():
    from server.services.feeds.bulk import _dumps_texts, dump_json

    for value in [[], ["illness"], ["医保: 单次自付 ¥32,400", 'a"b\\c\n\u2028'], [1, None]]:
        assert _dumps_texts(value) == dump_json(value)


def test_facts_are_encoded_as_the_json_encoder_does():
    from server.models import RosterProgramme
    from server.services.feeds.bulk import dump_json
    from server.services.feeds.comparison import _facts, _facts_json

    for values in [
        {},
        {"hospital": '博山"区\\医院\n', "event_date": date(2026, 3, 5), "oop": Decimal("1.50")},
        {"grade": 2, "disability_type": None, "year": 2026},
        {"programme": RosterProgramme.DIBAO, "flag": True, "ratio": 1.5},
    ]:
        assert _facts_json(values) == dump_json(_facts(values))
