"""services organisations give households: assignments from leads, records, photos

`service_assignments` (the center or a town asks an organisation to serve a household),
`service_records` (a service given: kind, date, duration, notes) and `service_photos`.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 12:03:02.868779
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import AwareDateTime, JSONType

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Ids and the keys that point at them (models/base.py `BigIntPK`).
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "service_assignments",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("org_id", BIG, nullable=False),
        sa.Column("family_id", BIG, nullable=False),
        sa.Column("lead_id", BIG, nullable=True),
        sa.Column("town_id", BIG, nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "household_survey",
                "humanistic_care",
                "counselling",
                "resource_linking",
                "capacity_building",
                "social_integration",
                name="servicekind",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("instructions", sa.String(length=500), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("assigned_by_id", BIG, nullable=True),
        sa.Column("assigned_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("done_at", AwareDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_by_id"],
            ["users.id"],
            name=op.f("fk_service_assignments_assigned_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_service_assignments_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_service_assignments_lead_id_leads")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["social_orgs.id"], name=op.f("fk_service_assignments_org_id_social_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["town_id"], ["towns.id"], name=op.f("fk_service_assignments_town_id_towns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_assignments")),
    )
    with op.batch_alter_table("service_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_assignments_family_id"), ["family_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_service_assignments_lead_id"), ["lead_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_service_assignments_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_service_assignments_town_id"), ["town_id"], unique=False
        )

    op.create_table(
        "service_records",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("org_id", BIG, nullable=False),
        sa.Column("family_id", BIG, nullable=False),
        sa.Column("assignment_id", BIG, nullable=True),
        sa.Column("town_id", BIG, nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "household_survey",
                "humanistic_care",
                "counselling",
                "resource_linking",
                "capacity_building",
                "social_integration",
                name="servicekind",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("served_on", sa.Date(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("notes", sa.String(length=1000), nullable=False),
        sa.Column("photo_ids", JSONType, nullable=False),
        sa.Column("recorded_by_id", BIG, nullable=True),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["service_assignments.id"],
            name=op.f("fk_service_records_assignment_id_service_assignments"),
        ),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.id"], name=op.f("fk_service_records_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["social_orgs.id"], name=op.f("fk_service_records_org_id_social_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_service_records_recorded_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["town_id"], ["towns.id"], name=op.f("fk_service_records_town_id_towns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_records")),
    )
    with op.batch_alter_table("service_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_records_family_id"), ["family_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_service_records_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_records_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_service_records_served_on"), ["served_on"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_service_records_town_id"), ["town_id"], unique=False)

    op.create_table(
        "service_photos",
        sa.Column("record_id", BIG, nullable=False),
        sa.Column("photo_id", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"], ["photos.id"], name=op.f("fk_service_photos_photo_id_photos")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["service_records.id"],
            name=op.f("fk_service_photos_record_id_service_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("record_id", "photo_id", name=op.f("pk_service_photos")),
    )
    with op.batch_alter_table("service_photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_photos_photo_id"), ["photo_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_photos_photo_id"))

    op.drop_table("service_photos")
    with op.batch_alter_table("service_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_records_town_id"))
        batch_op.drop_index(batch_op.f("ix_service_records_served_on"))
        batch_op.drop_index(batch_op.f("ix_service_records_org_id"))
        batch_op.drop_index(batch_op.f("ix_service_records_kind"))
        batch_op.drop_index(batch_op.f("ix_service_records_family_id"))

    op.drop_table("service_records")
    with op.batch_alter_table("service_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_assignments_town_id"))
        batch_op.drop_index(batch_op.f("ix_service_assignments_org_id"))
        batch_op.drop_index(batch_op.f("ix_service_assignments_lead_id"))
        batch_op.drop_index(batch_op.f("ix_service_assignments_family_id"))

    op.drop_table("service_assignments")
