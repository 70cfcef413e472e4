"""Packet-level forwarding to one subscriber's sender: RTP header rewrite, keyframe gating, retransmissions.

The hub does not re-packetize: each RTP packet a publisher sends is re-sent to every subscriber with a new
header (the subscriber sender's payload type, SSRC, sequence number, timestamp and header extensions) and the
payload untouched (for VP8 the payload descriptor stays as the publisher wrote it). Per subscriber:

- sequence numbers stay continuous: every time forwarding (re)starts — first packet, new publisher on a reused
  slot, end of a caucus, video back on — the offset is chosen so the next packet follows the last one sent, and
  packets older than the restart point are not sent (late retransmissions from before it);
- RTP timestamps stay monotonic across a change of publisher (offset from the wall-clock time elapsed);
- video (re)starts only at the first packet of a VP8 keyframe, so a subscriber never gets a broken picture;
- a bounded ring of the last `CACHE` packets sent answers the subscriber's NACKs (as RTX when negotiated);
- `keyframes_only` (a weak subscriber's middle step, media/weaklink.py): only key frames are sent, each one a
  (re)start point, so sequence numbers stay continuous (no NACKs for what was skipped) and the VP8 picture id
  is rewritten to follow the last one sent (`_pid_offset`, also applied after any restart): the subscriber sees
  the publisher at the key frame rate instead of not at all;
- temporal layers (a publisher that sends them: Chromium's `L1T3`; media/vp8.py reads the descriptor once per
  packet in the publication): `layer_cap` is the highest temporal layer id this subscriber gets (`ALL_LAYERS`:
  everything). The cap in force (`layer`) follows it down at any frame start and up only where that is safe (a
  TID 0 frame's start, or a layer-sync frame of a layer within the cap). A frame above it is not sent: every
  later sequence number and picture id is lowered by what was left out, so the subscriber sees neither a
  sequence gap (nothing to NACK) nor a picture id gap (nothing missing to its decoder); TL0PICIDX passes
  unchanged (TID 0 frames are always sent). Each frame's decision and offsets are kept for the last `FRAMES`
  frames, so a late packet (the publisher's retransmission of an upstream loss) gets its own frame's numbers or
  is left out with its frame. Upstream gaps around a left-out frame that can only be that frame's packets are
  closed the same way. A stream without the T bit takes none of this (the bots: aiortc's packetizer sets no T).

- RED (RFC 2198, media/sdpmunge.py): a subscriber whose answer kept red (`red_payload_type`) gets a RED
  publisher's packets as they are, under its red payload type; one that did not gets only the primary block as a
  plain Opus packet under its Opus payload type (the publication strips it once per packet: recordings/red.py).
  Sequence numbers are unchanged either way.

The subscriber's NACKs are answered from the ring of packets actually sent (keyed by the rewritten sequence
number), never forwarded to the publisher: a packet left out by layer selection has no number on the
subscriber's side, so it is never asked for. (The hub's receiver NACKs the publisher for its own upstream gaps.)

No aiortc internals here: `RtpOut` (media/passthrough.py) protects and sends the bytes on the sender's transport.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from media import vp8
from media.vp8 import ALL_LAYERS, Descriptor

# s: at key frames only, a key frame starts (and the hub asks for one) only when what the subscriber's pacer holds
# leaves within this. Not 0: beside a paced base layer (another publisher's, media/hub.py `_fit`) the pacer is
# rarely empty, and a publisher at key frames only would never be seen.
KEYFRAME_ROOM = 0.15

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
CACHE = 256  # packets kept per video slot for retransmission (~2.5 s at 800 kbit/s); a power of two
_HEADER = struct.Struct("!BBHII")
FRAMES = 32  # frames whose layer decision and offsets are kept for late packets (~1 s at 30 fps)


class Out(Protocol):
    def send(self, data: bytes, payload_size: int, rtp_timestamp: int, ntp: int) -> bool: ...

    def resend(self, data: bytes) -> bool: ...

    def backlog(self) -> float:
        """Seconds until what this sender holds back has left (a paced video sender, media/pacer.py)."""
        ...


def _one_byte_element(ext_id: int, value: bytes) -> bytes:
    return bytes([(ext_id << 4) | (len(value) - 1)]) + value


def _block(elements: bytes) -> bytes:
    """RFC 8285 one-byte header extension block (profile 0xBEDE), padded to 32 bits; b'' if empty."""
    if not elements:
        return b""
    elements += b"\x00" * (-len(elements) % 4)
    return struct.pack("!HH", 0xBEDE, len(elements) // 4) + elements


@dataclass(frozen=True)
class SendParams:
    """What a subscriber's sender negotiated, and the header extension block templates derived from it."""

    payload_type: int
    rtx_payload_type: int | None
    ssrc: int
    rtx_ssrc: int
    static_ext: bytes  # the extension block without the per-packet element (mid only)
    # the block with the per-packet element (abs-send-time for video, audio level for audio): head + value + tail
    ext_head: bytes | None
    ext_tail: bytes

    @classmethod
    def from_parameters(cls, kind: str, parameters: Any, ssrc: int, rtx_ssrc: int) -> SendParams:
        """`parameters`: the RTCRtpSendParameters the sender was started with (public aiortc type)."""
        primary = parameters.codecs[0]
        rtx = next(
            (
                c.payloadType
                for c in parameters.codecs
                if c.name.lower() == "rtx" and c.parameters.get("apt") == primary.payloadType
            ),
            None,
        )
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        mid = parameters.muxId
        mid_element = _one_byte_element(ids[MID_URI], mid.encode()) if mid and MID_URI in ids else b""
        dynamic_id = ids.get(ABS_SEND_TIME_URI if kind == "video" else AUDIO_LEVEL_URI)
        head: bytes | None = None
        tail = b""
        if dynamic_id is not None:
            size = 3 if kind == "video" else 1
            full = _block(mid_element + _one_byte_element(dynamic_id, b"\x00" * size))
            # the value is the last `size` bytes before the padding
            end = 4 + len(mid_element) + 1 + size
            head, tail = full[: end - size], full[end:]
        return cls(primary.payloadType, rtx, ssrc, rtx_ssrc, _block(mid_element), head, tail)


