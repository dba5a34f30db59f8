"""job leases: a running job whose worker died is claimed again

`jobs.lease_expires_at` is set when a worker claims a job and extended by its heartbeat; a
`running` job whose lease has passed is claimed again by the next worker, with its attempt
counted.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_jobs_lease", ["status", "lease_expires_at"], unique=False)
    # Jobs left running by a worker that died before leases existed are claimed at once.
    op.execute(
        "UPDATE jobs SET lease_expires_at = COALESCE(locked_at, run_at) WHERE status = 'running'"
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_lease")
        batch.drop_column("lease_expires_at")
