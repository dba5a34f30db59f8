"""nonces of accepted WeChat server pushes (replay protection)

A signed push whose (timestamp, nonce) was already accepted within the freshness window
(±5 minutes) is a replay and is refused; rows past the window are deleted as pushes arrive.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import key_string

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_push_nonces",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("nonce", key_string(64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wechat_push_nonces")),
        sa.UniqueConstraint("timestamp", "nonce", name="uq_wechat_push_nonce"),
    )
    op.create_index("ix_wechat_push_nonces_seen_at", "wechat_push_nonces", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_wechat_push_nonces_seen_at", table_name="wechat_push_nonces")
    op.drop_table("wechat_push_nonces")
