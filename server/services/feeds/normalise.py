"""Pure rules for the cells departments send: plain values in, a value or a reason out.

Departments export from many systems: full-width digits, stray and ideographic spaces, dates as
text ("2026年3月5日", "2026/3/5", "20260305") or Excel serial numbers (46086), amounts written
"32,400元", "￥32,400.50" or "3.24万". Each function returns the value or raises `CellError`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from server.services.kernel import text as text_rule
from server.services.kernel.idnumber import check as check_id
from server.services.kernel.idnumber import loose_phone, valid_value


class CellError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


#: Full-width ASCII (digits, letters, punctuation) folded to half-width, in one translate.
_FULLWIDTH = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
_FOLD = str.maketrans({**_FULLWIDTH, "\u3000": " ", "\u00a0": " ", "\u2002": " ", "\u2003": " "})
_SPACES = re.compile(r"\s+")
_NO_SPACE = dict.fromkeys(map(ord, " \t\r\n\u3000\u00a0\u2002\u2003\u2009\u200b\ufeff"), None)
_EXCEL_EPOCH = date(1899, 12, 30)
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_AMOUNT_STRIP = dict.fromkeys(map(ord, ",，元圆￥¥ \u3000\u00a0RMB"), None)


def fold(value: object) -> str:
    """Any cell as text: full-width folded, stray spaces collapsed, ends trimmed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if text.isascii():
        return text.strip() if " " not in text.strip() else _SPACES.sub(" ", text.strip())
    return _SPACES.sub(" ", text.translate(_FOLD)).strip()


def header_key(value: object) -> str:
    """A header cell compared without spaces, line breaks, asterisks or bracket style."""
    text = fold(value).translate(_NO_SPACE)
    text = text.replace("(", "（").replace(")", "）").strip("*＊:：")
    return text


def name(value: object) -> str:
    if value.__class__ is str and value.isalpha() and max(value) < "\uff01" and len(value) <= 50:
        return value  # letters only, none full-width: nothing to fold or remove (most names)
    text = fold(value).translate(_NO_SPACE)
    if not text:
        raise CellError("name_missing", "姓名为空")
    if len(text) > 50:
        raise CellError("name_too_long", "姓名过长")
    return _plain(text, "name")


def id_number(value: object, *, today: date) -> str:
    raw = value if isinstance(value, str) else fold(value)
    found = valid_value(raw, today=today)  # the common case, without building a result
    if found is not None:
        return found
    result = check_id(raw, today=today)
    if not result.ok:
        raise CellError(result.code, result.message)
    return result.value


def amount(value: object) -> Decimal:
    """Yuan, two decimals: 32400, "32,400元", "￥32,400.50", "3.24万" (万 = 10,000)."""
    if isinstance(value, bool):
        raise CellError("amount_format", "金额格式不正确")
    if isinstance(value, int | float):
        number = Decimal(str(value))
    else:
        whole = text = fold(value)
        if not text:
            raise CellError("amount_missing", "金额为空")
        scale = _ONE
        if text.endswith(("万元", "万")):
            text, scale = text.removesuffix("元").removesuffix("万"), _TEN_THOUSAND
        try:
            number = Decimal(text.translate(_AMOUNT_STRIP)) * scale
        except InvalidOperation:
            # The whole value as sent ("约两万", not what was left after taking off 万).
            raise CellError("amount_format", f"金额格式不正确：{_quoted(whole)}") from None
    if not number.is_finite():
        raise CellError("amount_format", "金额格式不正确")
    if number < 0:
        raise CellError("amount_negative", "金额不能为负数")
    if number >= _TOO_LARGE:
        raise CellError("amount_too_large", "金额过大")
    return number.quantize(_CENT)


_ONE, _TEN_THOUSAND, _TOO_LARGE, _CENT = (
    Decimal(1),
    Decimal(10000),
    Decimal("1e10"),
    Decimal("0.01"),
)


def a_date(value: object, *, today: date) -> date:
    """A date from a date cell, an Excel serial number or text in the usual Chinese forms."""
    if isinstance(value, datetime):
        result = value.date()
    elif isinstance(value, date):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = _serial(float(value))
    else:
        text = fold(value)
        if not text:
            raise CellError("date_missing", "日期为空")
        result = _parse_date_text(text)
    if result.year < 1900 or result > today + timedelta(days=1):
        raise CellError("date_out_of_range", f"日期不合理：{result.isoformat()}")
    return result


def _serial(number: float) -> date:
    if not 1 <= number < 2958466:
        raise CellError("date_format", "日期格式不正确")
    return _EXCEL_EPOCH + timedelta(days=int(number))


def _parse_date_text(text: str) -> date:
    match = _DATE_TEXT.match(text) or _DATE_COMPACT.match(text)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise CellError("date_invalid", f"日期不存在：{_quoted(text)}") from None
    try:
        return _serial(float(text))  # a serial number that arrived as text (csv)
    except ValueError:
        raise CellError("date_format", f"日期格式不正确：{_quoted(text)}") from None


def year(value: object, *, today: date) -> int:
    whole = fold(value)
    text = whole.removesuffix("年度").removesuffix("年")
    if not text.isdigit() or not 2000 <= int(text) <= today.year:
        raise CellError("year_format", f"年度不正确：{_quoted(whole)}")
    return int(text)


_GRADES = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
GRADE_LABELS = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}


def grade(value: object) -> int:
    """Disability grade 1–4 from "二级", "2级", "2", "Ⅱ级" ."""
    text = fold(value).translate(_NO_SPACE).removesuffix("级").removeprefix("残疾")
    text = {"Ⅰ": "1", "Ⅱ": "2", "Ⅲ": "3", "Ⅳ": "4"}.get(text, text)
    if text not in _GRADES:
        raise CellError("grade_format", f"残疾等级应为一级至四级：{_quoted(fold(value))}")
    return _GRADES[text]


def text(value: object, *, max_length: int = 200) -> str:
    return _plain(fold(value)[:max_length], "content")


def _plain(value: str, field: str) -> str:
    """The house's text rule (`kernel/text.py`) for a cell: a refused cell rejects its row."""
    message = text_rule.describe(value, field=field, single_line=True)
    if message is not None:
        raise CellError("text_invalid", message)
    return value


def _quoted(value: str, limit: int = 60) -> str:
    """A cell's whole value for an error message (only a very long one is cut, with …)."""
    return value if len(value) <= limit else value[:limit] + "…"


def phone(value: object) -> str:
    """A mobile or a landline with its area code (0533-4181234, (0533)4181234): its digits."""
    raw = str(int(value)) if isinstance(value, float) and value.is_integer() else fold(value)
    digits = loose_phone(raw)
    if digits is None:
        raise CellError("phone_format", f"联系电话格式不正确：{_quoted(raw)}")
    return digits
