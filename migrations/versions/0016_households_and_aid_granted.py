"""households (户) with their members, and aid granted (救助台账)

`families`: a household's town, village and address; `family_members`: each membership with
its relation to the head, from when to when (a person is a current member of at most one
household: partial unique index `uq_family_members_current`); `aid_grants`: what a decision
granted (kind, monthly or one-off amount, start and review dates).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 11:42:20.313518
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import AwareDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Ids and the keys that point at them (models/base.py `BigIntPK`).
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "families",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("town_id", BIG, nullable=False),
        sa.Column("village_id", BIG, nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "application",
                "visit",
                "roster",
                "staff",
                name="familysource",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["town_id"], ["towns.id"], name=op.f("fk_families_town_id_towns")),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_families_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_families")),
    )
    with op.batch_alter_table("families", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_families_town_id"), ["town_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_families_village_id"), ["village_id"], unique=False)

    op.create_table(
        "family_members",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("family_id", BIG, nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=True),
        sa.Column(
            "id_hash",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=True,
        ),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("is_head", sa.Boolean(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "application",
                "visit",
                "roster",
                "staff",
                name="familysource",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("joined_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("left_at", AwareDateTime(timezone=True), nullable=True),
        sa.Column("moved_to_family_id", BIG, nullable=True),
        sa.Column("left_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_family_members_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["moved_to_family_id"],
            ["families.id"],
            name=op.f("fk_family_members_moved_to_family_id_families"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_members")),
    )
    with op.batch_alter_table("family_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_family_members_family_id"), ["family_id"], unique=False
        )
        batch_op.create_index(
            "uq_family_members_current",
            ["id_hash"],
            unique=True,
            postgresql_where=sa.text("left_at IS NULL AND id_hash IS NOT NULL"),
            sqlite_where=sa.text("left_at IS NULL AND id_hash IS NOT NULL"),
        )

    op.create_table(
        "aid_grants",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("application_id", BIG, nullable=False),
        sa.Column("family_id", BIG, nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column(
            "id_hash",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("town_id", BIG, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column(
            "period",
            sa.Enum("monthly", "one_off", name="aidperiod", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("reviewed_at", AwareDateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=500), nullable=True),
        sa.Column("granted_by_id", BIG, nullable=True),
        sa.Column("granted_at", AwareDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_aid_grants_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_aid_grants_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_id"], ["users.id"], name=op.f("fk_aid_grants_granted_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["town_id"], ["towns.id"], name=op.f("fk_aid_grants_town_id_towns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_grants")),
        sa.UniqueConstraint("application_id", name=op.f("uq_aid_grants_application_id")),
    )
    with op.batch_alter_table("aid_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_aid_grants_family_id"), ["family_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_aid_grants_id_hash"), ["id_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_aid_grants_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_aid_grants_review_on"), ["review_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_aid_grants_town_id"), ["town_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("aid_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aid_grants_town_id"))
        batch_op.drop_index(batch_op.f("ix_aid_grants_review_on"))
        batch_op.drop_index(batch_op.f("ix_aid_grants_kind"))
        batch_op.drop_index(batch_op.f("ix_aid_grants_id_hash"))
        batch_op.drop_index(batch_op.f("ix_aid_grants_family_id"))

    op.drop_table("aid_grants")
    with op.batch_alter_table("family_members", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_family_members_current",
            postgresql_where=sa.text("left_at IS NULL AND id_hash IS NOT NULL"),
            sqlite_where=sa.text("left_at IS NULL AND id_hash IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_family_members_family_id"))

    op.drop_table("family_members")
    with op.batch_alter_table("families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_families_village_id"))
        batch_op.drop_index(batch_op.f("ix_families_town_id"))

    op.drop_table("families")
