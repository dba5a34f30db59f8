"""Resident ID numbers (GB 11643-1999): normalise, validate, mask.

A pure rule module: plain values in, a decision with its reason out. It runs for every row of a
department file, so it stays within a few microseconds per ID (see bench/idnumber.py).

Deliberately *not* python-stdnum's `cn.ric.is_valid`: it checks the county code against the birth
year and, measured on our data, refused a third of correctly-checksummed IDs (real elderly people
among them). An unknown region is at most a warning here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from server.errors import invalid

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
#: Full-width digits and X, ideographic and other spaces, all folded in one `str.translate`.
_FOLD = str.maketrans(
    {**{chr(0xFF10 + i): str(i) for i in range(10)}, "ｘ": "X", "Ｘ": "X", "x": "X"}
)
_SPACES = dict.fromkeys(map(ord, " \t\u3000\u00a0\u2002\u2003\u2009\u200b-"), None)
_MASK_MIDDLE = "*" * 8


@dataclass(frozen=True, slots=True)
class IdCheck:
    """The outcome of checking one ID number: `value` is the normalised form when `ok`."""

    ok: bool
    value: str
    code: str = ""
    message: str = ""

    @property
    def birth_date(self) -> date | None:
        if not self.ok:
            return None
        return date(int(self.value[6:10]), int(self.value[10:12]), int(self.value[12:14]))


def normalise(raw: str) -> str:
    """Fold full-width digits, remove spaces and dashes, upper-case the final X."""
    if len(raw) == 18 and raw[:17].isdigit() and raw.isascii():
        return raw if raw[17] != "x" else raw[:17] + "X"  # the common case, ~10x cheaper
    return raw.translate(_FOLD).translate(_SPACES)


def check(raw: str | None, *, today: date) -> IdCheck:
    """Validate an ID number: 18 characters, a real past birth date, MOD 11-2 check digit."""
    if raw is None or not str(raw).strip():
        return IdCheck(False, "", "id_missing", "请填写身份证号码")
    value = normalise(str(raw))
    if len(value) == 15 and value.isdigit():
        return IdCheck(
            False,
            value,
            "id_old_15_digit",
            "这是旧版15位身份证号码，请填写现行的18位身份证号码",
        )
    if (
        len(value) != 18
        or not value[:17].isdigit()
        or not (value[17].isdigit() or value[17] == "X")
    ):
        return IdCheck(
            False, value, "id_format", "身份证号码应为18位，前17位为数字，最后一位为数字或X"
        )
    birth = _birth_date(value)
    if birth is None:
        return IdCheck(False, value, "id_birth_date", "身份证号码中的出生日期不存在")
    if birth > today or birth.year < 1890:
        return IdCheck(False, value, "id_birth_date", "身份证号码中的出生日期不合理")
    if check_digit(value[:17]) != value[17]:
        return IdCheck(False, value, "id_checksum", "身份证号码校验位不正确，请核对后重新填写")
    return IdCheck(True, value)


def checked_id(raw: str | None, *, field: str, today: date, required: bool = True) -> str | None:
    """A valid ID number, normalised; None when blank and not `required`; else a 422 naming
    `field` with `check`'s message (length, check digit, birth date)."""
    if not required and (raw is None or not raw.strip()):
        return None
    result = check(raw, today=today)
    if not result.ok:
        raise invalid(field, result.message, result.code)
    return result.value


def check_digit(first17: str) -> str:
    if len(first17) == 17 and first17.isascii() and first17.isdigit():
        # The weights are 2^(17-i) mod 11, and 13 ≡ 2 (mod 11): reading the 17 digits as a
        # base-13 number gives the weighted sum mod 11 in one C call (≈ 20× the loop below).
        return _CHECK_CHARS[(2 * int(first17, 13)) % 11]
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def valid_value(raw: str, *, today: date) -> str | None:
    """The normalised ID number when `raw` passes `check`, else None (then `check` says why).

    The importer's per-row path: the same rules as `check` without building an `IdCheck`, and
    birth dates parsed once per distinct date.
    """
    value = normalise(raw)
    if not value.isascii():  # other scripts' digits: rare, and `check` decides
        result = check(raw, today=today)
        return result.value if result.ok else None
    if len(value) != 18 or not value[:17].isdigit():
        return None
    last = value[17]
    if not (last.isdigit() or last == "X"):
        return None
    birth = _BIRTHS.get(value[6:14], _UNKNOWN)
    if birth is _UNKNOWN:
        birth = _birth_date(value)
        if len(_BIRTHS) >= _BIRTHS_MAX:
            _BIRTHS.clear()
        _BIRTHS[value[6:14]] = birth
    if birth is None or birth > today or birth.year < 1890:
        return None
    if _CHECK_CHARS[(2 * int(value[:17], 13)) % 11] != last:
        return None
    return value


