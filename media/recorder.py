"""The recorder is a participant (style.md 3): it subscribes through the hub as a frame sink, so the routing
table decides what it gets exactly as for people — a caucus it is not a member of is simply not recorded (R9).

Frames arrive on the event loop from the hub (no decoding) and go into a bounded queue; one task hands them to
`recordings.recorder.Recorder.write`, which muxes and encrypts. When the queue is full the oldest frames are
dropped and counted (never an unbounded queue on the media path); a dropped video frame makes the recorder ask
the publisher for a keyframe so the stream resumes cleanly.

A shared screen (the `screen` publication) is recorded as a source of its own, `<participant>.screen`
(recordings.sources): its own video-only streams, encrypted like the others, ended when the share stops (the hub
closes the publication and calls `source_ended`), a new part when it is shared again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from media.forward import SOURCE_KIND
from media.hub import Hub
from recordings.recorder import Recorder
from recordings.sources import screen_owner, screen_source

log = logging.getLogger(__name__)
END = "end"  # a queue entry that ends a source's stream (a shared screen stopped)


class RecorderParticipant:
    def __init__(self, hub: Hub, recorder: Recorder, sink_id: str = "recorder", capacity: int = 600) -> None:
        self.hub, self.recorder, self.sink_id = hub, recorder, sink_id
        self._queue: deque[tuple[str, str, bytes, bool, int]] = deque()
        self._capacity = capacity
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.frames_from: dict[str, int] = {}  # per publisher: what the routing table let through
        self.screen_frames: dict[str, int] = {}  # per publisher: its shared screen's frames (in frames_from too)
        self.camera_keyframes: dict[str, int] = {}  # per publisher: its camera's key frames received
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name=f"recorder-{self.recorder.recording_id}")
        self.hub.add_sink(self.sink_id, self)

    @property
    def backlog(self) -> int:
        """Frames received and not yet handed to the writer (media.forward.QueueingSink)."""
        return len(self._queue)

    def __call__(self, owner: str, source: str, data: bytes, _ts: int, keyframe: bool) -> None:
        self._on_frame(owner, source, data, _ts, keyframe)

    def _on_frame(self, owner: str, source: str, data: bytes, _ts: int, keyframe: bool) -> None:
        self.frames += 1
        self.frames_from[owner] = self.frames_from.get(owner, 0) + 1
        if source == "screen":  # a shared screen is a recorded source of its own (recordings.sources)
            self.screen_frames[owner] = self.screen_frames.get(owner, 0) + 1
            owner = screen_source(owner)
        elif source == "camera" and keyframe:
            self.camera_keyframes[owner] = self.camera_keyframes.get(owner, 0) + 1
        if len(self._queue) >= self._capacity:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((owner, SOURCE_KIND[source], data, keyframe, self.recorder.now_ms()))
        self._wake.set()

    def source_ended(self, owner: str, source: str) -> None:
        """The hub closed a publication: a shared screen's stream ends here (after the frames queued before)."""
        if source == "screen":
            self._queue.append((screen_source(owner), END, b"", False, 0))
            self._wake.set()

    async def _pump(self) -> None:
        asked: set[str] = set()
        while True:
            while not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            self._idle.clear()
            owner, kind, data, keyframe, pts = self._queue.popleft()
            try:
                if kind == END:
                    await self.recorder.end_source(owner)
                elif await self.recorder.write(owner, kind, data, pts_ms=pts, keyframe=keyframe):
                    self.written += 1
            except Exception:  # a bad frame must not stop the recording of everyone else
                log.exception("recording write failed for %s", owner)
            waiting = self.recorder.waiting_for_keyframe()
            for sid in waiting - asked:
                self.hub.request_keyframe(screen_owner(sid) or sid)
            asked = waiting

    async def flush(self, limit: float = 2.0) -> None:
        """Wait (at most `limit` seconds) until every queued frame has been handed to the writer."""
        if self._queue:
            self._idle.clear()
            await asyncio.wait_for(self._idle.wait(), limit)

    async def abandon(self) -> None:
        """This node lost the session (another owns it now): stop at once and write nothing more."""
        self.hub.remove_sink(self.sink_id)
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.recorder.abandon()

    async def stop(self, reason: str, *, actor: str) -> dict[str, Any]:
        """Stop receiving, write what is queued, and finalize (signed manifest)."""
        self.hub.remove_sink(self.sink_id)
        try:
            await self.flush()
        except TimeoutError:
            log.warning("recorder queue not drained at stop; %d frames left", len(self._queue))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return await self.recorder.stop(reason, actor=actor)
