"""Speech-to-text drafts from the hub (issue 13 item 4): each admitted participant's own audio, decoded and handed
per speaker to `mediation.speech.DraftTranscriber`. Exists only when an operator configured a recognizer; without
one nothing here is created, no tap is on the hub, and no audio is assembled or decoded.

The participant is a hub *tap* (`Hub.add_tap`): audio only, from every admitted and unmuted person whatever group
they are in, never from the lobby (R5) or from someone muted. A frame spoken inside a caucus is marked `caucus`
(R9) and its draft lines are caucus material; an utterance never spans the caucus's opening or closing.

Frames arrive on the event loop as encoded Opus (no work there beyond a timestamp and a bounded queue: when
decoding falls behind the oldest frames are dropped and counted). One task decodes a batch at a time in a worker
thread (PyAV: Opus 48 kHz → 16-bit mono at the engine's rate) and feeds the transcriber, whose recognition runs
in a worker thread too.

Times: `clock()` is wall-clock milliseconds (Unix epoch). A speaker's RTP timestamps are anchored to it at its
first packet (and again after a jump, e.g. a new peer connection), so frames are timed by the sender's sample
clock, not by arrival jitter. The signaling layer puts each draft on the transcript's clock (the first
court-bound recording's start, else the session going live: `mediation.transcript.clock`) when it shows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av

from media.hub import Hub
from mediation.speech import SAMPLE_RATE, AudioFrame, DraftTranscriber
from recordings import red

log = logging.getLogger(__name__)
RTP_RATE = 48000  # Opus
REANCHOR_MS = 2000  # RTP time further than this from the wall clock: anchor the speaker again
TAP_ID = "speech"


def wall_ms() -> int:
    return int(time.time() * 1000)


class _Decoder:
    """One speaker's Opus decoder and resampler (used from the worker thread only, one batch at a time)."""

    created = 0  # decoders made in this process (tests: none without a recognizer)

    def __init__(self, rate: int) -> None:
        _Decoder.created += 1
        self.codec: Any = av.CodecContext.create("opus", "r")
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def decode(self, data: bytes) -> bytes:
        out = bytearray()
        opus = red.opus_of_stored(data)  # a RED publisher's frames come as stored RED: the primary is Opus
        if opus is None:
            return b""
        for frame in self.codec.decode(av.Packet(opus)):
            for r in self.resampler.resample(frame):
                out += bytes(r.planes[0])[: r.samples * 2]
        return bytes(out)


class SpeechParticipant:
    def __init__(self, hub: Hub, transcriber: DraftTranscriber, *, clock: Callable[[], int] = wall_ms,
                 rate: int = SAMPLE_RATE, capacity: int = 500) -> None:
        self.hub, self.transcriber, self.clock, self.rate = hub, transcriber, clock, rate
        self._queue: deque[tuple[str, int, bool, bytes]] = deque()
        self._capacity = capacity
        self._anchor: dict[str, tuple[int, int]] = {}  # speaker -> (wall ms, RTP timestamp) at its anchor
        self._decoders: dict[str, _Decoder] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.frames = 0  # encoded frames received
        self.decoded = 0  # frames decoded and fed
        self.dropped = 0
        self.errors = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name=f"speech-{self.hub.session_id}")
        self.hub.add_tap(TAP_ID, self)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def __call__(self, owner: str, source: str, data: bytes, timestamp: int, _keyframe: bool) -> None:
        if source != "audio":
            return
        self.frames += 1
        caucus = self.hub.routing.caucus_of(owner) is not None
        if len(self._queue) >= self._capacity:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((owner, self._at(owner, timestamp), caucus, data))
        self._wake.set()

    def _at(self, owner: str, ts: int) -> int:
        now = self.clock()
        anchor = self._anchor.get(owner)
        if anchor is not None:
            at = anchor[0] + ((ts - anchor[1]) & 0xFFFFFFFF) * 1000 // RTP_RATE
            if abs(at - now) <= REANCHOR_MS:
                return at
        self._anchor[owner] = (now, ts)
        return now

    def _decode(self, batch: list[tuple[str, int, bool, bytes]]) -> list[AudioFrame]:
        out = []
        for owner, at, caucus, data in batch:
            dec = self._decoders.get(owner)
            if dec is None:
                dec = self._decoders[owner] = _Decoder(self.rate)
            try:
                pcm = dec.decode(data)
            except (av.error.FFmpegError, ValueError):
                self.errors += 1
                continue
            if pcm:
                out.append(AudioFrame(owner, at, pcm, self.rate, caucus))
        return out

    async def _pump(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            batch = list(self._queue)
            self._queue.clear()
            for frame in await asyncio.to_thread(self._decode, batch):
                self.decoded += 1
                self.transcriber.feed(frame)

    def stats(self) -> dict[str, int]:
        return {"frames": self.frames, "decoded": self.decoded, "dropped": self.dropped + self.transcriber.dropped,
                "errors": self.errors, "backlog": len(self._queue), "speakers": len(self._decoders)}

    async def stop(self) -> None:
        """Stop taking audio; the utterances under way become their last drafts."""
        self.hub.remove_tap(TAP_ID)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.transcriber.close()
