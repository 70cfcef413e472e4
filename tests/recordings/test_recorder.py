"""The recorder: consent gating, pause/resume in one recording, manifest, nothing in plaintext on disk."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from rec_helpers import decrypt_to, record
from rec_packets import Pkt, av_packets, decoded_duration, ffprobe_json
from sqlalchemy import select

from mediation import audit
from mediation.db import Database
from mediation.errors import Conflict, IntegrityError, InvalidInput
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingStream
from recordings import keys
from recordings.manifest import check_stream, verify_manifest
from recordings.recorder import Participant, Recorder
from recordings.storage import LocalStorage

EBML = bytes.fromhex("1a45dfa3")


@pytest.fixture(scope="module")
def two_sources() -> dict[str, list[Pkt]]:
    # a keyframe every 2/3 s stands in for the keyframe the caller requests (PLI) after a resume
    return {
        "alice": av_packets(4.0, gop=10),
        "bob": av_packets(3.0, offset_ms=1000, width=240, height=180, gop=10),
    }


async def test_consent_is_required(db: Database, keyring: KeyRing, storage: LocalStorage) -> None:
    with pytest.raises(Conflict):
        await Recorder.start(
            db=db,
            storage=storage,
            keyring=keyring,
            session_id="s",
            case_code="C",
            participants=[Participant("a", "A", True), Participant("b", "B", False)],
            actor="m",
            reason="r",
        )
    async with db.session() as s:
        assert (await s.scalars(select(Recording))).all() == []
    rec = await Recorder.start(
        db=db,
        storage=storage,
        keyring=keyring,
        session_id="s",
        case_code="C",
        participants=[Participant("a", "A", True)],
        actor="m",
        reason="consented",
    )
    with pytest.raises(Conflict):
        await rec.add_participant(Participant("c", "C", False), actor="m")
    assert await rec.write("c", "audio", b"\xf8\xff\xfe", 20, True) is False  # not admitted: not recorded
    with pytest.raises(InvalidInput):
        await rec.pause("", actor="m")
    await rec.pause("break", actor="m")
    with pytest.raises(Conflict):
        await rec.pause("again", actor="m")
    assert await rec.write("a", "audio", b"\xf8\xff\xfe", 40, True) is False  # paused: not recorded
    doc = await rec.stop("done", actor="m")
    assert [p["source_id"] for p in doc["manifest"]["participants"]] == ["a"]
    assert await storage.list_streams(rec.recording_id) == []


async def test_recording_with_pause_resume(
    db: Database, keyring: KeyRing, storage: LocalStorage, two_sources: dict[str, list[Pkt]], tmp_path: Path
) -> None:
    rec, doc, counts = await record(db, storage, keyring, two_sources, pauses=[(2000, 2600)], late=["bob"])
    rid = rec.recording_id
    body = verify_manifest(doc, keyring.public_key)
    assert body["status"] == "stopped" and body["privileged"] is False
    assert [(e["kind"], e["reason"]) for e in body["events"]] == [
        ("start", "all parties consented"),
        ("source_added", None),
        ("pause", "private matter"),
        ("resume", "back on the record"),
        ("stop", "session ended"),
    ]
    assert body["events"][2]["pts_ms"] == 2000 and body["duration_ms"] >= 3900
    assert counts["dropped"] > 0 and counts["recorded"] > 0
    streams = {s["stream_id"]: s for s in body["streams"]}
    assert set(streams) == {
        "alice.0",
        "alice.1",
        "bob.0",
        "bob.1",
    }  # one recording, new parts after the pause
    assert all(s["status"] == "complete" and s["kinds"] == ["audio", "video"] for s in streams.values())
    assert streams["bob.0"]["width"] == 240 and streams["alice.1"]["first_pts_ms"] >= 2600

    async with db.session() as s:
        entries = await audit.entries_for(s, f"recording:{rid}")
        seg_hashes = [e.to_dict()["detail"]["sha256"] for e in entries if e.action == "recording.segment"]
        assert (await audit.verify(s)).ok
        rows = (await s.scalars(select(RecordingStream).where(RecordingStream.recording_id == rid))).all()
        assert {r.stream_id: r.segments for r in rows} == {k: v["segments"] for k, v in streams.items()}
    assert sorted(seg_hashes) == sorted(h for s in streams.values() for h in s["segment_sha256"])
    assert body["segments_total"] == len(seg_hashes) > 8  # clusters of <= 1 s each

    for sid in streams:
        stored = b"".join([c async for c in storage.read_stream(rid, sid)])
        assert check_stream(body, sid, stored) == []
        out = tmp_path / f"{sid}.mkv"
        status = await decrypt_to(db, storage, keyring, rid, sid, out)
        assert status.complete
        probe = ffprobe_json(str(out))
        kinds = sorted(st["codec_name"] for st in probe["streams"])  # type: ignore[index]
        assert kinds == ["opus", "vp8"]
    assert 1.3 <= decoded_duration(str(tmp_path / "alice.0.mkv")) <= 2.1
    assert 3.8 <= decoded_duration(str(tmp_path / "alice.1.mkv")) <= 4.2  # absolute times on the common clock

    tampered = dict(doc)
    tampered["manifest"] = {**body, "duration_ms": 1}
    with pytest.raises(IntegrityError):
        verify_manifest(tampered, keyring.public_key)
    assert (await storage.get_object(rid, "manifest.json")) is not None


async def test_privileged_flag_is_kept(db: Database, keyring: KeyRing, storage: LocalStorage) -> None:
    rec, doc, _ = await record(db, storage, keyring, {"a": await asyncio.to_thread(av_packets, 1.0)}, privileged=True)
    assert verify_manifest(doc, keyring.public_key)["privileged"] is True
    async with db.session() as s:
        row = await s.get(Recording, rec.recording_id)
        assert row is not None and row.privileged


async def test_audio_only_source_and_late_video(
    db: Database, keyring: KeyRing, storage: LocalStorage
) -> None:
    audio = [p for p in await asyncio.to_thread(av_packets, 3.0) if p.kind == "audio"]
    video = [p for p in await asyncio.to_thread(av_packets, 1.0, offset_ms=2500, gop=5) if p.kind == "video"]
    _rec, doc, _ = await record(db, storage, keyring, {"a": audio + video})
    streams = verify_manifest(doc, keyring.public_key)["streams"]
    assert [(s["stream_id"], s["kinds"]) for s in streams] == [
        ("a.0", ["audio"]),
        ("a.1", ["audio", "video"]),
    ]
    assert streams[0]["first_pts_ms"] == 0 and streams[1]["first_pts_ms"] >= 2500


async def test_nothing_in_plaintext_under_the_data_dir(
    db: Database, keyring: KeyRing, storage: LocalStorage, data_dir: Path, two_sources: dict[str, list[Pkt]]
) -> None:
    rec, _, _ = await record(db, storage, keyring, two_sources)
    async with db.session() as s:
        data_key = await keys.load_data_key(s, keyring, rec.recording_id)
    secrets_ = [
        data_key,
        *keyring.master_keys.values(),
        keyring.signing_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        ),
    ]
    files = [Path(root) / f for root, _, names in os.walk(data_dir) for f in names]
    assert any(f.suffix == ".odr" for f in files) and any(f.name == "t.db" for f in files)
    for f in files:
        blob = f.read_bytes()
        assert EBML not in blob, f
        for sec in secrets_:
            assert sec not in blob, f
        assert (f.stat().st_mode & 0o077) == 0 or f.name.startswith("t.db"), f


async def test_pause_and_departures_while_frames_arrive(
    db: Database, keyring: KeyRing, storage: LocalStorage, two_sources: dict[str, list[Pkt]]
) -> None:
    """The media pump writes frames while the session's events pause, resume and end sources (a check-then-write
    across awaits: before the recorder's lock, a frame landed on a stream the writer had not opened yet, KeyError,
    or on a muxer already closed, "no video track in this stream"). Every call succeeds and every stream is whole."""
    rec = await Recorder.start(db=db, storage=storage, keyring=keyring, session_id="s", case_code="C",
                               participants=[Participant(sid, sid, True) for sid in two_sources],
                               actor="m", reason="consented")

    async def pump(sid: str, pkts: list[Pkt]) -> int:
        written = 0
        for p in pkts:
            written += await rec.write(sid, p.kind, p.data, p.pts_ms, p.keyframe)
            await asyncio.sleep(0)
        return written

    async def control() -> int:
        changes = 0
        for _ in range(8):
            for _ in range(3):
                await asyncio.sleep(0)
            await rec.pause("休息", actor="m")
            await asyncio.sleep(0)
            await rec.resume("继续", actor="m")
            await rec.end_source("alice")  # she left; her next keyframe starts a new part
            changes += 3
        return changes

    written_a, written_b, changes = await asyncio.gather(
        pump("alice", two_sources["alice"]), pump("bob", two_sources["bob"]), control())
    doc = await rec.stop("session ended", actor="m")
    body = verify_manifest(doc, keyring.public_key)
    assert changes == 24 and written_a > 0 and written_b > 0
    assert len(body["streams"]) > 2  # new parts after pauses and departures
    for sid in [st["stream_id"] for st in body["streams"]]:
        stored = b"".join([c async for c in storage.read_stream(rec.recording_id, sid)])
        assert check_stream(body, sid, stored) == []
