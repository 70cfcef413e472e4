"""Pass-through forwarding: publications (what a participant sends) fan out to slots (a subscriber's senders).

A `Publication` is one source of one participant ("audio", "camera" or "screen"). Its receiver is tapped
(media/passthrough.py), so each complete encoded frame arrives in `Publication.on_frame`, which pushes it into
the `ForwardTrack` of every *active* slot bound to it. A `Slot` is one sendonly transceiver on a subscriber's peer
connection; it is bound to at most one publication at a time and reused when its publication goes away.

Queues are bounded: audio drops the oldest frame; video drops the whole backlog and waits for the next keyframe
(asking the publisher for one), so a slow subscriber never sees a broken picture or grows memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import passthrough

logger = logging.getLogger(__name__)

CLOCK_RATE = {"audio": 48000, "video": 90000}
SOURCE_KIND = {"audio": "audio", "camera": "video", "screen": "video"}
# A frame sink (the recorder participant): (owner, source, encoded frame, RTP timestamp, keyframe). Must not block.
FrameSink = Callable[[str, str, bytes, int, bool], None]


def _nothing() -> None:
    pass


class ForwardTrack(MediaStreamTrack):
    """Sender-side track yielding encoded frames (av.Packet) from a bounded queue."""

    def __init__(self, kind: str, capacity: int) -> None:
        super().__init__()
        self.kind = kind
        self._capacity = capacity
        self._queue: deque[tuple[bytes, int]] = deque()
        self._wakeup = asyncio.Event()
        self.on_keyframe_needed: Callable[[], None] = _nothing
        self._time_base = Fraction(1, CLOCK_RATE[kind])
        self._clock_rate = CLOCK_RATE[kind]
        self._source: object = None
        self._offset = 0
        self._last_ts: int | None = None
        self._last_wall = 0.0
        self.need_keyframe = kind == "video"
        self.frames = 0
        self.bytes = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def wait_for_keyframe(self) -> None:
        """Drop the backlog; forward nothing until the next keyframe (video)."""
        self.dropped += len(self._queue)
        self._queue.clear()
        self.need_keyframe = self.kind == "video"

    def push(self, data: bytes, timestamp: int, keyframe: bool, source: object) -> None:
        if self.readyState != "live":
            return
        if source is not self._source:
            # A new publisher (or a publisher's new receiver): keep our RTP timestamps monotonic.
            self._source = source
            if self._last_ts is not None:
                elapsed = int((time.monotonic() - self._last_wall) * self._clock_rate)
                self._offset = self._last_ts + max(elapsed, 1) - timestamp
            else:
                self._offset = 0
        if self.need_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self.need_keyframe = False
        if len(self._queue) >= self._capacity:
            if self.kind == "video":
                self.wait_for_keyframe()
                self.on_keyframe_needed()
                if not keyframe:
                    self.dropped += 1
                    return
                self.need_keyframe = False
            else:
                self._queue.popleft()
                self.dropped += 1
        ts = timestamp + self._offset
        self._last_ts, self._last_wall = ts, time.monotonic()
        self._queue.append((data, ts))
        self._wakeup.set()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._wakeup.clear()
            await self._wakeup.wait()
        data, ts = self._queue.popleft()
        self.frames += 1
        self.bytes += len(data)
        return passthrough.encoded_packet(data, ts, self._time_base)

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self._wakeup.set()


@dataclass(eq=False)
class Slot:
    """One sendonly transceiver of a subscriber, bound to at most one publication."""

    subscriber: str
    kind: str
    transceiver: RTCRtpTransceiver
    track: ForwardTrack
    publication: Publication | None = None
    negotiated: bool = False
    active: bool = False

    @property
    def mid(self) -> str | None:
        return self.transceiver.mid

    def describe(self) -> dict[str, Any]:
        pub = self.publication
        if pub is None:
            return {"participant": None, "kind": self.kind, "source": None, "active": False}
        return {
            "participant": pub.owner,
            "kind": self.kind,
            "source": pub.source,
            "label": pub.label,
            "active": self.active,
        }


@dataclass(eq=False)
class Publication:
    """One published source of one participant; survives that participant's peer connection restarts."""

    owner: str
    source: str
    label: dict[str, Any]
    keyframe_interval: float
    spawn: Callable[[Any], None]
    slots: set[Slot] = field(default_factory=set)
    sinks: dict[str, FrameSink] = field(default_factory=dict)
    receiver: RTCRtpReceiver | None = None
    live: bool = False
    frames_in: int = 0
    bytes_in: int = 0
    keyframe_requests: int = 0
    plis_sent: int = 0
    _last_pli: float = float("-inf")
    _pending: asyncio.TimerHandle | None = None
    _epoch: object = None

    @property
    def kind(self) -> str:
        return SOURCE_KIND[self.source]

    def attach(self, receiver: RTCRtpReceiver) -> None:
        """Take frames from a (new, unstarted) receiver of the owner's current peer connection."""
        self.receiver = receiver
        self._epoch = object()
        passthrough.tap_receiver(receiver, self.on_frame)

    def on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        data = frame.data
        self.frames_in += 1
        self.bytes_in += len(data)
        keyframe = self.kind == "audio" or passthrough.is_vp8_keyframe(data)
        for slot in self.slots:
            if slot.active:
                slot.track.push(data, frame.timestamp, keyframe, self._epoch)
        for sink in self.sinks.values():
            sink(self.owner, self.source, data, frame.timestamp, keyframe)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe: at most one PLI per `keyframe_interval`, later ones coalesce."""
        if self.kind != "video":
            return
        self.keyframe_requests += 1
        if self._pending is not None:
            return
        wait = self._last_pli + self.keyframe_interval - time.monotonic()
        if wait <= 0:
            self._send_pli()
        else:
            self._pending = asyncio.get_running_loop().call_later(wait, self._send_pli)

    def _send_pli(self) -> None:
        self._pending = None
        if self.receiver is None:
            return
        # The SSRCs seen lately: the media SSRC, and its RTX SSRC if any (a PLI naming it is ignored).
        ssrcs = [source.source for source in self.receiver.getSynchronizationSources()]
        if not ssrcs:
            return  # nothing received yet: the first frames will start with a keyframe anyway
        self._last_pli = time.monotonic()
        self.plis_sent += 1
        for ssrc in ssrcs:
            self.spawn(passthrough.send_pli(self.receiver, ssrc))

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        for slot in list(self.slots):
            slot.publication = None
            slot.active = False
            slot.track.wait_for_keyframe()
        self.slots.clear()
        self.sinks.clear()
        self.receiver = None
        self.live = False
