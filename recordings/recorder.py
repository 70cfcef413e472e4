"""The recording API used by the recorder participant (media/ subscribes through the hub and calls this).

    rec = await Recorder.start(db=db, storage=storage, keyring=keyring, session_id=..., case_code=...,
                               participants=[Participant("alice", "Alice", consented=True), ...],
                               actor="mediator:7", reason="all parties consented", privileged=False)
    await rec.add_participant(Participant("bob", "Bob", consented=True), actor="mediator:7")
    recorded: bool = await rec.write("alice", "video", vp8_frame, pts_ms=rec.now_ms(), keyframe=True)
    await rec.pause("private matter", actor="mediator:7");  await rec.resume("back", actor="mediator:7")
    signed_manifest: dict = await rec.stop("session ended", actor="mediator:7")

Consent first: `start()` raises `Conflict` unless every participant passed has consented, and so does
`add_participant()`; packets from a source that was not admitted are not recorded (`write()` returns False).
Whether a caucus is recorded, and then as a separate recording with `privileged=True` (R9), is the caller's
policy; the flag is kept in the recording's row and in its signed manifest.

Packets: `payload` is one complete encoded frame (a depacketized VP8 frame or one Opus packet), `pts_ms` is on
the recording's common clock (milliseconds since start; `now_ms()` at arrival is a fine choice). Nothing is
decoded. Each source becomes an encrypted Matroska stream `<source>.<part>` with its audio and video; a stream is
declared at the source's first VP8 keyframe (its header gives width and height), or audio-only when no keyframe
came within `audio_only_after_ms`. A new part starts after a pause, on a resolution change, and when video
appears in an audio-only stream. While a source waits for a keyframe its video is dropped: the caller should ask
the publisher for one (PLI) for every id in `waiting_for_keyframe()`, e.g. right after `resume()`.

Pause closes every stream cleanly (final segment written), so a pause is also a durable checkpoint.

Several nodes (docs/architecture.md, "Nodes"): `fence` is the owner check (signaling.cluster.ClusterNode.fence)
awaited before anything that starts a part of the recording (the recording, each stream, a continuation) and
before the stop; a node that no longer owns the session gets `StaleOwner` there and writes nothing. When the owner
is lost, the next owner calls `Recorder.continue_part()`: the lost node's streams are settled from storage (valid
segments up to its last fsync counted, the rest truncated), a `node_lost` event marks where its media ends and a
`continued` event where the new part begins (the gap between them), and new streams get the next part numbers on
the same clock (milliseconds since the recording started, by the wall clock).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from mediation import audit
from mediation.db import Database, utcnow
from mediation.errors import Conflict, InvalidInput
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingEvent, RecordingParticipant, RecordingStream
from recordings import keys
from recordings.manifest import finalize
from recordings.muxer import StreamMuxer, vp8_keyframe_size
from recordings.recover import settle_streams
from recordings.sources import SCREEN_LABEL, screen_owner
from recordings.storage import RecordingStorage, check_name
from recordings.writer import SegmentWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Participant:
    source_id: str
    label: str
    consented: bool


@dataclass
class RecorderSettings:
    max_pending_segments: int = 16
    audio_only_after_ms: int = 2000
    max_waiting_audio: int = 200  # packets held per source while waiting for a keyframe
    clock: Callable[[], float] = time.monotonic  # seconds; the common clock is ms since start on this clock


@dataclass
class _Source:
    label: str
    part: int = -1
    muxer: StreamMuxer | None = None
    stream_id: str = ""
    waiting_audio: deque[tuple[bytes, int]] = field(default_factory=deque)
    last_pts: int = 0
    screen: bool = False  # a shared screen (recordings.sources): video only, its own streams
    seen: bool = False  # a screen: frames came since its stream last ended (so it waits for a keyframe)


class Recorder:
    def __init__(
        self,
        db: Database,
        storage: RecordingStorage,
        keyring: KeyRing,
        writer: SegmentWriter,
        recording_id: str,
        settings: RecorderSettings,
    ) -> None:
        self.db, self._storage, self._keyring = db, storage, keyring
        self._writer, self.recording_id, self.settings = writer, recording_id, settings
        self.state = "recording"
        # one change at a time: a frame being muxed (the media pump) and a pause, stop or departure (the session's
        # events) both open and close a source's stream across awaits; interleaved, a frame went to a stream the
        # writer had not opened yet or to a muxer already closed (seen as KeyError / "no video track" on pause)
        self._lock = asyncio.Lock()
        self._clock = settings.clock
        self._t0 = self._clock()
        self._max_pts = 0
        self._sources: dict[str, _Source] = {}
        self.fence: Callable[[], Awaitable[Any]] | None = None
        self._prior: dict[str, list[str]] = {}  # a lost node's streams: their stored segments' hashes

    @classmethod
    async def start(
        cls,
        *,
        db: Database,
        storage: RecordingStorage,
        keyring: KeyRing,
        session_id: str,
        case_code: str,
        participants: Sequence[Participant],
        actor: str,
        reason: str,
        privileged: bool = False,
        record_type: str = "mediation_recording",
        recording_id: str | None = None,
        settings: RecorderSettings | None = None,
        fence: Callable[[], Awaitable[Any]] | None = None,
    ) -> Recorder:
        missing = [p.source_id for p in participants if not p.consented]
        if missing:
            raise Conflict("recording needs the consent of everyone present", not_consented=missing)
        if fence is not None:
            await fence()
        rid = check_name(recording_id or "rec-" + secrets.token_hex(8))
        key_id = keys.new_key_id()
        async with db.session() as s:
            s.add(
                Recording(
                    id=rid,
                    session_id=session_id,
                    case_code=case_code,
                    record_type=record_type,
                    privileged=privileged,
                    status="recording",
                    data_key_id=key_id,
                )
            )
            await s.flush()
            data_key = await keys.create_data_key(s, keyring, rid)
            for p in participants:
                s.add(
                    RecordingParticipant(
                        recording_id=rid,
                        source_id=check_name(p.source_id),
                        label=p.label,
                        consented_at=utcnow(),
                    )
                )
            await _event(
                s,
                rid,
                "start",
                0,
                actor,
                reason,
                {
                    "session": session_id,
                    "case": case_code,
                    "privileged": privileged,
                    "participants": [p.source_id for p in participants],
                },
            )
        writer = SegmentWriter(
            db,
            storage,
            recording_id=rid,
            session_id=session_id,
            key_id=key_id,
            data_key=data_key,
            max_pending=(settings or RecorderSettings()).max_pending_segments,
        )
        rec = cls(db, storage, keyring, writer, rid, settings or RecorderSettings())
        rec.fence = fence
        for p in participants:
            rec._sources[p.source_id] = _Source(p.label)
        log.info("recording %s started (session %s, privileged=%s)", rid, session_id, privileged)
        return rec

    @classmethod
    async def continue_part(
        cls,
        *,
        db: Database,
        storage: RecordingStorage,
        keyring: KeyRing,
        recording_id: str,
        actor: str,
        reason: str,
        settings: RecorderSettings | None = None,
        fence: Callable[[], Awaitable[Any]] | None = None,
    ) -> Recorder:
        """Continue a recording whose node was lost, as its next part (same recording, key and clock)."""
        if fence is not None:
            await fence()
        prior, last_at = await settle_streams(db, storage, keyring, recording_id)
        st = settings or RecorderSettings()
        async with db.session() as s:
            row = await s.get(Recording, recording_id)
            if row is None or row.status not in ("recording", "paused"):
                raise Conflict("the recording is not running", recording=recording_id)
            data_key = await keys.load_data_key(s, keyring, recording_id)
            streams = (await s.scalars(select(RecordingStream).where(
                RecordingStream.recording_id == recording_id))).all()
            people = (await s.scalars(select(RecordingParticipant).where(
                RecordingParticipant.recording_id == recording_id).order_by(RecordingParticipant.id))).all()
            kinds = (await s.scalars(select(RecordingEvent.kind).where(
                RecordingEvent.recording_id == recording_id))).all()
            started = row.started_at
            now = utcnow()
            gap_to = max(0, int((now - started).total_seconds() * 1000))
            ended = last_at if isinstance(last_at, type(started)) else started
            gap_from = min(gap_to, max(0, int((ended - started).total_seconds() * 1000)))
            part = 2 + sum(1 for k in kinds if k == "continued")
            detail = {"part": part, "gap_from_ms": gap_from, "gap_to_ms": gap_to,
                      "streams": {sid: len(h) for sid, h in prior.items()}}
            await _event(s, recording_id, "node_lost", gap_from, actor,
                         "the node recording this session was lost; its media ends at its last stored segment",
                         detail)
            await _event(s, recording_id, "continued", gap_to, actor, reason, detail)
            state, session_id, key_id = row.status, row.session_id, row.data_key_id
        writer = SegmentWriter(db, storage, recording_id=recording_id, session_id=session_id, key_id=key_id,
                               data_key=data_key, max_pending=st.max_pending_segments)
        rec = cls(db, storage, keyring, writer, recording_id, st)
        rec.fence, rec._prior = fence, prior
        rec._t0 = rec._clock() - gap_to / 1000  # the recording's clock goes on: ms since it started
        rec._max_pts = gap_to
        rec.state = state
        for p in people:
            src = rec._sources[p.source_id] = _Source(p.label)
            src.part = max((x.part for x in streams if x.source_id == p.source_id), default=-1)
        log.warning("recording %s continued as part %d after a gap of %d ms", recording_id, part, gap_to - gap_from)
        return rec

    def abandon(self) -> None:
        """This node lost the session: stop writing at once, with no further database or storage write (the new
        owner settles what was stored and continues the recording)."""
        self.state = "stopped"
        self._writer.abort()

    def now_ms(self) -> int:
        return int((self._clock() - self._t0) * 1000)

    def waiting_for_keyframe(self) -> set[str]:
        return {sid for sid, src in self._sources.items()
                if (src.muxer is None or src.muxer.video is None) and (src.seen or not src.screen)}

    async def add_participant(self, p: Participant, *, actor: str) -> None:
        if not p.consented:
            raise Conflict("a person who has not consented cannot join while recording", source=p.source_id)
        if p.source_id in self._sources:
            return
        async with self.db.session() as s:
            s.add(
                RecordingParticipant(
                    recording_id=self.recording_id,
                    source_id=check_name(p.source_id),
                    label=p.label,
                    consented_at=utcnow(),
                )
            )
            await _event(
                s, self.recording_id, "source_added", self.now_ms(), actor, None, {"source": p.source_id}
            )
        self._sources[p.source_id] = _Source(p.label)

    async def write(self, source_id: str, kind: str, payload: bytes, pts_ms: int, keyframe: bool) -> bool:
        """Record one encoded frame; False when it is not recorded (paused, not admitted, waiting for keyframe)."""
        async with self._lock:
            return await self._write(source_id, kind, payload, pts_ms, keyframe)

    async def _write(self, source_id: str, kind: str, payload: bytes, pts_ms: int, keyframe: bool) -> bool:
        src = self._sources.get(source_id)
        if src is None and self.state == "recording":
            src = self._screen(source_id)
        if self.state != "recording" or src is None:
            return False
        if src.screen:
            if kind != "video":
                raise InvalidInput("a shared screen is video only")
            src.seen = True
        if kind == "video":
            return await self._video(source_id, src, payload, pts_ms, keyframe)
        if kind != "audio":
            raise InvalidInput("kind must be audio or video")
        if src.muxer is not None and src.muxer.audio is not None:
            await self._mux(src, "audio", payload, pts_ms, True)
            return True
        src.waiting_audio.append((payload, pts_ms))
        if len(src.waiting_audio) > self.settings.max_waiting_audio:
            src.waiting_audio.popleft()
        if src.muxer is None and pts_ms - src.waiting_audio[0][1] >= self.settings.audio_only_after_ms:
            await self._open(source_id, src, None, pts_ms)
        return True

    def _screen(self, source_id: str) -> _Source | None:
        """The shared screen of an admitted (consented) participant: a source of its own, made at its first frame."""
        owner = screen_owner(source_id)
        person = self._sources.get(owner) if owner is not None else None
        if person is None or person.screen:
            return None
        src = self._sources[source_id] = _Source(f"{person.label} · {SCREEN_LABEL}", screen=True)
        src.part = max((int(sid.rsplit(".", 1)[1]) for sid in self._prior if sid.rsplit(".", 1)[0] == source_id),
                       default=-1)
        return src

    async def _video(self, source_id: str, src: _Source, payload: bytes, pts_ms: int, keyframe: bool) -> bool:
        size = vp8_keyframe_size(payload) if keyframe else None
        current = src.muxer
        if size is not None and (current is None or current.video is None or current.size != size):
            await self._open(source_id, src, size, pts_ms)
        elif current is None or current.video is None:
            return False  # no keyframe yet: undecodable
        await self._mux(src, "video", payload, pts_ms, size is not None)
        return True

    async def _open(self, source_id: str, src: _Source, size: tuple[int, int] | None, pts_ms: int) -> None:
        await self._close_source(src, keep_waiting=True)
        if self.fence is not None:  # a new part of this source's stream: only the session's owner writes it
            await self.fence()
        src.part += 1
        src.stream_id = f"{source_id}.{src.part}"
        src.muxer = StreamMuxer(video=size, audio=not src.screen, title=src.label)
        first = src.waiting_audio[0][1] if src.waiting_audio else pts_ms
        await self._writer.open_stream(
            src.stream_id,
            source_id=source_id,
            part=src.part,
            kinds=",".join(src.muxer.kinds),
            width=size[0] if size else None,
            height=size[1] if size else None,
            first_pts_ms=first,
        )
        while src.waiting_audio:
            payload, pts = src.waiting_audio.popleft()
            await self._mux(src, "audio", payload, pts, True)

    async def _mux(self, src: _Source, kind: str, payload: bytes, pts_ms: int, keyframe: bool) -> None:
        assert src.muxer is not None
        src.last_pts = max(src.last_pts, pts_ms)
        self._max_pts = max(self._max_pts, pts_ms)
        data = src.muxer.mux(kind, payload, pts_ms, keyframe)
        if data:
            await self._writer.put(src.stream_id, data)

    async def _close_source(self, src: _Source, *, keep_waiting: bool = False) -> None:
        if src.muxer is not None:
            tail = src.muxer.close()
            await self._writer.put(src.stream_id, tail, last=True, last_pts_ms=src.last_pts)
            src.muxer = None
        if not keep_waiting:
            src.waiting_audio.clear()

    async def drain(self) -> None:
        """Wait until every segment handed over so far is stored (fsynced) and audited."""
        await self._writer.drain()

    async def end_source(self, source_id: str) -> None:
        """The participant left: finish its stream now (it may come back; a new part then starts)."""
        async with self._lock:
            src = self._sources.get(source_id)
            if src is not None:
                await self._close_source(src)
                src.seen = False

    async def pause(self, reason: str, *, actor: str) -> None:
        await self._transition("recording", "paused", "pause", reason, actor)

    async def resume(self, reason: str, *, actor: str) -> None:
        await self._transition("paused", "recording", "resume", reason, actor)

    async def _transition(self, before: str, after: str, kind: str, reason: str, actor: str) -> None:
        async with self._lock:
            await self._change(before, after, kind, reason, actor)

    async def _change(self, before: str, after: str, kind: str, reason: str, actor: str) -> None:
        if not reason:
            raise InvalidInput(f"a {kind} needs a reason (R12)")
        if self.state != before:
            raise Conflict(f"cannot {kind} a recording that is {self.state}")
        if kind == "pause":
            for src in self._sources.values():
                await self._close_source(src)
        self.state = after
        async with self.db.session() as s:
            await _event(s, self.recording_id, kind, self.now_ms(), actor, reason)
            rec = await s.get(Recording, self.recording_id)
            assert rec is not None
            rec.status = after

    async def stop(self, reason: str, *, actor: str) -> dict[str, Any]:
        """Finish every stream, wait until all segments are durable, sign and store the manifest; return it."""
        async with self._lock:
            return await self._stop(reason, actor=actor)

    async def _stop(self, reason: str, *, actor: str) -> dict[str, Any]:
        if self.state == "stopped":
            raise Conflict("recording already stopped")
        if self.fence is not None:
            await self.fence()
        for src in self._sources.values():
            await self._close_source(src)
        self.state = "stopped"
        await self._writer.close()
        hashes = {**self._prior, **{sid: st.hashes for sid, st in self._writer.streams.items()}}
        async with self.db.session() as s:
            rec = await s.get(Recording, self.recording_id)
            assert rec is not None
            rec.status, rec.stopped_at = "stopped", utcnow()
            rec.duration_ms = max(self.now_ms(), self._max_pts)
            await _event(s, self.recording_id, "stop", rec.duration_ms, actor, reason)
        doc = await finalize(
            self.db, self._storage, self._keyring.signing_key, self.recording_id, hashes, actor=actor
        )
        log.info("recording %s stopped: %d segments", self.recording_id, doc["manifest"]["segments_total"])
        return doc


async def _event(
    s: Any,
    rid: str,
    kind: str,
    pts_ms: int,
    actor: str,
    reason: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    s.add(RecordingEvent(recording_id=rid, kind=kind, pts_ms=pts_ms, actor=actor, reason=reason))
    await audit.append(
        s,
        actor=actor,
        action=f"recording.{kind}",
        subject=f"recording:{rid}",
        detail={"pts_ms": pts_ms, **(detail or {})},
        reason=reason,
    )
