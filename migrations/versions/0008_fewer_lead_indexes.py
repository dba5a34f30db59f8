"""fewer lead indexes: drop the two a composite index already covers; phone only where given

Every lead and evidence row a department file adds extends each index of its table. Two of
them duplicate the first column of a composite index (ix_leads_town_id of ix_leads_town_queue,
ix_lead_evidence_lead_id of uq_lead_evidence_lead_id_dedup_key), and the phone index holds an
entry for every feed lead although only reports carry a phone.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_town_id")
        batch_op.drop_index("ix_leads_phone_hash")
        batch_op.create_index(
            "ix_leads_phone_hash",
            ["phone_hash"],
            unique=False,
            postgresql_where=sa.text("phone_hash IS NOT NULL"),
            sqlite_where=sa.text("phone_hash IS NOT NULL"),
        )
    with op.batch_alter_table("lead_evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_evidence_lead_id")


def downgrade() -> None:
    with op.batch_alter_table("lead_evidence", schema=None) as batch_op:
        batch_op.create_index("ix_lead_evidence_lead_id", ["lead_id"], unique=False)
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_phone_hash")
        batch_op.create_index("ix_leads_phone_hash", ["phone_hash"], unique=False)
        batch_op.create_index("ix_leads_town_id", ["town_id"], unique=False)
