"""Recovery and verification of stored recordings (`onedoor recordings recover`, run at server start).

For every recording that still has its keys, every stored segment of every stream is decrypted and checked:

- A recording left in "recording"/"paused" (the process died) is finalized: each stream's valid segments are
  counted, the recording becomes "truncated" with "<stream>: truncated at segment k" per unfinished stream, a
  "truncated" event and audit entry are written and a signed manifest covering what survived is stored.
  Because each segment is fsynced before its hash is audited, a crash loses at most the segment being written
  (the Matroska cluster in progress, <= 1 s of media); a segment whose hash IS in the audit log but no longer
  verifies is reported as tampering, not as a crash.
- A recording whose node was lost while it ran (several nodes) is not finalized: the next owner of the session
  settles the lost node's streams (`settle_streams`: each stream's valid segments counted, an unfinished one
  marked truncated) and continues it as a new part (recordings.recorder.Recorder.continue_part).
- A finished recording is checked against its signed manifest (signature, then every frame hash) and against
  decryption; any difference is reported and audited ("recording.verify_failed").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from mediation import audit
from mediation.db import Database, utcnow
from mediation.errors import OneDoorError
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingEvent, RecordingStream
from recordings import keys
from recordings.decrypt import verify_stream
from recordings.manifest import finalize
from recordings.manifest_format import verify_manifest
from recordings.segment import ReadStatus
from recordings.storage import RecordingStorage

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    recording_id: str
    status: str  # "ok" | "truncated" | "corrupt"
    streams: dict[str, str] = field(default_factory=dict)  # stream id -> ReadStatus.describe()
    problems: list[str] = field(default_factory=list)
    duration_ms: int | None = None  # an interrupted recording's length as finalized (to its last audited segment)


async def recover(
    db: Database,
    storage: RecordingStorage,
    keyring: KeyRing,
    *,
    actor: str = "recovery",
    only_interrupted: bool = False,
    continued_elsewhere: Callable[[str], Awaitable[bool]] | None = None,
) -> list[RecoveryReport]:
    """`continued_elsewhere(session_id)`: asked just before an interrupted recording is finalized; True leaves it
    alone (another node owns its session and is continuing it: signaling.cluster.LeaseProbe)."""
    async with db.session() as s:
        q = select(Recording.id, Recording.status, Recording.session_id).where(
            Recording.keys_destroyed_at.is_(None)
        )
        todo = [
            (rid, st, sid)
            for rid, st, sid in (await s.execute(q)).all()
            if not only_interrupted or st in ("recording", "paused")
        ]
    reports = []
    for rid, st, sid in todo:
        if (
            continued_elsewhere is not None
            and st in ("recording", "paused")
            and await continued_elsewhere(sid)
        ):
            log.info("recording %s left alone: session %s is continued by another node", rid, sid)
            continue
        try:
            reports.append(
                await _recover_one(db, storage, keyring, rid, st in ("recording", "paused"), actor)
            )
        except OneDoorError as e:
            log.error("recording %s could not be checked: %s", rid, e.message)
            reports.append(RecoveryReport(rid, "corrupt", problems=[e.message]))
    return reports


async def _audited(db: Database, rid: str) -> tuple[dict[tuple[str, int], str], object]:
    async with db.session() as s:
        entries = [
            e for e in await audit.entries_for(s, f"recording:{rid}") if e.action == "recording.segment"
        ]
    hashes = {}
    for e in entries:
        d = json.loads(e.detail)
        hashes[(d["stream"], d["index"])] = d["sha256"]
    return hashes, (entries[-1].at if entries else None)


async def _recover_one(
    db: Database, storage: RecordingStorage, keyring: KeyRing, rid: str, interrupted: bool, actor: str
) -> RecoveryReport:
    async with db.session() as s:
        data_key = await keys.load_data_key(s, keyring, rid)
        rows = {
            r.stream_id: r
            for r in (
                await s.scalars(select(RecordingStream).where(RecordingStream.recording_id == rid))
            ).all()
        }
        rec = await s.get(Recording, rid)
        assert rec is not None
        manifest_doc = rec.manifest
    stored = set(await storage.list_streams(rid))
    statuses: dict[str, ReadStatus] = {}
    report = RecoveryReport(rid, "ok")
    for sid in sorted(stored | set(rows)):
        if sid not in stored:
            report.problems.append(f"{sid}: missing from storage")
            continue
        statuses[sid] = await verify_stream(storage, data_key, rid, sid)
        report.streams[sid] = statuses[sid].describe()
    audited, last_at = await _audited(db, rid)
    for (sid, k), h in sorted(audited.items()):
        got = statuses.get(sid)
        if got is None:
            continue
        if k >= got.segments:
            report.problems.append(
                f"{sid}: segment {k} was written (hash audited) but does not verify: {got.describe()}"
            )
        elif got.frame_hashes[k] != h:
            report.problems.append(f"{sid}: segment {k} differs from its audited hash")
    if interrupted:
        await _finalize_interrupted(db, storage, keyring, rid, rows, statuses, report, last_at, actor)
    else:
        report.problems += _against_manifest(manifest_doc, keyring, statuses)
    if report.problems:
        report.status = "corrupt"
        async with db.session() as s:
            await audit.append(
                s,
                actor=actor,
                action="recording.verify_failed",
                subject=f"recording:{rid}",
                detail={"problems": report.problems[:50]},
                reason="recovery check",
            )
        log.error("recording %s failed verification: %s", rid, "; ".join(report.problems))
    return report


async def settle_streams(
    db: Database, storage: RecordingStorage, keyring: KeyRing, rid: str
) -> tuple[dict[str, list[str]], object]:
    """A running recording's stored streams, read and verified: the rows of those not finished get their valid
    segment count and status (truncated at the last segment that was stored and fsynced). Returns every stream's
    frame hashes (for the manifest at the stop) and when the last segment was audited (where the media ends)."""
    async with db.session() as s:
        data_key = await keys.load_data_key(s, keyring, rid)
    stored = sorted(await storage.list_streams(rid))
    statuses = {sid: await verify_stream(storage, data_key, rid, sid) for sid in stored}
    async with db.session() as s:
        rows = (await s.scalars(select(RecordingStream).where(RecordingStream.recording_id == rid))).all()
        for row in rows:
            st = statuses.get(row.stream_id)
            if st is not None and row.status != "complete":
                row.segments = st.segments
                row.status = "complete" if st.complete else st.kind
                row.failed_at = st.failed_at
    _, last_at = await _audited(db, rid)
    return {sid: st.frame_hashes for sid, st in statuses.items()}, last_at


def _against_manifest(doc: str | None, keyring: KeyRing, statuses: dict[str, ReadStatus]) -> list[str]:
    if doc is None:
        return ["finished recording has no manifest"]
    try:
        body = verify_manifest(doc, keyring.public_key)
    except OneDoorError as e:
        return [e.message]
    problems = []
    listed = {entry["stream_id"] for entry in body["streams"]}
    problems += [f"{sid}: stored but not in the signed manifest" for sid in statuses if sid not in listed]
    for entry in body["streams"]:
        sid, st = entry["stream_id"], statuses.get(entry["stream_id"])
        if st is None:
            continue
        if st.frame_hashes != entry["segment_sha256"]:
            problems.append(f"{sid}: stored segments differ from the signed manifest ({st.describe()})")
        elif entry["status"] == "complete" and not st.complete:
            problems.append(f"{sid}: {st.describe()}")
    return problems


async def _finalize_interrupted(
    db: Database,
    storage: RecordingStorage,
    keyring: KeyRing,
    rid: str,
    rows: dict[str, RecordingStream],
    statuses: dict[str, ReadStatus],
    report: RecoveryReport,
    last_at: object,
    actor: str,
) -> None:
    truncated = {sid: st for sid, st in statuses.items() if not st.complete}
    summary = "; ".join(f"{sid}: {st.kind} at segment {st.failed_at}" for sid, st in truncated.items())
    async with db.session() as s:
        rec = await s.get(Recording, rid)
        assert rec is not None
        for sid, st in statuses.items():
            row = await s.get(RecordingStream, rows[sid].id) if sid in rows else None
            if row is not None:
                row.segments = st.segments
                row.status = "complete" if st.complete else st.kind
                row.failed_at = st.failed_at
        end = last_at if isinstance(last_at, type(rec.started_at)) else utcnow()
        rec.status, rec.stopped_at = "truncated", utcnow()
        rec.duration_ms = max(0, int((end - rec.started_at).total_seconds() * 1000))
        rec.problem = summary or "interrupted; every stream was complete"
        report.duration_ms = rec.duration_ms
        s.add(
            RecordingEvent(
                recording_id=rid,
                kind="truncated",
                pts_ms=rec.duration_ms,
                actor=actor,
                reason=f"recovered after interruption: {rec.problem}",
            )
        )
        await audit.append(
            s,
            actor=actor,
            action="recording.truncated",
            subject=f"recording:{rid}",
            detail={"streams": {sid: st.describe() for sid, st in statuses.items()}},
            reason=f"recovered after interruption: {rec.problem}",
        )
    await finalize(
        db,
        storage,
        keyring.signing_key,
        rid,
        {sid: st.frame_hashes for sid, st in statuses.items()},
        actor=actor,
    )
    report.status = "truncated"
    log.warning("recording %s was interrupted; finalized as truncated (%s)", rid, rec.problem)
