"""a lead's own life: triage (dismissed, covered, reopened), a handler, and its timeline

Leads get a handler (`handler_id`, `assigned_at`) and a timestamp for each triage step
(`dismissed_at` with its reason and text, `covered_at`, `reopened_at`). `lead_events` holds each
step and the staff's internal notes (the lead's own timeline). `ix_leads_handler_queue` serves the
queue filtered by one handler, in queue order; partial, so leads without a handler (every lead a
department file opens) add no entry.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import AwareDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
QUEUE_ORDER = ["is_open", sa.literal_column("priority DESC"), "id"]
HANDLER_SET = sa.text("handler_id IS NOT NULL")


def _reason(name: str) -> sa.Column:
    kinds = ("out_of_scope", "already_aided", "duplicate", "unreachable", "other")
    return sa.Column(
        name,
        sa.Enum(
            *kinds, name="dismissalreason", native_enum=False, length=30, create_constraint=False
        ),
        nullable=True,
    )


def upgrade() -> None:
    # Plain ADD COLUMNs (the foreign key inline on SQLite): rebuilding `leads` in batch mode
    # would lose its descending and partial indexes on SQLite.
    if op.get_bind().dialect.name == "sqlite":
        op.add_column(
            "leads", sa.Column("handler_id", BIG, sa.ForeignKey("users.id")), inline_references=True
        )
    else:
        op.add_column("leads", sa.Column("handler_id", BIG, nullable=True))
        op.create_foreign_key("fk_leads_handler_id_users", "leads", "users", ["handler_id"], ["id"])
    for name in ("assigned_at", "dismissed_at", "covered_at", "reopened_at"):
        op.add_column("leads", sa.Column(name, AwareDateTime(timezone=True), nullable=True))
    op.add_column("leads", _reason("dismissal_reason"))
    op.add_column("leads", sa.Column("dismissal_note", sa.String(500), nullable=True))
    op.create_index(
        "ix_leads_handler_queue",
        "leads",
        ["handler_id", *QUEUE_ORDER],
        unique=False,
        postgresql_where=HANDLER_SET,
        sqlite_where=HANDLER_SET,
    )
    op.create_table(
        "lead_events",
        sa.Column("id", BIG, nullable=False),
        sa.Column("lead_id", BIG, nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "dismissed",
                "covered",
                "reopened",
                "assigned",
                "claimed",
                "reassigned",
                "unassigned",
                "note",
                name="leadeventkind",
                native_enum=False,
                length=20,
                create_constraint=False,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", BIG, nullable=True),
        sa.Column("at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("handler_id", BIG, nullable=True),
        sa.Column("previous_handler_id", BIG, nullable=True),
        _reason("reason"),
        sa.Column("text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["handler_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["previous_handler_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lead_events_lead", "lead_events", ["lead_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_lead_events_lead", table_name="lead_events")
    op.drop_table("lead_events")
    op.drop_index("ix_leads_handler_queue", table_name="leads")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        if op.get_bind().dialect.name != "sqlite":  # SQLite's inline key has no name
            batch_op.drop_constraint("fk_leads_handler_id_users", type_="foreignkey")
        for name in (
            "dismissal_note",
            "dismissal_reason",
            "reopened_at",
            "covered_at",
            "dismissed_at",
            "assigned_at",
            "handler_id",
        ):
            batch_op.drop_column(name)
