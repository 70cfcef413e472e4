"""The ONE module that touches aiortc/aioice internals; every private name it uses comes from the table in
media/internals.py (aiortc and aioice are pinned exactly there and in pyproject.toml).

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

RED (media/sdpmunge.py): aiortc knows no "audio/red" and is not taught one (its codec table is process-wide:
every aiortc client in the process would then answer with red and try to encode or decode it).
`accept_extra_codec` wraps `receive` on one hub receiver instance so that, when the answer negotiated red, the
receiver is started with red's payload type among its codecs: aiortc's RTP router then routes those packets to
it (it matches SSRC *and* payload type), and forward_receiver hands them on like any other.

`drop_incoming_rtp` simulates a lossy downlink on one transport (tests: the DummyConnection loss_pattern idea).
`check_aiortc_internals` verifies every entry of that table; the hub calls it once per process and a test
calls it too, so an aiortc/aioice upgrade fails loudly instead of silently decoding (or dropping) everything.
Hooks read names at set-up time through `internals.get/put/replace`, which also fail loudly; per packet they
use dict lookups keyed by the table's names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
import pylibsrtp
from aiortc import RTCDtlsTransport, RTCPeerConnection
from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import State as _DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)

from media import internals as ix
from media.config import HostAddressPolicy
from media.errors import AiortcInternalsChanged
from media.internals import AIOICE_VERSION, AIORTC_VERSION, NTP_EPOCH

__all__ = ["AIOICE_VERSION", "AIORTC_VERSION"]  # re-exported: the pins live in media/internals.py

logger = logging.getLogger(__name__)

FrameSink = Callable[[RTCRtpCodecParameters, JitterFrame], None]
PacketSink = Callable[[RtpPacket], None]

REMB_MIN_INTERVAL_MS = 200
_FAST = "_onedoor_fast_rtp"  # our own attribute on receivers (the lean handler) and protocols (hooked flag)
# Datagrams aioice's STUN parser failed on with an exception it does not catch (it catches ValueError only; a
# STUN attribute shorter than its type needs raises struct.error): dropped here, counted, never a traceback. Any
# sender that reaches a hub socket could otherwise write one traceback into the log per datagram.
MALFORMED_STUN = {"dropped": 0}


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
    if ix.get(receiver, ix.RECEIVER_STARTED):
        raise AiortcInternalsChanged("tap_receiver() called on a receiver that already started")
    ix.put(receiver, ix.RECEIVER_DECODER_QUEUE, _FrameTap(on_frame))
    if not estimate_bandwidth:
        ix.put(receiver, ix.RECEIVER_BITRATE_ESTIMATOR, None)
    if ix.get(receiver, ix.RECEIVER_KIND) == "audio":
        ix.put(receiver, ix.RECEIVER_JITTER_BUFFER, JitterBuffer(capacity=16, prefetch=0))
    if on_packet is not None:

        def wrap(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
            async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
                on_packet(packet)
                await original(packet, arrival_time_ms=arrival_time_ms)

            return handle_rtp_packet

        ix.replace(receiver, ix.RECEIVER_HANDLE_RTP, wrap)


def forward_receiver(
    receiver: RTCRtpReceiver,
    on_rtp: Callable[[RtpPacket], None],
    on_frame: FrameSink,
    wants_frames: Callable[[], bool],
    limit_remb: Callable[[int], int] | None = None,
) -> None:
    """Hub receivers: every RTP packet (RTX unwrapped) goes to `on_rtp`; complete frames go to `on_frame` only
    while `wants_frames()` is true. Must be called before the receiver starts.

    Kept from aiortc's handler: receiver statistics (for the receiver reports the publisher adapts to), NACKs
    for lost video packets, REMB (sent at most every 200 ms unless the estimate drops by 10 %; `limit_remb`
    maps the receive-side estimate to the bitrate actually sent: the hub's subscribers' share). Dropped: the
    jitter buffer and depayloading while no frame is wanted, the decoder, and the per-packet datetime
    bookkeeping of getSynchronizationSources (the hub tracks the media SSRC itself).
    """
    if ix.get(receiver, ix.RECEIVER_STARTED):
        raise AiortcInternalsChanged("forward_receiver() called on a receiver that already started")
    state = vars(receiver)
    tap = _FrameTap(on_frame)  # its thread only ever gets "stop"
    ix.put(receiver, ix.RECEIVER_DECODER_QUEUE, tap)
    codecs, rtx_ssrcs = ix.get(receiver, ix.RECEIVER_CODECS), ix.get(receiver, ix.RECEIVER_RTX_SSRC)
    streams, nacks = (
        ix.get(receiver, ix.RECEIVER_REMOTE_STREAMS),
        ix.get(receiver, ix.RECEIVER_NACK_GENERATOR),
    )
    estimator = ix.get(receiver, ix.RECEIVER_BITRATE_ESTIMATOR)
    mapper = ix.get(receiver, ix.RECEIVER_TIMESTAMP_MAPPER)
    video = ix.get(receiver, ix.RECEIVER_KIND) == "video"
    enabled, rtcp_ssrc_key = ix.RECEIVER_ENABLED.attr, ix.RECEIVER_RTCP_SSRC.attr
    for entry in (ix.RECEIVER_ENABLED, ix.RECEIVER_RTCP_SSRC):  # read per packet from the receiver's __dict__
        if entry.attr not in state:
            raise ix.changed(entry, "not in the receiver's __dict__")
    send_rtcp, send_nack = ix.get(receiver, ix.RECEIVER_SEND_RTCP), ix.get(receiver, ix.RECEIVER_SEND_NACK)
    send_pli, data_attr = ix.get(receiver, ix.RECEIVER_SEND_PLI), ix.PACKET_DATA.attr
    jitter: list[JitterBuffer] = []
    remb_sent = [-REMB_MIN_INTERVAL_MS, 0]  # when, bitrate
    is_rtx: dict[int, bool] = {}

    def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        if not state[enabled]:
            return
        if estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            rtcp_ssrc = state[rtcp_ssrc_key]
            if remb is not None and rtcp_ssrc is not None:
                bitrate = remb[0] if limit_remb is None else limit_remb(remb[0])
                if arrival_time_ms - remb_sent[0] >= REMB_MIN_INTERVAL_MS or bitrate < remb_sent[1] * 0.9:
                    remb_sent[:] = arrival_time_ms, bitrate
                    fci = pack_remb_fci(bitrate, remb[1])
                    media_ssrc = remb[1][0] if remb[1] else 0
                    _background(send_rtcp(RtcpPsfbPacket(RTCP_PSFB_APP, rtcp_ssrc, media_ssrc, fci)))
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
            _background(send_nack(packet.ssrc, sorted(nacks.missing)))
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
            setattr(packet, data_attr, depayload(codec, packet.payload) if packet.payload else b"")
        except ValueError:
            return
        pli, frame = jitter[0].add(packet)
        if pli:
            _background(send_pli(packet.ssrc))
        if frame is not None:
            frame.timestamp = mapper.map(frame.timestamp)
            tap.put((codec, frame))  # to on_frame, exceptions logged

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        handle(packet, arrival_time_ms)

    ix.replace(receiver, ix.RECEIVER_HANDLE_RTP, lambda _original: handle_rtp_packet)
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
    parse, extension_map = RtpPacket.parse, ix.get(dtls, ix.DTLS_HEADER_EXTENSIONS)
    router = ix.get(dtls, ix.DTLS_RTP_ROUTER)
    route = router.route_rtp
    handle_key = ix.RECEIVER_HANDLE_RTP.attr
    # read per packet from the transport's __dict__ (present now; values change when DTLS connects)
    rx_srtp, state_key = ix.DTLS_RX_SRTP.attr, ix.DTLS_STATE.attr
    rx_bytes, rx_packets = ix.DTLS_RX_BYTES.attr, ix.DTLS_RX_PACKETS.attr
    for entry in (ix.DTLS_RX_SRTP, ix.DTLS_STATE, ix.DTLS_RX_BYTES, ix.DTLS_RX_PACKETS):
        if entry.attr not in counters:
            raise ix.changed(entry, "not in the transport's __dict__")

    def fast(data: bytes) -> bool:
        srtp = counters[rx_srtp]
        if srtp is None or counters[state_key] is not connected or 192 <= data[1] <= 208:
            return False
        counters[rx_bytes] += len(data)
        counters[rx_packets] += 1
        try:
            packet = parse(srtp.unprotect(data), extension_map)
        except (pylibsrtp.Error, ValueError):
            return True
        receiver = route(packet)
        if receiver is None:
            return True
        arrival_ms = int((time.time() + NTP_EPOCH) * 1000)  # as aiortc.clock.current_ms()
        handle = vars(receiver).get(_FAST)
        if handle is not None:
            handle(packet, arrival_ms)
        else:
            _background(getattr(receiver, handle_key)(packet, arrival_time_ms=arrival_ms))
        return True

    def wrap(original: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def datagram_received(data: Any, addr: Any) -> None:
            if not (len(data) > 12 and 127 < data[0] < 192 and fast(data)):
                try:
                    original(data, addr)
                except (struct.error, UnicodeDecodeError, IndexError):  # a malformed STUN message (see above)
                    MALFORMED_STUN["dropped"] += 1
                    if MALFORMED_STUN["dropped"] in (1, 10, 100, 1000, 10000):
                        logger.warning("dropped %d malformed STUN datagrams (latest from %s)",
                                       MALFORMED_STUN["dropped"], addr[0] if addr else "?")

        return datagram_received

    hooked = 0
    for protocol in ix.get(ix.get(dtls.transport, ix.ICE_CONNECTION), ix.CONNECTION_PROTOCOLS):
        if getattr(protocol, _FAST, False):
            continue
        ix.replace(protocol, ix.STUN_DATAGRAM_RECEIVED, wrap)
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
        self._nominated = ix.get(ix.get(self._dtls.transport, ix.ICE_CONNECTION), ix.CONNECTION_NOMINATED)
        for entry, obj in (
            (ix.SENDER_PACKET_COUNT, sender),
            (ix.SENDER_OCTET_COUNT, sender),
            (ix.SENDER_NTP_TIMESTAMP, sender),
            (ix.SENDER_RTP_TIMESTAMP, sender),
            (ix.DTLS_STATE, self._dtls),
            (ix.DTLS_TX_SRTP, self._dtls),
            (ix.DTLS_TX_BYTES, self._dtls),
            (ix.DTLS_TX_PACKETS, self._dtls),
        ):
            if entry.attr not in vars(obj):
                raise ix.changed(entry, "not in the instance's __dict__")
        self._max = max_buffered
        self._pair: Any = None
        self._udp: Any = None
        self._addr: Any = None

    def send(self, data: bytes, payload_size: int, rtp_timestamp: int, ntp: int) -> bool:
        """Send a new packet and count it as the sender's own loop would."""
        if not self.resend(data):
            return False
        s = self._sender
        s[_PACKET_COUNT] += 1
        s[_OCTET_COUNT] += payload_size
        s[_NTP_TIMESTAMP] = ntp
        s[_RTP_TIMESTAMP] = rtp_timestamp
        return True

    def backlog(self) -> float:
        return 0.0  # nothing is held back here: a packet is sent or refused at once

    def resend(self, data: bytes) -> bool:
        """Send a packet without counting it (a retransmission)."""
        counters = self._counters
        if counters[_DTLS_STATE] is not _DtlsState.CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is not self._pair:
            if pair is None:
                return False
            protocol = ix.get(pair, ix.PAIR_PROTOCOL)
            self._pair, self._udp = pair, ix.get(protocol, ix.STUN_TRANSPORT)
            self._addr = ix.get(pair, ix.PAIR_REMOTE_ADDR)
        udp = self._udp
        if udp is None or udp.get_write_buffer_size() > self._max:
            return False
        try:
            data = counters[_TX_SRTP].protect(data)
        except pylibsrtp.Error:
            return False
        udp.sendto(data, self._addr)
        counters[_TX_BYTES] += len(data)
        counters[_TX_PACKETS] += 1
        return True


