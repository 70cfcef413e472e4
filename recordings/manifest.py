"""The signed recording manifest, written when a recording stops (or is finalized by recovery).

Document (JSON)::

    {"manifest": BODY, "signature": {"alg": "Ed25519", "public_key": b64(raw 32 bytes), "fingerprint": ...,
                                     "value": b64(Ed25519(center_key, canonical_json(BODY)))}}

BODY names the recording, case and session, `privileged` (caucus recording, R9), status ("stopped" or
"truncated"), start/stop wall-clock times and duration, the data key id, the participants with their consent
time, every stream with its segment count, header hash and the SHA-256 of every stored frame in order, and every
start/pause/resume/stop/truncated event with actor and reason (R12). Signing and the checks
(`recordings.manifest_format`: `verify_manifest()`, `check_stream()`) need no database and no recording key: a
court runs them offline on the stored bytes.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import Database
from mediation.errors import NotFound
from mediation.recording_records import Recording, RecordingEvent, RecordingParticipant, RecordingStream
from recordings.manifest_format import (  # check_stream, verify_manifest: re-exported for tests
    MANIFEST_TYPE,
    MANIFEST_VERSION,
    check_stream,  # noqa: F401
    sign_manifest,
    verify_manifest,  # noqa: F401
)
from recordings.storage import RecordingStorage


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


async def build_manifest(s: AsyncSession, recording_id: str, hashes: dict[str, list[str]]) -> dict[str, Any]:
    """BODY from the database rows plus the frame hashes per stream (from the writer or from a storage walk)."""
    rec = await s.get(Recording, recording_id)
    if rec is None:
        raise NotFound("no such recording", recording=recording_id)
    parts = (
        await s.scalars(
            select(RecordingParticipant)
            .where(RecordingParticipant.recording_id == recording_id)
            .order_by(RecordingParticipant.id)
        )
    ).all()
    streams = (
        await s.scalars(
            select(RecordingStream)
            .where(RecordingStream.recording_id == recording_id)
            .order_by(RecordingStream.id)
        )
    ).all()
    events = (
        await s.scalars(
            select(RecordingEvent)
            .where(RecordingEvent.recording_id == recording_id)
            .order_by(RecordingEvent.id)
        )
    ).all()
    stream_docs = []
    for st in streams:
        seg = hashes.get(st.stream_id, [])
        stream_docs.append(
            {
                "stream_id": st.stream_id,
                "source_id": st.source_id,
                "part": st.part,
                "kinds": st.kinds.split(","),
                "width": st.width,
                "height": st.height,
                "first_pts_ms": st.first_pts_ms,
                "last_pts_ms": st.last_pts_ms,
                "status": st.status,
                "failed_at": st.failed_at,
                "segments": len(seg),
                "header_sha256": st.header_sha256,
                "segment_sha256": seg,
            }
        )
    return {
        "type": MANIFEST_TYPE,
        "version": MANIFEST_VERSION,
        "recording_id": rec.id,
        "session_id": rec.session_id,
        "case_code": rec.case_code,
        "record_type": rec.record_type,
        "privileged": rec.privileged,
        "status": rec.status,
        "problem": rec.problem,
        "key_id": rec.data_key_id,
        "started_at": _iso(rec.started_at),
        "stopped_at": _iso(rec.stopped_at),
        "duration_ms": rec.duration_ms,
        "participants": [
            {"source_id": p.source_id, "label": p.label, "consented_at": _iso(p.consented_at)} for p in parts
        ],
        "streams": stream_docs,
        "segments_total": sum(d["segments"] for d in stream_docs),
        "events": [
            {"kind": e.kind, "at": _iso(e.at), "pts_ms": e.pts_ms, "actor": e.actor, "reason": e.reason}
            for e in events
        ],
    }


async def finalize(
    db: Database,
    storage: RecordingStorage,
    signing_key: Ed25519PrivateKey,
    recording_id: str,
    hashes: dict[str, list[str]],
    *,
    actor: str,
) -> dict[str, Any]:
    """Build, sign and store the manifest (storage object `manifest.json` and the recording's row); audit it."""
    async with db.session() as s:
        body = await build_manifest(s, recording_id, hashes)
        doc = sign_manifest(body, signing_key)
        rec = await s.get(Recording, recording_id)
        assert rec is not None
        rec.manifest = json.dumps(doc, ensure_ascii=False, sort_keys=True)
        await audit.append(
            s,
            actor=actor,
            action="recording.manifest",
            subject=f"recording:{recording_id}",
            detail={
                "sha256": sha256_hex(canonical_json(body)),
                "status": body["status"],
                "segments": body["segments_total"],
            },
        )
    await storage.put_object(recording_id, "manifest.json", canonical_json(doc))
    return doc
