"""each person's copy, the ruling PDF, public contact, personal matter (issue 11 items 3-6)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediation.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_matters",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("personal_matter", sa.String(length=20), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("set_at", mediation.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_matters_case_id_cases")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_matters")),
    )
    op.create_table(
        "center_contacts",
        sa.Column("center_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("hours", sa.String(length=200), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", mediation.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["center_id"], ["centers.id"], name=op.f("fk_center_contacts_center_id_centers")),
        sa.PrimaryKeyConstraint("center_id", name=op.f("pk_center_contacts")),
    )
    op.create_table(
        "service_consents",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("device_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("at", mediation.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_service_consents_person_id_people")),
        sa.ForeignKeyConstraint(["invite_id"], ["invites.id"], name=op.f("fk_service_consents_invite_id_invites")),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_service_consents")),
    )
    op.create_table(
        "document_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=False),
        sa.Column("document", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("device_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("delivered_at", mediation.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_document_deliveries_person_id_people")),
        sa.ForeignKeyConstraint(["invite_id"], ["invites.id"], name=op.f("fk_document_deliveries_invite_id_invites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_deliveries")),
    )
    op.create_index(op.f("ix_document_deliveries_person_id"), "document_deliveries", ["person_id"])
    op.create_table(
        "ruling_documents",
        sa.Column("ruling_id", sa.Integer(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("court_key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("rendered_at", mediation.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ruling_id"], ["court_rulings.id"],
                                name=op.f("fk_ruling_documents_ruling_id_court_rulings")),
        sa.PrimaryKeyConstraint("ruling_id", name=op.f("pk_ruling_documents")),
    )


def downgrade() -> None:
    op.drop_table("ruling_documents")
    op.drop_index(op.f("ix_document_deliveries_person_id"), table_name="document_deliveries")
    op.drop_table("document_deliveries")
    op.drop_table("service_consents")
    op.drop_table("center_contacts")
    op.drop_table("case_matters")
