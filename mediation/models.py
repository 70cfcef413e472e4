"""ORM tables of the domain core: centers, courts, staff, cases and their people, sessions, invites, consents.

Other tables live beside their logic: `mediation.audit` (the audit chain), `mediation.recording_records`,
`mediation.agreements.models`. `mediation.schema` imports them all so Alembic sees one metadata.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mediation.db import Base, UTCDateTime, utcnow


class Center(Base):
    __tablename__ = "centers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)  # e.g. "QH-HX": prefix of case codes
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    record_caucus: Mapped[bool] = mapped_column(Boolean, default=False)  # R9: caucus recorded separately, privileged
    # the level above (a township center's county center, a county's city...; mediation.tenancy.CENTER_LEVELS)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("centers.id"), nullable=True)
    level: Mapped[str] = mapped_column(String(20), default="county", server_default="county")


class CourtRecord(Base):
    """A court cases can be sent to (R22): the rows behind `mediation.agreements.courts.CourtDirectory`. Created by
    the system administrator (mediation.tenancy) or seeded from the directory file at start-up."""

    __tablename__ = "courts"
    id: Mapped[str] = mapped_column(String(50), primary_key=True)  # e.g. "court-huangzhong"
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(20))  # basic | intermediate | high
    region: Mapped[str] = mapped_column(String(100))  # the place name matched against addresses (R22)
    address: Mapped[str] = mapped_column(String(300), default="")
    ruling_public_key: Mapped[str] = mapped_column(String(100))  # base64 raw Ed25519
    recording_public_key: Mapped[str] = mapped_column(String(100))  # base64 raw X25519
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffUser(Base):
    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[int] = mapped_column(ForeignKey("centers.id"))
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))  # mediation.permissions.StaffRole value
    password_hash: Mapped[str] = mapped_column(String(200))
    # judges: which court they sit in (a courts.id; checked by the use case, no FK: see migration 0006)
    court_id: Mapped[str | None] = mapped_column(String(50), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffLogin(Base):
    """A staff browser session: the cookie holds a random token; only its hash is stored."""

    __tablename__ = "staff_logins"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[int] = mapped_column(ForeignKey("centers.id"))
    code: Mapped[str] = mapped_column(String(40), unique=True)  # 一案一码 (R29)
    title: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(20))  # mediation.cases.Channel (R30)
    stage: Mapped[str] = mapped_column(String(20))  # mediation.cases.Stage (R29)
    summary: Mapped[str] = mapped_column(Text, default="")
    mediator_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    referring_court_id: Mapped[str | None] = mapped_column(String(50), nullable=True)  # 诉调: inviting court (R22)
    personal_status: Mapped[bool] = mapped_column(Boolean, default=False)  # marriage/adoption/inheritance (ESL 3, R24)
    termination_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)  # R28
    termination_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    flagged_violence: Mapped[bool] = mapped_column(Boolean, default=False)  # R31
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    people: Mapped[list[Person]] = relationship(back_populates="case", order_by="Person.id", lazy="selectin")


class StageChange(Base):
    __tablename__ = "stage_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(20))
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class Person(Base):
    """A party or an agent on side A or B. Personal data stays in the database (encrypted volume in production)."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    side: Mapped[str] = mapped_column(String(1))  # "A" | "B"
    kind: Mapped[str] = mapped_column(String(20))  # "party" | "agent"
    represents_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)  # an agent's principal
    name: Mapped[str] = mapped_column(String(200))
    id_number: Mapped[str] = mapped_column(String(40), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    case: Mapped[Case] = relationship(back_populates="people")


class Guest(Base):
    """A third party for one case: judge from outside, psychologist, interpreter, expert, observer (R8)."""

    __tablename__ = "guests"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # psychologist | interpreter | observer | judge
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40), default="")


class MediationSession(Base):
    __tablename__ = "mediation_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))  # mediator, or judge for questioning
    kind: Mapped[str] = mapped_column(String(20), default="mediation")  # mediation | questioning (R25)
    state: Mapped[str] = mapped_column(String(20))  # scheduled | open | live | ended
    scheduled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    live_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Invite(Base):
    """One link per person (or guest) per session. Only the token's SHA-256 is stored (>= 128 random bits)."""

    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("mediation_sessions.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    guest_id: Mapped[int | None] = mapped_column(ForeignKey("guests.id"), nullable=True)
    role: Mapped[str] = mapped_column(String(20))  # party | agent | psychologist | interpreter | observer | judge
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    device_key: Mapped[str | None] = mapped_column(Text, nullable=True)  # SPKI DER, base64; set on first use
    device_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bound_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the mediator did not let this link in: it stays shut (on every node) until it is reissued
    refused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdentityCheck(Base):
    __tablename__ = "identity_checks"
    id: Mapped[int] = mapped_column(primary_key=True)
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id"), index=True)
    method: Mapped[str] = mapped_column(String(30))  # otp | attestation
    state: Mapped[str] = mapped_column(String(20))  # pending | passed | failed
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # OTP, hashed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # attesting mediator
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Consent(Base):
    """One recorded choice: notices acknowledged (R3), recording (R1, P2), a third party's presence (R8)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("invite_id", "kind", "subject"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # notices | recording | third_party | online
    subject: Mapped[str] = mapped_column(String(50), default="")  # for third_party: the guest's invite id
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("mediation_sessions.id"), index=True)
    sender: Mapped[str] = mapped_column(String(100))  # participant id
    sender_name: Mapped[str] = mapped_column(String(200))
    caucus: Mapped[str | None] = mapped_column(String(50), nullable=True)  # private to that caucus (R9)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpentChallenge(Base):
    """A join challenge that a successful join used (R17): inserting its hash is the single-use check, so every
    process and node, and the server after a restart, sees it. Rows are pruned once the challenge has expired."""

    __tablename__ = "spent_challenges"
    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the challenge
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class Counter(Base):
    """Named sequences that must not hand out a number twice (case codes: `<center>-<year>-`): incremented by one
    UPDATE ... RETURNING, never read-then-written."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
