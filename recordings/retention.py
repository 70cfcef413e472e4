"""Retention per record type with legal hold (R33): crypto-shredding of expired recordings.

`expire()` destroys every wrapped copy of the data key of each recording whose retention ran out and which is
not on legal hold. Without the data key the stored segments are random bytes: the recording is gone even where
backups of the media still exist. The stored objects are deleted too when a storage backend is passed.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select

from mediation import audit
from mediation.db import Database, utcnow
from mediation.errors import InvalidInput, NotFound
from mediation.recording_records import Recording, RecordingKeyWrap, RetentionPolicy
from recordings.storage import RecordingStorage

log = logging.getLogger(__name__)


async def set_retention(db: Database, record_type: str, retain_days: int, *, actor: str, reason: str) -> None:
    if retain_days < 0:
        raise InvalidInput("retention must be >= 0 days")
    async with db.session() as s:
        pol = await s.get(RetentionPolicy, record_type)
        if pol is None:
            s.add(RetentionPolicy(record_type=record_type, retain_days=retain_days))
        else:
            pol.retain_days, pol.updated_at = retain_days, utcnow()
        await audit.append(
            s,
            actor=actor,
            action="retention.set",
            subject=f"retention:{record_type}",
            detail={"retain_days": retain_days},
            reason=reason,
        )


async def set_legal_hold(db: Database, recording_id: str, held: bool, *, actor: str, reason: str) -> None:
    if not reason:
        raise InvalidInput("a legal hold change needs a reason")
    async with db.session() as s:
        rec = await s.get(Recording, recording_id)
        if rec is None:
            raise NotFound("no such recording", recording=recording_id)
        rec.legal_hold = held
        await audit.append(
            s,
            actor=actor,
            action="recording.legal_hold" if held else "recording.legal_hold_released",
            subject=f"recording:{recording_id}",
            detail={"held": held},
            reason=reason,
        )


async def expire(
    db: Database,
    *,
    actor: str = "retention",
    now: dt.datetime | None = None,
    storage: RecordingStorage | None = None,
) -> list[str]:
    """Destroy the keys of every expired recording not on legal hold; return their ids.

    A recording expires `retain_days` after it stopped (or started, if it never stopped); record types
    without a policy are kept. Each destruction is its own transaction with its own audit entry.
    """
    now = now or utcnow()
    async with db.session() as s:
        policies = {p.record_type: p.retain_days for p in (await s.scalars(select(RetentionPolicy))).all()}
        q = select(Recording).where(
            Recording.keys_destroyed_at.is_(None),
            Recording.legal_hold.is_(False),
            Recording.status.not_in(("recording", "paused")),
        )
        due = [
            r.id
            for r in (await s.scalars(q)).all()
            if r.record_type in policies
            and (r.stopped_at or r.started_at) + dt.timedelta(days=policies[r.record_type]) <= now
        ]
    destroyed: list[str] = []
    for rid in due:
        async with db.session() as s:
            rec = await s.get(Recording, rid)
            if rec is None or rec.legal_hold or rec.keys_destroyed_at is not None:
                continue  # hold placed meanwhile
            q_wraps = select(RecordingKeyWrap.kind).where(RecordingKeyWrap.recording_id == rid)
            wraps = (await s.scalars(q_wraps)).all()
            await s.execute(delete(RecordingKeyWrap).where(RecordingKeyWrap.recording_id == rid))
            rec.keys_destroyed_at, rec.status = now, "destroyed"
            await audit.append(
                s,
                actor=actor,
                action="recording.keys_destroyed",
                subject=f"recording:{rid}",
                detail={
                    "record_type": rec.record_type,
                    "retain_days": policies[rec.record_type],
                    "wraps_destroyed": len(wraps),
                },
                reason="retention period expired",
            )
        if storage is not None:
            await storage.delete_recording(rid)
        destroyed.append(rid)
        log.info("recording %s expired: keys destroyed", rid)
    return destroyed
