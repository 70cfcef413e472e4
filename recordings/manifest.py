"""The signed recording manifest, written when a recording stops (or is finalized by recovery).

Document (JSON)::

    {"manifest": BODY, "signature": {"alg": "Ed25519", "public_key": b64(raw 32 bytes), "fingerprint": ...,
                                     "value": b64(Ed25519(center_key, canonical_json(BODY)))}}

BODY names the recording, case and session, `privileged` (caucus recording, R9), status ("stopped" or
"truncated"), start/stop wall-clock times and duration, the data key id, the participants with their consent
time, every stream with its segment count, header hash and the SHA-256 of every stored frame in order, and every
start/pause/resume/stop/truncated event with actor and reason (R12). `verify_manifest()` and
`check_stream()` need no database and no recording key: a court can run them offline on the stored bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import Database
from mediation.errors import IntegrityError, NotFound
from mediation.keyring import public_key_fingerprint
from mediation.recording_records import Recording, RecordingEvent, RecordingParticipant, RecordingStream
from recordings.segment import walk_frames
from recordings.storage import RecordingStorage

MANIFEST_TYPE = "onedoor-recording-manifest"
MANIFEST_VERSION = 1


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


def sign_manifest(body: dict[str, Any], signing_key: Ed25519PrivateKey) -> dict[str, Any]:
    pub = signing_key.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sig = signing_key.sign(canonical_json(body))
    return {
        "manifest": body,
        "signature": {
            "alg": "Ed25519",
            "public_key": base64.b64encode(raw).decode(),
            "fingerprint": public_key_fingerprint(pub),
            "value": base64.b64encode(sig).decode(),
        },
    }


def verify_manifest(
    doc: dict[str, Any] | bytes | str, public_key: Ed25519PublicKey | bytes | None = None
) -> dict[str, Any]:
    """Check the signature and return BODY; raises `IntegrityError`.

    Pass the center's public key (as published to the court): without it only integrity is checked against the
    key embedded in the document, which proves nothing about who signed.
    """
    try:
        d = json.loads(doc) if isinstance(doc, bytes | str) else doc
        body, sig = d["manifest"], d["signature"]
        embedded = base64.b64decode(sig["public_key"], validate=True)
        value = base64.b64decode(sig["value"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise IntegrityError("malformed recording manifest") from e
    if sig.get("alg") != "Ed25519" or body.get("type") != MANIFEST_TYPE:
        raise IntegrityError("not a OneDoor recording manifest")
    if public_key is not None:
        expected = (
            public_key
            if isinstance(public_key, bytes)
            else public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        if expected != embedded:
            raise IntegrityError("manifest signed by another key")
    try:
        Ed25519PublicKey.from_public_bytes(embedded).verify(value, canonical_json(body))
    except (InvalidSignature, ValueError) as e:
        raise IntegrityError("recording manifest signature invalid") from e
    return dict(body)


def check_stream(body: dict[str, Any], stream_id: str, data: bytes) -> list[str]:
    """Compare one stored stream's bytes with the manifest, without the key; return the problems found."""
    entry = next((s for s in body["streams"] if s["stream_id"] == stream_id), None)
    if entry is None:
        return [f"{stream_id}: not in the manifest"]
    try:
        header, frames = walk_frames(data)
    except IntegrityError as e:
        return [f"{stream_id}: {e.message}"]
    problems = []
    if hashlib.sha256(header.to_bytes()).hexdigest() != entry["header_sha256"]:
        problems.append(f"{stream_id}: header differs from the manifest")
    got = [hashlib.sha256(f).hexdigest() for f in frames]
    want = entry["segment_sha256"]
    for k in range(max(len(got), len(want))):
        if k >= len(got) or k >= len(want) or got[k] != want[k]:
            problems.append(
                f"{stream_id}: segment {k} differs from the manifest (stored {len(got)}, "
                f"manifest {len(want)})"
            )
            break
    return problems


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
