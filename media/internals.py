"""The table of every aiortc/aioice internal that media/ relies on, and the check that they are all still there.

aiortc and aioice are pinned exactly (AIORTC_VERSION, AIOICE_VERSION; pyproject.toml). The hooks in
media/passthrough.py take every private name from this table (`entry.attr`, `get`, `put`, `replace`), and
tests/media/test_internals.py fails if media/ imports a non-public aiortc/aioice name or touches a foreign
`_private` attribute that is not listed here. `check()` verifies every entry:

- class level, statically: the name is importable / the method exists with the expected parameters / the
  source of the code that must call our replacement still calls it (or is pinned by hash where we copy it);
- instance level, on minimal real objects built in a helper thread: an RTCDtlsTransport with its ICE
  transport and gatherer, audio and video RTCRtpReceivers, an RTCRtpSender, and an aioice Connection that
  has really gathered host candidates (so `_protocols` holds live StunProtocols bound to UDP sockets).

Attributes that only get their working value once DTLS is connected (`_rx_srtp`, `_tx_srtp`, `_nominated`)
are checked to exist before, and by `check_connected(pc)` on a connected peer connection (loopback test).
How to upgrade: docs/aiortc-upgrade.md.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import importlib
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aioice
import aiortc

from media.errors import AiortcInternalsChanged

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"
NTP_EPOCH = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


class Kind(enum.Enum):
    ATTRIBUTE = "instance attribute we read or write"
    CALLED = "private method we call"
    REPLACED = "method we replace on one instance"
    WRAPPED = "method we wrap on one instance (the original still runs)"
    PATCHED = "module-level function we wrap for the whole process (the original still runs)"
    NAME = "module-level name outside aiortc's public API"
    BEHAVIOUR = "code whose behaviour we copy or depend on"


@dataclass(frozen=True)
class Internal:
    owner: str  # dotted path of the class (or module) that defines the name
    name: str  # as spelled in the owner's source: "__decoder_queue", "_rx_srtp", "unwrap_rtx"
    kind: Kind
    used_by: str  # where in media/ it is used
    relies: str  # what we rely on
    on: tuple[str, ...] = ()  # ATTRIBUTE: sample objects (see _build_samples) that must carry it
    params: tuple[str, ...] | None = None  # callables: the exact parameter names
    # (dotted path of a function or method, text its source must contain); never a class: inspect.getsource
    # of a class parses the module with ast, which trips a CPython 3.11.7 bug when run from a test
    calls: tuple[tuple[str, str], ...] = ()
    sha256: str | None = None  # source of owner.name pinned exactly (we copy that code)
    fields: tuple[str, ...] = ()  # attributes of a sample value (see _VALUE_FIELDS)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def package(self) -> str:
        return self.owner.split(".", 1)[0]

    @property
    def attr(self) -> str:
        """The name on the object: `__x` defined in class C is stored as `_C__x`."""
        if self.name.startswith("__") and not self.name.endswith("__"):
            return "_" + self.owner.rsplit(".", 1)[1].lstrip("_") + self.name
        return self.name

    @property
    def label(self) -> str:
        return f"{self.owner}.{self.name}"


TABLE: list[Internal] = []


def _add(entry: Internal) -> Internal:
    TABLE.append(entry)
    return entry


_RECV = "aiortc.rtcrtpreceiver.RTCRtpReceiver"
_SEND = "aiortc.rtcrtpsender.RTCRtpSender"
_DTLS = "aiortc.rtcdtlstransport.RTCDtlsTransport"
_ICE = "aiortc.rtcicetransport.RTCIceTransport"
_GATHERER = "aiortc.rtcicetransport.RTCIceGatherer"
_CONN = "aioice.ice.Connection"
_STUN = "aioice.ice.StunProtocol"
_PAIR = "aioice.ice.CandidatePair"
_PC = "aiortc.rtcpeerconnection.RTCPeerConnection"
_RECEIVERS = ("receiver_audio", "receiver_video")
_TAP = "passthrough.tap_receiver"
_FWD = "passthrough.forward_receiver"
_FAST = "passthrough.fast_rtp_path"
_OUT = "passthrough.RtpOut"

# -- RTCRtpReceiver: its state, used by tap_receiver / forward_receiver ------------------------------------
RECEIVER_STARTED = _add(
    Internal(
        _RECV,
        "__started",
        Kind.ATTRIBUTE,
        f"{_TAP}, {_FWD}",
        "bool, False until receive() starts the receiver (the hooks refuse a started receiver)",
        on=_RECEIVERS,
        calls=((f"{_RECV}.receive", "self.__started = True"),),
    )
)
RECEIVER_DECODER_QUEUE = _add(
    Internal(
        _RECV,
        "__decoder_queue",
        Kind.ATTRIBUTE,
        f"{_TAP}, {_FWD}, passthrough.tapped_frames",
        "replaced by _FrameTap before receive(): receive() hands it to the decoder thread, the RTP handler puts "
        "(codec, JitterFrame) on it, stop puts None",
        on=_RECEIVERS,
        calls=(
            (f"{_RECV}.receive", "self.__decoder_queue,"),
            (f"{_RECV}.receive", "target=decoder_worker"),
            (f"{_RECV}._handle_rtp_packet", "self.__decoder_queue.put((codec, encoded_frame))"),
            (f"{_RECV}._RTCRtpReceiver__stop_decoder", "self.__decoder_queue.put(None)"),
        ),
    )
)
RECEIVER_JITTER_BUFFER = _add(
    Internal(
        _RECV,
        "__jitter_buffer",
        Kind.ATTRIBUTE,
        _TAP,
        "a JitterBuffer the RTP handler feeds; tap_receiver swaps in one without prefetch for audio",
        on=_RECEIVERS,
        calls=((f"{_RECV}._handle_rtp_packet", "self.__jitter_buffer.add(packet)"),),
    )
)
RECEIVER_BITRATE_ESTIMATOR = _add(
    Internal(
        _RECV,
        "__remote_bitrate_estimator",
        Kind.ATTRIBUTE,
        f"{_TAP}, {_FWD}",
        "RemoteBitrateEstimator for video, None for audio; None disables REMB",
        on=_RECEIVERS,
        calls=((f"{_RECV}._handle_rtp_packet", "if self.__remote_bitrate_estimator is not None:"),),
    )
)
RECEIVER_KIND = _add(
    Internal(
        _RECV,
        "__kind",
        Kind.ATTRIBUTE,
        f"{_TAP}, {_FWD}",
        '"audio" or "video", as passed to __init__',
        on=_RECEIVERS,
    )
)
RECEIVER_CODECS = _add(
    Internal(
        _RECV,
        "__codecs",
        Kind.ATTRIBUTE,
        _FWD,
        "dict payload type -> RTCRtpCodecParameters, filled by receive()",
        on=_RECEIVERS,
        calls=((f"{_RECV}.receive", "self.__codecs[codec.payloadType] = codec"),),
    )
)
RECEIVER_RTX_SSRC = _add(
    Internal(
        _RECV,
        "__rtx_ssrc",
        Kind.ATTRIBUTE,
        _FWD,
        "dict RTX SSRC -> media SSRC, filled by receive()",
        on=_RECEIVERS,
    )
)
RECEIVER_REMOTE_STREAMS = _add(
    Internal(
        _RECV,
        "__remote_streams",
        Kind.ATTRIBUTE,
        _FWD,
        "dict SSRC -> StreamStatistics that the receiver reports are built from",
        on=_RECEIVERS,
        calls=((f"{_RECV}._run_rtcp", "self.__remote_streams.items()"),),
    )
)
RECEIVER_NACK_GENERATOR = _add(
    Internal(
        _RECV,
        "__nack_generator",
        Kind.ATTRIBUTE,
        _FWD,
        "NackGenerator for video, None for audio",
        on=_RECEIVERS,
    )
)
RECEIVER_TIMESTAMP_MAPPER = _add(
    Internal(
        _RECV,
        "__timestamp_mapper",
        Kind.ATTRIBUTE,
        _FWD,
        "TimestampMapper with map(timestamp)",
        on=_RECEIVERS,
    )
)
RECEIVER_RTCP_SSRC = _add(
    Internal(
        _RECV,
        "__rtcp_ssrc",
        Kind.ATTRIBUTE,
        _FWD,
        "int | None: the SSRC our REMB is sent from",
        on=_RECEIVERS,
    )
)
RECEIVER_ENABLED = _add(
    Internal(
        _RECV,
        "_enabled",
        Kind.ATTRIBUTE,
        _FWD,
        "bool; False means drop incoming RTP",
        on=_RECEIVERS,
        calls=((f"{_RECV}._handle_rtp_packet", "if not self._enabled:"),),
    )
)
RECEIVER_HANDLE_RTP = _add(
    Internal(
        _RECV,
        "_handle_rtp_packet",
        Kind.REPLACED,
        f"{_FWD} (replaced), {_TAP} (wrapped), {_FAST} (called)",
        "coroutine (packet, arrival_time_ms) looked up on the receiver instance by the DTLS transport; "
        "forward_receiver is a lean copy of it, so its source is pinned",
        params=("self", "packet", "arrival_time_ms"),
        sha256="4e54983d021a6336d80c29490f82f9a6dd531c0d3179b2daed818120c5ece238",
        calls=(
            (
                f"{_DTLS}._handle_rtp_data",
                "await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)",
            ),
        ),
    )
)
RECEIVER_RECEIVE = _add(
    Internal(
        _RECV,
        "receive",
        Kind.WRAPPED,
        "passthrough.accept_extra_codec (RED on hub receivers)",
        "coroutine receive(parameters) looked up on the receiver instance by the peer connection, once; it fills "
        "__codecs from parameters.codecs and registers every codec's payload type with the RTP router, which "
        "routes a packet only if its payload type is registered for the receiver of its SSRC",
        params=("self", "parameters"),
        calls=(
            (f"{_PC}._RTCPeerConnection__connect", "await transceiver.receiver.receive("),
            (f"{_RECV}.receive", "for codec in parameters.codecs:"),
            (
                f"{_DTLS}._register_rtp_receiver",
                "payload_types=[codec.payloadType for codec in parameters.codecs]",
            ),
            (
                "aiortc.rtcdtlstransport.RtpRouter.route_rtp",
                "if ssrc_receiver is not None and ssrc_receiver in pt_receivers:",
            ),
        ),
    )
)
UNKNOWN_CODECS_IGNORED = _add(
    Internal(
        "aiortc.rtcpeerconnection",
        "find_common_codecs",
        Kind.BEHAVIOUR,
        "sdpmunge.offer_red, peer.Peer.apply_answer",
        "a codec aiortc does not know (red) in a remote description is left out of the negotiated codecs, so "
        "the red the hub offers never reaches aiortc's own state (nor an aiortc client's answer: the bots keep "
        "Opus); aiortc.codecs.CODECS has no red (checked)",
        params=("local_codecs", "remote_codecs"),
        calls=(("aiortc.rtcpeerconnection.find_common_codecs", "if is_codec_compatible(codec, c):"),),
    )
)
RECEIVER_SEND_RTCP = _add(
    Internal(
        _RECV,
        "_send_rtcp",
        Kind.CALLED,
        _FWD,
        "coroutine sending one RTCP packet (REMB)",
        params=("self", "packet"),
    )
)
RECEIVER_SEND_NACK = _add(
    Internal(
        _RECV,
        "_send_rtcp_nack",
        Kind.CALLED,
        _FWD,
        "coroutine sending a NACK",
        params=("self", "media_ssrc", "lost"),
    )
)
RECEIVER_SEND_PLI = _add(
    Internal(
        _RECV,
        "_send_rtcp_pli",
        Kind.CALLED,
        f"{_FWD}, passthrough.send_pli",
        "coroutine sending a PLI",
        params=("self", "media_ssrc"),
    )
)
DECODER_WORKER = _add(
    Internal(
        "aiortc.rtcrtpreceiver",
        "decoder_worker",
        Kind.BEHAVIOUR,
        f"{_TAP}, {_FWD} (_FrameTap)",
        "the decoder thread calls input_q.get() and stops on None before creating any decoder",
        params=("loop", "input_q", "output_q", "decode_error"),
        calls=(
            ("aiortc.rtcrtpreceiver.decoder_worker", "task = input_q.get()"),
            ("aiortc.rtcrtpreceiver.decoder_worker", "if task is None:"),
        ),
    )
)
STREAM_STATISTICS = _add(
    Internal(
        "aiortc.rtcrtpreceiver",
        "StreamStatistics",
        Kind.NAME,
        _FWD,
        "StreamStatistics(clockrate).add(packet)",
        params=("clockrate",),
    )
)
NACK_GENERATOR_ADD = _add(
    Internal(
        "aiortc.rtcrtpreceiver.NackGenerator",
        "add",
        Kind.CALLED,
        _FWD,
        "add(packet) -> True when a NACK is due; the lost sequence numbers are in .missing",
        params=("self", "packet"),
        fields=("missing",),
    )
)
TIMESTAMP_MAPPER_MAP = _add(
    Internal(
        "aiortc.rtcrtpreceiver.TimestampMapper",
        "map",
        Kind.CALLED,
        _FWD,
        "map(timestamp) -> frame timestamp",
        params=("self", "timestamp"),
    )
)
BITRATE_ESTIMATOR_ADD = _add(
    Internal(
        "aiortc.rate.RemoteBitrateEstimator",
        "add",
        Kind.CALLED,
        _FWD,
        "add(...) -> (bitrate, ssrcs) | None, called with keywords",
        params=("self", "arrival_time_ms", "abs_send_time", "payload_size", "ssrc"),
    )
)
# -- packets, jitter buffer, depayloading ------------------------------------------------------------------
JITTER_BUFFER = _add(
    Internal(
        "aiortc.jitterbuffer",
        "JitterBuffer",
        Kind.NAME,
        f"{_TAP}, {_FWD}",
        "JitterBuffer(capacity, prefetch, is_video)",
        params=("capacity", "prefetch", "is_video"),
    )
)
JITTER_BUFFER_ADD = _add(
    Internal(
        "aiortc.jitterbuffer.JitterBuffer",
        "add",
        Kind.CALLED,
        _FWD,
        "add(packet) -> (pli_flag, JitterFrame | None)",
        params=("self", "packet"),
    )
)
JITTER_FRAME = _add(
    Internal(
        "aiortc.jitterbuffer",
        "JitterFrame",
        Kind.NAME,
        "passthrough, forward.py, bots.py",
        "JitterFrame(data, timestamp) with .data and .timestamp",
        params=("data", "timestamp"),
    )
)
PACKET_DATA = _add(
    Internal(
        "aiortc.rtp.RtpPacket",
        "_data",
        Kind.ATTRIBUTE,
        _FWD,
        "the depayloaded bytes the jitter buffer joins into a frame; set by us as the receiver does",
        calls=(
            ("aiortc.jitterbuffer.JitterBuffer._remove_frame", "x._data for x in packets"),
            (f"{_RECV}._handle_rtp_packet", "packet._data = depayload(codec, packet.payload)"),
        ),
    )
)
RTP_PACKET = _add(
    Internal(
        "aiortc.rtp",
        "RtpPacket",
        Kind.NAME,
        "passthrough, forward.py, bots.py",
        "RtpPacket.parse(data, extensions_map); fields payload, ssrc, sequence_number, timestamp, marker, "
        "payload_type, padding_size, extensions.abs_send_time / audio_level",
        fields=(
            "payload",
            "ssrc",
            "sequence_number",
            "timestamp",
            "marker",
            "payload_type",
            "padding_size",
            "extensions",
        ),
    )
)
RTP_PACKET_PARSE = _add(
    Internal(
        "aiortc.rtp.RtpPacket",
        "parse",
        Kind.CALLED,
        _FAST,
        "classmethod parse(data, extensions_map)",
        params=("data", "extensions_map"),
    )
)
UNWRAP_RTX = _add(
    Internal(
        "aiortc.rtp",
        "unwrap_rtx",
        Kind.NAME,
        _FWD,
        "unwrap_rtx(rtx, payload_type, ssrc) -> RtpPacket",
        params=("rtx", "payload_type", "ssrc"),
    )
)
PACK_REMB_FCI = _add(
    Internal(
        "aiortc.rtp",
        "pack_remb_fci",
        Kind.NAME,
        _FWD,
        "pack_remb_fci(bitrate, ssrcs) -> bytes",
        params=("bitrate", "ssrcs"),
    )
)
UNPACK_REMB_FCI = _add(
    Internal(
        "aiortc.rtp",
        "unpack_remb_fci",
        Kind.NAME,
        "passthrough.on_remb",
        "unpack_remb_fci(data) -> (bitrate, ssrcs), ValueError if malformed",
        params=("data",),
    )
)
RTCP_PSFB_APP = _add(
    Internal("aiortc.rtp", "RTCP_PSFB_APP", Kind.NAME, f"{_FWD}, passthrough.send_remb", "the PSFB fmt of REMB (15)")
)
RTCP_PSFB_PACKET = _add(
    Internal(
        "aiortc.rtp",
        "RtcpPsfbPacket",
        Kind.NAME,
        _FWD,
        "RtcpPsfbPacket(fmt, ssrc, media_ssrc, fci)",
        params=("fmt", "ssrc", "media_ssrc", "fci"),
    )
)
RTCP_RR_PACKET = _add(
    Internal(
        "aiortc.rtp",
        "RtcpRrPacket",
        Kind.NAME,
        "passthrough.on_round_trip",
        "a receiver report: .reports, each with .ssrc, .lsr, .dlsr",
    )
)
RTCP_SR_PACKET = _add(
    Internal(
        "aiortc.rtp",
        "RtcpSrPacket",
        Kind.NAME,
        "passthrough.on_round_trip",
        "a sender report: .reports as a receiver report's",
    )
)
DEPAYLOAD = _add(
    Internal(
        "aiortc.codecs",
        "depayload",
        Kind.NAME,
        _FWD,
        "depayload(codec, payload) -> bytes, ValueError if malformed",
        params=("codec", "payload"),
    )
)
CURRENT_MS = _add(
    Internal(
        "aiortc.clock",
        "current_ms",
        Kind.BEHAVIOUR,
        _FAST,
        "arrival times are NTP-epoch milliseconds; the fast path computes them as (time.time() + NTP_EPOCH) * 1000",
    )
)
# -- RTCDtlsTransport ------------------------------------------------------------------------------------
DTLS_STATE_ENUM = _add(
    Internal(
        "aiortc.rtcdtlstransport",
        "State",
        Kind.NAME,
        f"{_FAST}, {_OUT}",
        "enum with CONNECTED; _state holds it",
    )
)
DTLS_STATE = _add(
    Internal(
        _DTLS,
        "_state",
        Kind.ATTRIBUTE,
        f"{_FAST}, {_OUT}",
        "a State member, State.CONNECTED once SRTP keys exist",
        on=("dtls",),
    )
)
DTLS_RX_SRTP = _add(
    Internal(
        _DTLS,
        "_rx_srtp",
        Kind.ATTRIBUTE,
        _FAST,
        "None until the handshake ends, then a pylibsrtp.Session (unprotect)",
        on=("dtls",),
        calls=((f"{_DTLS}._setup_srtp", "self._rx_srtp = Session(rx_policy)"),),
    )
)
DTLS_TX_SRTP = _add(
    Internal(
        _DTLS,
        "_tx_srtp",
        Kind.ATTRIBUTE,
        _OUT,
        "None until the handshake ends, then a pylibsrtp.Session (protect)",
        on=("dtls",),
        calls=((f"{_DTLS}._setup_srtp", "self._tx_srtp = Session(tx_policy)"),),
    )
)
DTLS_RTP_ROUTER = _add(
    Internal(
        _DTLS,
        "_rtp_router",
        Kind.ATTRIBUTE,
        _FAST,
        "RtpRouter; route_rtp(packet) -> receiver | None",
        on=("dtls",),
    )
)
RTP_ROUTER_ROUTE = _add(
    Internal(
        "aiortc.rtcdtlstransport.RtpRouter",
        "route_rtp",
        Kind.CALLED,
        _FAST,
        "route_rtp(packet) -> receiver | None",
        params=("self", "packet"),
    )
)
DTLS_HEADER_EXTENSIONS = _add(
    Internal(
        _DTLS,
        "_rtp_header_extensions_map",
        Kind.ATTRIBUTE,
        _FAST,
        "the HeaderExtensionsMap RtpPacket.parse needs; configured in place, never replaced",
        on=("dtls",),
    )
)
DTLS_RX_BYTES = _add(
    Internal(_DTLS, "__rx_bytes", Kind.ATTRIBUTE, _FAST, "int counter (getStats)", on=("dtls",))
)
DTLS_RX_PACKETS = _add(Internal(_DTLS, "__rx_packets", Kind.ATTRIBUTE, _FAST, "int counter", on=("dtls",)))
DTLS_TX_BYTES = _add(
    Internal(_DTLS, "__tx_bytes", Kind.ATTRIBUTE, _OUT, "int counter (getStats)", on=("dtls",))
)
DTLS_TX_PACKETS = _add(Internal(_DTLS, "__tx_packets", Kind.ATTRIBUTE, _OUT, "int counter", on=("dtls",)))
DTLS_RECV_NEXT = _add(
    Internal(
        _DTLS,
        "_recv_next",
        Kind.BEHAVIOUR,
        _FAST,
        "fast_rtp_path re-implements its SRTP branch (counters, unprotect, dispatch): source pinned",
        sha256="998076720c05aa13faadff2dfa337f6964c171fa6791789a72693e1480c74102",
        calls=(
            (f"{_DTLS}._recv_next", "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)"),
        ),
    )
)
DTLS_SEND_RTP = _add(
    Internal(
        _DTLS,
        "_send_rtp",
        Kind.BEHAVIOUR,
        _OUT,
        "RtpOut re-implements it (state check, protect, send, counters): source pinned",
        sha256="763b02bceb0b0ab9c08d87eb6c0852a404322aafd377d28ad4a719f7c790ed9d",
    )
)
DTLS_HANDLE_RTP_DATA = _add(
    Internal(
        _DTLS,
        "_handle_rtp_data",
        Kind.REPLACED,
        "passthrough.drop_incoming_rtp (bots)",
        "coroutine (data, arrival_time_ms) looked up on the transport instance by _recv_next",
        params=("self", "data", "arrival_time_ms"),
    )
)
# -- ICE: aiortc's wrappers and aioice ------------------------------------------------------------------
ICE_CONNECTION = _add(
    Internal(
        _ICE,
        "_connection",
        Kind.ATTRIBUTE,
        f"{_FAST}, {_OUT}",
        "the aioice Connection (the gatherer's)",
        on=("ice_transport",),
        calls=((f"{_ICE}.__init__", "self._connection = gatherer._connection"),),
    )
)
GATHERER_CONNECTION = _add(
    Internal(
        _GATHERER,
        "_connection",
        Kind.ATTRIBUTE,
        "passthrough.enlarge_receive_buffers",
        "the aioice Connection",
        on=("ice_gatherer",),
    )
)
CONNECTION_TURN_SSL = _add(
    Internal(
        _CONN,
        "turn_ssl",
        Kind.ATTRIBUTE,
        "passthrough.set_turn_tls_context",
        "bool (True for a turns: URL) or an ssl.SSLContext, read when gathering starts and passed to"
        " loop.create_connection(ssl=...) for the TURN/TLS connection",
        on=("connection",),
        calls=(("aioice.ice.Connection.get_component_candidates", "turn_ssl=self.turn_ssl"),),
    )
)
CONNECTION_PROTOCOLS = _add(
    Internal(
        _CONN,
        "_protocols",
        Kind.ATTRIBUTE,
        f"{_FAST}, passthrough.enlarge_receive_buffers",
        "list of the StunProtocols (one per local socket) once gathering is done",
        on=("connection",),
    )
)
CONNECTION_NOMINATED = _add(
    Internal(
        _CONN,
        "_nominated",
        Kind.ATTRIBUTE,
        _OUT,
        "dict component -> CandidatePair; component 1 once connected",
        on=("connection",),
        calls=(
            ("aioice.ice.Connection.sendto", "self._nominated.get(component)"),
            ("aioice.ice.Connection.sendto", "active_pair.protocol.send_data(data, active_pair.remote_addr)"),
        ),
    )
)
STUN_DATAGRAM_RECEIVED = _add(
    Internal(
        _STUN,
        "datagram_received",
        Kind.WRAPPED,
        _FAST,
        "asyncio calls it on the protocol instance for every datagram; non-STUN data goes to the connection; "
        "a STUN parse error other than ValueError (struct.error on a short attribute) escapes it",
        params=("self", "data", "addr"),
        calls=(
            (
                f"{_STUN}.datagram_received",
                "self.receiver.data_received(data, self.local_candidate.component)",
            ),
            (f"{_STUN}.datagram_received", "except ValueError:"),
        ),
    )
)
STUN_TRANSPORT = _add(
    Internal(
        _STUN,
        "transport",
        Kind.ATTRIBUTE,
        f"{_OUT}, passthrough.enlarge_receive_buffers, passthrough.drop_outgoing_rtp (bots)",
        "the asyncio DatagramTransport (sendto, get_write_buffer_size, socket) set by connection_made; "
        "send_data looks it up on the protocol per datagram (a wrapper put there sees every send)",
        on=("protocol",),
        calls=((f"{_STUN}.send_data", "self.transport.sendto(data, addr)"),),
    )
)
PAIR_PROTOCOL = _add(
    Internal(_PAIR, "protocol", Kind.ATTRIBUTE, _OUT, "the pair's StunProtocol", on=("pair",))
)
PAIR_REMOTE_ADDR = _add(Internal(_PAIR, "remote_addr", Kind.ATTRIBUTE, _OUT, "(host, port)", on=("pair",)))
# -- RTCRtpSender: used by RtpOut, on_negotiated, on_retransmit_request, on_keyframe_request -------------------
SENDER_PACKET_COUNT = _add(
    Internal(
        _SEND,
        "__packet_count",
        Kind.ATTRIBUTE,
        _OUT,
        "int; the sender reports read it",
        on=("sender",),
        calls=((f"{_SEND}._run_rtcp", "packet_count=self.__packet_count"),),
    )
)
SENDER_OCTET_COUNT = _add(
    Internal(
        _SEND,
        "__octet_count",
        Kind.ATTRIBUTE,
        _OUT,
        "int; the sender reports read it",
        on=("sender",),
        calls=((f"{_SEND}._run_rtcp", "octet_count=self.__octet_count"),),
    )
)
SENDER_NTP_TIMESTAMP = _add(
    Internal(
        _SEND,
        "__ntp_timestamp",
        Kind.ATTRIBUTE,
        _OUT,
        "int (64-bit NTP); the sender reports read it",
        on=("sender",),
        calls=((f"{_SEND}._run_rtcp", "ntp_timestamp=self.__ntp_timestamp"),),
    )
)
SENDER_RTP_TIMESTAMP = _add(
    Internal(
        _SEND,
        "__rtp_timestamp",
        Kind.ATTRIBUTE,
        _OUT,
        "int; the sender reports read it",
        on=("sender",),
        calls=((f"{_SEND}._run_rtcp", "rtp_timestamp=self.__rtp_timestamp"),),
    )
)
SENDER_SSRC = _add(
    Internal(_SEND, "_ssrc", Kind.ATTRIBUTE, "passthrough.on_negotiated", "int", on=("sender",))
)
SENDER_RTX_SSRC = _add(
    Internal(_SEND, "_rtx_ssrc", Kind.ATTRIBUTE, "passthrough.on_negotiated", "int", on=("sender",))
)
SENDER_SEND = _add(
    Internal(
        _SEND,
        "send",
        Kind.WRAPPED,
        "passthrough.on_negotiated",
        "coroutine send(parameters), looked up on the sender instance by the peer connection",
        params=("self", "parameters"),
        calls=((f"{_PC}._RTCPeerConnection__connect", "await transceiver.sender.send("),),
    )
)
SENDER_RETRANSMIT = _add(
    Internal(
        _SEND,
        "_retransmit",
        Kind.REPLACED,
        "passthrough.on_retransmit_request",
        "coroutine (sequence_number) the RTCP handler awaits for each NACKed packet",
        params=("self", "sequence_number"),
        calls=((f"{_SEND}._handle_rtcp_packet", "await self._retransmit(seq)"),),
    )
)
SENDER_HANDLE_RTCP = _add(
    Internal(
        _SEND,
        "_handle_rtcp_packet",
        Kind.WRAPPED,
        "passthrough.on_remb",
        "coroutine (packet) the DTLS transport awaits for each RTCP packet routed to the sender; REMB is routed "
        "to every sender whose SSRC its FCI lists",
        params=("self", "packet"),
        calls=(
            (f"{_DTLS}._handle_rtcp_data", "await recipient._handle_rtcp_packet(packet)"),
            ("aiortc.rtcdtlstransport.RtpRouter.route_rtcp", "for ssrc in rtp.unpack_remb_fci(packet.fci)[1]:"),
        ),
    )
)
SENDER_ENCODER = _add(
    Internal(
        _SEND,
        "__encoder",
        Kind.ATTRIBUTE,
        "passthrough.encoder_target_bitrate (bots, tests), passthrough.use_packer (bots' layered clips)",
        "the sender's encoder (None until its first frame, made only while None); a REMB listing the sender's SSRC "
        "in its FCI sets encoder.target_bitrate (aiortc's VP8 encoder clamps it to 250 kbit/s .. 1.5 Mbit/s); a "
        "pre-encoded frame goes through its pack(packet) -> (payloads, timestamp)",
        on=("sender",),
        calls=(
            (f"{_SEND}._handle_rtcp_packet", "if self._ssrc in ssrcs:"),
            (f"{_SEND}._handle_rtcp_packet", "self.__encoder.target_bitrate = bitrate"),
            (f"{_SEND}._next_encoded_frame", "if self.__encoder is None:"),
            (f"{_SEND}._next_encoded_frame", "payloads, timestamp = self.__encoder.pack(data)"),
        ),
    )
)
SENDER_LSR = _add(
    Internal(
        _SEND,
        "__lsr",
        Kind.ATTRIBUTE,
        "passthrough.on_round_trip",
        "int or None: the middle 32 bits of the NTP time of the last sender report sent (a receiver report's LSR "
        "names it)",
        on=("sender",),
        calls=((f"{_SEND}._handle_rtcp_packet", "if self.__lsr == report.lsr and report.dlsr:"),),
    )
)
SENDER_LSR_TIME = _add(
    Internal(
        _SEND,
        "__lsr_time",
        Kind.ATTRIBUTE,
        "passthrough.on_round_trip",
        "float or None: time.time() when that sender report was sent",
        on=("sender",),
        calls=((f"{_SEND}._handle_rtcp_packet", "rtt = time.time() - self.__lsr_time - (report.dlsr / 65536)"),),
    )
)
SENDER_SEND_KEYFRAME = _add(
    Internal(
        _SEND,
        "_send_keyframe",
        Kind.REPLACED,
        "passthrough.on_keyframe_request",
        "plain method the RTCP handler calls on PLI and FIR",
        params=("self",),
        calls=((f"{_SEND}._handle_rtcp_packet", "self._send_keyframe()"),),
    )
)
SENDER_NEXT_ENCODED_FRAME = _add(
    Internal(
        _SEND,
        "_next_encoded_frame",
        Kind.BEHAVIOUR,
        "passthrough.encoded_packet (bots)",
        "a track returning something that is not a Frame (an av.Packet) is packetized by encoder.pack",
        calls=(
            (f"{_SEND}._next_encoded_frame", "isinstance(data, Frame)"),
            (f"{_SEND}._next_encoded_frame", "self.__encoder.pack(data)"),
        ),
    )
)
VP8_PACK = _add(
    Internal(
        "aiortc.codecs.vpx.Vp8Encoder",
        "pack",
        Kind.CALLED,
        "passthrough.encoded_packet (via the sender)",
        "pack(packet) -> (payloads, timestamp)",
        params=("self", "packet"),
    )
)
OPUS_PACK = _add(
    Internal(
        "aiortc.codecs.opus.OpusEncoder",
        "pack",
        Kind.CALLED,
        "passthrough.encoded_packet (via the sender)",
        "pack(packet) -> (payloads, timestamp)",
        params=("self", "packet"),
    )
)
# -- other modules --------------------------------------------------------------------------------------------
GET_HOST_ADDRESSES = _add(
    Internal(
        "aioice.ice",
        "get_host_addresses",
        Kind.PATCHED,
        "passthrough.restrict_host_addresses",
        "(use_ipv4, use_ipv6) -> list of the local addresses (every interface's, 127.0.0.1 left out) that"
        " gathering offers as host candidates; looked up as a module global each time a connection gathers",
        params=("use_ipv4", "use_ipv6"),
        calls=(("aioice.ice.Connection.gather_candidates", "addresses = get_host_addresses("),),
    )
)
SDP_SESSION_DESCRIPTION = _add(
    Internal(
        "aiortc.sdp",
        "SessionDescription",
        Kind.NAME,
        "peer.check_answer",
        "SessionDescription.parse(sdp) validates an answer before it reaches the peer connection",
    )
)
OPERATION_ERROR = _add(
    Internal(
        "aiortc.exceptions",
        "OperationError",
        Kind.NAME,
        "peer.Peer.apply_answer",
        "raised by setRemoteDescription when no codec is common",
    )
)


def versions() -> str:
    return f"aiortc {aiortc.__version__} (pinned {AIORTC_VERSION}), aioice {aioice.__version__} (pinned {AIOICE_VERSION})"


def changed(entry: Internal, problem: str) -> AiortcInternalsChanged:
    return AiortcInternalsChanged(
        f"{entry.label} [{entry.kind.name}, used by {entry.used_by}]: {problem}; {versions()}"
    )


# -- accessors: the hooks go through these at set-up time (never per packet) -------------------------------
def get(obj: Any, entry: Internal) -> Any:
    """`obj.<entry>`, or AiortcInternalsChanged naming the entry."""
    try:
        return getattr(obj, entry.attr)
    except AttributeError:
        raise changed(entry, f"missing on {type(obj).__name__}") from None


def put(obj: Any, entry: Internal, value: Any) -> None:
    """Overwrite an EXISTING attribute (setattr would silently create a new one if aiortc renamed it)."""
    get(obj, entry)
    setattr(obj, entry.attr, value)


def replace(obj: Any, entry: Internal, make: Callable[[Any], Any]) -> None:
    """Replace method `entry` on this instance only by `make(original_bound_method)`."""
    put(obj, entry, make(get(obj, entry)))


# -- the check -----------------------------------------------------------------------------------------------
def _resolve(path: str) -> Any:
    """Import `a.b.C.d` (module part, then attributes); raises LookupError naming what is missing."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if part not in vars(obj) and not hasattr(obj, part):
                raise LookupError(f"{path}: no {part}")
            obj = getattr(obj, part)
        return obj
    raise LookupError(f"{path}: no such module")


