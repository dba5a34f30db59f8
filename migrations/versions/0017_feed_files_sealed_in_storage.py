"""department files at rest: a queued file waits sealed in the storage, not in clear in the
database; `feed_batch_files` keeps only its storage key

The clear bytes of files still in the table cannot be sealed here (a migration has neither the
field key nor the storage): they are deleted, and a batch still waiting for one fails with a
message asking its department to upload the file again.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PURGED = "为保护个人信息，等待导入的原文件已清除，请重新上传"


def upgrade() -> None:
    batches = sa.table(
        "feed_batches",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("failure_code", sa.String),
        sa.column("failure", sa.String),
        sa.column("finished_at", sa.DateTime(timezone=True)),
    )
    files = sa.table("feed_batch_files", sa.column("batch_id", sa.Integer))
    op.execute(
        batches.update()
        .where(batches.c.id.in_(sa.select(files.c.batch_id)))
        .where(batches.c.status.in_(["queued", "running"]))
        .values(status="failed", failure_code="file_purged", failure=PURGED,
                finished_at=sa.func.current_timestamp())
    )
    op.execute(files.delete())
    with op.batch_alter_table("feed_batch_files", schema=None) as batch_op:
        batch_op.drop_column("content")
        batch_op.add_column(sa.Column("storage_key", sa.String(length=200), nullable=False))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM feed_batch_files"))
    with op.batch_alter_table("feed_batch_files", schema=None) as batch_op:
        batch_op.drop_column("storage_key")
        batch_op.add_column(sa.Column("content", sa.LargeBinary(), nullable=False))
