"""Tables of each person's copy (R20): consent to electronic service, every delivery of a document to a party's
device with the time it reached them, and the court's signed ruling PDFs (R25)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mediation.db import Base, UTCDateTime, utcnow


class ServiceConsent(Base):
    """A person's answer to "may documents be served on you electronically?" (asked once; R20, PML 29)."""

    __tablename__ = "service_consents"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id"))
    granted: Mapped[bool] = mapped_column(Boolean)
    device_fingerprint: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DocumentDelivery(Base):
    """One download of a document by a party's bound device; `delivered_at` is when the last byte was written."""

    __tablename__ = "document_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id"))
    document: Mapped[str] = mapped_column(String(40))  # agreement | application | ruling
    sha256: Mapped[str] = mapped_column(String(64))
    device_fingerprint: Mapped[str] = mapped_column(String(64))
    delivered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RulingDocument(Base):
    """The ruling (裁定书) as a PDF, rendered once from the signed ruling and signed again, as bytes, by the court's
    Ed25519 key: `signature` is over the PDF's bytes (the ruling JSON inside carries its own signature)."""

    __tablename__ = "ruling_documents"
    ruling_id: Mapped[int] = mapped_column(ForeignKey("court_rulings.id"), primary_key=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)  # base64 Ed25519 over the PDF bytes
    court_key_fingerprint: Mapped[str] = mapped_column(String(64))
    rendered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
