"""Synthetic people: names drawn like real ones and ID numbers that pass the check digit.

The server is imported only when an ID number is made: bench/ingest.py imports this module in
the child processes whose peak memory it measures."""

from __future__ import annotations

import random
from datetime import date, timedelta

#: Names are drawn like real ones (a common surname, one or two given-name characters), so the
#: pinyin keys of new leads cost what they cost with real files (`测试{i}` would hit a cache).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤单解翟"
)
GIVEN = (
    "秀英桂兰玉华明建国伟芳敏静丽强磊军洋勇艳杰娟涛超霞平刚红梅鹏飞斌宇浩凯晨志德福春秋冬东"
    "海峰波辉雪琳婷颖莉燕萍凤兵成学文武长庆永忠亮新利清彩云翠荣淑珍惠家振宏亚小大"
)


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def id_numbers(first: int, count: int) -> list[str]:
    """Boshan ID numbers with correct check digits for first, first + 1, ...: distinct for each
    number below 25,000,000 (it sets the birth date and the sequence number)."""
    from server.services.kernel.idnumber import check_digit  # (imports the server: see above)

    out = []
    for n in range(first, first + count):
        birth = date(1940, 1, 1) + timedelta(days=(n // 1000) % 25_000)
        body = f"370304{birth:%Y%m%d}{n % 1000:03d}"
        out.append(body + check_digit(body))
    return out


def id_number(n: int) -> str:
    return id_numbers(n, 1)[0]
