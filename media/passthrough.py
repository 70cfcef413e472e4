"""The ONE module that touches aiortc internals (aiortc is pinned exactly: see AIORTC_VERSION).

Receiving without decoding: `RTCRtpReceiver._handle_rtp_packet` assembles complete encoded frames in its jitter
buffer and puts `(codec, JitterFrame)` on a `queue.Queue` read by a decoder thread. `tap_receiver` swaps that
queue, on one receiver instance and before the receiver starts, for a `_FrameTap` that hands each complete frame
to a callback on the event loop. The decoder thread still starts (aiortc starts it unconditionally) but only ever
gets the stop sentinel from the tap, so it never creates a decoder. Audio receivers also get a jitter buffer
without prefetch (aiortc holds 4 Opus frames = 80 ms for its decoder; forwarding needs none).

Sending without encoding: `RTCRtpSender._next_encoded_frame` packetizes an `av.Packet` returned by the track
(`encoder.pack`) instead of encoding a frame, so a track yielding packets is forwarded as is (`encoded_packet`).
Such a sender ignores PLI/FIR itself (it only sets a flag its encoder would read): `on_keyframe_request`
replaces `_send_keyframe` on one sender instance so the request can be forwarded to the publisher, whose
receiver sends the PLI (`send_pli`).

`drop_incoming_rtp` simulates a lossy downlink on one transport (tests: the DummyConnection loss_pattern idea).
`check_aiortc_internals` verifies every private name used here; the hub calls it once per process and a test
calls it too, so an aiortc upgrade fails loudly instead of silently decoding (or dropping) everything.
"""

from __future__ import annotations

import functools
import inspect
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import aiortc
import av
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCPeerConnection
from aiortc import rtcrtpreceiver as _receiver_module
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket

from media.errors import AiortcInternalsChanged

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]
PacketSink = Callable[[RtpPacket], None]

_R = "_RTCRtpReceiver__"  # name-mangling prefix of RTCRtpReceiver's private attributes


class _FrameTap:
    """Stands in for a receiver's decoder queue: frames go to `sink`, only the stop sentinel to the thread."""

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink
        self._stopped = threading.Event()
        self.frames = 0

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self._stopped.set()
            return
        self.frames += 1
        codec, frame = item
        try:
            self._sink(codec, frame)
        except Exception:  # a bug in one sink must not kill the publisher's RTP handling
            logger.exception("frame sink failed")

    def get(self) -> None:
        # Called by aiortc's decoder thread: it only ever receives "stop".
        self._stopped.wait()


