"""Pass-through forwarding: publications (what a participant sends) fan out to slots (a subscriber's senders).

A `Publication` is one source of one participant ("audio", "camera" or "screen"). Its receiver hands every RTP
packet to `Publication.on_rtp` (media/passthrough.py), which re-sends it at once to every *active* slot bound to
it through the slot's `RtpForwarder` (header rewritten, payload untouched: media/rtpforward.py). A `Slot` is one
sendonly transceiver on a subscriber's peer connection; it is bound to at most one publication at a time and
reused when its publication goes away.

Audio in RED (RFC 2198; media/sdpmunge.py offers it, Chromium sends it): the publication recognises the
payload type its receiver negotiated for red (`red_pt`) and forwards the packet unchanged to subscribers that
negotiated red, and its primary block as plain Opus to the others (parsed once per packet, only if one of them
is active; a malformed RED packet goes to nobody and is counted in `red_malformed`). Frame sinks get stored RED
(recordings/red.py `stored`): the recorder keeps what it receives and the export unwraps it.

There is no queue on the forwarding path: a packet is sent while the publisher's packet is handled, or dropped
(video then waits for the next keyframe, asking the publisher for one). Complete encoded frames are assembled
only while the publication has frame sinks (the recorder participant).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media import passthrough, vp8
from media.bandwidth import RembControl
from media.rtpforward import RtpForwarder
from recordings import red

logger = logging.getLogger(__name__)

CLOCK_RATE = {"audio": 48000, "video": 90000}
SOURCE_KIND = {"audio": "audio", "camera": "video", "screen": "video"}
# A frame sink (the recorder participant): (owner, source, encoded frame, RTP timestamp, keyframe). Must not block.
FrameSink = Callable[[str, str, bytes, int, bool], None]
NTP_EPOCH = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


@runtime_checkable
class QueueingSink(Protocol):
    """A frame sink that keeps frames to process later (the recorder participant's bounded queue): the one
    queue between receiving and sending/writing on the hub's side; `Hub.stats()` reports its backlog."""

    def __call__(self, owner: str, source: str, data: bytes, timestamp: int, keyframe: bool) -> None: ...

    @property
    def backlog(self) -> int: ...


class SlotTrack(MediaStreamTrack):
    """The track of a hub sender: yields nothing (packets bypass the sender's loop, see media/rtpforward.py);
    it only exists so the sender has a track, and it ends the sender's loop when stopped."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> Any:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()


@dataclass(eq=False)
class Slot:
    """One sendonly transceiver of a subscriber, bound to at most one publication."""

    subscriber: str
    kind: str
    transceiver: RTCRtpTransceiver
    track: SlotTrack
    forwarder: RtpForwarder
    publication: Publication | None = None
    negotiated: bool = False
    active: bool = False
    keyframe_requests_in: int = 0  # PLIs/FIRs from the subscriber about this slot
    keyframe_asked_at: float | None = None  # time.time() the hub last asked its publisher for a key frame for it

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
    keyframes_in: int = 0  # video: key frames begun (their first packet received)
    packets_in: int = 0
    bytes_in: int = 0
    media_ssrc: int | None = None
    keyframe_requests: int = 0
    plis_sent: int = 0
    remb: RembControl | None = None  # video: the bitrate told to the publisher (media/bandwidth.py)
    # what was told to the publisher: (monotonic, bit/s, the hub's estimate of its uplink then or None)
    remb_log: deque[tuple[float, int, int | None]] = field(default_factory=lambda: deque(maxlen=600))
    red_pt: int | None = None  # audio: the red payload type of its receiver (the publisher sends RED)
    red_in: int = 0  # RED packets received
    red_malformed: int = 0  # RED packets that did not parse: forwarded to nobody
    # video: bytes received per temporal layer id (VP8 descriptors with the T bit), and the bit rates of layers
    # 0..k measured from them at each link check (`measure_layers`); empty rates: the publisher sends no layers
    layer_bytes: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    layer_rates: list[int] = field(default_factory=list)
    _layer_base: tuple[float, list[int]] | None = None
    _last_pli: float = float("-inf")
    _pending: asyncio.TimerHandle | None = None
    _epoch: object = None

    @property
    def kind(self) -> str:
        return SOURCE_KIND[self.source]

    def attach(self, receiver: RTCRtpReceiver) -> None:
        """Take packets from a (new, unstarted) receiver of the owner's current peer connection."""
        self.receiver = receiver
        self.media_ssrc = None
        self._epoch = object()
        limit = self._limit_remb if self.remb is not None else None
        passthrough.forward_receiver(receiver, self.on_rtp, self.on_frame, self.has_sinks, limit)

    def _limit_remb(self, estimate: int) -> int:
        """The hub receiver's own REMB (its estimate of the publisher's uplink), capped by the subscribers; logged
        beside the hub's own REMB ticks, so `remb_log` holds every value the publisher is told."""
        if self.remb is None:
            return estimate
        bitrate = self.remb.on_uplink(estimate)
        self.remb_log.append((time.monotonic(), bitrate, estimate))
        return bitrate

    def send_remb(self, bitrate: int) -> bool:
        """Tell the publisher `bitrate` (REMB on its media SSRC); False before its first packet."""
        if self.receiver is None or self.media_ssrc is None:
            return False
        sending = passthrough.send_remb(self.receiver, self.media_ssrc, bitrate)
        if sending is None:
            return False
        self.spawn(sending)
        self.remb_log.append((time.monotonic(), bitrate, None if self.remb is None else self.remb.uplink))
        return True

    def on_rtp(self, packet: RtpPacket) -> None:
        payload = packet.payload
        self.packets_in += 1
        self.bytes_in += len(payload)
        self.media_ssrc = packet.ssrc
        now = time.time()
        ntp = int((now + NTP_EPOCH) * 4294967296) & 0xFFFFFFFFFFFFFFFF
        seq, ts, marker, epoch = packet.sequence_number, packet.timestamp, packet.marker, self._epoch
        if self.kind == "video":
            self.frames_in += marker
            desc = vp8.parse(payload)  # once per packet, for every subscriber
            start_ok = desc is not None and desc.keyframe
            self.keyframes_in += start_ok
            if desc is not None and desc.tid >= 0:
                self.layer_bytes[desc.tid] += len(payload)
            ext = ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")  # abs-send-time
            for slot in self.slots:
                if slot.active:
                    slot.forwarder.forward(seq, ts, marker, payload, start_ok, epoch, ext, ntp, now, None, desc)
            return
        self.frames_in += 1
        level = packet.extensions.audio_level  # (voice activity, -dBov), passed on as received
        audio_ext = None if level is None else bytes([(level[0] << 7) | (level[1] & 0x7F)])
        if packet.payload_type == self.red_pt:
            self._forward_red(seq, ts, marker, payload, epoch, audio_ext, ntp, now)
            return
        for slot in self.slots:
            if slot.active:
                slot.forwarder.forward(seq, ts, marker, payload, True, epoch, audio_ext, ntp, now)

    def measure_layers(self, now: float) -> list[int]:
        """Bit rates (bit/s) of temporal layers 0..k together, k = 0.. the highest seen since the last call;
        [] when the publisher sent no layered packets in the meantime (it sends no temporal layers)."""
        counts = list(self.layer_bytes)
        base, self._layer_base = self._layer_base, (now, counts)
        if base is None or now <= base[0]:
            return self.layer_rates
        seconds = now - base[0]
        deltas = [max(c - b, 0) for c, b in zip(counts, base[1], strict=True)]
        top = max((i for i, d in enumerate(deltas) if d), default=-1)
        rates, total = [], 0
        for d in deltas[: top + 1]:
            total += d
            rates.append(int(total * 8 / seconds))
        self.layer_rates = rates
        return rates

    def _forward_red(
        self,
        seq: int,
        ts: int,
        marker: int,
        payload: bytes,
        epoch: object,
        ext: bytes | None,
        ntp: int,
        now: float,
    ) -> None:
        """A RED packet: as it is to subscribers that negotiated red, its primary (Opus) to the others."""
        self.red_in += 1
        primary = red.primary(payload)
        if primary is None:
            self.red_malformed += 1
            return
        for slot in self.slots:
            if slot.active:
                forwarder = slot.forwarder
                red_pt = forwarder.red_payload_type
                if red_pt is None:
                    forwarder.forward(seq, ts, marker, primary, True, epoch, ext, ntp, now)
                else:
                    forwarder.forward(seq, ts, marker, payload, True, epoch, ext, ntp, now, red_pt)

    def has_sinks(self) -> bool:
        return bool(self.sinks)

    def on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        """A complete encoded frame (assembled only while there are sinks): to the recorder participant."""
        data = frame.data
        if codec.payloadType == self.red_pt:
            data = red.stored(data)  # the recorder keeps RED as received (recordings/red.py)
        keyframe = self.kind == "audio" or passthrough.is_vp8_keyframe(data)
        for sink in list(self.sinks.values()):
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
        if self.media_ssrc is None:
            return  # nothing received yet: the first frames will start with a keyframe anyway
        self._last_pli = time.monotonic()
        self.plis_sent += 1
        self.spawn(passthrough.send_pli(self.receiver, self.media_ssrc))

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        for slot in list(self.slots):
            slot.publication = None
            slot.active = False
            slot.forwarder.restart()
        self.slots.clear()
        for sink in self.sinks.values():  # a sink that keeps streams (the recorder) may finish this one now
            ended = getattr(sink, "source_ended", None)
            if ended is not None:
                ended(self.owner, self.source)
        self.sinks.clear()
        self.receiver = None
        self.live = False
