"""ID-number checking and hashing cost per ID (it runs for every row of a department file).

Prints microseconds per ID for our check, for the keyed hash, and — when python-stdnum is
installed — for `stdnum.cn.ric.is_valid` and how many of our valid IDs it refuses.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.config import Config  # noqa: E402
from server.demo.synthetic import synthetic_id_number  # noqa: E402
from server.services.kernel.idnumber import check  # noqa: E402
from server.services.kernel.pii import PersonalData  # noqa: E402

N = 100_000


def per_id(fn, ids) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for value in ids:
        fn(value)
    return (time.perf_counter() - start) / len(ids) * 1e6


def main() -> None:
    rng = random.Random(1)
    regions = ["370304", "420106", "110101", "510104", "440305"]
    ids = [synthetic_id_number(rng, region=rng.choice(regions)) for _ in range(N)]
    today = date(2026, 11, 28)
    pii = PersonalData.from_spec(Config().field_encryption_key)
    print(f"ids: {N:,}")
    cost = per_id(lambda v: check(v, today=today), ids)
    print(f"check (normalise + birth date + MOD 11-2): {cost:.2f} µs/id")
    print(f"keyed hash (HMAC-SHA256):                  {per_id(pii.hash, ids):.2f} µs/id")
    print(f"AES-GCM seal:                              {per_id(pii.seal, ids[:20000]):.2f} µs/id")
    try:
        from stdnum.cn import ric
    except ImportError:
        print("python-stdnum not installed: comparison skipped")
        return
    print(f"stdnum cn.ric.is_valid:                    {per_id(ric.is_valid, ids):.2f} µs/id")
    refused = sum(not ric.is_valid(v) for v in ids)
    print(f"stdnum refused {refused / N:.0%} of IDs whose check digit is right")


if __name__ == "__main__":
    main()
