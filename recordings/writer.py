"""The encrypting segment writer: plaintext chunks in, sealed + fsynced segments out, each hash in the audit log.

`SegmentWriter` serves one recording (one data key, many streams). `put()` is called on the event loop with the
bytes the muxer emitted (whole Matroska clusters, at most ~1 s of media each); each call becomes one segment (or
several when a chunk exceeds 1 MiB). A single worker task seals (AES-GCM, in a worker thread), stores through the
storage backend (flush + fsync, in a worker thread), then appends the segment's SHA-256 to the audit log, in
that order: an audit entry always names a segment that is already durable. Audit entries of the segments stored
within `audit_delay` (0.5 s) of the first one not yet audited, typically one per stream per second, are committed
in one transaction (three statements in all): the database work, not the crypto, was the cost of recording.

Back-pressure, not loss: the queue between `put()` and the worker is bounded (`max_pending` segments). When it is
full, `put()` waits until the worker catches up, which slows the recorder participant's own consumption (the
media hub's per-subscriber queue then decides what a slow subscriber loses; other participants are unaffected).
If the worker fails (disk full, store unreachable), every later `put()` raises `RecordingFailed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass, field

from sqlalchemy import update

from mediation import audit
from mediation.db import Database, transient
from mediation.errors import OneDoorError
from mediation.recording_records import RecordingStream
from recordings.segment import MAX_PLAINTEXT, NONCE_PREFIX_LEN, Header, SegmentSealer, frame_sha256
from recordings.storage import RecordingStorage, check_name

log = logging.getLogger(__name__)

_BATCH = 16  # segments written back to back before their audit entries are committed together
AUDIT_PATIENCE = 120.0  # s: how long audit entries wait for a database that is away or busy before the recording fails
AUDIT_RETRY = 1.0  # s between tries meanwhile


class RecordingFailed(OneDoorError):
    code = "recording_failed"
    status = 500


@dataclass
class _Stream:
    sealer: SegmentSealer
    header_sha256: str
    hashes: list[str] = field(default_factory=list)
    queued_last: bool = False


@dataclass
class _Job:
    stream_id: str
    plaintext: bytes
    last: bool
    last_pts_ms: int | None


class SegmentWriter:
    def __init__(
        self,
        db: Database,
        storage: RecordingStorage,
        *,
        recording_id: str,
        session_id: str,
        key_id: str,
        data_key: bytes,
        actor: str = "recorder",
        max_pending: int = 16,
        audit_delay: float = 0.5,
    ) -> None:
        self.db, self.storage = db, storage
        self.recording_id, self.session_id, self.key_id = recording_id, session_id, key_id
        self._data_key = data_key
        self.actor = actor
        self.audit_delay = audit_delay
        self.streams: dict[str, _Stream] = {}
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=max_pending)
        self._worker = asyncio.create_task(self._run(), name=f"recording-writer-{recording_id}")
        self.error: BaseException | None = None
        self.audit_failing_since: float | None = None  # loop time of the first failed try of the current outage

    async def open_stream(
        self,
        stream_id: str,
        *,
        source_id: str,
        part: int,
        kinds: str,
        width: int | None = None,
        height: int | None = None,
        first_pts_ms: int | None = None,
    ) -> None:
        """Create the stream: header stored (fsynced) and its row written before any segment is queued."""
        self._check()
        header = Header(
            self.recording_id,
            check_name(stream_id),
            self.session_id,
            self.key_id,
            secrets.token_bytes(NONCE_PREFIX_LEN),
        )
        raw = header.to_bytes()
        await self.storage.create_stream(self.recording_id, stream_id, raw)
        h = hashlib.sha256(raw).hexdigest()
        async with self.db.session() as s:
            s.add(
                RecordingStream(
                    recording_id=self.recording_id,
                    stream_id=stream_id,
                    source_id=source_id,
                    part=part,
                    kinds=kinds,
                    width=width,
                    height=height,
                    first_pts_ms=first_pts_ms,
                    header_sha256=h,
                )
            )
        self.streams[stream_id] = _Stream(SegmentSealer(self._data_key, header), h)

    async def put(
        self, stream_id: str, plaintext: bytes, *, last: bool = False, last_pts_ms: int | None = None
    ) -> None:
        """Queue `plaintext` as the stream's next segment(s); `last=True` finishes the stream (may be empty)."""
        self._check()
        st = self.streams[stream_id]
        if st.queued_last:
            raise RecordingFailed("stream already finished", stream=stream_id)
        pieces = [plaintext[i : i + MAX_PLAINTEXT] for i in range(0, len(plaintext), MAX_PLAINTEXT)] or [b""]
        for i, piece in enumerate(pieces):
            final = last and i == len(pieces) - 1
            await self._queue.put(_Job(stream_id, piece, final, last_pts_ms if final else None))
        st.queued_last = last

    async def drain(self) -> None:
        await self._queue.join()
        self._check()

    async def close(self) -> None:
        """Write everything queued, then stop the worker."""
        if not self._worker.done():
            await self._queue.put(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._check()

    def abort(self) -> None:
        self._worker.cancel()

    def _check(self) -> None:
        if self.error is not None:
            raise RecordingFailed("recording storage failed", recording=self.recording_id) from self.error

    async def _run(self) -> None:
        """Store each segment as soon as it comes; audit stored segments together, at the latest `audit_delay`
        after the first of them was stored (several streams' segments then share one transaction), at once for a
        stream's last segment, at `_BATCH`, and at close. A queue item counts as done (drain()) only once audited.
        The deadline runs from the first unaudited segment, not from the latest arrival: with six streams cutting
        a segment each second the queue is never quiet for `audit_delay`, and waiting for a quiet moment left the
        audit (and a crashed recording's finalized length, recordings/recover.py) ~2.7 s behind the disk."""
        loop = asyncio.get_running_loop()
        stored: list[tuple[_Job, int, str, int]] = []
        due = 0.0  # loop time by which what is in `stored` is audited
        owed = 0
        while True:
            try:
                first = await (asyncio.wait_for(self._queue.get(), max(0.0, due - loop.time())) if stored
                               else self._queue.get())
            except TimeoutError:
                owed = await self._flush(stored, owed)
                due = loop.time() + AUDIT_RETRY  # used only if the database was away (`stored` kept)
                continue
            batch = [first]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            owed += len(batch)
            jobs = [j for j in batch if j is not None]
            waiting = bool(stored)
            try:
                if jobs and self.error is None:
                    stored += await self._store(jobs)
            except Exception as e:  # storage errors: stop writing, surface on the next put()
                log.exception("recording %s: segment write failed", self.recording_id)
                self.error = e
            if stored and not waiting:
                due = loop.time() + self.audit_delay
            full = len(stored) >= _BATCH and self.audit_failing_since is None  # (an outage retries on `due`)
            if (None in batch or full or any(j.last for j in jobs) or self.error is not None
                    or (stored and loop.time() >= due)):
                owed = await self._flush(stored, owed)
                if stored:  # the database is away: stored segments wait for the next try
                    due = loop.time() + AUDIT_RETRY
            if None in batch:
                while stored:  # closing: the last entries get the same patience
                    await asyncio.sleep(AUDIT_RETRY)
                    owed = await self._flush(stored, owed)
                return

    async def _flush(self, stored: list[tuple[_Job, int, str, int]], owed: int) -> int:
        """Audit what is stored; returns what is still owed to drain(). A database that is unreachable or busy
        past its timeout (`mediation.db.transient`) leaves the entries in `stored` for the next try, for up to
        `AUDIT_PATIENCE`: the segments are durable already, and a database restart must not end a recording.
        Any other failure, or a longer outage, fails the recording (every later put() raises)."""
        loop = asyncio.get_running_loop()
        try:
            if stored and self.error is None:
                await self._audit(stored)
        except Exception as e:
            since = loop.time() if self.audit_failing_since is None else self.audit_failing_since
            if transient(e) and loop.time() - since < AUDIT_PATIENCE:
                if self.audit_failing_since is None:
                    log.warning("recording %s: the database is unavailable (%s); %d stored segments' audit entries "
                                "wait", self.recording_id, type(e).__name__, len(stored))
                self.audit_failing_since = since
                return owed
            log.exception("recording %s: segment audit failed", self.recording_id)
            self.error = e
        if self.audit_failing_since is not None and self.error is None:
            log.warning("recording %s: audit entries written again after %.1f s", self.recording_id,
                        loop.time() - self.audit_failing_since)
        self.audit_failing_since = None
        stored.clear()
        for _ in range(owed):
            self._queue.task_done()
        return 0

    async def _store(self, jobs: list[_Job]) -> list[tuple[_Job, int, str, int]]:
        """Seal and store each job: durable (fsynced) before anything else happens."""
        done = []
        for job in jobs:
            st = self.streams[job.stream_id]
            frame = await asyncio.to_thread(st.sealer.seal, job.plaintext, last=job.last)
            job.plaintext = b""  # sealed: the media need not stay in memory while its audit entry waits
            index = st.sealer.counter - 1
            await self.storage.append_segment(self.recording_id, job.stream_id, index, frame)
            digest = frame_sha256(frame)
            st.hashes.append(digest)
            done.append((job, index, digest, len(frame)))
        return done

    async def _audit(self, done: list[tuple[_Job, int, str, int]]) -> None:
        """Every stored segment's SHA-256 into the audit log, in one transaction."""
        async with self.db.session() as s:
            await audit.append_many(s, [
                {"actor": self.actor, "action": "recording.segment", "subject": f"recording:{self.recording_id}",
                 "detail": {"stream": job.stream_id, "index": index, "sha256": digest, "bytes": size,
                            "last": job.last}}
                for job, index, digest, size in done
            ])
            for job, index, _digest, _size in done:
                if job.last:  # the running count is in the audit log; the row is settled when the stream ends
                    await s.execute(
                        update(RecordingStream)
                        .where(
                            RecordingStream.recording_id == self.recording_id,
                            RecordingStream.stream_id == job.stream_id,
                        )
                        .values(segments=index + 1, status="complete", last_pts_ms=job.last_pts_ms)
                    )