def _source(obj: Any) -> str:
    return inspect.getsource(obj)


def sha256_of(path: str) -> str:
    return hashlib.sha256(_source(_resolve(path)).encode()).hexdigest()


def _build_samples() -> dict[str, Any]:
    """Minimal real objects, built in a thread with its own event loop (aiortc and aioice need a loop)."""
    result: dict[str, Any] = {}
    errors: list[BaseException] = []

    async def build() -> None:
        from aioice.ice import CandidatePair
        from aiortc import (
            RTCCertificate,
            RTCDtlsTransport,
            RTCIceGatherer,
            RTCIceTransport,
            RTCRtpReceiver,
            RTCRtpSender,
        )

        gatherer = RTCIceGatherer(iceServers=[])
        ice = RTCIceTransport(gatherer)
        dtls = RTCDtlsTransport(ice, [RTCCertificate.generateCertificate()])
        result.update(
            ice_gatherer=gatherer,
            ice_transport=ice,
            dtls=dtls,
            receiver_audio=RTCRtpReceiver("audio", dtls),
            receiver_video=RTCRtpReceiver("video", dtls),
            sender=RTCRtpSender("video", dtls),
        )
        connection = aioice.Connection(ice_controlling=True, components=1)
        result["connection"] = connection
        try:
            # host candidates only: binds real UDP sockets, no network traffic
            await connection.gather_candidates()
            protocols = getattr(connection, CONNECTION_PROTOCOLS.attr, None) or []
            if protocols:
                result["protocol"] = protocols[0]
                result["pair"] = CandidatePair(protocols[0], protocols[0].local_candidate)
                result["protocol_is_dispatched_to"] = protocols[0].transport.get_protocol() is protocols[0]
        except (
            Exception
        ) as exc:  # reported per entry: the samples that need a gathered connection are missing
            result["gather_error"] = exc
        finally:
            try:
                await connection.close()
            except Exception as exc:
                result.setdefault("gather_error", exc)

    def run() -> None:
        try:
            asyncio.run(build())
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    thread = threading.Thread(target=run, name="aiortc-internals-check")
    thread.start()
    thread.join()
    if errors:
        raise AiortcInternalsChanged(
            f"could not build aiortc/aioice sample objects: {errors[0]!r}; {versions()}"
        )
    return result


