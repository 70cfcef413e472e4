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

Forwarding RTP packets (the hub): `forward_receiver` replaces `_handle_rtp_packet` on one receiver instance by a
lean copy of it that hands every packet to a callback and assembles frames only while someone wants them (the
recorder); its original is pinned by hash. On the sending side the hub bypasses the sender's packetizer: `RtpOut`
SRTP-protects already-built packets and sends them on the sender's (bundled) transport, keeping the sender's
counters right for its RTCP sender reports; `on_negotiated` tells when a sender has started and with which
parameters; `on_retransmit_request` answers the subscriber's NACKs from the hub's own packet cache.

`drop_incoming_rtp` simulates a lossy downlink on one transport (tests: the DummyConnection loss_pattern idea).
`check_aiortc_internals` verifies every private name used here; the hub calls it once per process and a test
calls it too, so an aiortc upgrade fails loudly instead of silently decoding (or dropping) everything.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import aioice.ice
import aiortc
import av
import pylibsrtp
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCPeerConnection
from aiortc import rtcpeerconnection as _pc_module
from aiortc import rtcrtpreceiver as _receiver_module
from aiortc.codecs import depayload
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import State as _DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unwrap_rtx

from media.errors import AiortcInternalsChanged

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]
PacketSink = Callable[[RtpPacket], None]

_R = "_RTCRtpReceiver__"  # name-mangling prefixes of private attributes
_S = "_RTCRtpSender__"
_D = "_RTCDtlsTransport__"
# sha256 of the source of RTCRtpReceiver._handle_rtp_packet in aiortc 1.16.0, which forward_receiver replaces
HANDLE_RTP_SHA256 = "4e54983d021a6336d80c29490f82f9a6dd531c0d3179b2daed818120c5ece238"
REMB_MIN_INTERVAL_MS = 200
NTP_EPOCH = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
_FAST = "_onedoor_fast_rtp"


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


