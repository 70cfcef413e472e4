"""Tables of the case file (issue 13): uploaded documents and the electronic transcript (电子笔录, R11).

- `CaseDocument`: one photo or PDF in a case's file. Its bytes live in a storage backend, encrypted with a data
  key of its own (recordings.documents_store); `sha256` is of the stored (sanitised) plaintext.
- `DocumentKeyWrap`: the document's data key wrapped by a center master key (kind "master") or to a court's
  X25519 key (kind "court"), the same formats as recordings (recordings.keywrap).
- `TranscriptEntry`: one line of a session's transcript: speaker, ms on the session's recording clock, text;
  `caucus` entries are privileged (R9) and shown to nobody outside the caucus.
- `Transcript`: the transcript as closed for review (frozen canonical document and its hash).
- `TranscriptResponse`: a party's signed confirmation of the closed transcript, or the passages it disputes, and
  its answer to "may the recording replace the transcript?" (R11).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mediation.db import Base, UTCDateTime, utcnow


class CaseDocument(Base):
    __tablename__ = "case_documents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "doc-<hex>"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    purpose: Mapped[str] = mapped_column(String(30))  # evidence | power_of_attorney | property_proof | other
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)  # POA: the agent
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(40))  # image/jpeg | image/png | application/pdf
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # of the stored plaintext (re-encoded image, or the PDF)
    original_sha256: Mapped[str] = mapped_column(String(64))  # of the bytes as uploaded
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploader_name: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    shown_jointly: Mapped[bool] = mapped_column(Boolean, default=False)
    shown_in_caucus: Mapped[bool] = mapped_column(Boolean, default=False)
    keys_destroyed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def privileged(self) -> bool:
        """Shown only inside a caucus (R9): caucus material never leaves the center."""
        return self.shown_in_caucus and not self.shown_jointly


class DocumentKeyWrap(Base):
    __tablename__ = "document_key_wraps"
    __table_args__ = (UniqueConstraint("document_id", "kind", "key_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("case_documents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "master" | "court"
    key_ref: Mapped[str] = mapped_column(String(128))
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TranscriptEntry(Base):
    __tablename__ = "transcript_entries"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("mediation_sessions.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(200))  # the speaker's name as written
    speaker_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # participant id when known
    at_ms: Mapped[int] = mapped_column(Integer)  # on the session's recording clock
    text: Mapped[str] = mapped_column(Text)
    caucus: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(20), default="typed")  # typed | speech (a confirmed draft line)
    written_by: Mapped[str] = mapped_column(String(200))
    written_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transcript(Base):
    __tablename__ = "transcripts"
    session_id: Mapped[int] = mapped_column(ForeignKey("mediation_sessions.id"), primary_key=True)
    document: Mapped[str] = mapped_column(Text)  # canonical JSON (mediation.transcript_format)
    sha256: Mapped[str] = mapped_column(String(64))
    closed_by: Mapped[str] = mapped_column(String(200))
    closed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TranscriptResponse(Base):
    __tablename__ = "transcript_responses"
    __table_args__ = (UniqueConstraint("session_id", "signer"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("transcripts.session_id"), index=True)
    signer: Mapped[str] = mapped_column(String(40))  # "person:<id>"
    role: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id"))
    payload: Mapped[str] = mapped_column(Text)  # the exact canonical JSON signed
    algorithm: Mapped[str] = mapped_column(String(40))
    public_key: Mapped[str] = mapped_column(Text)
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
