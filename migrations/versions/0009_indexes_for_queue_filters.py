"""indexes for queue filters: status, channel and village in queue order; evidence by feed and
department with its lead

The queue filtered by a status, a channel or a village that few open leads have walked the
whole of `ix_leads_queue` to find them (0.7 s at 1,000,000 open leads on both engines). Each
single-column index becomes (column, is_open, priority desc, id), like `ix_leads_town_queue`:
the filtered page is then a range scan in queue order.

The feed filter and department staff's scope ask of each lead the queue walks whether it has
evidence from that feed or department. With the lead in the index, (feed_code, lead_id) and
(department_id, lead_id) answer from the index alone (department staff whose department has
no leads among 1,000,000: 0.92 s on SQLite before, 0.17 s after; bench/queue.py).

Each replaced index also serves lookups by its first column alone, so neither table gains an
index to extend on every import; the village index holds only leads that name a village.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_ORDER = ["is_open", sa.literal_column("priority DESC"), "id"]

#: table → (old single-column index, the new index, its columns: the old one's column first)
REPLACED = {
    "leads": (
        ("ix_leads_status", "ix_leads_status_queue", ["status", *QUEUE_ORDER]),
        ("ix_leads_channel", "ix_leads_channel_queue", ["channel", *QUEUE_ORDER]),
        ("ix_leads_village_id", "ix_leads_village_queue", ["village_id", *QUEUE_ORDER]),
    ),
    "lead_evidence": (
        ("ix_lead_evidence_feed_code", "ix_lead_evidence_feed_lead", ["feed_code", "lead_id"]),
        (
            "ix_lead_evidence_department_id",
            "ix_lead_evidence_department_lead",
            ["department_id", "lead_id"],
        ),
    ),
}
#: Leads from department files rarely name a village: they add no entry to its index.
PARTIAL = {"ix_leads_village_queue": "village_id IS NOT NULL"}


def upgrade() -> None:
    for table, indexes in REPLACED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for old, new, columns in indexes:
                batch_op.drop_index(old)
                where = {}
                if new in PARTIAL:
                    condition = sa.text(PARTIAL[new])
                    where = {"postgresql_where": condition, "sqlite_where": condition}
                batch_op.create_index(new, columns, unique=False, **where)


def downgrade() -> None:
    for table, indexes in REPLACED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for old, new, columns in indexes:
                batch_op.drop_index(new)
                batch_op.create_index(old, [columns[0]], unique=False)