def problems() -> list[str]:
    """Every table entry that no longer holds, as 'owner.name [KIND, used by ...]: what is wrong'."""
    found: list[str] = []
    if aiortc.__version__ != AIORTC_VERSION:
        found.append(f"aiortc {aiortc.__version__} installed, {AIORTC_VERSION} pinned")
    if aioice.__version__ != AIOICE_VERSION:
        found.append(f"aioice {aioice.__version__} installed, {AIOICE_VERSION} pinned")
    samples = _build_samples()
    for entry in TABLE:
        found.extend(
            f"{entry.label} [{entry.kind.name}, used by {entry.used_by}]: {p}" for p in _check(entry, samples)
        )
    if "protocol" in samples and not samples.get("protocol_is_dispatched_to"):
        found.append(
            f"{STUN_DATAGRAM_RECEIVED.label}: the socket's transport does not dispatch to the protocol"
        )
    return found


def _check(entry: Internal, samples: dict[str, Any]) -> list[str]:
    out: list[str] = []
    try:
        owner = _resolve(entry.owner)
        target: Any = None if entry.kind is Kind.ATTRIBUTE else _resolve(f"{entry.owner}.{entry.name}")
    except LookupError as exc:
        return [f"not found ({exc})"]
    for sample in entry.on:
        obj = samples.get(sample)
        if obj is None:
            out.append(f"no sample {sample!r} could be built ({samples.get('gather_error')!r})")
        elif not isinstance(obj, owner) or not hasattr(obj, entry.attr):
            out.append(f"missing on a new {type(obj).__name__} ({sample})")
    if entry.params is not None:
        try:
            actual = tuple(inspect.signature(target).parameters)
        except (TypeError, ValueError) as exc:
            actual = (repr(exc),)
        if actual != entry.params:
            out.append(f"parameters {actual}, expected {entry.params}")
    for where, text in entry.calls:
        try:
            if text not in _source(_resolve(where)):
                out.append(f"{where} no longer contains {text!r}")
        except (LookupError, OSError, TypeError) as exc:
            out.append(f"cannot read {where} ({exc})")
    if entry.sha256 is not None and sha256_of(entry.label) != entry.sha256:
        out.append("source changed (media/passthrough.py copies it: review the copy, then re-pin the hash)")
    if entry.fields:
        value = _FIELD_SAMPLES[entry.label]()
        missing = [f for f in entry.fields if not hasattr(value, f)]
        if missing:
            out.append(f"instances lack {missing}")
    if entry is DECODER_WORKER:
        src = _source(target)
        if src.find("if task is None:") > src.find("get_decoder(codec)"):
            out.append("the decoder is created before the stop sentinel is looked at")
    if entry is UNKNOWN_CODECS_IGNORED:
        codecs = _resolve("aiortc.codecs.CODECS")
        if any(c.mimeType.lower() == "audio/red" for c in codecs.get("audio", [])):
            out.append("aiortc now has an audio/red codec: RED would be negotiated by aiortc itself")
    if entry is CURRENT_MS and abs(target() - (time.time() + NTP_EPOCH) * 1000) > 1000:
        out.append("current_ms() is no longer NTP-epoch milliseconds of time.time()")
    return out


