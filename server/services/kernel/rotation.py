"""Key rotation (the security administrator's, as an operator command): every sealed value
re-sealed under the current (first listed) key of `FIELD_ENCRYPTION_KEY`.

Sealed columns are found, not listed: every text column named `*_enc` of every table. Each
batch reads values not yet under the current key in primary-key order, opens and re-seals
them and writes them back; the caller commits per batch, so a rotation can stop and be run
again (it only ever picks up what is left). The lookup hashes are not touched: they are keyed
by the *last* listed key (`FieldCipher.hash_key`), which must stay listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Column, Table, bindparam, func, not_, select, update
from sqlalchemy.orm import Session

from server.models import Base
from server.services.kernel.pii import PersonalData


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: Column
    key: Column

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def sealed_columns() -> list[SealedColumn]:
    found = []
    for table in Base.metadata.sorted_tables:
        keys = list(table.primary_key.columns)
        for column in table.columns:
            if column.name.endswith("_enc") and len(keys) == 1:
                found.append(SealedColumn(table, column, keys[0]))
    return found


def _stale(sealed: SealedColumn, kid: str):  # noqa: ANN202
    return sealed.column.is_not(None) & not_(sealed.column.startswith(f"{kid}:", autoescape=True))


def left_to_rotate(db: Session, pii: PersonalData) -> dict[str, int]:
    kid = pii.cipher.current_kid
    return {
        s.name: db.scalar(select(func.count()).select_from(s.table).where(_stale(s, kid))) or 0
        for s in sealed_columns()
    }


def rotate_batch(db: Session, sealed: SealedColumn, pii: PersonalData, *, batch: int) -> int:
    """Re-seal up to `batch` values of one column; returns how many (0: the column is done)."""
    rows = db.execute(
        select(sealed.key, sealed.column)
        .where(_stale(sealed, pii.cipher.current_kid))
        .order_by(sealed.key)
        .limit(batch)
    ).all()
    if not rows:
        return 0
    db.execute(
        update(sealed.table)
        .where(sealed.key == bindparam("_key"))
        .values({sealed.column.name: bindparam("_value")})
        .execution_options(synchronize_session=False),
        [{"_key": key, "_value": pii.seal(pii.open(value))} for key, value in rows],
    )
    return len(rows)


def rotate(db_factory, pii: PersonalData, *, batch: int = 1000) -> Iterator[tuple[str, int]]:  # noqa: ANN001
    """Every column, batch by batch, each batch in its own committed unit of work; yields
    (column, values re-sealed so far in it) after each batch, for progress."""
    from server.db import unit_of_work

    for sealed in sealed_columns():
        done = 0
        while True:
            with unit_of_work(db_factory) as db:
                n = rotate_batch(db, sealed, pii, batch=batch)
            if not n:
                break
            done += n
            yield sealed.name, done