# RtpOut's per-packet keys (instance __dict__ names from the table; RtpOut.__init__ checks they exist)
_PACKET_COUNT, _OCTET_COUNT = ix.SENDER_PACKET_COUNT.attr, ix.SENDER_OCTET_COUNT.attr
_NTP_TIMESTAMP, _RTP_TIMESTAMP = ix.SENDER_NTP_TIMESTAMP.attr, ix.SENDER_RTP_TIMESTAMP.attr
_DTLS_STATE, _TX_SRTP = ix.DTLS_STATE.attr, ix.DTLS_TX_SRTP.attr
_TX_BYTES, _TX_PACKETS = ix.DTLS_TX_BYTES.attr, ix.DTLS_TX_PACKETS.attr


def on_negotiated(sender: RTCRtpSender, callback: Callable[[Any, int, int, RtpOut], None]) -> None:
    """Call `callback(send_parameters, ssrc, rtx_ssrc, RtpOut(sender))` once `sender` has started."""

    def wrap(original: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def send(parameters: Any) -> None:
            await original(parameters)
            ssrc, rtx_ssrc = ix.get(sender, ix.SENDER_SSRC), ix.get(sender, ix.SENDER_RTX_SSRC)
            callback(parameters, ssrc, rtx_ssrc, RtpOut(sender))

        return send

    ix.replace(sender, ix.SENDER_SEND, wrap)


def accept_extra_codec(receiver: RTCRtpReceiver, extra: Callable[[], list[RTCRtpCodecParameters]]) -> None:
    """Start `receiver` with the codecs `extra()` returns (asked when it starts) added to the negotiated ones.
    Must be called before the receiver starts."""
    if ix.get(receiver, ix.RECEIVER_STARTED):
        raise AiortcInternalsChanged("accept_extra_codec() called on a receiver that already started")

    def wrap(original: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def receive(parameters: Any) -> None:
            more = [c for c in extra() if all(c.payloadType != k.payloadType for k in parameters.codecs)]
            if more:
                parameters = dataclasses.replace(parameters, codecs=[*parameters.codecs, *more])
            await original(parameters)

        return receive

    ix.replace(receiver, ix.RECEIVER_RECEIVE, wrap)


def on_retransmit_request(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Answer the remote side's NACKs of `sender` with `callback(sequence_number)` (instead of its history)."""

    async def retransmit(sequence_number: int) -> None:
        callback(sequence_number)

    ix.replace(sender, ix.SENDER_RETRANSMIT, lambda _original: retransmit)


def tapped_frames(receiver: RTCRtpReceiver) -> int | None:
    """Frames delivered by the tap of `receiver`, or None if it is not tapped (it decodes)."""
    queue = getattr(receiver, ix.RECEIVER_DECODER_QUEUE.attr, None)
    return queue.frames if isinstance(queue, _FrameTap) else None


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """Ask the remote publisher of `receiver` for a keyframe (RTCP PLI)."""
    send: Callable[[int], Awaitable[None]] = ix.get(receiver, ix.RECEIVER_SEND_PLI)
    return send(media_ssrc)


def send_remb(receiver: RTCRtpReceiver, media_ssrc: int, bitrate: int) -> Awaitable[None] | None:
    """Tell the remote publisher of `receiver` the bitrate it may send on `media_ssrc` (RTCP PSFB fmt 15, REMB):
    sender SSRC = the receiver's own RTCP SSRC, media SSRC = the publisher's, FCI lists the publisher's SSRC
    (aiortc's sender only reads the FCI list; Chromium's reads the FCI). None before the receiver started."""
    rtcp_ssrc = ix.get(receiver, ix.RECEIVER_RTCP_SSRC)
    if rtcp_ssrc is None:
        return None
    send: Callable[[Any], Awaitable[None]] = ix.get(receiver, ix.RECEIVER_SEND_RTCP)
    return send(RtcpPsfbPacket(RTCP_PSFB_APP, rtcp_ssrc, media_ssrc, pack_remb_fci(bitrate, [media_ssrc])))


def on_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call `callback(bitrate)` for each REMB the remote side of `sender` sends about it (its original handler
    still runs: a pass-through sender has no encoder, so aiortc itself ignores it)."""

    def wrap(original: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, _ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    bitrate = None
                if bitrate is not None:
                    try:
                        callback(bitrate)
                    except Exception:
                        logger.exception("REMB callback failed")
            await original(packet)

        return handle_rtcp_packet

    ix.replace(sender, ix.SENDER_HANDLE_RTCP, wrap)


def on_round_trip(sender: RTCRtpSender, callback: Callable[[float], None]) -> None:
    """Call `callback(rtt)` with each round-trip time (s) a receiver report about `sender` yields, as measured:
    aiortc's own `roundTripTime` stat is smoothed (x0.85 per report) and lags a filling queue by seconds."""
    ssrc = ix.get(sender, ix.SENDER_SSRC)

    def wrap(original: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                lsr, sent_at = ix.get(sender, ix.SENDER_LSR), ix.get(sender, ix.SENDER_LSR_TIME)
                for report in packet.reports:
                    if report.ssrc == ssrc and lsr is not None and report.lsr == lsr and report.dlsr:
                        try:
                            callback(time.time() - sent_at - report.dlsr / 65536)
                        except Exception:
                            logger.exception("round-trip callback failed")
            await original(packet)

        return handle_rtcp_packet

    ix.replace(sender, ix.SENDER_HANDLE_RTCP, wrap)


def encoder_target_bitrate(sender: RTCRtpSender) -> int | None:
    """The target bitrate of `sender`'s encoder (aiortc sets it from REMB), None before it has one."""
    encoder = ix.get(sender, ix.SENDER_ENCODER)
    target = getattr(encoder, "target_bitrate", None)
    return target if isinstance(target, int) else None


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the remote side of `sender` sends PLI or FIR (instead of flagging the encoder)."""
    ix.replace(sender, ix.SENDER_SEND_KEYFRAME, lambda _original: callback)


def use_packer(sender: RTCRtpSender, packer: Any) -> None:
    """Packetize the pre-encoded frames `sender` sends with `packer.pack(packet) -> (payloads, timestamp)` instead
    of aiortc's VP8 packer (which writes only a picture id): set before the sender starts; it lasts until the
    sender stops (a new peer connection's sender needs it again)."""
    ix.put(sender, ix.SENDER_ENCODER, packer)


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

    def wrap(original: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            if not should_drop():
                await original(data, arrival_time_ms=arrival_time_ms)

        return handle_rtp_data

    ix.replace(transport, ix.DTLS_HANDLE_RTP_DATA, wrap)


class _LossyUdp:
    """The asyncio datagram transport of a bot's ICE socket, dropping outgoing SRTP (never STUN, DTLS, SRTCP)."""

    def __init__(self, udp: Any, should_drop: Callable[[], bool]) -> None:
        self._udp, self._should_drop = udp, should_drop

    def sendto(self, data: bytes, addr: Any = None) -> None:
        if len(data) > 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 208 and self._should_drop():
            return
        self._udp.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._udp, name)


def drop_outgoing_rtp(pc: RTCPeerConnection, should_drop: Callable[[], bool]) -> int:
    """Simulate a lossy uplink (bots, tests): outgoing RTP for which `should_drop()` is True never leaves.

    Call after gathering (the ICE sockets exist); returns the number of sockets wrapped.
    """
    wrapped = 0
    for transceiver in pc.getTransceivers()[:1]:
        connection = ix.get(transceiver.receiver.transport.transport.iceGatherer, ix.GATHERER_CONNECTION)
        for protocol in ix.get(connection, ix.CONNECTION_PROTOCOLS):
            udp = ix.get(protocol, ix.STUN_TRANSPORT)
            if udp is not None and not isinstance(udp, _LossyUdp):
                ix.put(protocol, ix.STUN_TRANSPORT, _LossyUdp(udp, should_drop))
                wrapped += 1
    return wrapped


_host_policy: list[HostAddressPolicy] = []  # the process's policy, once restrict_host_addresses installed it


def restrict_host_addresses(policy: HostAddressPolicy) -> None:
    """From now on every ICE gathering in this process offers only the local addresses `policy` allows (the
    last call wins). aioice's gathering looks up its module function get_host_addresses each time it runs;
    it is wrapped once, process-wide (aioice has no per-connection setting for it)."""
    if not _host_policy:
        module = importlib.import_module(ix.GET_HOST_ADDRESSES.owner)
        original = ix.get(module, ix.GET_HOST_ADDRESSES)

        def offered(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            return [a for a in original(use_ipv4, use_ipv6) if _host_policy[0].allows(a)]

        ix.put(module, ix.GET_HOST_ADDRESSES, offered)
        _host_policy.append(policy)
    _host_policy[0] = policy


def host_address_policy() -> HostAddressPolicy:
    """The policy restrict_host_addresses installed (an empty one, allowing every address, before any)."""
    return _host_policy[0] if _host_policy else HostAddressPolicy()


def set_turn_tls_context(pc: RTCPeerConnection, context: ssl.SSLContext) -> int:
    """Use `context` (a configured CA) for the TURN/TLS connection of each of the peer connection's ICE gatherers
    that has a `turns:` server. Call before gathering (before setLocalDescription); returns gatherers changed.

    aiortc passes `turn_ssl=True` to aioice, which then uses the default context (the system CAs)."""
    changed = 0
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        if id(gatherer) in seen:
            continue
        seen.add(id(gatherer))
        connection = ix.get(gatherer, ix.GATHERER_CONNECTION)
        if ix.get(connection, ix.CONNECTION_TURN_SSL) is True:
            ix.put(connection, ix.CONNECTION_TURN_SSL, context)
            changed += 1
    return changed


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int) -> int:
    """Raise SO_RCVBUF of the peer connection's (bundled) ICE sockets after gathering; returns sockets changed.

    At a few Mbit/s the kernel default (~208 KiB) overflows after a ~100 ms scheduling hiccup, and the loss
    then stalls aiortc's video jitter buffer. The kernel caps the size at net.core.rmem_max.
    """
    changed = 0
    for transceiver in pc.getTransceivers()[:1]:
        connection = ix.get(transceiver.receiver.transport.transport.iceGatherer, ix.GATHERER_CONNECTION)
        for protocol in ix.get(connection, ix.CONNECTION_PROTOCOLS):
            udp = getattr(protocol, ix.STUN_TRANSPORT.attr, None)  # None: its socket is gone
            sock = udp.get_extra_info("socket") if udp else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                changed += 1
    return changed


@functools.cache
def check_aiortc_internals() -> None:
    """Raise AiortcInternalsChanged unless every entry of media/internals.py's table holds (cached per process)."""
    ix.check()
