"""Running one export job, and reading its result back (issue 14 item 5; the queue is recordings/export_queue.py).

The worker claims the job (mediation.export_jobs, fenced by the attempt number), runs the export
(`recordings.export.export_stream`: ffmpeg reads the decrypted streams from pipes and writes to its stdout), and
encrypts what ffmpeg writes as it arrives: the output is one stream of the recording segment format
(`recordings.segment`: STREAM construction, AES-256-GCM, 1 MiB segments, the last one flagged) under a fresh
data key, header (recording_id = job id, stream_id = `a<attempt>`, session_id = the recording id, key_id = job
id), appended segment by segment to the export storage (`<data_dir>/exports` or the S3 prefix `exports/`), so
any node can serve it and no plaintext byte of the export is ever on disk (issue 10). The data key is stored
only wrapped by the center's current master key (`recordings.keywrap.master_wrap` with the job id).

The download (`decrypted`) authenticates and decrypts segment by segment while streaming; a stream that does
not end with its authentic last segment raises `IntegrityError` (the response is cut, never completed).

A finished export is kept `keep` (the `export_keep_days` setting) and then deleted (`expire`): the stored object
first, then the job marked `expired` with its wrapped key wiped (a failure in between leaves it `done`, deleted
again at the next round).

Grid exports are fragmented MP4 (H.264 + AAC: plays in browsers and every player), raw exports Matroska (the
original VP8/Opus tracks).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

from mediation import export_jobs
from mediation.db import Database, utcnow
from mediation.errors import IntegrityError, OneDoorError
from mediation.keyring import KeyRing
from recordings.decrypt import DecryptedStream
from recordings.export import export_stream
from recordings.keywrap import DATA_KEY_LEN, master_unwrap, master_wrap
from recordings.segment import MAX_PLAINTEXT, NONCE_PREFIX_LEN, Header, SegmentSealer
from recordings.storage import RecordingStorage

log = logging.getLogger(__name__)
PROGRESS_EVERY = 0.25  # seconds between progress writes to the database


class SealedWriter:
    """Encrypt a byte stream as it comes into the segment format, appending each sealed segment to storage.
    At most two segments of plaintext are held in memory (the last one is sealed with the `last` flag)."""

    def __init__(self, storage: RecordingStorage, data_key: bytes, object_id: str, stream_id: str,
                 context: str) -> None:
        self.storage, self.object_id, self.stream_id = storage, object_id, stream_id
        header = Header(recording_id=object_id, stream_id=stream_id, session_id=context, key_id=object_id,
                        nonce_prefix=secrets.token_bytes(NONCE_PREFIX_LEN))
        self._sealer = SegmentSealer(data_key, header)
        self._buf = bytearray()
        self._index = 0
        self.sha256 = hashlib.sha256()
        self.size = 0

    async def open(self) -> None:
        await self.storage.create_stream(self.object_id, self.stream_id, self._sealer.header_bytes)

    async def _emit(self, plaintext: bytes, *, last: bool) -> None:
        frame = self._sealer.seal(plaintext, last=last)
        await self.storage.append_segment(self.object_id, self.stream_id, self._index, frame)
        self._index += 1

    async def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        self._buf += data
        # keep more than one segment back: the final segment must carry the `last` flag
        while len(self._buf) > MAX_PLAINTEXT:
            chunk = bytes(self._buf[:MAX_PLAINTEXT])
            del self._buf[:MAX_PLAINTEXT]
            await self._emit(chunk, last=False)

    async def close(self) -> None:
        await self._emit(bytes(self._buf), last=True)
        self._buf.clear()


async def run(db: Database, storage: RecordingStorage, exports: RecordingStorage, keyring: KeyRing, job_id: str, *,
              node: str, beat: Callable[[float], Awaitable[None]] | None = None, ffmpeg: str = "ffmpeg") -> str:
    """Run one job to its end; returns its final status ("done", "failed", or "skipped" when it was not ours to
    run). A known failure (no media, no key, ffmpeg refusing) ends the job `failed` with its code; cancellation
    (the node stops) leaves it `running` for the queue to hand out again."""
    claim = await export_jobs.claim(db, job_id, node)
    if claim is None:
        return "skipped"
    stream_id = f"a{claim.attempt}"
    if claim.attempt > 1:  # what an earlier attempt (a lost node) left is never served: start clean
        await exports.delete_recording(job_id)
    data_key = secrets.token_bytes(DATA_KEY_LEN)
    out = SealedWriter(exports, data_key, job_id, stream_id, claim.recording_id)
    seen = {"now": 0.0, "written": 0.0}

    def on_progress(p: float) -> None:  # ffmpeg's position, as often as it reports it
        seen["now"] = max(seen["now"], p)

    async def report() -> None:
        """Every PROGRESS_EVERY s, the progress if it moved: on a clock of its own, not at ffmpeg's output (a
        fragmented MP4 may come out in a few large pieces, the last at the very end)."""
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            p = seen["now"]
            if p > seen["written"]:
                seen["written"] = p
                await export_jobs.set_progress(db, job_id, claim.attempt, min(p, 0.99))
                if beat is not None:
                    await beat(p)

    media_type = "video/x-matroska" if claim.raw else "video/mp4"
    try:
        await out.open()
        chunks = export_stream(db, storage, keyring, claim.recording_id, actor=claim.requested_by,
                               reason=claim.reason, raw=claim.raw, fmt="mp4", progress=on_progress, ffmpeg=ffmpeg)
        reporter = asyncio.create_task(report())
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    await out.write(chunk)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)  # a failed progress write is not the job's
        await out.close()
    except OneDoorError as e:
        log.warning("export job %s failed: %s %s", job_id, e.code, e.detail)
        await export_jobs.fail(db, job_id, claim.attempt, code=e.code, problem=f"{e.message} {e.detail}")
        await exports.delete_recording(job_id)
        return "failed"
    except Exception as e:  # a job ends with a status, whatever went wrong; the traceback is logged
        log.exception("export job %s failed", job_id)
        await export_jobs.fail(db, job_id, claim.attempt, code="export_failed", problem=repr(e))
        await exports.delete_recording(job_id)
        return "failed"
    mid = keyring.current_master_id
    ok = await export_jobs.finish(db, job_id, claim.attempt, stream_id=stream_id, sha256=out.sha256.hexdigest(),
                                  size=out.size, media_type=media_type, key_ref=mid,
                                  wrapped_key=master_wrap(keyring.master_keys[mid], mid, job_id, data_key))
    return "done" if ok else "skipped"


async def decrypted(exports: RecordingStorage, keyring: KeyRing, result: export_jobs.Result) -> AsyncIterator[bytes]:
    """The export's plaintext, authenticated segment by segment (nothing written anywhere)."""
    if result.key_ref not in keyring.master_keys:
        raise IntegrityError("the export's master key is not available", code="export_key_missing")
    data_key = master_unwrap(keyring.master_keys[result.key_ref], result.key_ref, result.job_id, result.wrapped_key)
    stream = DecryptedStream(exports, data_key, result.job_id, result.stream_id)
    async for plaintext in stream:
        yield plaintext
    if not stream.status.complete:
        raise IntegrityError("the stored export does not authenticate", code="export_corrupt",
                             status=stream.status.describe())


async def expire(db: Database, exports: RecordingStorage, *, keep: dt.timedelta, actor: str = "export-upkeep",
                 now: dt.datetime | None = None) -> list[str]:
    """Delete the exports that finished more than `keep` ago; the ids this call expired."""
    gone = []
    for job_id in await export_jobs.finished_before(db, (now or utcnow()) - keep):
        await exports.delete_recording(job_id)
        if await export_jobs.mark_expired(db, job_id, actor=actor, keep_days=keep.total_seconds() / 86400):
            log.info("export job %s expired: stored export deleted", job_id)
            gone.append(job_id)
    return gone
