"""donations (捐赠): receipted money and goods, their allocations to households or funds

`donations` (receipt number, donor, money or goods, total and remaining, restricted purpose),
`donation_allocations` (to a household or a fund) and `donation_counters` (receipt numbers
per year).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 12:03:02.868779
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import AwareDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Ids and the keys that point at them (models/base.py `BigIntPK`).
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "donation_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_donation_counters")),
    )
    op.create_table(
        "donations",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("donor_name", sa.String(length=100), nullable=False),
        sa.Column(
            "donor_kind",
            sa.Enum(
                "person",
                "organisation",
                "enterprise",
                name="donorkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("donor_org_id", BIG, nullable=True),
        sa.Column("donor_phone_enc", sa.Text(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("money", "goods", name="donationkind", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("items", sa.String(length=200), nullable=True),
        sa.Column("unit", sa.String(length=10), nullable=True),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("remaining", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("recorded_by_id", BIG, nullable=True),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["donor_org_id"], ["social_orgs.id"], name=op.f("fk_donations_donor_org_id_social_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_donations_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donations")),
        sa.UniqueConstraint("number", name=op.f("uq_donations_number")),
    )
    with op.batch_alter_table("donations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_donations_donor_org_id"), ["donor_org_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_donations_purpose"), ["purpose"], unique=False)
        batch_op.create_index(batch_op.f("ix_donations_received_on"), ["received_on"], unique=False)

    op.create_table(
        "donation_allocations",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("donation_id", BIG, nullable=False),
        sa.Column("family_id", BIG, nullable=True),
        sa.Column("fund", sa.String(length=100), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("allocated_on", sa.Date(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("allocated_by_id", BIG, nullable=True),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["allocated_by_id"],
            ["users.id"],
            name=op.f("fk_donation_allocations_allocated_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["donation_id"],
            ["donations.id"],
            name=op.f("fk_donation_allocations_donation_id_donations"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_donation_allocations_family_id_families")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donation_allocations")),
    )
    with op.batch_alter_table("donation_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_donation_allocations_allocated_on"), ["allocated_on"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_donation_allocations_donation_id"), ["donation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_donation_allocations_family_id"), ["family_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("donation_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_donation_allocations_family_id"))
        batch_op.drop_index(batch_op.f("ix_donation_allocations_donation_id"))
        batch_op.drop_index(batch_op.f("ix_donation_allocations_allocated_on"))

    op.drop_table("donation_allocations")
    with op.batch_alter_table("donations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_donations_received_on"))
        batch_op.drop_index(batch_op.f("ix_donations_purpose"))
        batch_op.drop_index(batch_op.f("ix_donations_donor_org_id"))

    op.drop_table("donations")
    op.drop_table("donation_counters")
