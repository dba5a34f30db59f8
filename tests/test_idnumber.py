"""ID numbers: normalised, then 18 characters, a real past birth date and the MOD 11-2 digit."""

from __future__ import annotations

from datetime import date

import pytest

from server.services.kernel.idnumber import check, mask, mask_phone
from tests.builders import make_id_number

TODAY = date(2026, 11, 28)


def test_a_correct_id_is_accepted():
    value = make_id_number(birth="19800101")
    assert check(value, today=TODAY).ok


def test_full_width_digits_are_folded():
    value = make_id_number()
    full = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)
    result = check(full, today=TODAY)
    assert result.ok and result.value == value


def test_spaces_inside_are_removed():
    value = make_id_number()
    assert check(f" {value[:6]} {value[6:14]}\u3000{value[14:]} ", today=TODAY).value == value


def test_lowercase_x_is_upper_cased():
    value = next(v for v in (make_id_number(seq=f"{i:03d}") for i in range(200)) if v[-1] == "X")
    assert check(value.lower(), today=TODAY).value == value


def test_wrong_check_digit_is_refused():
    value = make_id_number()
    wrong = value[:17] + ("0" if value[17] != "0" else "1")
    assert check(wrong, today=TODAY).code == "id_checksum"


def test_impossible_birth_date_is_refused():
    body = "37030419800230123"
    from server.services.kernel.idnumber import check_digit

    assert check(body + check_digit(body), today=TODAY).code == "id_birth_date"


def test_birth_date_in_the_future_is_refused():
    assert check(make_id_number(birth="20270101"), today=TODAY).code == "id_birth_date"


def test_old_15_digit_numbers_are_refused_with_a_reason():
    result = check("370304800101123", today=TODAY)
    assert result.code == "id_old_15_digit"
    assert "18" in result.message


def test_unknown_region_code_is_not_refused():
    """python-stdnum refuses e.g. a Wuchang number of someone born in 1950; we do not."""
    assert check(make_id_number(region="420106", birth="19500312"), today=TODAY).ok
    assert check(make_id_number(region="990000", birth="19500312"), today=TODAY).ok


@pytest.mark.parametrize("raw", ["", "   ", "abc", "37030419800101123", "3703041980010112345"])
def test_malformed_ids_are_refused(raw):
    assert not check(raw, today=TODAY).ok


def test_masking_hides_the_birth_date():
    assert mask("37030419800101123X") == "370304********123X"
    assert mask_phone("13812345678") == "138****5678"
