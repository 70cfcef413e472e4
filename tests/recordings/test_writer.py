"""The segment writer: bounded queue with back-pressure, storage failure surfaces, every segment audited."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from mediation import audit
from mediation.db import Base, Database
from mediation.keyring import KeyRing
from mediation.recording_records import Recording
from recordings import keys
from recordings.reader import verify_stream
from recordings.storage import LocalStorage
from recordings.writer import _BATCH, RecordingFailed, SegmentWriter


class GatedStorage(LocalStorage):
    """Real local storage whose appends wait for a gate: a disk that stalls."""

    def __init__(self, *a: object) -> None:
        super().__init__(*a)  # type: ignore[arg-type]
        self.gate = asyncio.Event()

    async def append_segment(
        self, recording_id: str, stream_id: str, index: int, frame: bytes | bytearray
    ) -> None:
        await self.gate.wait()
        await super().append_segment(recording_id, stream_id, index, frame)


async def new_writer(
    db: Database, keyring: KeyRing, storage: LocalStorage, max_pending: int
) -> SegmentWriter:
    async with db.session() as s:
        s.add(Recording(id="rec-w", session_id="s", case_code="C", data_key_id="dk-1"))
        await s.flush()
        dk = await keys.create_data_key(s, keyring, "rec-w")
    w = SegmentWriter(
        db, storage, recording_id="rec-w", session_id="s", key_id="dk-1", data_key=dk, max_pending=max_pending
    )
    await w.open_stream("a.0", source_id="a", part=0, kinds="audio")
    return w


async def test_back_pressure_when_full(db: Database, keyring: KeyRing, storage: LocalStorage) -> None:
    gated = GatedStorage(storage.root)
    w = await new_writer(db, keyring, gated, max_pending=2)
    accepted = 0
    while True:  # the disk stalls: puts are accepted until the bounded queue is full, then they wait
        blocked = asyncio.create_task(w.put("a.0", bytes([accepted]) * 100))
        await asyncio.sleep(0.05)
        if not blocked.done():
            break
        accepted += 1
        assert accepted <= 2 + _BATCH  # bounded: the queue (2) plus one batch in the worker
    gated.gate.set()
    await blocked
    await w.put("a.0", b"", last=True)
    await w.close()
    async with db.session() as s:
        dk = await keys.load_data_key(s, keyring, "rec-w")
    status = await verify_stream(gated, dk, "rec-w", "a.0")
    assert (
        status.complete and status.segments == accepted + 2 and w.streams["a.0"].hashes == status.frame_hashes
    )


async def test_big_chunks_are_split_at_1_mib(db: Database, keyring: KeyRing, storage: LocalStorage) -> None:
    w = await new_writer(db, keyring, storage, max_pending=4)
    await w.put("a.0", b"\0" * (2 * 1024 * 1024 + 5), last=True)
    await w.close()
    async with db.session() as s:
        dk = await keys.load_data_key(s, keyring, "rec-w")
    status = await verify_stream(storage, dk, "rec-w", "a.0")
    assert status.complete and status.segments == 3


async def test_storage_failure_surfaces(db: Database, keyring: KeyRing, storage: LocalStorage) -> None:
    w = await new_writer(db, keyring, storage, max_pending=4)
    await w.put("a.0", b"first")
    await w.drain()
    await asyncio.to_thread(shutil.rmtree, storage.root / "rec-w")  # the disk goes away
    await w.put("a.0", b"second")
    with pytest.raises(RecordingFailed):
        await w.drain()
    with pytest.raises(RecordingFailed):
        await w.put("a.0", b"third")
    with pytest.raises(RecordingFailed):
        await w.close()


async def test_segments_are_audited_within_the_delay_while_more_keep_coming(
    db: Database, keyring: KeyRing, storage: LocalStorage
) -> None:
    """Six streams cut a segment each second, so the writer's queue is never quiet for `audit_delay`: the audit
    must not wait for a quiet moment (it did, and fell ~2.7 s behind the disk: a recording killed then was
    finalized that much short, tests/session/test_crash.py). Segments keep coming every 0.1 s, fewer than
    `_BATCH`: the first ones' audit entries are committed while they still come."""
    w = await new_writer(db, keyring, storage, max_pending=32)
    audited = 0
    for i in range(_BATCH - 1):
        await w.put("a.0", b"cluster %d" % i)
        await asyncio.sleep(0.1)
        async with db.session() as s:
            audited = len([e for e in await audit.entries_for(s, "recording:rec-w") if e.action == "recording.segment"])
        if audited:
            break
    assert audited > 0, f"nothing audited after {_BATCH - 1} segments 0.1 s apart (audit_delay {w.audit_delay} s)"
    await w.close()
    async with db.session() as s:
        entries = [e for e in await audit.entries_for(s, "recording:rec-w") if e.action == "recording.segment"]
    assert [json.loads(e.detail)["index"] for e in entries] == list(range(i + 1))  # every one, once, in order


async def test_audit_waits_out_a_database_that_is_busy(tmp_path: Path, keyring: KeyRing, storage: LocalStorage) -> None:
    """Another process holds SQLite's write lock for longer than the busy timeout (as a long CLI command or a
    stalled node could): the writer keeps storing segments, retries their audit entries, and once the lock is
    free every segment is audited; the recording does not fail (it did: one "database is locked" ended it)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
    db = Database(url, busy_timeout=0.2)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        w = await new_writer(db, keyring, storage, max_pending=32)
        blocker = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, held
        try:
            for i in range(6):
                await w.put("a.0", b"cluster %d" % i)
                await asyncio.sleep(0.4)
            assert w.audit_failing_since is not None and w.error is None  # tried, failed, waiting
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await w.put("a.0", b"after", last=True)
        await w.close()
        async with db.session() as s:
            entries = [e for e in await audit.entries_for(s, "recording:rec-w") if e.action == "recording.segment"]
        assert [json.loads(e.detail)["index"] for e in entries] == list(range(7))
        assert w.audit_failing_since is None
    finally:
        await db.close()
