"""Chinese name matching: pinyin, dialect folds, look-alike characters, phone and village."""

from __future__ import annotations

import pytest

from server.services.leads.matching import (
    THRESHOLD,
    Person,
    compare,
    compare_names,
    name_key,
    pinyin,
    query_key,
    shape_key,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("张三", "zhang san"),
        ("李 秀英", "li xiu ying"),
        ("欧阳·娜娜", "ou yang na na"),
    ],
)
def test_pinyin_is_toneless_and_ignores_spaces_and_dots(name, expected):
    assert pinyin(name) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("张凌", "章林"),  # -ing/-in, as many speakers say it
        ("刘红", "牛红"),  # l/n, as heard on a Shandong phone line
        ("陈正", "程正"),  # chen/cheng
        ("赵四", "照四"),  # homophones
    ],
)
def test_names_that_sound_alike_share_a_sound_key(a, b):
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("王秀英", "玉秀英"), ("陳建國", "陈建国"), ("李己", "李已")],
)
def test_look_alike_and_traditional_characters_share_a_shape_key(a, b):
    assert shape_key(a) == shape_key(b)


def test_a_typed_pinyin_query_folds_like_a_name():
    assert name_key("张凌").startswith(query_key("Zhang Ling"))
    assert name_key("张凌").startswith(query_key("zhang"))


@pytest.mark.parametrize(
    ("a", "b", "points", "reason"),
    [
        ("张三", "张三", 60, "姓名相同"),
        ("王秀英", "玉秀英", 50, "姓名形近：王→玉"),
        ("陳建國", "陈建国", 50, "姓名形近：陳→陈、國→国"),
        ("张三", "章三", 50, "姓名同音：zhang san"),
        ("张凌", "张林", 40, "姓名读音相近：zhang ling / zhang lin"),
        ("张三丰", "张五丰", 25, "姓名仅一字不同"),
        ("张三", "李四", 0, ""),
        ("张三", "", 0, ""),
    ],
)
def test_name_comparison_gives_points_and_a_reason(a, b, points, reason):
    assert compare_names(a, b) == (points, reason)


@pytest.mark.parametrize(
    ("report", "candidate", "score", "reasons"),
    [
        (
            Person("章三", phone_hash="p1", village_id=7, town_id=1),
            Person("张三", phone_hash="p1", village_id=7, town_id=1),
            100,
            ("姓名同音：zhang san", "联系电话相同", "同一村居"),
        ),
        (
            Person("玉秀英", village_id=7, town_id=1),
            Person("王秀英", village_id=7, town_id=1),
            65,
            ("姓名形近：玉→王", "同一村居"),
        ),
        (
            Person("张凌", town_id=1),
            Person("张林", town_id=1, village_id=3),
            45,
            ("姓名读音相近：zhang ling / zhang lin", "同一镇街"),
        ),
        (
            Person("刘强", phone_hash="p9"),
            Person("王五", phone_hash="p9"),
            35,
            ("联系电话相同",),
        ),
        (
            Person("张三", person_hash="a"),
            Person("张三", person_hash="b"),
            0,
            ("身份证号不同",),
        ),
        (
            Person("张三", person_hash="a"),
            Person("章三", person_hash="a"),
            100,
            ("身份证号相同",),
        ),
    ],
)
def test_a_report_is_scored_against_a_lead_with_its_reasons(report, candidate, score, reasons):
    match = compare(report, candidate)
    assert (match.score, match.reasons) == (score, reasons)


def test_a_phone_alone_is_not_enough_to_be_a_candidate_but_phone_and_village_are():
    alone = compare(Person("刘强", phone_hash="p9"), Person("王五", phone_hash="p9"))
    with_village = compare(
        Person("刘强", phone_hash="p9", village_id=1), Person("王五", phone_hash="p9", village_id=1)
    )
    assert not alone.is_candidate and alone.score < THRESHOLD
    assert with_village.is_candidate


def test_a_different_name_in_the_same_village_is_not_a_candidate():
    match = compare(Person("张三", village_id=1), Person("李四", village_id=1))
    assert not match.is_candidate
