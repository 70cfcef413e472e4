"""Tables of the agreement / judicial-confirmation domain (R15-R26).

Content that gets hashed and signed is stored as the exact canonical JSON text, so the bytes a signer signed can
be rebuilt without re-serializing. PDFs and RFC 3161 tokens are stored as bytes (they are small: ~100 KiB).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

import mediation.casefile_records  # noqa: F401  (application documents refer to case_documents)
from mediation.db import Base, UTCDateTime, utcnow


class Agreement(Base):
    """One mediation agreement of a case. Status: draft -> final -> effective -> sealed, or refused / void."""

    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    template: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    final_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # of the final version
    unsigned_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # what the signers signed
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finalized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    effective_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # last party signature
    effect_record: Mapped[str | None] = mapped_column(Text, nullable=True)  # canonical JSON, timestamped
    effect_token: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # RFC 3161 TimeStampToken DER
    effect_tsa_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sealed_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sealed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    refused_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    refusal_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class AgreementVersion(Base):
    """Every save of a draft is a new row; the final version is never written again."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("agreement_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)  # canonical JSON
    content_sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class AgreementSignature(Base):
    """A verified signature over `signing_payload` of the final version (party / agent device key, mediator key)."""

    __tablename__ = "agreement_signatures"
    __table_args__ = (UniqueConstraint("agreement_id", "signer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    signer: Mapped[str] = mapped_column(String(40))  # "person:12" | "staff:3"
    role: Mapped[str] = mapped_column(String(20))  # party | agent | mediator
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    side: Mapped[str] = mapped_column(String(1), default="")
    algorithm: Mapped[str] = mapped_column(String(30))  # ecdsa-p256-sha256-p1363 | ed25519
    public_key: Mapped[str] = mapped_column(Text)  # base64 SPKI DER
    key_fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 hex of the SPKI DER
    signature: Mapped[str] = mapped_column(Text)  # base64, as produced by the signer (raw r||s for WebCrypto)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConfirmationApplication(Base):
    """A joint application for judicial confirmation (R21-R26).

    Status: draft (collecting party signatures) -> submitted -> accepted | not_accepted; accepted -> confirmed |
    rejected; withdrawn at any point before a ruling.
    """

    __tablename__ = "confirmation_applications"
    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    court_id: Mapped[str] = mapped_column(String(50), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    document: Mapped[str] = mapped_column(Text)  # canonical JSON of the application (what each party signs)
    document_sha256: Mapped[str] = mapped_column(String(64))
    deadline_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # effective_at + 30 days
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acceptance_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ruling_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    judge_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class ApplicationSignature(Base):
    __tablename__ = "application_signatures"
    __table_args__ = (UniqueConstraint("application_id", "signer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("confirmation_applications.id"), index=True)
    signer: Mapped[str] = mapped_column(String(40))  # "person:12"
    role: Mapped[str] = mapped_column(String(20))  # party | agent
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id"))
    name: Mapped[str] = mapped_column(String(200))
    side: Mapped[str] = mapped_column(String(1))
    algorithm: Mapped[str] = mapped_column(String(30))
    public_key: Mapped[str] = mapped_column(Text)
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CourtQuestioning(Base):
    """A questioning of both parties scheduled by the judge (R25). The session itself is hosted elsewhere."""

    __tablename__ = "court_questionings"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("confirmation_applications.id"), index=True)
    judge_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    scheduled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("mediation_sessions.id"), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CourtRuling(Base):
    __tablename__ = "court_rulings"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("confirmation_applications.id"), unique=True)
    court_id: Mapped[str] = mapped_column(String(50))
    outcome: Mapped[str] = mapped_column(String(20))  # confirmed | rejected
    ground: Mapped[str | None] = mapped_column(String(40), nullable=True)
    document: Mapped[str] = mapped_column(Text)  # canonical JSON that the court key signed
    signature: Mapped[str] = mapped_column(Text)  # base64 Ed25519 over `document`
    court_key_fingerprint: Mapped[str] = mapped_column(String(64))
    judge_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    ruled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApplicationDocument(Base):
    """A supporting document of an application (R23): power of attorney, proof of property rights, other. It is a
    case-file document (`document_id`, mediation.documents; its bytes stay encrypted there); `kind`, `person_id`,
    `filename` and `sha256` are copied from it when attached. Rows from before migration 0005 hold `data` inline."""

    __tablename__ = "application_documents"
    __table_args__ = (UniqueConstraint("application_id", "document_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("confirmation_applications.id"), index=True)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("case_documents.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(30))  # power_of_attorney | property_proof | other
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)  # POA: the agent
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # legacy rows only
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
