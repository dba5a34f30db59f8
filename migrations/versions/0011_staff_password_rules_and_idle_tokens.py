"""staff password rules and idle tokens: when a password was set, a forced change, earlier
password hashes, and each token's last use

Existing staff keep their passwords; their 90 days start now. Existing tokens count as last
used when they were made.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import AwareDateTime, BigIntPK

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_changed_at", AwareDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("must_change_password", server_default=None)
    op.execute(
        "UPDATE users SET password_changed_at = CURRENT_TIMESTAMP WHERE password_hash IS NOT NULL"
    )
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", AwareDateTime(), nullable=True))
    op.execute("UPDATE auth_tokens SET last_seen_at = created_at")
    op.create_table(
        "password_history",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("user_id", BigIntPK, nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_history_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_password_history_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("password_history")
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_seen_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
        batch_op.drop_column("password_changed_at")