def tap_receiver(
    receiver: RTCRtpReceiver,
    on_frame: FrameSink,
    on_packet: PacketSink | None = None,
    *,
    estimate_bandwidth: bool = True,
) -> None:
    """Deliver complete encoded frames of `receiver` to `on_frame` instead of decoding them.

    Must be called before the receiver starts (before the answer that makes it receive is applied).
    `on_packet`, if given, sees every RTP packet first (counting); it must not block.
    `estimate_bandwidth=False` drops the receiver's REMB estimator (bots: nobody adapts to it anyway).
    """
    if getattr(receiver, _R + "started"):
        raise AiortcInternalsChanged("tap_receiver() called on a receiver that already started")
    setattr(receiver, _R + "decoder_queue", _FrameTap(on_frame))
    if not estimate_bandwidth:
        setattr(receiver, _R + "remote_bitrate_estimator", None)
    if getattr(receiver, _R + "kind") == "audio":
        setattr(receiver, _R + "jitter_buffer", JitterBuffer(capacity=16, prefetch=0))
    if on_packet is not None:
        original = receiver._handle_rtp_packet

        async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            on_packet(packet)
            await original(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


def tapped_frames(receiver: RTCRtpReceiver) -> int | None:
    """Frames delivered by the tap of `receiver`, or None if it is not tapped (it decodes)."""
    queue = getattr(receiver, _R + "decoder_queue", None)
    return queue.frames if isinstance(queue, _FrameTap) else None


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """Ask the remote publisher of `receiver` for a keyframe (RTCP PLI)."""
    return receiver._send_rtcp_pli(media_ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote side of `sender` sends PLI or FIR (instead of flagging the encoder)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def encoded_packet(data: bytes, timestamp: int, time_base: Fraction) -> av.Packet:
    """An already-encoded frame in the form `RTCRtpSender` packetizes without encoding."""
    packet = av.Packet(data)
    packet.pts = timestamp
    packet.time_base = time_base
    return packet


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the frame tag is 0 for key frames, which carry the start code 9d 01 2a."""
    return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"


def drop_incoming_rtp(transport: RTCDtlsTransport, should_drop: Callable[[], bool]) -> None:
    """Simulate a lossy downlink: drop incoming (decrypted) RTP packets for which `should_drop()` is True."""
    original = transport._handle_rtp_data

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        if not should_drop():
            await original(data, arrival_time_ms=arrival_time_ms)

    transport._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int) -> int:
    """Raise SO_RCVBUF of the peer connection's (bundled) ICE sockets after gathering; returns sockets changed.

    At a few Mbit/s the kernel default (~208 KiB) overflows after a ~100 ms scheduling hiccup, and the loss
    then stalls aiortc's video jitter buffer. The kernel caps the size at net.core.rmem_max.
    """
    changed = 0
    for transceiver in pc.getTransceivers()[:1]:
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        for protocol in connection._protocols:
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                changed += 1
    return changed


# --------------------------------------------------------------------------------------------------
def _params(func: Any) -> list[str]:
    return list(inspect.signature(func).parameters)


def _source(obj: Any) -> str:
    return inspect.getsource(obj)


@functools.cache
def check_aiortc_internals() -> None:
    """Raise AiortcInternalsChanged unless every internal this module relies on is as in aiortc 1.16.0."""
    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    expect(
        aiortc.__version__ == AIORTC_VERSION,
        f"aiortc {aiortc.__version__} installed, {AIORTC_VERSION} pinned",
    )

    # receiver: decoder queue fed with (codec, JitterFrame), thread started with that queue in receive()
    worker = _receiver_module.decoder_worker
    expect(_params(worker) == ["loop", "input_q", "output_q", "decode_error"], "decoder_worker signature")
    worker_src = _source(worker)
    expect("task = input_q.get()" in worker_src and "if task is None:" in worker_src, "decoder_worker loop")
    expect(
        worker_src.index("if task is None:") < worker_src.index("get_decoder(codec)"),
        "decoder created after get",
    )
    handle_src = _source(RTCRtpReceiver._handle_rtp_packet)
    expect("self.__jitter_buffer.add(packet)" in handle_src, "_handle_rtp_packet uses __jitter_buffer.add")
    expect("if self.__remote_bitrate_estimator is not None:" in handle_src, "REMB estimator is optional")
    expect("self.__decoder_queue.put((codec, encoded_frame))" in handle_src, "frames put on __decoder_queue")
    expect(
        _params(RTCRtpReceiver._handle_rtp_packet) == ["self", "packet", "arrival_time_ms"], "rtp handler sig"
    )
    receive_src = _source(RTCRtpReceiver.receive)
    expect(
        "self.__decoder_queue," in receive_src and "target=decoder_worker" in receive_src, "receive() thread"
    )
    expect(_params(RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"], "_send_rtcp_pli signature")
    expect(_params(JitterBuffer) == ["capacity", "prefetch", "is_video"], "JitterBuffer signature")
    frame = JitterFrame(data=b"x", timestamp=1)
    expect(frame.data == b"x" and frame.timestamp == 1, "JitterFrame fields")

    # sender: non-Frame track output is packed, and PLI/FIR end in _send_keyframe()
    next_src = _source(RTCRtpSender._next_encoded_frame)
    expect("isinstance(data, Frame)" in next_src and "self.__encoder.pack(data)" in next_src, "sender packs")
    expect("self._send_keyframe()" in _source(RTCRtpSender._handle_rtcp_packet), "PLI calls _send_keyframe")
    expect(_params(RTCRtpSender._send_keyframe) == ["self"], "_send_keyframe signature")
    for encoder in (Vp8Encoder, OpusEncoder):
        expect(_params(encoder.pack) == ["self", "packet"], f"{encoder.__name__}.pack signature")

    # transport: decrypted RTP goes through _handle_rtp_data
    expect(_params(RTCDtlsTransport._handle_rtp_data) == ["self", "data", "arrival_time_ms"], "rtp data sig")
    expect("await self._handle_rtp_data(" in _source(RTCDtlsTransport._recv_next), "_recv_next dispatch")

    # the private attributes exist on a real (unstarted) receiver
    transport = RTCDtlsTransport(
        RTCIceTransport(RTCIceGatherer(iceServers=[])), [RTCCertificate.generateCertificate()]
    )
    for kind in ("audio", "video"):
        receiver = RTCRtpReceiver(kind, transport)
        for name in (
            "decoder_queue",
            "jitter_buffer",
            "started",
            "kind",
            "decoder_thread",
            "remote_bitrate_estimator",
        ):
            expect(hasattr(receiver, _R + name), f"RTCRtpReceiver.__{name}")
        expect(getattr(receiver, _R + "kind", None) == kind, "RTCRtpReceiver.__kind value")

    if problems:
        raise AiortcInternalsChanged("aiortc internals changed: " + "; ".join(problems))