_UNKNOWN = object()
#: Birth dates already parsed (a file holds a few tens of thousands of distinct ones).
_BIRTHS: dict[str, date | None] = {}
_BIRTHS_MAX = 100_000


def _birth_date(value: str) -> date | None:
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def mask(value: str | None) -> str | None:
    """`370304199001011234` → `370304********1234` (region kept, birth date hidden)."""
    if not value:
        return value
    if len(value) <= 10:
        return value[:2] + "*" * max(len(value) - 2, 0)
    return value[:6] + _MASK_MIDDLE + value[14:]


_MOBILE = re.compile(r"^1\d{10}$")
#: A landline with its area code (0533 for Zibo): 0 + 2–3 digits + a 7–8 digit number.
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")


_PHONE_MARKS = frozenset("+()（）")


def phone_digits(raw: str) -> str:
    """The one form a phone number is kept, hashed and sought in: its digits, without China's
    country code (+86 138 0000 0000, 0086-13800000000 and 13800000000 are one number;
    +86 533 4181234 is 0533-4181234). Other digits are kept as they are."""
    digits = "".join(ch for ch in raw.translate(_FOLD) if ch.isdigit())
    for prefix in ("0086", "86"):
        rest = digits[len(prefix) :]
        if digits.startswith(prefix) and _MOBILE.match(rest):
            return rest
        if digits.startswith(prefix) and _LANDLINE.match("0" + rest):
            return "0" + rest
    return digits


_LOOSE_SEPARATORS = frozenset(" -+()（）")
_DIGITS_ONLY = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)})


def loose_phone(raw: str) -> str | None:
    """A number as staff type it or a department file writes it (a short local number too):
    7–15 digits with only spaces, dashes, + and brackets between; its `phone_digits`, or None
    when it is not one."""
    folded = raw.translate(_DIGITS_ONLY).strip()
    digits = "".join(ch for ch in folded if ch.isdigit())
    if not 7 <= len(digits) <= 15 or any(
        not (ch.isdigit() or ch in _LOOSE_SEPARATORS) for ch in folded
    ):
        return None
    return phone_digits(digits)


def phone_kind(raw: str) -> tuple[str, str | None]:
    """(the number normalised, "mobile" / "landline" / None when it is neither)."""
    value = normalise(raw)  # folds full-width digits, drops spaces and dashes
    if value and all(ch.isdigit() or ch in _PHONE_MARKS for ch in value):
        value = phone_digits(value)
    if _MOBILE.match(value):
        return value, "mobile"
    if _LANDLINE.match(value):
        return value, "landline"
    return value, None


#: What a phone field accepts, named by the context that asks:
#: - "mobile": a resident's own number on their application (they are reached by SMS);
#: - "mobile_or_landline": a household's number taken at the window, by a helper or on a visit
#:   (it may have no mobile): also a fixed line with its area code, 0533-4181234;
#: - "any_number": what staff type from a call or a contact sheet (reports, a search, an
#:   organisation's contact): 7–15 digits, a short local number too (`loose_phone`).
PhoneRule = Literal["mobile", "mobile_or_landline", "any_number"]

_PHONE_MESSAGES: dict[str, str] = {
    "mobile": "手机号码应为以1开头的11位数字",
    "mobile_or_landline": "电话号码应为11位手机号，或带区号的固定电话（如 0533-4181234）",
    "any_number": "电话号码格式不正确",
}


def checked_phone(
    raw: str | None, *, field: str, rule: PhoneRule, required: bool = False
) -> str | None:
    """The number as kept (`phone_digits`), or None when blank and not `required`; a 422
    `phone_format` naming `field` when it breaks `rule`."""
    if raw is None or not raw.strip():
        if not required:
            return None
        raise invalid(field, _PHONE_MESSAGES[rule], "phone_format")
    if rule == "any_number":
        value = loose_phone(raw)
        accepted = value is not None
    else:
        value, kind = phone_kind(raw)
        accepted = kind == "mobile" or (rule == "mobile_or_landline" and kind == "landline")
    if not accepted:
        raise invalid(field, _PHONE_MESSAGES[rule], "phone_format")
    return value


def mask_phone(value: str | None) -> str | None:
    """`13812345678` → `138****5678`."""
    if not value:
        return value
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "****" + value[-4:]
