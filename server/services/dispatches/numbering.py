"""Slip numbers: 博转〔2026〕0001, one series per year, taken under a lock so two issues never
share one.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.models import (
    DispatchCounter,
)

#: Printed before the year and serial of every slip number: 博山救助 → BSJZ.
NUMBER_PREFIX = "BSJZ"


def slip_number(year: int, serial: int) -> str:
    """`BSJZ-2026-000123`: prefix, year of issue, serial within the year."""
    return f"{NUMBER_PREFIX}-{year}-{serial:06d}"


def next_serial(db: Session, year: int) -> int:
    """The next serial of `year`, safe under concurrency.

    The counter row is created if missing (INSERT ... ON CONFLICT DO NOTHING) and incremented
    with one UPDATE ... RETURNING: the row lock it takes is held until the transaction ends, so
    two issuers never read the same number, and a rolled-back issue gives its number back.
    """
    dialect = db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.execute(
        insert(DispatchCounter)
        .values(year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    return db.execute(
        update(DispatchCounter)
        .where(DispatchCounter.year == year)
        .values(last_number=DispatchCounter.last_number + 1)
        .returning(DispatchCounter.last_number),
        execution_options={"synchronize_session": False},
    ).scalar_one()
