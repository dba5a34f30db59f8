"""volunteer teams, social organisations and enterprises; their members; volunteers' reports

`social_orgs` (registered by the center) with `social_org_towns` served, one-time
`social_org_invitations`, `social_members` (role `volunteer` while current), and
`volunteer_reports` (what a volunteer reported, the lead it fed) with their photos.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 11:57:35.803156
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.models.base import AwareDateTime, JSONType

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Ids and the keys that point at them (models/base.py `BigIntPK`).
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "social_orgs",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "volunteer_team",
                "social_org",
                "enterprise",
                name="orgkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("contact_name", sa.String(length=50), nullable=False),
        sa.Column("contact_phone_enc", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", BIG, nullable=True),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", AwareDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_social_orgs_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_orgs")),
        sa.UniqueConstraint("name", name=op.f("uq_social_orgs_name")),
    )
    op.create_table(
        "social_org_invitations",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("org_id", BIG, nullable=False),
        sa.Column("created_by_id", BIG, nullable=False),
        sa.Column(
            "code_hash",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("expires_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("redeemed_by_id", BIG, nullable=True),
        sa.Column("redeemed_at", AwareDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", AwareDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_social_org_invitations_created_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["social_orgs.id"],
            name=op.f("fk_social_org_invitations_org_id_social_orgs"),
        ),
        sa.ForeignKeyConstraint(
            ["redeemed_by_id"],
            ["users.id"],
            name=op.f("fk_social_org_invitations_redeemed_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_org_invitations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_social_org_invitations_code_hash")),
    )
    with op.batch_alter_table("social_org_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_social_org_invitations_org_id"), ["org_id"], unique=False
        )

    op.create_table(
        "social_org_towns",
        sa.Column("org_id", BIG, nullable=False),
        sa.Column("town_id", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["social_orgs.id"],
            name=op.f("fk_social_org_towns_org_id_social_orgs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["town_id"], ["towns.id"], name=op.f("fk_social_org_towns_town_id_towns")
        ),
        sa.PrimaryKeyConstraint("org_id", "town_id", name=op.f("pk_social_org_towns")),
    )
    with op.batch_alter_table("social_org_towns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_social_org_towns_town_id"), ["town_id"], unique=False)

    op.create_table(
        "volunteer_reports",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("org_id", BIG, nullable=False),
        sa.Column("user_id", BIG, nullable=False),
        sa.Column("lead_id", BIG, nullable=False),
        sa.Column("evidence_id", BIG, nullable=True),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("town_id", BIG, nullable=False),
        sa.Column("village_id", BIG, nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column(
            "photo_ids",
            JSONType,
            nullable=False,
        ),
        sa.Column("created_at", AwareDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["lead_evidence.id"],
            name=op.f("fk_volunteer_reports_evidence_id_lead_evidence"),
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_volunteer_reports_lead_id_leads")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["social_orgs.id"], name=op.f("fk_volunteer_reports_org_id_social_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["town_id"], ["towns.id"], name=op.f("fk_volunteer_reports_town_id_towns")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_volunteer_reports_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_volunteer_reports_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_reports")),
    )
    with op.batch_alter_table("volunteer_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volunteer_reports_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_volunteer_reports_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_volunteer_reports_town_id"), ["town_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_volunteer_reports_user_id"), ["user_id"], unique=False)

    op.create_table(
        "social_members",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("org_id", BIG, nullable=False),
        sa.Column("user_id", BIG, nullable=False),
        sa.Column("invitation_id", BIG, nullable=True),
        sa.Column("joined_at", AwareDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", AwareDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["social_org_invitations.id"],
            name=op.f("fk_social_members_invitation_id_social_org_invitations"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["social_orgs.id"], name=op.f("fk_social_members_org_id_social_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_social_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_members")),
    )
    with op.batch_alter_table("social_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_social_members_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_social_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "volunteer_report_photos",
        sa.Column("report_id", BIG, nullable=False),
        sa.Column("photo_id", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"], ["photos.id"], name=op.f("fk_volunteer_report_photos_photo_id_photos")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["volunteer_reports.id"],
            name=op.f("fk_volunteer_report_photos_report_id_volunteer_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "photo_id", name=op.f("pk_volunteer_report_photos")),
    )
    with op.batch_alter_table("volunteer_report_photos", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volunteer_report_photos_photo_id"), ["photo_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("volunteer_report_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volunteer_report_photos_photo_id"))

    op.drop_table("volunteer_report_photos")
    with op.batch_alter_table("social_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_members_user_id"))
        batch_op.drop_index(batch_op.f("ix_social_members_org_id"))

    op.drop_table("social_members")
    with op.batch_alter_table("volunteer_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volunteer_reports_user_id"))
        batch_op.drop_index(batch_op.f("ix_volunteer_reports_town_id"))
        batch_op.drop_index(batch_op.f("ix_volunteer_reports_org_id"))
        batch_op.drop_index(batch_op.f("ix_volunteer_reports_lead_id"))

    op.drop_table("volunteer_reports")
    with op.batch_alter_table("social_org_towns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_org_towns_town_id"))

    op.drop_table("social_org_towns")
    with op.batch_alter_table("social_org_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_org_invitations_org_id"))

    op.drop_table("social_org_invitations")
    op.drop_table("social_orgs")