def forward_receiver(
    receiver: RTCRtpReceiver,
    on_rtp: Callable[[RtpPacket], None],
    on_frame: FrameSink,
    wants_frames: Callable[[], bool],
) -> None:
    """Hub receivers: every RTP packet (RTX unwrapped) goes to `on_rtp`; complete frames go to `on_frame` only
    while `wants_frames()` is true. Must be called before the receiver starts.

    Kept from aiortc's handler: receiver statistics (for the receiver reports the publisher adapts to), NACKs
    for lost video packets, REMB (sent at most every 200 ms unless the estimate drops by 10 %). Dropped: the
    jitter buffer and depayloading while no frame is wanted, the decoder, and the per-packet datetime
    bookkeeping of getSynchronizationSources (the hub tracks the media SSRC itself).
    """
    if getattr(receiver, _R + "started"):
        raise AiortcInternalsChanged("forward_receiver() called on a receiver that already started")
    state = vars(receiver)
    state[_R + "decoder_queue"] = _FrameTap(on_frame)  # its thread only ever gets "stop"
    codecs, rtx_ssrcs = state[_R + "codecs"], state[_R + "rtx_ssrc"]
    streams, nacks = state[_R + "remote_streams"], state[_R + "nack_generator"]
    estimator, mapper = state[_R + "remote_bitrate_estimator"], state[_R + "timestamp_mapper"]
    video = state[_R + "kind"] == "video"
    jitter: list[JitterBuffer] = []
    remb_sent = [-REMB_MIN_INTERVAL_MS, 0]  # when, bitrate
    is_rtx: dict[int, bool] = {}

    def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        if not receiver._enabled:
            return
        if estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            rtcp_ssrc = state[_R + "rtcp_ssrc"]
            if (
                remb is not None
                and rtcp_ssrc is not None
                and (arrival_time_ms - remb_sent[0] >= REMB_MIN_INTERVAL_MS or remb[0] < remb_sent[1] * 0.9)
            ):
                remb_sent[:] = arrival_time_ms, remb[0]
                fci = pack_remb_fci(*remb)
                _background(receiver._send_rtcp(RtcpPsfbPacket(RTCP_PSFB_APP, rtcp_ssrc, 0, fci)))
        pt = packet.payload_type
        codec = codecs.get(pt)
        if codec is None:
            return
        stream = streams.get(packet.ssrc)
        if stream is None:
            stream = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        rtx = is_rtx.get(pt)
        if rtx is None:
            rtx = is_rtx[pt] = codec.name.lower() == "rtx"
        if rtx:
            original, apt = rtx_ssrcs.get(packet.ssrc), codec.parameters.get("apt")
            if original is None or len(packet.payload) < 2 or not isinstance(apt, int) or apt not in codecs:
                return
            packet, codec = unwrap_rtx(packet, payload_type=apt, ssrc=original), codecs[apt]
        if nacks is not None and nacks.add(packet):
            _background(receiver._send_rtcp_nack(packet.ssrc, sorted(nacks.missing)))
        try:
            if packet.payload:
                on_rtp(packet)
        except Exception:  # a forwarding bug must not kill the publisher's transport
            logger.exception("RTP forwarding failed")
        if not wants_frames():
            jitter.clear()
            return
        if not jitter:
            jitter.append(
                JitterBuffer(capacity=512, is_video=True) if video else JitterBuffer(16, prefetch=0)
            )
        try:
            packet._data = depayload(codec, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
        except ValueError:
            return
        pli, frame = jitter[0].add(packet)
        if pli:
            _background(receiver._send_rtcp_pli(packet.ssrc))
        if frame is not None:
            frame.timestamp = mapper.map(frame.timestamp)
            state[_R + "decoder_queue"].put((codec, frame))  # the tap: to on_frame, exceptions logged

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    state[_FAST] = handle  # for fast_rtp_path


def fast_rtp_path(pc: RTCPeerConnection) -> int:
    """Hub peer connections: incoming SRTP packets go from the socket callback straight to the receivers.

    aioice tries to parse every datagram as STUN (an exception per media packet), queues the rest for the DTLS
    transport's task, which unprotects, parses, routes and awaits the receiver. Here, on each of the peer
    connection's ICE sockets (after gathering), a datagram that is SRTP (not SRTCP) once the DTLS transport is
    connected is unprotected, parsed, routed and handled at once (receivers set up by `forward_receiver`);
    everything else (STUN, DTLS, SRTCP, packets before the handshake ends) takes aiortc's path unchanged.
    Returns the number of sockets hooked.
    """
    transceivers = pc.getTransceivers()
    if not transceivers:
        return 0
    dtls = transceivers[0].receiver.transport
    counters = vars(dtls)
    connected = _DtlsState.CONNECTED
    parse, extension_map, router = RtpPacket.parse, dtls._rtp_header_extensions_map, dtls._rtp_router

    def fast(data: bytes) -> bool:
        srtp = dtls._rx_srtp
        if srtp is None or dtls._state is not connected or 192 <= data[1] <= 208:
            return False
        counters[_D + "rx_bytes"] += len(data)
        counters[_D + "rx_packets"] += 1
        try:
            packet = parse(srtp.unprotect(data), extension_map)
        except (pylibsrtp.Error, ValueError):
            return True
        receiver = router.route_rtp(packet)
        if receiver is None:
            return True
        arrival_ms = int((time.time() + NTP_EPOCH) * 1000)  # as aiortc.clock.current_ms()
        handle = vars(receiver).get(_FAST)
        if handle is not None:
            handle(packet, arrival_ms)
        else:
            _background(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_ms))
        return True

    hooked = 0
    for protocol in dtls.transport._connection._protocols:
        if getattr(protocol, _FAST, False):
            continue
        original = protocol.datagram_received

        def datagram_received(data: Any, addr: Any, original: Any = original) -> None:
            if not (len(data) > 12 and 127 < data[0] < 192 and fast(data)):
                original(data, addr)

        protocol.datagram_received = datagram_received  # type: ignore[method-assign]
        setattr(protocol, _FAST, True)
        hooked += 1
    return hooked


_tasks: set[asyncio.Future[Any]] = set()


def _background(coro: Awaitable[Any]) -> None:
    """Run an RTCP send (NACK, PLI, REMB) from synchronous packet handling; keeps a reference until done."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


class RtpOut:
    """Sends plain RTP packets built by the hub on `sender`'s transport: SRTP protect + sendto, no packetizer.

    `send()` keeps the sender's counters (packets, octets, last RTP/NTP time) as its own loop would, so its RTCP
    sender reports and getStats() stay right. It refuses (False) while the transport is not connected or
    when more than `max_buffered` bytes wait in the socket's userspace buffer: the caller drops, nothing queues.
    """

    def __init__(self, sender: RTCRtpSender, max_buffered: int = 256 * 1024) -> None:
        self._sender = vars(sender)
        self._dtls = sender.transport  # fixed once the sender has started
        self._counters = vars(self._dtls)
        self._nominated = self._dtls.transport._connection._nominated
        self._max = max_buffered
        self._pair: Any = None
        self._udp: Any = None
        self._addr: Any = None

    def send(self, data: bytes, payload_size: int, rtp_timestamp: int, ntp: int) -> bool:
        """Send a new packet and count it as the sender's own loop would."""
        if not self.resend(data):
            return False
        s = self._sender
        s[_S + "packet_count"] += 1
        s[_S + "octet_count"] += payload_size
        s[_S + "ntp_timestamp"] = ntp
        s[_S + "rtp_timestamp"] = rtp_timestamp
        return True

    def resend(self, data: bytes) -> bool:
        """Send a packet without counting it (a retransmission)."""
        dtls = self._dtls
        if dtls._state is not _DtlsState.CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is not self._pair:
            if pair is None:
                return False
            self._pair, self._udp, self._addr = pair, pair.protocol.transport, pair.remote_addr
        udp = self._udp
        if udp is None or udp.get_write_buffer_size() > self._max:
            return False
        try:
            data = dtls._tx_srtp.protect(data)
        except pylibsrtp.Error:
            return False
        udp.sendto(data, self._addr)
        counters = self._counters
        counters[_D + "tx_bytes"] += len(data)
        counters[_D + "tx_packets"] += 1
        return True


