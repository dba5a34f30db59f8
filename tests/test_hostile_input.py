"""Hostile text and numbers are refused in the one error shape, never a 500: the text rule
(services/kernel/text.py) and the request guard (api/guards.py), on both engines."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from server.models import Lead, Village
from tests.builders import error_code
from tests.feedfiles import OOP_HEADER, csv_bytes, upload

REPORT = {"channel": "hotline", "name": "章三", "summary": "邻居反映老人独居", "town": "chengdong"}

#: One of each kind the rule refuses: NUL, a lone surrogate, a bidi override, a zero-width
#: space, an ANSI escape, a C1 control.
HOSTILE = {
    "nul": "张\x00三",
    "surrogate": "张\ud800三",
    "bidi-override": "张三\u202e4321",
    "zero-width": "张\u200b三",
    "ansi-escape": "张三\x1b[31m",
    "c1-control": "张三\x85",
}


def post_raw(client, login, path: str, body: object):
    """POST `body` as ASCII-escaped JSON, so lone surrogates travel as `\\ud800`."""
    return client.post(
        path, headers=login.headers, data=json.dumps(body), content_type="application/json"
    )


@pytest.fixture
def center(staff_login):
    return staff_login()


def _refused_naming(resp, field: str, label: str) -> None:
    assert resp.status_code == 422, resp.get_data(as_text=True)
    body = resp.get_json()
    assert field in body["errors"]
    assert label in body["errors"][field][0]
    assert body["request_id"]
    if body["code"] == "text_invalid":  # the guard's answer (a schema's is validation_error)
        assert label in body["message"]


@pytest.mark.parametrize("bad", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_kind_of_hostile_character_in_a_body_is_refused_naming_the_field(
    client, center, db, bad
):
    resp = post_raw(client, center, "/api/v1/leads", {**REPORT, "name": bad})
    _refused_naming(resp, "name", "姓名")
    assert db.scalar(select(func.count()).select_from(Lead)) == 0


def test_hostile_text_deep_in_a_body_is_refused_with_its_path(client, center):
    resp = post_raw(
        client, center, "/api/v1/leads", {**REPORT, "reporter": {"name": "王\x00", "phone": None}}
    )
    _refused_naming(resp, "reporter.name", "姓名")


def test_a_newline_is_kept_in_a_summary_but_refused_in_a_name(client, center):
    kept = post_raw(client, center, "/api/v1/leads", {**REPORT, "summary": "第一行\n第二行"})
    assert kept.status_code == 201, kept.get_json()
    refused = post_raw(client, center, "/api/v1/leads", {**REPORT, "name": "张\n三"})
    _refused_naming(refused, "name", "姓名")


#: Emoji sequences residents type: a family, a rainbow flag (U+FE0F before the joiner), a
#: woman technologist with a skin tone, a heart on fire.
EMOJI_JOINED = ["👨\u200d👩\u200d👧", "🏳\ufe0f\u200d🌈", "👩🏽\u200d💻", "❤\ufe0f\u200d🔥"]
#: The joiner anywhere else: between letters, at either end, after an emoji but before a
#: letter, before an emoji but after a letter, doubled.
JOINER_ELSEWHERE = [
    "张\u200d三",
    "\u200d👩",
    "👩\u200d",
    "👩\u200d三",
    "张\u200d👩",
    "👨\u200d\u200d👩",
]


def test_a_zero_width_joiner_is_kept_between_emoji_and_refused_elsewhere(client, center):
    from server.services.kernel.text import find_forbidden

    for text in EMOJI_JOINED:
        assert find_forbidden(f"家里三口人{text}很困难") is None, ascii(text)
    for text in JOINER_ELSEWHERE:
        assert find_forbidden(text) == (text.index("\u200d"), "\u200d"), ascii(text)
    kept = post_raw(
        client, center, "/api/v1/leads", {**REPORT, "summary": "一家三口👨\u200d👩\u200d👧"}
    )
    assert kept.status_code == 201, kept.get_json()
    refused = post_raw(client, center, "/api/v1/leads", {**REPORT, "summary": "邻居\u200d反映"})
    _refused_naming(refused, "summary", "情况说明")


@pytest.mark.parametrize("bad", ["\x00", "\u200b", "\u202e"], ids=["nul", "zero-width", "bidi"])
def test_hostile_text_in_a_query_is_refused_naming_the_parameter(client, center, bad):
    resp = client.get("/api/v1/leads", query_string={"name": f"张{bad}"}, headers=center.headers)
    _refused_naming(resp, "name", "姓名")


def test_hostile_text_in_a_path_is_refused(client, center):
    resp = client.get("/api/v1/feeds/%00fire/batches", headers=center.headers)
    assert resp.status_code in (404, 422)
    assert resp.get_json()["code"] in ("not_found", "text_invalid")


@pytest.mark.parametrize("big", [2**63, 2**64, 10**30], ids=["2^63", "2^64", "10^30"])
def test_ids_at_or_past_bigint_in_a_path_are_404(client, center, big):
    resp = client.get(f"/api/v1/leads/{big}", headers=center.headers)
    assert resp.status_code == 404
    assert resp.get_json()["code"] == "not_found"


def test_the_largest_bigint_id_in_a_path_is_an_ordinary_404(client, center):
    resp = client.get(f"/api/v1/leads/{2**63 - 1}", headers=center.headers)
    assert resp.status_code == 404


@pytest.mark.parametrize("page", [2**63, 2**31, 10**5000 // 10**4990], ids=["2^63", "2^31", "1e10"])
def test_page_numbers_past_the_limit_are_422(client, center, page):
    resp = client.get("/api/v1/applications", query_string={"page": page}, headers=center.headers)
    assert resp.status_code == 422
    assert "page" in resp.get_json()["errors"]


def test_a_query_id_past_bigint_is_422(client, center):
    resp = client.get("/api/v1/dispatches", query_string={"lead_id": 2**63}, headers=center.headers)
    assert resp.status_code == 422
    assert "lead_id" in resp.get_json()["errors"]


@pytest.mark.parametrize("target", [2**31, -(2**31) - 1, 2**63])
def test_an_audit_target_id_beyond_its_int4_column_is_422(client, staff_login, target):
    auditor = staff_login(role="audit_admin")
    resp = client.get("/api/v1/audit", query_string={"target_id": target}, headers=auditor.headers)
    assert resp.status_code == 422
    assert "target_id" in resp.get_json()["errors"]


def test_an_audit_target_id_at_its_int4_limit_is_answered(client, staff_login):
    auditor = staff_login(role="audit_admin")
    resp = client.get(
        "/api/v1/audit", query_string={"target_id": 2**31 - 1}, headers=auditor.headers
    )
    assert resp.status_code == 200


def test_an_integer_past_bigint_in_a_body_is_422_naming_it(client, center):
    resp = post_raw(
        client, center, "/api/v1/leads/1/merge", {"into_lead_id": 2**63, "reason": "同一人"}
    )
    assert resp.status_code == 422
    assert "into_lead_id" in resp.get_json()["errors"]


def test_a_5000_digit_integer_is_422(client, center):
    raw = '{"into_lead_id": ' + "9" * 5000 + "}"
    resp = client.post(
        "/api/v1/leads/1/merge", headers=center.headers, data=raw, content_type="application/json"
    )
    assert resp.status_code == 422
    assert resp.get_json()["code"] == "number_out_of_range"


@pytest.mark.parametrize("depth", [100_000, 33], ids=["100000", "33"])
def test_json_nested_too_deep_is_a_clean_400(client, center, depth):
    raw = "[" * depth + "]" * depth
    resp = client.post(
        "/api/v1/leads", headers=center.headers, data=raw, content_type="application/json"
    )
    assert resp.status_code == 400
    assert resp.get_json()["code"] == "json_too_deep"


@pytest.mark.parametrize("raw", ['{"name": NaN}', '{"name": 1e999}', '{"name": "a"', "\xff"])
def test_json_that_is_not_json_is_400_or_422(client, center, raw):
    resp = client.post(
        "/api/v1/leads", headers=center.headers, data=raw, content_type="application/json"
    )
    assert resp.status_code in (400, 422)
    assert resp.get_json()["code"] in ("bad_json", "number_out_of_range")


# --- files ---------------------------------------------------------------------------------


@pytest.fixture
def insurer(staff_login):
    return staff_login(role="department_staff", department="medical_insurance")


def oop_csv(rows: int) -> bytes:
    body = [OOP_HEADER] + [
        [i, "张三", "370304199001011234", "博山区医院", "2026-03-05", "2026-03-10", "32000"]
        for i in range(rows)
    ]
    return csv_bytes(body, encoding="gb18030")


def test_a_csv_ending_in_a_lone_gb18030_lead_byte_is_refused_as_a_whole(client, insurer, db):
    resp = upload(client, insurer, "insurance_oop", oop_csv(3) + b"\x81", "feed.csv")
    assert resp.status_code == 422
    assert error_code(resp) == "file_encoding"
    assert db.scalar(select(func.count()).select_from(Lead)) == 0


def test_a_bad_byte_past_the_first_megabyte_refuses_the_file_before_any_row(client, insurer, db):
    content = oop_csv(20_000)
    assert len(content) > 1_000_000
    content = content + "张三".encode()[:2] + b"\xff\xff\n"
    resp = upload(client, insurer, "insurance_oop", content, "feed.csv")
    assert resp.status_code == 422
    assert error_code(resp) == "file_encoding"
    assert db.scalar(select(func.count()).select_from(Lead)) == 0


def test_a_csv_with_a_nul_past_the_first_block_is_refused(client, insurer):
    content = oop_csv(2_000) + b"\x00\n"
    resp = upload(client, insurer, "insurance_oop", content, "feed.csv")
    assert resp.status_code == 422
    assert error_code(resp) == "file_not_spreadsheet"


def test_a_feed_row_with_a_hidden_character_in_the_name_is_rejected_with_its_reason(
    client, insurer, db
):
    row = [1, "张\u202e三", "370304199001011234", "博山区医院", "2026-03-05", "", "32000"]
    rows = [OOP_HEADER, row]
    resp = upload(client, insurer, "insurance_oop", csv_bytes(rows), "feed.csv")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["result"]["rejected"] == 1
    assert body["rejected"][0]["code"] == "text_invalid"
    assert "U+202E" in body["rejected"][0]["message"]


def _villages(client, login, content: bytes, name: str = "villages.csv"):
    return client.post(
        "/api/v1/villages/import",
        headers=login.headers,
        data={"file": (io.BytesIO(content), name)},
    )


def test_a_village_list_ending_in_a_lone_gb18030_lead_byte_is_refused(client, staff_login):
    content = "镇街,村居,编码\n白塔镇,西坡村,370304105001\n".encode("gb18030") + b"\x81"
    resp = _villages(client, staff_login(role="system_admin"), content)
    assert resp.status_code == 422
    assert error_code(resp) == "file_encoding"


def test_a_duplicate_village_name_in_a_list_is_a_row_error_not_a_500(client, staff_login, db):
    content = "镇街,村居,编码\n白塔镇,西坡村,v1\n白塔镇,西坡村,v2\n".encode()
    resp = _villages(client, staff_login(role="system_admin"), content)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["created"] == 1
    assert body["errors"][0]["row"] == 3 and "西坡村" in body["errors"][0]["message"]


def test_a_duplicate_village_name_added_by_hand_is_409(client, staff_login):
    login = staff_login(role="system_admin")
    first = {"town": "baita", "code": "v1", "name": "西坡村"}
    assert client.post("/api/v1/villages", headers=login.headers, json=first).status_code == 201
    again = client.post("/api/v1/villages", headers=login.headers, json={**first, "code": "v2"})
    assert again.status_code == 409
    assert error_code(again) == "village_name_taken"


def test_a_village_name_with_a_newline_never_reaches_a_poster(client, staff_login, db):
    login = staff_login(role="system_admin")
    content = '镇街,村居,编码\n白塔镇,"西坡村\n（二组）",v1\n'.encode()
    resp = _villages(client, login, content)
    assert resp.status_code == 200
    assert resp.get_json()["created"] == 0
    assert resp.get_json()["errors"][0]["column"] == "村居"
    by_hand = client.post(
        "/api/v1/villages",
        headers=login.headers,
        json={"town": "baita", "code": "v1", "name": "西坡村\n二组"},
    )
    _refused_naming(by_hand, "name", "姓名")
    assert db.scalar(select(func.count()).select_from(Village)) == 0
