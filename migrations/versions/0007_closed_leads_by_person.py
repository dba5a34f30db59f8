"""closed leads by person: a partial index for linking a new lead to the person's last one

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 06:54:36.746278
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_leads_closed_person",
            ["person_hash", "id"],
            unique=False,
            postgresql_where=sa.text("NOT is_open"),
            sqlite_where=sa.text("NOT is_open"),
        )


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_closed_person")