def _rtp_sample() -> Any:
    from aiortc.rtp import RtpPacket

    return RtpPacket(payload_type=96, sequence_number=1, timestamp=1, ssrc=1, payload=b"x")


def _nack_sample() -> Any:
    from aiortc.rtcrtpreceiver import NackGenerator

    return NackGenerator()


def _jitter_frame_sample() -> Any:
    from aiortc.jitterbuffer import JitterFrame

    return JitterFrame(data=b"x", timestamp=1)


_FIELD_SAMPLES: dict[str, Callable[[], Any]] = {
    RTP_PACKET.label: _rtp_sample,
    NACK_GENERATOR_ADD.label: _nack_sample,
    JITTER_FRAME.label: _jitter_frame_sample,
}


def check() -> None:
    """Raise AiortcInternalsChanged listing every table entry that no longer holds, with both versions."""
    found = problems()
    if found:
        raise AiortcInternalsChanged(
            f"aiortc/aioice internals changed ({versions()}); see docs/aiortc-upgrade.md: " + "; ".join(found)
        )


def check_connected(pc: Any) -> None:
    """On a CONNECTED peer connection: the values the hooks use only exist now (SRTP sessions, nominated pair)."""
    dtls = pc.getTransceivers()[0].receiver.transport
    found: list[str] = []
    connected = _resolve("aiortc.rtcdtlstransport.State").CONNECTED
    if get(dtls, DTLS_STATE) is not connected:
        found.append(f"{DTLS_STATE.label} is {get(dtls, DTLS_STATE)!r}, not State.CONNECTED")
    for entry, method in ((DTLS_RX_SRTP, "unprotect"), (DTLS_TX_SRTP, "protect")):
        if not callable(getattr(get(dtls, entry), method, None)):
            found.append(f"{entry.label} has no {method}()")
    connection = get(dtls.transport, ICE_CONNECTION)
    pair = get(connection, CONNECTION_NOMINATED).get(1)
    if (
        pair is None
        or get(get(pair, PAIR_PROTOCOL), STUN_TRANSPORT) is None
        or not get(pair, PAIR_REMOTE_ADDR)
    ):
        found.append(f"{CONNECTION_NOMINATED.label}[1] has no usable pair")
    protocols = get(connection, CONNECTION_PROTOCOLS)
    if not protocols or (pair is not None and get(pair, PAIR_PROTOCOL) not in protocols):
        found.append(f"{CONNECTION_PROTOCOLS.label} does not hold the nominated pair's protocol")
    if found:
        raise AiortcInternalsChanged(
            "aiortc/aioice internals changed on a connected peer connection "
            f"({versions()}): " + "; ".join(found)
        )
