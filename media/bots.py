"""Synthetic participants: aiortc clients that speak the media protocol and publish pre-encoded media.

A bot publishes the cached VP8 and Opus clips of media/fixtures.py (no encoder runs), receives every forwarded
track through a tapped receiver (no decoder runs), and counts packets, bytes, frames and keyframes received per
source participant. It talks to the server through a `Channel`; its media logic is identical over
`DirectChannel` (in-process, calls `Hub.handle`) and `SocketIOChannel` (python-socketio AsyncClient).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media import passthrough, vp8
from media.channels import Channel
from media.config import MediaConfig
from media.fixtures import EncodedClip, audio_clip, video_clip
from media.forward import SOURCE_KIND

logger = logging.getLogger(__name__)
ANSWER_WITHIN = 60.0  # s from media:join to the first offer answered (a busy machine takes a few)


class ClipTrack(MediaStreamTrack):
    """Plays an encoded clip in a loop, in real time; jumps to a keyframe when the far end asks for one."""

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__()
        self.kind = clip.kind
        self._clip = clip
        self._index = 0
        self._count = 0
        self._start: float | None = None
        self._keyframe_wanted = False
        self._running = asyncio.Event()
        self._running.set()
        self.frames_sent = 0
        self.bytes_sent = 0
        self.keyframe_requests = 0
        self.layer: int | None = None  # the temporal layer of the frame recv() returned last (layered clips)

    @property
    def layered(self) -> bool:
        return bool(self._clip.layers)

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    def pause(self, paused: bool) -> None:
        """Stop (or resume) sending, without a burst on resume (benchmarks drain the path with this)."""
        if paused:
            self._running.clear()
        else:
            self._running.set()

    async def recv(self) -> Any:
        clip = self._clip
        if not self._running.is_set():
            await self._running.wait()
            self._start = time.monotonic() - self._count * clip.frame_seconds
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + self._count * clip.frame_seconds - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            if self._index not in clip.keyframes:
                self._index = clip.keyframes[0]
        data = clip.frames[self._index]
        self.layer = clip.layers[self._index] if clip.layers else None
        packet = passthrough.encoded_packet(data, self._count * clip.frame_ticks, _time_base(clip))
        self._index = (self._index + 1) % len(clip.frames)
        self._count += 1
        self.frames_sent += 1
        self.bytes_sent += len(data)
        return packet


class LayeredPacker:
    """Packetizes a layered clip's frames (media/fixtures.py `video_clip(layers=3)`) as Chromium does for L1T3:
    each packet's VP8 descriptor carries the picture id, TL0PICIDX (counting the layer-0 frames) and the frame's
    temporal layer id, which the hub reads to thin the stream per subscriber. `track` says each frame's layer:
    the sender packs a frame right after the track returned it."""

    PAYLOAD = 1200  # bytes of VP8 data per packet

    def __init__(self, track: ClipTrack) -> None:
        self.track = track
        self.picture_id = random.randrange(1 << 15)
        self.tl0picidx = random.randrange(256)

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        data, tid = bytes(packet), self.track.layer or 0
        if tid == 0:
            self.tl0picidx = (self.tl0picidx + 1) & 0xFF
        payloads = []
        for pos in range(0, len(data), self.PAYLOAD):
            head = vp8.descriptor_bytes(start=pos == 0, picture_id=self.picture_id, tl0picidx=self.tl0picidx,
                                        tid=tid)
            payloads.append(head + data[pos : pos + self.PAYLOAD])
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        return payloads, int(packet.pts * packet.time_base * 90000)


def _time_base(clip: EncodedClip) -> Any:
    from fractions import Fraction

    return Fraction(1, clip.clock_rate)


@dataclass
class Counter:
    packets: int = 0
    nbytes: int = 0
    frames: int = 0
    keyframes: int = 0
    first_frame_at: float | None = None
    first_keyframe_at: float | None = None
    first_keyframe: bytes | None = None
    markers: int = 0  # packets with the marker bit: frames whose last packet arrived (counts lossy video)
    # arrival times (time.monotonic) of the last packets, for gap figures over a lossy link
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    frame_ends: deque[float] = field(default_factory=lambda: deque(maxlen=5_000))  # marker packets' arrivals
    kept: deque[bytes] | None = None  # the last encoded video frames received (Bot(keep_frames=n)), for decoding

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time without a packet between `start` and `end` (time.monotonic), edges included."""
        times = [start, *(t for t in list(self.arrivals) if start < t < end), end]  # a copy: the bot's loop may
        # run in another thread (tests/netem) and append meanwhile
        return max(b - a for a, b in itertools.pairwise(times))

    def as_dict(self) -> dict[str, int]:
        return {
            "packets": self.packets,
            "bytes": self.nbytes,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "markers": self.markers,
        }


