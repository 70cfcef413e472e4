"""the case file's documents and the electronic transcript (issue 13 items 1, 3)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediation.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

T = mediation.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_documents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("uploader_name", sa.String(length=200), nullable=False),
        sa.Column("uploaded_at", T, nullable=False),
        sa.Column("shown_jointly", sa.Boolean(), nullable=False),
        sa.Column("shown_in_caucus", sa.Boolean(), nullable=False),
        sa.Column("keys_destroyed_at", T, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_documents_case_id_cases")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_case_documents_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_documents")),
    )
    op.create_index(op.f("ix_case_documents_case_id"), "case_documents", ["case_id"])
    op.create_table(
        "document_key_wraps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key_ref", sa.String(length=128), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", T, nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["case_documents.id"],
                                name=op.f("fk_document_key_wraps_document_id_case_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_key_wraps")),
        sa.UniqueConstraint("document_id", "kind", "key_ref", name=op.f("uq_document_key_wraps_document_id")),
    )
    op.create_index(op.f("ix_document_key_wraps_document_id"), "document_key_wraps", ["document_id"])
    op.create_table(
        "transcript_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=200), nullable=False),
        sa.Column("speaker_id", sa.String(length=40), nullable=True),
        sa.Column("at_ms", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("caucus", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("written_by", sa.String(length=200), nullable=False),
        sa.Column("written_at", T, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["mediation_sessions.id"],
                                name=op.f("fk_transcript_entries_session_id_mediation_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_entries")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_transcript_entries_session_id")),
    )
    op.create_index(op.f("ix_transcript_entries_session_id"), "transcript_entries", ["session_id"])
    op.create_table(
        "transcripts",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("closed_by", sa.String(length=200), nullable=False),
        sa.Column("closed_at", T, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["mediation_sessions.id"],
                                name=op.f("fk_transcripts_session_id_mediation_sessions")),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_transcripts")),
    )
    op.create_table(
        "transcript_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("signer", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.String(length=40), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("signed_at", T, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["transcripts.session_id"],
                                name=op.f("fk_transcript_responses_session_id_transcripts")),
        sa.ForeignKeyConstraint(["invite_id"], ["invites.id"], name=op.f("fk_transcript_responses_invite_id_invites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_responses")),
        sa.UniqueConstraint("session_id", "signer", name=op.f("uq_transcript_responses_session_id")),
    )
    op.create_index(op.f("ix_transcript_responses_session_id"), "transcript_responses", ["session_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_transcript_responses_session_id"), table_name="transcript_responses")
    op.drop_table("transcript_responses")
    op.drop_table("transcripts")
    op.drop_index(op.f("ix_transcript_entries_session_id"), table_name="transcript_entries")
    op.drop_table("transcript_entries")
    op.drop_index(op.f("ix_document_key_wraps_document_id"), table_name="document_key_wraps")
    op.drop_table("document_key_wraps")
    op.drop_index(op.f("ix_case_documents_case_id"), table_name="case_documents")
    op.drop_table("case_documents")