def on_negotiated(sender: RTCRtpSender, callback: Callable[[Any, int, int, RtpOut], None]) -> None:
    """Call `callback(send_parameters, ssrc, rtx_ssrc, RtpOut(sender))` once `sender` has started."""
    original = sender.send

    async def send(parameters: Any) -> None:
        await original(parameters)
        callback(parameters, sender._ssrc, sender._rtx_ssrc, RtpOut(sender))

    sender.send = send  # type: ignore[method-assign]


def on_retransmit_request(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Answer the remote side's NACKs of `sender` with `callback(sequence_number)` (instead of its history)."""

    async def retransmit(sequence_number: int) -> None:
        callback(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]


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

    # forward_receiver: the handler it replaces, and the receiver state it uses
    expect(
        hashlib.sha256(handle_src.encode()).hexdigest() == HANDLE_RTP_SHA256,
        "RTCRtpReceiver._handle_rtp_packet changed (review forward_receiver)",
    )
    expect(_params(RTCRtpReceiver._send_rtcp_nack) == ["self", "media_ssrc", "lost"], "_send_rtcp_nack sig")
    expect(_params(RTCRtpReceiver._send_rtcp) == ["self", "packet"], "receiver _send_rtcp signature")
    expect(_params(StreamStatistics) == ["clockrate"], "StreamStatistics signature")
    expect(_params(RtcpPsfbPacket)[:4] == ["fmt", "ssrc", "media_ssrc", "fci"], "RtcpPsfbPacket fields")

    # RtpOut / on_negotiated / on_retransmit_request: how a sender sends, counts and retransmits
    sender_init = _source(RTCRtpSender.__init__)
    for name in ("transport", "packet_count", "octet_count", "ntp_timestamp", "rtp_timestamp"):
        expect(f"self.__{name} = " in sender_init, f"RTCRtpSender.__{name}")
    rtcp_src = _source(RTCRtpSender._run_rtcp)
    for name in ("ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count"):
        expect(f"{name}=self.__{name}" in rtcp_src, f"sender reports use __{name}")
    expect("await self._retransmit(seq)" in _source(RTCRtpSender._handle_rtcp_packet), "NACK -> _retransmit")
    expect(_params(RTCRtpSender._retransmit) == ["self", "sequence_number"], "_retransmit signature")
    expect(_params(RTCRtpSender.send) == ["self", "parameters"], "RTCRtpSender.send signature")
    expect("self._ssrc = " in sender_init and "self._rtx_ssrc = " in sender_init, "sender SSRCs")
    expect("await transceiver.sender.send(" in _source(_pc_module.RTCPeerConnection), "pc starts senders")
    send_src = _source(RTCDtlsTransport._send_rtp)
    expect("self._tx_srtp.protect(data)" in send_src, "_send_rtp protects with _tx_srtp")
    expect("await self.transport._send(data)" in send_src, "_send_rtp sends on the ICE transport")
    expect("self.__tx_bytes += len(data)" in send_src and "self.__tx_packets += 1" in send_src, "tx counters")
    expect(
        "self._send = self._connection.send" in _source(RTCIceTransport), "ICE transport sends on _connection"
    )
    conn_src = _source(aioice.ice.Connection.sendto)
    expect("self._nominated.get(component)" in conn_src, "aioice Connection._nominated")
    expect("active_pair.protocol.send_data(data, active_pair.remote_addr)" in conn_src, "aioice send path")
    expect("self.transport.sendto(data, addr)" in _source(aioice.ice.StunProtocol.send_data), "StunProtocol")

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
    for name in ("_state", "_tx_srtp", _D + "tx_bytes", _D + "tx_packets"):
        expect(hasattr(transport, name), f"RTCDtlsTransport.{name}")
    expect(hasattr(transport.transport, "_connection"), "RTCIceTransport._connection")
    for kind in ("audio", "video"):
        receiver = RTCRtpReceiver(kind, transport)
        for name in (
            "decoder_queue",
            "jitter_buffer",
            "started",
            "kind",
            "decoder_thread",
            "remote_bitrate_estimator",
            "codecs",
            "rtx_ssrc",
            "remote_streams",
            "nack_generator",
            "timestamp_mapper",
            "rtcp_ssrc",
        ):
            expect(hasattr(receiver, _R + name), f"RTCRtpReceiver.__{name}")
        expect(getattr(receiver, _R + "kind", None) == kind, "RTCRtpReceiver.__kind value")

    if problems:
        raise AiortcInternalsChanged("aiortc internals changed: " + "; ".join(problems))
