"""Driving a real Recorder with real encoded packets on a controlled clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rec_packets import Pkt

from mediation.db import Database
from mediation.keyring import KeyRing
from recordings.reader import DecryptedStream, authorize_read
from recordings.recorder import Participant, Recorder, RecorderSettings
from recordings.storage import RecordingStorage


@dataclass
class Clock:
    t: float = 0.0

    def __call__(self) -> float:
        return self.t


async def record(
    db: Database,
    storage: RecordingStorage,
    keyring: KeyRing,
    sources: dict[str, list[Pkt]],
    *,
    pauses: Iterable[tuple[int, int]] = (),
    privileged: bool = False,
    late: Iterable[str] = (),
) -> tuple[Recorder, dict[str, Any], dict[str, int]]:
    """Record `sources` (all packets merged by time); pause over each (from_ms, to_ms). Returns counts."""
    clock = Clock()
    late = set(late)
    rec = await Recorder.start(
        db=db,
        storage=storage,
        keyring=keyring,
        session_id="sess-1",
        case_code="QH-HX-2026-000123",
        participants=[Participant(s, f"Person {s}", consented=True) for s in sources if s not in late],
        actor="mediator:1",
        reason="all parties consented",
        privileged=privileged,
        settings=RecorderSettings(clock=clock),
    )
    merged = sorted(((p, sid) for sid, pk in sources.items() for p in pk), key=lambda x: x[0].pts_ms)
    pending = sorted(pauses)
    counts = {"recorded": 0, "dropped": 0}
    for p, sid in merged:
        clock.t = p.pts_ms / 1000
        while pending and rec.state == "recording" and p.pts_ms >= pending[0][0]:
            await rec.pause("private matter", actor="mediator:1")
        if pending and rec.state == "paused" and p.pts_ms >= pending[0][1]:
            await rec.resume("back on the record", actor="mediator:1")
            pending.pop(0)
        if sid in late:
            late.discard(sid)
            await rec.add_participant(Participant(sid, f"Person {sid}", consented=True), actor="mediator:1")
        ok = await rec.write(sid, p.kind, p.data, p.pts_ms, p.keyframe)
        counts["recorded" if ok else "dropped"] += 1
    doc = await rec.stop("session ended", actor="mediator:1")
    return rec, doc, counts


async def decrypt_to(
    db: Database, storage: RecordingStorage, keyring: KeyRing, rid: str, stream_id: str, out: Path
) -> Any:
    key = await authorize_read(db, keyring, rid, actor="test", reason="check the recording")
    stream = DecryptedStream(storage, key, rid, stream_id)
    with out.open("wb") as f:
        async for chunk in stream:
            f.write(chunk)
    return stream.status
