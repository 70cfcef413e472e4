"""The audit log (R10, R12, R14): append-only, hash-chained, with signed checkpoints.

Every entry carries `content_hash = sha256(canonical(content))` and `hash = sha256(prev_hash ":" content_hash)`.
Chaining over the content hash (not the content) lets an extract for a court redact unrelated entries to their
content hash and still prove the chain (issue 5's evidence bundle). The chain head lives in its own row and is
updated FIRST in every append, which takes the database write lock (SQLite) or row lock (PostgreSQL) before the
previous hash is read, so concurrent writers (the server and a CLI command) serialize instead of forking the chain.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mediation.audit_chain import GENESIS, chain_hash, checkpoint_message, entry_content
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def content(self) -> dict[str, Any]:
        return entry_content(
            self.seq, self.at, self.actor, self.action, self.subject, json.loads(self.detail), self.reason
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "prev_hash": self.prev_hash, "content_hash": self.content_hash, "hash": self.hash}


class AuditHead(Base):
    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # no FK: survives truncation
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    signature: Mapped[str] = mapped_column(Text)  # base64 Ed25519 over canonical {"seq","hash"}


async def append(
    s: AsyncSession,
    *,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction, so the state change and its record commit together."""
    (entry,) = await append_many(
        s, [{"actor": actor, "action": action, "subject": subject, "detail": detail, "reason": reason}]
    )
    return entry


async def append_many(s: AsyncSession, items: list[dict[str, Any]]) -> list[AuditEntry]:
    """Append several entries (dicts of actor, action, subject, detail?, reason?) with three statements in all.

    The head row is updated first, reserving the sequence numbers and taking the write lock (SQLite) or row lock
    (PostgreSQL), and returns the previous hash in the same statement.
    """
    n = len(items)
    res = await s.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + n)
        .returning(AuditHead.seq, AuditHead.hash)
    )
    row = res.one_or_none()
    if row is None:
        await s.execute(insert(AuditHead).values(id=1, seq=n, hash=GENESIS))
        last, prev = n, GENESIS
    else:
        last, prev = row
    at = utcnow()
    rows = []
    for seq, it in enumerate(items, start=last - n + 1):
        detail = it.get("detail") or {}
        content = entry_content(seq, at, it["actor"], it["action"], it["subject"], detail, it.get("reason"))
        content_hash = sha256_hex(canonical_json(content))
        h = chain_hash(prev, content_hash)
        rows.append(dict(
            seq=seq, at=at, actor=it["actor"], action=it["action"], subject=it["subject"],
            detail=json.dumps(detail, ensure_ascii=False), reason=it.get("reason"), prev_hash=prev,
            content_hash=content_hash, hash=h,
        ))
        prev = h
    await s.execute(insert(AuditEntry), rows)
    await s.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
    return [AuditEntry(**r) for r in rows]


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    checkpoints: int
    problems: list[str]


async def verify(s: AsyncSession, public_key: Any | None = None) -> VerifyReport:
    """Walk the whole chain: recompute every hash, check contiguity, the head, and signed checkpoints."""
    problems: list[str] = []
    prev, expected_seq, count = GENESIS, 1, 0
    hashes: dict[int, str] = {}
    for e in (await s.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all():
        count += 1
        if e.seq != expected_seq:
            problems.append(f"entry {expected_seq}: missing (next present is {e.seq})")
        if e.prev_hash != prev:
            problems.append(f"entry {e.seq}: prev_hash does not match entry {e.seq - 1} (reordered or deleted)")
        if sha256_hex(canonical_json(e.content())) != e.content_hash:
            problems.append(f"entry {e.seq}: content edited")
        if chain_hash(e.prev_hash, e.content_hash) != e.hash:
            problems.append(f"entry {e.seq}: hash does not match")
        hashes[e.seq] = e.hash
        prev, expected_seq = e.hash, e.seq + 1
    head = await s.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        problems.append(f"head: says entry {head.seq}, log ends at {expected_seq - 1} (entries removed at the end)")
    cps = (await s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))).all()
    for cp in cps:
        if hashes.get(cp.seq) != cp.hash:
            problems.append(f"checkpoint {cp.seq}: entry differs from the signed checkpoint")
        if public_key is not None:
            try:
                public_key.verify(base64.b64decode(cp.signature), checkpoint_message(cp.seq, cp.hash))
            except Exception:  # cryptography raises InvalidSignature; any failure is a bad checkpoint
                problems.append(f"checkpoint {cp.seq}: signature invalid")
    return VerifyReport(ok=not problems, entries=count, checkpoints=len(cps), problems=problems)


async def checkpoint(s: AsyncSession, private_key: Any) -> AuditCheckpoint | None:
    """Sign the current head with the center's Ed25519 key; a later truncation past it is then detectable."""
    head = await s.get(AuditHead, 1)
    if head is None or head.seq == 0 or await s.get(AuditCheckpoint, head.seq) is not None:
        return None
    sig = private_key.sign(checkpoint_message(head.seq, head.hash))
    cp = AuditCheckpoint(seq=head.seq, hash=head.hash, at=utcnow(), signature=base64.b64encode(sig).decode())
    s.add(cp)
    await s.flush()
    return cp


async def entries_for(s: AsyncSession, subject_prefix: str) -> list[AuditEntry]:
    q = select(AuditEntry).where(AuditEntry.subject.startswith(subject_prefix)).order_by(AuditEntry.seq)
    return list((await s.scalars(q)).all())
