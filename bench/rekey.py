"""A key rotation on a sizable table: N leads (ID number and phone, sealed and hashed), a rule
ledger row and a roster entry for every tenth person, rotated from AES to SM4.

`python bench/rekey.py [postgresql-url|sqlite-url] [N]` (default: a temporary SQLite file,
50,000 leads); on PostgreSQL it works in a schema of its own and drops it. Prints seconds to
seed and to rotate, values a second, and checks that every person is found under the new key
alone.
"""

from __future__ import annotations

import base64
import random
import sys
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

# The project root replaces this script's folder on the import path (nothing in bench/ may
# shadow a standard module).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from bench.support.databases import (  # noqa: E402
    build_tables,
    postgresql_schema,
    sqlite_database,
)
from server.db import make_engine  # noqa: E402
from server.demo.synthetic import synthetic_id_number  # noqa: E402
from server.models import Lead, RosterEntry, RuleLedger  # noqa: E402
from server.services.kernel import rotation  # noqa: E402
from server.services.kernel.pii import PersonalData  # noqa: E402

OLD = "k1:" + base64.urlsafe_b64encode(b"o" * 32).decode()
NEW = "sm4-2027:" + base64.urlsafe_b64encode(b"s" * 16).decode()


def main() -> int:
    given = sys.argv[1] if len(sys.argv) > 1 else None
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    if given is None:
        database = sqlite_database("rekey", tables="create_all")
    elif given.startswith("postgresql"):
        database = postgresql_schema(given, tables="create_all")
    else:  # a SQLite file of the caller's, kept
        build_tables(given, "create_all")
        database = nullcontext(given)
    with database as url:
        rotate(url, n)
    return 0


def rotate(url: str, n: int) -> None:
    """Seed N leads sealed under OLD on `url` (its tables built), rotate them, check, print."""
    engine = make_engine(url)
    try:
        factory = sessionmaker(engine)
        old = PersonalData.from_spec(OLD)
        now = datetime.now(UTC)
        rng, unique = random.Random(7), set()
        while len(unique) < n:
            unique.add(synthetic_id_number(rng))
        ids = sorted(unique)
        start = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(
                insert(Lead),
                [
                    {
                        "person_hash": old.hash(v),
                        "id_number_enc": old.seal(v),
                        "phone_enc": old.seal(f"139{i:08d}"),
                        "phone_hash": old.hash(f"139{i:08d}"),
                        "name": "测试",
                        "status": "new",
                        "is_open": True,
                        "channel": "hotline",
                        "categories": [],
                        "priority": 0,
                        "priority_reasons": [],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, v in enumerate(ids)
                ],
            )
            tenth = ids[::10]
            conn.execute(
                insert(RuleLedger),
                [
                    {
                        "rule": "annual_oop_40k",
                        "person_hash": old.hash(v),
                        "period": "2026",
                        "created_at": now,
                    }
                    for v in tenth
                ],
            )
            conn.execute(
                insert(RosterEntry),
                [
                    {
                        "person_hash": old.hash(v),
                        "id_number_enc": old.seal(v),
                        "name": "测试",
                        "programme": "dibao",
                        "updated_at": now,
                    }
                    for v in tenth
                ],
            )
        seeded = time.perf_counter() - start
        both = PersonalData.from_spec(f"{NEW},{OLD}")
        with factory() as db:
            total = sum(rotation.left_to_rotate(db, both).values())
        start = time.perf_counter()
        for _ in rotation.rotate(factory, both, batch=1000):
            pass
        took = time.perf_counter() - start
        new = PersonalData.from_spec(NEW)
        with factory() as db:
            assert sum(rotation.left_to_rotate(db, both).values()) == 0
            sample = ids[:: max(n // 1000, 1)]
            found = db.scalar(
                select(func.count()).where(Lead.person_hash.in_([new.hash(v) for v in sample]))
            )
            assert found == len(sample), (found, len(sample))
            ledger = db.scalar(
                select(func.count()).where(
                    RuleLedger.person_hash.in_([new.hash(v) for v in ids[::10]])
                )
            )
            assert ledger == len(ids[::10])
        print(
            f"{engine.dialect.name}: {n} leads (+{len(ids[::10])} roster, ledger): seeded "
            f"{seeded:.1f} s; rotated {total} values in {took:.1f} s "
            f"({total / took:,.0f} values/s), every person found under the new key alone"
        )
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