class RtpForwarder:
    """Rewrites and sends one publication's packets to one subscriber's sender (one per slot)."""

    def __init__(self, kind: str, clock_rate: int, on_drop: Callable[[], None]) -> None:
        self.kind = kind
        self._video = kind == "video"
        self._clock_rate = clock_rate
        self.on_drop = on_drop  # ask the publisher for a keyframe
        self.params: SendParams | None = None
        self._out: Out | None = None
        self.need_start = True
        self._source: object = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._hi = 0  # the newest input sequence number of this run
        self._run = 0  # input sequence numbers this run spans: a packet further behind is from before it
        self._last_seq: int | None = None
        self._last_ts = 0
        self._last_wall = 0.0
        self._rtx_seq = random.randrange(1 << 15)
        self._cache: list[tuple[int, bytes, int] | None] = [None] * CACHE if self._video else []
        self.packets = self.frames = self.bytes = self.dropped = self.retransmitted = 0
        self.red_payload_type: int | None = None  # audio: the subscriber's red payload type, if negotiated
        self.keyframes_only = False
        self.skipped = 0  # packets not sent because only key frames go to this subscriber
        self.keyframes = 0  # key frames started (video)
        self.last_keyframe_at: float | None = None  # time.time() (the `now` forward() is given)
        self._pid_offset = 0  # added to the VP8 picture id (15 or 7 bits) so it follows the last one sent
        self._last_pid: int | None = None
        # temporal layers (a publisher that sends them): the cap chosen for this subscriber, the cap in force
        self.layer_cap = ALL_LAYERS
        self.layer = ALL_LAYERS
        self.layer_dropped = 0  # packets left out by layer selection
        self.layer_frames_dropped = 0
        # (RTP timestamp, sent, sequence number offset, picture id offset) of the last FRAMES layered frames
        self._frames: deque[tuple[int, bool, int, int]] = deque(maxlen=FRAMES)
        self._frame: tuple[int, bool, int, int] | None = None  # the newest one
        self._frame_complete = True  # its marker packet was seen
        # packets the subscriber will count as lost that never reached the hub: gaps in the forwarded sequence
        # (the publisher's uplink loss), less the gaps filled later (media/weaklink.py nets them out)
        self.upstream_missing = 0

    def bind(self, params: SendParams, out: Out) -> None:
        """The subscriber's sender is negotiated and started: forwarding may begin (video: at a keyframe)."""
        self.params, self._out = params, out
        if self._video:
            self.on_drop()  # what came before was dropped: ask the publisher for a keyframe now

    @property
    def bound(self) -> bool:
        return self.params is not None

    def restart(self) -> None:
        """Forward nothing until the next start point (a keyframe's first packet for video)."""
        self.need_start = True

    def set_keyframes_only(self, on: bool) -> None:
        """Send only key frames (on) or everything again (off: from the next key frame, asked for now)."""
        if not self._video or on == self.keyframes_only:
            return
        self.keyframes_only = on
        self.need_start = True
        if self.params is not None:
            self.on_drop()

    def forward(
        self,
        seq: int,
        ts: int,
        marker: int,
        payload: bytes,
        start_ok: bool,
        source: object,
        ext: bytes | None,
        ntp: int,
        now: float,
        payload_type: int | None = None,
        desc: Descriptor | None = None,
    ) -> None:
        """Send one packet; `payload_type` overrides the negotiated one (a RED payload: `red_payload_type`).
        Video: `desc` is the payload's VP8 descriptor (media/vp8.py) when the caller has parsed it already."""
        p, out = self.params, self._out
        if p is None or out is None:
            return
        pt = p.payload_type if payload_type is None else payload_type
        video = self._video
        if video and desc is None:
            desc = vp8.parse(payload)
        if self.need_start or source is not self._source:
            if not start_ok:
                if self.keyframes_only and self.need_start and source is self._source:
                    self.skipped += 1  # between two key frames
                    return
                self.dropped += 1
                if not self.need_start:  # the publisher's new peer connection: wait for (and ask) a keyframe
                    self.need_start = True
                    self.on_drop()
                return
            if self.keyframes_only and source is self._source and out.backlog() > KEYFRAME_ROOM:
                self.skipped += 1  # what is queued (paced) still takes a while: this one would not fit the link
                return
            self._start(seq, ts, source, now)
            if video:
                self.keyframes += 1
                self.last_keyframe_at = now
                self._rebase_picture_id(desc)
        ahead = (seq - self._hi) & 0xFFFF
        if 0 < ahead < 0x8000:
            self._hi = seq
            self._run += ahead
        else:
            ahead = 0
            if ((self._hi - seq) & 0xFFFF) >= self._run:
                return  # from before this run started (a late retransmission): never sent, never expected
        if video and ((desc is not None and desc.tid >= 0) or self._frame is not None):
            offsets = self._layers(ts, marker, desc, ahead)
            if offsets is None:
                return  # left out (a temporal layer above the cap)
            seq_offset, pid_offset = offsets
        else:
            seq_offset, pid_offset = self._seq_offset, self._pid_offset
        out_seq = (seq + seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        if video:
            payload = self._picture_id(payload, desc, pid_offset)
        if ext is None or p.ext_head is None:
            block = p.static_ext
            data = b"".join(
                (
                    _HEADER.pack(0x90 if block else 0x80, (marker << 7) | pt, out_seq, out_ts, p.ssrc),
                    block,
                    payload,
                )
            )
            header_len = 12 + len(block)
        else:
            head = _HEADER.pack(0x90, (marker << 7) | pt, out_seq, out_ts, p.ssrc)
            data = b"".join((head, p.ext_head, ext, p.ext_tail, payload))
            header_len = len(data) - len(payload)
        if not out.send(data, len(payload), out_ts, ntp):
            self.dropped += 1
            if self._video:  # the socket is backed up: skip to the next keyframe rather than queue
                self.need_start = True
                self.on_drop()
            return
        self.packets += 1
        self.frames += marker
        self.bytes += len(payload)
        if marker and self.keyframes_only:
            self.need_start = True  # the key frame is complete: skip to the next one
        if self._video:
            self._cache[out_seq % CACHE] = (out_seq, data, header_len)
        last = self._last_seq
        if last is None:
            self._last_seq, self._last_ts, self._last_wall = out_seq, out_ts, now
            return
        step = (out_seq - last) & 0xFFFF
        if 0 < step < 0x8000:
            self.upstream_missing += step - 1
            self._last_seq, self._last_ts, self._last_wall = out_seq, out_ts, now
        elif step and self.upstream_missing > 0:
            self.upstream_missing -= 1  # a late packet fills a gap

    def _start(self, seq: int, ts: int, source: object, now: float) -> None:
        if source is not self._source:
            # a new publisher (or a publisher's new peer connection): keep our timestamps monotonic
            if self._last_seq is None:
                self._ts_offset = (random.randrange(1 << 32) - ts) & 0xFFFFFFFF
            else:
                elapsed = max(int((now - self._last_wall) * self._clock_rate), 1)
                self._ts_offset = (self._last_ts + elapsed - ts) & 0xFFFFFFFF
            self._source = source
        first = random.randrange(1 << 15) if self._last_seq is None else self._last_seq + 1
        self._seq_offset = (first - seq) & 0xFFFF
        self._hi, self._run = (seq - 1) & 0xFFFF, 0
        self.need_start = False
        self._frames.clear()
        self._frame, self._frame_complete = None, True
        self.layer = self.layer_cap  # a start point is a key frame (or audio): any cap may begin here

    def _layers(self, ts: int, marker: int, desc: Descriptor | None, ahead: int) -> tuple[int, int] | None:
        """Temporal layers: (sequence number offset, picture id offset) for this packet, or None to leave it out.
        `ahead`: how far past the newest packet this one is (0: a late or repeated one)."""
        frame = self._frame
        if frame is None or frame[0] != ts:
            if not ahead:  # a late packet of an older frame: that frame's numbers, or left out with it
                frame = next((f for f in reversed(self._frames) if f[0] == ts), None)
                if frame is None:  # a whole frame that never arrived until now: safe only if nothing was left out
                    if all(f[1] for f in self._frames):
                        return self._seq_offset, self._pid_offset
                    self.layer_dropped += 1
                    return None
                if frame[1]:
                    return frame[2], frame[3]
                self.layer_dropped += 1
                return None
            frame = self._new_frame(ts, desc, ahead - 1)
        elif ahead > 1 and not frame[1]:
            self._seq_offset -= ahead - 1  # an upstream gap inside a left-out frame: its packets, left out too
        if ahead and marker and frame is self._frame:
            self._frame_complete = True
        if frame[1]:
            return frame[2], frame[3]
        self.layer_dropped += 1
        if ahead:
            self._seq_offset -= 1  # every later packet moves down by one: no gap on the subscriber's side
        return None

    def _new_frame(self, ts: int, desc: Descriptor | None, gap: int) -> tuple[int, bool, int, int]:
        """The first packet seen of a new frame: switch layers if this is a safe point, decide the frame."""
        tid = desc.tid if desc is not None and desc.tid >= 0 else 0
        start = desc is not None and desc.start
        cap = self.layer_cap
        if start and cap != self.layer:
            if cap < self.layer:
                self.layer = cap  # down: at any frame boundary
            elif tid == 0:
                self.layer = cap  # up: a TID 0 frame depends on nothing above it
            elif desc is not None and desc.layer_sync and tid <= cap:
                self.layer = max(self.layer, tid)  # up to a layer at its sync frame
        sent = tid <= self.layer
        previous = self._frame
        if gap and previous is not None and (not previous[1] or not sent):
            # packets lost upstream between two frames, one of them left out: close the gap when the missing
            # packets can only belong to the left-out one(s): the previous frame's tail (it was left out and is
            # incomplete) and/or this frame's head (this one is left out and this is not its start); never when
            # whole frames may be missing (previous complete, this one starting)
            complete = self._frame_complete
            tail_ok = complete or not previous[1]
            head_ok = start or not sent
            if tail_ok and head_ok and not (complete and start):
                self._seq_offset -= gap
        frame = (ts, sent, self._seq_offset, self._pid_offset)
        if not sent:
            self._pid_offset -= 1  # later frames' picture ids move down by one: no picture id gap
            self.layer_frames_dropped += 1
        self._frames.append(frame)
        self._frame, self._frame_complete = frame, False
        return frame

    def _rebase_picture_id(self, desc: Descriptor | None) -> None:
        """At a start point: choose the picture id offset so the next picture id sent follows the last one."""
        if desc is None or not desc.picture_id_bits or self._last_pid is None:
            return
        self._pid_offset = (self._last_pid + 1 - desc.picture_id) % (1 << desc.picture_id_bits)

    def _picture_id(self, payload: bytes, desc: Descriptor | None, offset: int) -> bytes:
        if desc is None or not desc.picture_id_bits:
            return payload
        pid, bits = desc.picture_id, desc.picture_id_bits
        out = (pid + offset) % (1 << bits)
        self._last_pid = out
        if out == pid:
            return payload
        return vp8.with_picture_id(payload, out, bits)

    def retransmit(self, seq: int) -> None:
        """The subscriber NACKed `seq` (one of ours): resend it from the cache, as RTX if negotiated."""
        p, out = self.params, self._out
        entry = self._cache[seq % CACHE] if self._cache else None
        if p is None or out is None or entry is None or entry[0] != seq:
            return
        _, data, header_len = entry
        if p.rtx_payload_type is not None:
            head = _HEADER.pack(
                data[0], (data[1] & 0x80) | p.rtx_payload_type, self._rtx_seq, _ts_of(data), p.rtx_ssrc
            )
            data = b"".join((head, data[12:header_len], data[2:4], data[header_len:]))
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        if out.resend(data):
            self.retransmitted += 1

    def clear(self) -> None:
        """Forget the packets cached for retransmission (the slot is released)."""
        if self._cache:
            self._cache = [None] * CACHE
        self.need_start = True


def _ts_of(data: bytes) -> int:
    return int.from_bytes(data[4:8], "big")


def vp8_picture_id(payload: bytes) -> tuple[int, int, int] | None:
    """(picture id, its offset in the payload, 7 or 15 bits) of a VP8 payload descriptor (RFC 7741), or None."""
    desc = vp8.parse(payload)
    if desc is None or not desc.picture_id_bits:
        return None
    return desc.picture_id, vp8.PICTURE_ID_OFFSET, desc.picture_id_bits


def vp8_keyframe_start(payload: bytes) -> bool:
    """Is this RTP payload (RFC 7741) the first packet of a VP8 key frame?"""
    desc = vp8.parse(payload)
    return desc is not None and desc.keyframe
