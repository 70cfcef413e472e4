"""Recording metadata tables (issue 4). The media itself lives in a storage backend, encrypted (recordings/).

- `Recording`: one per recording (survives pause/resume); status recording|paused|stopped|truncated|destroyed.
- `RecordingParticipant`: who was recorded, with the moment their consent was given to the recorder.
- `RecordingStream`: one encrypted Matroska stream (one source; a new part after a pause or a format change).
- `RecordingEvent`: start / pause / resume / stop / truncated / source_added, each with actor and reason
  (R12).
- `RecordingKeyWrap`: the recording's data key wrapped by a center master key (kind "master", key_ref =
  master key id) or to a court's X25519 key (kind "court", key_ref = court id). Deleting these rows destroys
  the recording.
- `RetentionPolicy`: retention in days per record type (R33).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mediation.db import Base, UTCDateTime, utcnow


class Recording(Base):
    __tablename__ = "recordings"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    case_code: Mapped[str] = mapped_column(String(64), index=True)
    record_type: Mapped[str] = mapped_column(String(64), default="mediation_recording")
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="recording")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data_key_id: Mapped[str] = mapped_column(String(64))
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    keys_destroyed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)
    manifest: Mapped[str | None] = mapped_column(Text, nullable=True)  # signed manifest document (JSON)


class RecordingParticipant(Base):
    __tablename__ = "recording_participants"
    __table_args__ = (UniqueConstraint("recording_id", "source_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    source_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(200))
    consented_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RecordingStream(Base):
    __tablename__ = "recording_streams"
    __table_args__ = (UniqueConstraint("recording_id", "stream_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    stream_id: Mapped[str] = mapped_column(String(160))
    source_id: Mapped[str] = mapped_column(String(128))
    part: Mapped[int] = mapped_column(Integer, default=0)
    kinds: Mapped[str] = mapped_column(String(20))  # "audio", "video" or "audio,video"
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_pts_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_pts_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segments: Mapped[int] = mapped_column(Integer, default=0)
    header_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="writing")  # writing|complete|truncated|corrupt
    failed_at: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RecordingEvent(Base):
    __tablename__ = "recording_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    pts_ms: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RecordingKeyWrap(Base):
    __tablename__ = "recording_key_wraps"
    __table_args__ = (UniqueConstraint("recording_id", "kind", "key_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "master" | "court"
    key_ref: Mapped[str] = mapped_column(String(128))
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RetentionPolicy(Base):
    __tablename__ = "retention_policies"
    record_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    retain_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


async def court_bound(s: AsyncSession, case_code: str) -> list[Recording]:
    """Finished recordings of the case that go to a court. Caucus recordings are privileged (R9) and stay out."""
    q = select(Recording).where(Recording.case_code == case_code, Recording.privileged.is_(False),
                                Recording.status.in_(("stopped", "truncated")),
                                Recording.keys_destroyed_at.is_(None))
    return list((await s.scalars(q.order_by(Recording.started_at))).all())