class Bot:
    def __init__(
        self,
        participant_id: str,
        channel: Channel,
        config: MediaConfig | None = None,
        *,
        audio: bool = True,
        video: bool = True,
        clip: EncodedClip | None = None,
        keep_frames: int = 0,
    ) -> None:
        self.pid = participant_id
        self.keep_frames = keep_frames  # keep the last n encoded video frames per source (tests decode them)
        self.channel = channel
        self.config = config or MediaConfig()
        self.audio_track = ClipTrack(audio_clip()) if audio else None
        # `clip`: another video clip (a weak party's browser adapts its encoder; a bot publishes a smaller clip)
        self.video_track = ClipTrack(clip or video_clip()) if video else None
        self.screen_track: ClipTrack | None = None  # a shared screen (share_screen), on the `screen` m-line
        self.pc: RTCPeerConnection | None = None
        self.ice_servers: list[dict[str, Any]] = []  # from the server's `media:ice` for the current join
        self.tracks: dict[str, dict[str, Any]] = {}  # mid -> what the hub says it carries
        self.received: dict[tuple[str, str], Counter] = {}
        self.phases: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
        self.audio_only_events: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.joined_at: float | None = None
        self._inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=64)
        self._pump: asyncio.Task[None] | None = None
        self._answered = asyncio.Event()
        self._loss: Callable[[], bool] | None = None
        self._uplink: list[bool] | None = None
        self._uplink_i = 0
        self._buffers_set = False
        self.use_channel(channel)

    def use_channel(self, channel: Channel) -> None:
        """Talk through `channel` from now on (a new signaling connection; the peer connection stays)."""
        self.channel = channel
        for event in ("media:offer", "media:tracks", "media:audio-only", "media:ice"):
            channel.on(event, self._enqueuer(event))

    def _enqueuer(self, event: str) -> Callable[[dict[str, Any]], None]:
        def enqueue(payload: dict[str, Any]) -> None:
            self._inbox.put_nowait((event, payload))

        return enqueue

    # protocol -----------------------------------------------------------------------------------
    async def join(self) -> None:
        """Join (or re-join with a new peer connection) and wait until the first offer is answered."""
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name=f"bot-{self.pid}")
        if self.pc is not None:
            await self.pc.close()
        # the peer connection is made when the first offer arrives: the server's `media:ice` (TURN credentials
        # for this join) comes before it, and aiortc cannot change its ICE servers later
        self.pc, self.ice_servers = None, []
        self._answered.clear()
        self._buffers_set = False
        self.joined_at = time.monotonic()
        ack = await self.channel.call("media:join", {})
        if not ack.get("ok"):
            raise RuntimeError(f"join refused: {ack}")
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                await self._answered.wait()
        except TimeoutError:
            raise RuntimeError(f"{self.pid}: no offer answered {ANSWER_WITHIN:.0f} s after joining "
                               f"(peer connection {'made' if self.pc is not None else 'not made'})") from None

    async def resume(self) -> dict[str, Any]:
        """After a new signaling connection, with the peer connection still up: ask for the current offer (the
        hub sends the one outstanding again, or a fresh one), so nothing sent while away is missed."""
        return await self.channel.call("media:renegotiate", {})

    async def share_screen(self, clip: EncodedClip | None = None) -> dict[str, Any]:
        """Publish `clip` (default: a 1280x720 clip) on the screen m-line, as a page does with getDisplayMedia:
        a new answer (media:renegotiate) with that m-line sendonly."""
        self.screen_track = ClipTrack(clip or video_clip(width=1280, height=720, fps=15, bitrate=600_000))
        self._answered.clear()
        ack = await self.channel.call("media:renegotiate", {})
        await self._answered.wait()
        return ack

    async def stop_screen(self) -> dict[str, Any]:
        """Stop sharing: the screen m-line goes back to inactive in a new answer."""
        self.screen_track = None
        self._answered.clear()
        ack = await self.channel.call("media:renegotiate", {})
        await self._answered.wait()
        return ack

    async def request_audio_only(self, enabled: bool) -> dict[str, Any]:
        return await self.channel.call("media:audio-only", {"enabled": enabled})

    async def leave(self) -> None:
        await self.channel.call("media:leave", {})
        await self.close()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        if self.pc is not None:
            await self.pc.close()
            self.pc = None

    async def _run(self) -> None:
        while True:
            event, payload = await self._inbox.get()
            try:
                if event == "media:offer":
                    await self._answer(payload)
                elif event == "media:tracks":
                    self.tracks.update(payload.get("tracks", {}))
                elif event == "media:audio-only":
                    self.audio_only_events.append(payload)
                elif event == "media:ice":
                    self.ice_servers = [s for s in payload.get("ice_servers", []) if isinstance(s, dict)]
            except Exception:
                logger.exception("bot %s failed to handle %s", self.pid, event)

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(configuration=self.config.with_ice_servers(self.ice_servers).rtc_configuration())
        self.pc = pc
        return pc

    async def _answer(self, offer: dict[str, Any]) -> None:
        pc = self.pc or self._new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        self.tracks.update(offer.get("tracks", {}))
        publish = {mid: source for source, mid in offer.get("publish", {}).items()}
        for transceiver in pc.getTransceivers():
            source = publish.get(transceiver.mid or "")
            if source is not None:
                self._publish(transceiver, source)
            elif (
                passthrough.tapped_frames(transceiver.receiver) is None
                and transceiver.currentDirection is None
            ):
                self._tap(transceiver)
        if self._loss is not None and len(pc.getTransceivers()):
            self._install_loss(pc)
        context = self.config.turn_tls_context()
        if context is not None:
            passthrough.set_turn_tls_context(pc, context)
        await pc.setLocalDescription(await pc.createAnswer())
        if not self._buffers_set:
            self._buffers_set = passthrough.enlarge_receive_buffers(pc, self.config.udp_receive_buffer) > 0
        ack = await self.channel.call("media:answer", {"type": "answer", "sdp": pc.localDescription.sdp})
        if not ack.get("ok"):
            self.errors.append(ack)
            logger.warning("bot %s: answer refused: %s", self.pid, ack)
        self._answered.set()

    def _publish(self, transceiver: RTCRtpTransceiver, source: str) -> None:
        tracks = {"audio": self.audio_track, "camera": self.video_track, "screen": self.screen_track}
        track = tracks.get(source)
        if track is None and source == "screen" and transceiver.sender.track is not None:
            transceiver.sender.replaceTrack(None)  # the share stopped
            transceiver.direction = "inactive"
            return
        if track is None or transceiver.sender.track is track:
            return
        transceiver.sender.replaceTrack(track)
        transceiver.direction = "sendonly"
        if track.kind == "video":
            passthrough.on_keyframe_request(transceiver.sender, track.request_keyframe)
            if track.layered:
                passthrough.use_packer(transceiver.sender, LayeredPacker(track))

    def _tap(self, transceiver: RTCRtpTransceiver) -> None:
        mid = transceiver.mid or ""

        def on_packet(packet: RtpPacket) -> None:
            counter = self._counter(mid)
            if counter is not None:
                counter.packets += 1
                counter.markers += packet.marker
                now = time.monotonic()
                counter.arrivals.append(now)
                if packet.marker:
                    counter.frame_ends.append(now)

        def on_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            counter = self._counter(mid)
            if counter is None:
                return
            now = time.monotonic()
            counter.frames += 1
            counter.nbytes += len(frame.data)
            counter.first_frame_at = counter.first_frame_at or now
            if transceiver.kind == "video" and counter.kept is not None:
                counter.kept.append(frame.data)
            if transceiver.kind == "video" and passthrough.is_vp8_keyframe(frame.data):
                counter.keyframes += 1
                if counter.first_keyframe_at is None:
                    counter.first_keyframe_at, counter.first_keyframe = now, frame.data

        passthrough.tap_receiver(transceiver.receiver, on_frame, on_packet, estimate_bandwidth=False)

    def _counter(self, mid: str) -> Counter | None:
        info = self.tracks.get(mid)
        if not info or info.get("participant") is None:
            return None
        key = (info["participant"], info["source"])
        counter = self.received.get(key)
        if counter is None:
            counter = self.received[key] = Counter()
            if self.keep_frames and SOURCE_KIND.get(key[1]) == "video":
                counter.kept = deque(maxlen=self.keep_frames)
        return counter

    # lossy downlink (tests) ---------------------------------------------------------------------
    def set_downlink_loss(self, pattern: list[bool] | None) -> None:
        """Drop incoming RTP following `pattern` (True = drop), cycled; None = no loss."""
        if pattern is None:
            self._loss = lambda: False
            return
        state = {"i": 0}

        def should_drop() -> bool:
            state["i"] += 1
            return pattern[state["i"] % len(pattern)]

        first = self._loss is None
        self._loss = should_drop
        if first and self.pc is not None and self.pc.getTransceivers():
            self._install_loss(self.pc)

    def set_uplink_loss(self, pattern: list[bool] | None) -> None:
        """Drop outgoing RTP (all sources, retransmissions too) following `pattern`, cycled; None = no loss.

        Call once joined (the ICE sockets must exist)."""
        self._uplink = pattern
        self._uplink_i = 0
        if self.pc is not None:
            passthrough.drop_outgoing_rtp(self.pc, self._uplink_drop)

    def _uplink_drop(self) -> bool:
        pattern = self._uplink
        if not pattern:
            return False
        self._uplink_i += 1
        return pattern[self._uplink_i % len(pattern)]

    def _install_loss(self, pc: RTCPeerConnection) -> None:
        transport = pc.getTransceivers()[0].receiver.transport
        if not getattr(transport, "_onedoor_loss", False):
            transport._onedoor_loss = True  # type: ignore[attr-defined]
            passthrough.drop_incoming_rtp(transport, lambda: self._loss is not None and self._loss())

    # counters -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """{participant: {source: {packets, bytes, frames, keyframes}}} received so far."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (participant, source), counter in self.received.items():
            out.setdefault(participant, {})[source] = counter.as_dict()
        return out

    def mark(self, phase: str) -> None:
        self.phases[phase] = self.snapshot()

    def delta(self, start: str, end: str) -> dict[str, dict[str, dict[str, int]]]:
        """What arrived between two marks: {participant: {source: {packets, ...}}} (zeros included)."""
        a, b = self.phases[start], self.phases[end]
        out: dict[str, dict[str, dict[str, int]]] = {}
        for participant, sources in b.items():
            for source, counts in sources.items():
                before = a.get(participant, {}).get(source, {})
                out.setdefault(participant, {})[source] = {k: v - before.get(k, 0) for k, v in counts.items()}
        return out

    def pause(self, paused: bool) -> None:
        for track in (self.audio_track, self.video_track):
            if track is not None:
                track.pause(paused)

    def sent(self) -> dict[str, dict[str, int]]:
        return {
            source: {"frames": t.frames_sent, "bytes": t.bytes_sent, "keyframe_requests": t.keyframe_requests}
            for source, t in (("audio", self.audio_track), ("camera", self.video_track))
            if t is not None
        }

    def encoder_target(self) -> int | None:
        """The camera sender's encoder target bitrate (aiortc sets it from the hub's REMB), None before it has one."""
        if self.pc is None or self.video_track is None:
            return None
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender.track is self.video_track:
                return passthrough.encoder_target_bitrate(transceiver.sender)
        return None

    def receiving_from(self, participant: str, sources: tuple[str, ...] = ("audio", "camera")) -> bool:
        return all(
            (c := self.received.get((participant, s))) is not None
            and c.frames > 0
            and (SOURCE_KIND[s] == "audio" or c.keyframes > 0)
            for s in sources
        )
