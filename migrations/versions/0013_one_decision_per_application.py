"""one decision per application; window and phone intake; inform-the-person tasks

Each application carries its own decision (outcome, reason, amount, who decided, the slip whose
feedback carried it) and a version column for optimistic concurrency. One undecided application
per person and kind (a partial unique index). Timeline entries say their kind (a step, papers
requested, papers added). Applications filed by staff at the window or on the phone record how
the person consented (`intake`). `inform_tasks`: telling a person without WeChat what was
decided.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import AwareDateTime, JSONType

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Ids and the keys that point at them (models/base.py `BigIntPK`).
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNDECIDED_SQL = "status IN ('submitted', 'accepted', 'investigating')"


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intake", JSONType, nullable=True))
        batch_op.add_column(sa.Column("amount", sa.Numeric(12, 2), nullable=True))
        batch_op.add_column(sa.Column("decided_by_id", BIG, nullable=True))
        batch_op.add_column(sa.Column("decision_dispatch_id", BIG, nullable=True))
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch_op.create_foreign_key(
            "fk_applications_decided_by_id_users", "users", ["decided_by_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_applications_decision_dispatch_id_dispatches",
            "dispatches",
            ["decision_dispatch_id"],
            ["id"],
        )
        batch_op.create_index(
            "ix_applications_decision_dispatch_id", ["decision_dispatch_id"], unique=False
        )
        batch_op.create_index(
            "uq_applications_open_kind",
            ["id_hash", "type"],
            unique=True,
            postgresql_where=sa.text(UNDECIDED_SQL),
            sqlite_where=sa.text(UNDECIDED_SQL),
        )
    with op.batch_alter_table("application_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(20), nullable=False, server_default=sa.text("'step'"))
        )
    op.create_table(
        "inform_tasks",
        sa.Column("id", BIG, nullable=False),
        sa.Column("lead_id", BIG, nullable=False),
        sa.Column("source_key", sa.String(40), nullable=False),
        sa.Column("town_id", BIG, nullable=True),
        sa.Column("village_id", BIG, nullable=True),
        sa.Column("helper_id", BIG, nullable=True),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("method", sa.Enum("phone", "visit", "letter", name="informmethod",
                                    native_enum=False, length=10, create_constraint=False),
                  nullable=True),
        sa.Column("informed_at", AwareDateTime(timezone=True), nullable=True),
        sa.Column("informed_by_id", BIG, nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("recorded_at", AwareDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.ForeignKeyConstraint(["town_id"], ["towns.id"]),
        sa.ForeignKeyConstraint(["village_id"], ["villages.id"]),
        sa.ForeignKeyConstraint(["helper_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["informed_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_key"),
    )
    op.create_index("ix_inform_tasks_lead_id", "inform_tasks", ["lead_id"])
    op.create_index("ix_inform_tasks_helper_id", "inform_tasks", ["helper_id"])
    op.create_index("ix_inform_tasks_created_at", "inform_tasks", ["created_at"])
    op.create_index(
        "ix_inform_tasks_town_open", "inform_tasks", ["town_id", "informed_at", "due_date"]
    )


def downgrade() -> None:
    op.drop_table("inform_tasks")
    with op.batch_alter_table("application_events", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("uq_applications_open_kind")
        batch_op.drop_index("ix_applications_decision_dispatch_id")
        batch_op.drop_constraint(
            "fk_applications_decision_dispatch_id_dispatches", type_="foreignkey"
        )
        batch_op.drop_constraint("fk_applications_decided_by_id_users", type_="foreignkey")
        for column in ("version", "decision_dispatch_id", "decided_by_id", "amount", "intake"):
            batch_op.drop_column(column)
