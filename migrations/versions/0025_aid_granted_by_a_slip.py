"""aid granted by a transfer slip's one outcome (a lead without applications)

`aid_grants.dispatch_id` (unique) beside `application_id`, now nullable; a grant names exactly
one of them (`ck_aid_grants_one_decision`).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Ids and the keys that point at them (models/base.py `BigIntPK`).
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("aid_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatch_id", BIG, nullable=True))
        batch_op.alter_column("application_id", existing_type=BIG, nullable=True)
        batch_op.create_unique_constraint(
            batch_op.f("uq_aid_grants_dispatch_id"), ["dispatch_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_aid_grants_dispatch_id_dispatches"), "dispatches", ["dispatch_id"], ["id"]
        )
        batch_op.create_check_constraint(
            "one_decision", "(application_id IS NULL) <> (dispatch_id IS NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM aid_grants WHERE application_id IS NULL")
    with op.batch_alter_table("aid_grants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_aid_grants_one_decision"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_aid_grants_dispatch_id_dispatches"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_aid_grants_dispatch_id"), type_="unique")
        batch_op.alter_column("application_id", existing_type=BIG, nullable=False)
        batch_op.drop_column("dispatch_id")
