"""Synthetic people: names from common surnames and given names, and ID numbers that pass the
GB 11643 check digit but belong to nobody (the region is Boshan's, the birth dates made up).
"""

from __future__ import annotations

import random

from server.services.kernel.idnumber import check_digit

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"


_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"


def synthetic_id_number(rng: random.Random, *, region: str = "370304") -> str:
    """A checksummed ID number in a sequence block real IDs of this region do not use (9xx)."""
    body = (
        f"{region}{rng.randint(1935, 2015)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        f"9{rng.randint(0, 99):02d}"
    )
    return body + check_digit(body)


def synthetic_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randint(1, 2)))
