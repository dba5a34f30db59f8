"""one rule for how a signal changes a lead: each evidence row keeps its own priority reason and
points (services/leads/signal_rule.py), so a merge replays them on the lead it folds into instead of
adding the folded lead's whole priority

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lead_evidence", sa.Column("priority_reason", sa.String(200), nullable=True))
    op.add_column("lead_evidence", sa.Column("priority_points", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead_evidence", schema=None) as batch_op:
        batch_op.drop_column("priority_points")
        batch_op.drop_column("priority_reason")
