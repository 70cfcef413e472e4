"""the application's documents (R23) are references to case-file documents (issue 13 item 1)

An application document now names the case-file document it is (`document_id`); its bytes stay encrypted in the
case file. Rows made before this revision keep their bytes inline (`data`), which is therefore nullable.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("application_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_id", sa.String(length=40), nullable=True))
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.create_foreign_key(batch_op.f("fk_application_documents_document_id_case_documents"),
                                    "case_documents", ["document_id"], ["id"])
        batch_op.create_unique_constraint(batch_op.f("uq_application_documents_application_id"),
                                          ["application_id", "document_id"])


def downgrade() -> None:
    with op.batch_alter_table("application_documents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_application_documents_application_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_application_documents_document_id_case_documents"),
                                 type_="foreignkey")
        batch_op.drop_column("document_id")
    # rows that referenced the case file have no inline bytes: the column stays nullable on the way down
