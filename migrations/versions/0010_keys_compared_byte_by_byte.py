"""machine keys compared byte by byte on PostgreSQL (collation "C")

Hashes, dedup keys and the pinyin name key are compared with the database's collation unless
the column says otherwise. Under any collation but "C" (C.UTF-8 included) a btree index cannot
serve a prefix search, so the queue's pinyin filter (`name_key LIKE 'zhang%'`) read every lead
(12 ms at 200,000 leads, against 0.15 ms from the index); and under a Chinese ICU collation,
which a district's database may well have, index builds and lookups of hashes took a third
longer. SQLite always compares bytes: nothing changes there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table → the key columns and their length (models: `key_string`)
KEYS: dict[str, tuple[tuple[str, int], ...]] = {
    "applications": (("id_hash", 64),),
    "auth_tokens": (("token_hash", 64),),
    "feed_batches": (("sha256", 64),),
    "helper_invitations": (("code_hash", 64),),
    "households": (("head_id_hash", 64),),
    "idempotency_records": (("request_hash", 64),),
    "inbox_messages": (("dedup_key", 120),),
    "jobs": (("dedup_key", 120),),
    "lead_evidence": (("dedup_key", 120),),
    "leads": (("person_hash", 64), ("phone_hash", 64), ("name_key", 120)),
    "outbox_messages": (("dedup_key", 120),),
    "photos": (("sha256", 64),),
    "roster_entries": (("person_hash", 64),),
    "rule_ledger": (("person_hash", 64),),
    "visits": (("head_id_hash", 64),),
}


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in KEYS.items():
        for column, length in columns:
            # ALTER COLUMN … TYPE rebuilds the column's indexes under the new collation.
            op.alter_column(
                table,
                column,
                type_=sa.String(length, collation=collation),
                existing_type=sa.String(length),
            )


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate(None)  # the database's default again
