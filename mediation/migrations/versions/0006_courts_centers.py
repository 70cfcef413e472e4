"""courts as rows; centers with parent levels (issue 10 item 1: tenancy as data)

`courts` holds the court directory (R22): the system administrator creates courts through the API, and the
directory file (`<key_dir>/courts/courts.json`, or the development courts) is upserted into it at start-up.
Centers get `parent_id` (the center one level up) and `level` (province | city | county | township); existing
centers become county-level centers without a parent.

`staff_users.court_id` gets no foreign key: judges' rows made before this revision name courts that only the
directory file knows, and a migration cannot read the key directory, so a constraint would fail on upgrade
(PostgreSQL checks existing rows). `mediation.casework.add_user` checks the court against the table instead.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediation.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courts",
        sa.Column("id", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("ruling_public_key", sa.String(length=100), nullable=False),
        sa.Column("recording_public_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", mediation.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courts")),
    )
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("level", sa.String(length=20), server_default="county", nullable=False))
        batch_op.create_foreign_key(batch_op.f("fk_centers_parent_id_centers"), "centers", ["parent_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_centers_parent_id_centers"), type_="foreignkey")
        batch_op.drop_column("level")
        batch_op.drop_column("parent_id")
    op.drop_table("courts")
