"""One participant's peer connection with the hub, and the SDP checks on what the client sends.

Negotiation is glare-free by construction: the server is always the offerer. Its first offer has three
recvonly m-lines the client publishes on (audio, camera, screen: mids in `publish`) followed by one sendonly
m-line per forwarded track (a `Slot`); the client only ever answers. Later offers add slots. Only Opus and VP8
(+ RTX) are offered, so nothing else can be negotiated; an answer that drops them is refused. Every audio section
also offers RED before Opus (media/sdpmunge.py): a browser that keeps it sends RED to the hub and gets RED from it;
a client that drops it (aiortc) sends and gets plain Opus. `red_in` is the red payload type the client's audio
publication negotiated (its hub receiver accepts it), each audio slot's forwarder gets its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InvalidStateError, OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from media import passthrough
from media.bandwidth import DownlinkEstimate, PaceControl
from media.config import MediaConfig
from media.errors import MalformedSdp, NegotiationConflict, UnsupportedCodec
from media.forward import CLOCK_RATE, Publication, Slot, SlotTrack
from media.pacer import Pacer
from media.rtpforward import RtpForwarder, SendParams
from media.sdpmunge import offer_red, opus_fec_dtx, red_payload_types
from media.vp8 import ALL_LAYERS
from media.weaklink import STEP_BASE_LAYER, STEP_KEYFRAMES, LinkMeter, LinkState, ladder

logger = logging.getLogger(__name__)

PUBLISH_SOURCES = (("audio", "audio"), ("camera", "video"), ("screen", "video"))
REQUIRED_CODEC = {"audio": "audio/opus", "video": "video/vp8"}


def codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    wanted = {REQUIRED_CODEC[kind], "video/rtx"}
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() in wanted]


def check_answer(sdp_text: Any, max_chars: int) -> aiortc_sdp.SessionDescription:
    """Parse a client's answer; MalformedSdp / UnsupportedCodec unless it is usable."""
    if not isinstance(sdp_text, str) or not sdp_text.strip():
        raise MalformedSdp("the answer has no SDP")
    if len(sdp_text) > max_chars:
        raise MalformedSdp("the SDP is too large", code="sdp_too_large")
    try:
        description = aiortc_sdp.SessionDescription.parse(sdp_text)
    except Exception as exc:
        raise MalformedSdp("the SDP could not be parsed") from exc
    if not description.media:
        raise MalformedSdp("the SDP has no media sections")
    for media in description.media:
        if media.kind not in REQUIRED_CODEC or media.port == 0 or media.direction == "inactive":
            continue
        names = {codec.mimeType.lower() for codec in media.rtp.codecs}
        if REQUIRED_CODEC[media.kind] not in names:
            raise UnsupportedCodec(
                f"{media.kind} must use {REQUIRED_CODEC[media.kind].split('/')[1]}", kind=media.kind
            )
    return description


class Peer:
    """State of one participant: its current peer connection, its publications and its slots."""

    def __init__(self, pid: str, label: dict[str, Any], config: MediaConfig) -> None:
        self.pid = pid
        self.label = label
        self.config = config
        self.pc: RTCPeerConnection | None = None
        self.publish: dict[str, RTCRtpTransceiver] = {}
        self.publications: dict[str, Publication] = {}
        self.slots: list[Slot] = []
        self.lock = asyncio.Lock()
        self.offer_outstanding = False
        self.offers = 0
        self._buffers_set = False
        self.fast_sockets = 0
        self.sent_tracks: dict[str, Any] | None = None
        self.pending_offer: dict[str, Any] | None = None  # the outstanding offer (sent again on renegotiate)
        self.audio_only_reason: str | None = None
        # the downlink's place on the ladder survives a new peer connection (automatic stays automatic)
        self.steps = ladder(config.keyframes_step, config.temporal_step)
        self.link = LinkState(config, top=len(self.steps) - 1)
        self.meter = LinkMeter()
        self.downlink = DownlinkEstimate(config)  # bit/s, from its receiver reports and its own REMB
        self.red_in: int | None = None  # the red payload type its audio publication negotiated, if any
        self.pacer = Pacer()  # its video senders' pacing below the ladder's top step (media/pacer.py)
        self.pace = PaceControl(config)  # at what rate (media/bandwidth.py)

    @property
    def step(self) -> str:
        """Where the subscriber is on the ladder (media/weaklink.py `ladder`)."""
        return self.steps[self.link.level]

    @property
    def audio_streams(self) -> int:
        """How many audio streams it receives now (what the bandwidth logic allows for first)."""
        return sum(1 for s in self.slots if s.active and s.kind == "audio")

    @property
    def full_rate_video_streams(self) -> int:
        """How many video streams it receives now at their full rate (not key frames only)."""
        return sum(1 for s in self.slots if s.active and s.kind == "video" and not s.forwarder.keyframes_only)

    def keyframes_only_from(self, publication: Publication | None) -> bool:
        """Key frames only from this publisher: from every one at the key-frames step; at the base-layer step from
        those that send no temporal layers (key frames are their only lower frame rate: beside the others' base
        layers a full-rate stream would undo the step)."""
        if self.step == STEP_KEYFRAMES:
            return True
        return self.step == STEP_BASE_LAYER and publication is not None and not publication.layer_rates

    @property
    def layer_ceiling(self) -> int:
        """The temporal layer cap the ladder imposes on its video slots (layer 0 at the base-layer step)."""
        return 0 if self.step == STEP_BASE_LAYER else ALL_LAYERS

    @property
    def connected(self) -> bool:
        return self.pc is not None and self.pc.connectionState == "connected"

    def open(
        self,
        publication: Callable[[str], Publication],
        on_state: Callable[[RTCPeerConnection, str], None],
    ) -> None:
        """Create a fresh peer connection with recvonly publish transceivers tapped into the publications."""
        pc = RTCPeerConnection(configuration=self.config.rtc_configuration())
        self.pc, self.publish, self.slots = pc, {}, []
        self.offer_outstanding, self.sent_tracks, self._buffers_set = False, None, False
        self.link.reset()
        self.meter.reset()
        self.downlink.reset()
        self.pace.stop()
        self.red_in = None
        for source, kind in PUBLISH_SOURCES:
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(codec_preferences(kind))
            self.publish[source] = transceiver
            if kind == "audio":
                passthrough.accept_extra_codec(transceiver.receiver, self._red_codecs)
            publication(source).attach(transceiver.receiver)

        @pc.on("connectionstatechange")
        def _state() -> None:
            on_state(pc, pc.connectionState)

    def _red_codecs(self) -> list[RTCRtpCodecParameters]:
        if self.red_in is None:
            return []
        red = RTCRtpCodecParameters(mimeType="audio/red", clockRate=48000, channels=2, payloadType=self.red_in)
        return [red]

    def add_slot(self, kind: str, on_keyframe: Callable[[Slot], None]) -> Slot:
        """A new sendonly transceiver; `on_keyframe(slot)` runs on the subscriber's PLI/FIR or a dropped packet."""
        assert self.pc is not None
        track = SlotTrack(kind)
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences(kind))
        forwarder = RtpForwarder(kind, CLOCK_RATE[kind], lambda: None)
        forwarder.keyframes_only = kind == "video" and self.keyframes_only_from(None)  # (set again at each fit)
        forwarder.layer_cap = forwarder.layer = self.layer_ceiling
        slot = Slot(subscriber=self.pid, kind=kind, transceiver=transceiver, track=track, forwarder=forwarder)
        forwarder.on_drop = functools.partial(on_keyframe, slot)
        sender = transceiver.sender

        def negotiated(parameters: Any, ssrc: int, rtx_ssrc: int, out: passthrough.RtpOut) -> None:
            paced = self.pacer.wrap(out) if kind == "video" else out  # audio never waits
            forwarder.bind(SendParams.from_parameters(kind, parameters, ssrc, rtx_ssrc), paced)

        passthrough.on_negotiated(sender, negotiated)
        passthrough.on_retransmit_request(sender, forwarder.retransmit)

        def subscriber_asks() -> None:
            slot.keyframe_requests_in += 1
            on_keyframe(slot)

        passthrough.on_keyframe_request(sender, subscriber_asks)
        passthrough.on_remb(sender, lambda bitrate: self.downlink.on_remb(bitrate, time.monotonic()))
        if kind == "audio":  # audio flows at every step of the ladder: its reports time the subscriber's queue
            passthrough.on_round_trip(sender, self.pace.on_rtt)
        self.slots.append(slot)
        return slot

    async def make_offer(self) -> dict[str, Any]:
        assert self.pc is not None
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer_outstanding = True
        self.offers += 1
        if not self._buffers_set:  # after the first offer: the ICE sockets exist (gathering is done)
            self._buffers_set = (
                passthrough.enlarge_receive_buffers(self.pc, self.config.udp_receive_buffer) > 0
            )
            self.fast_sockets = passthrough.fast_rtp_path(self.pc)
        return {
            "type": "offer",
            "sdp": offer_red(opus_fec_dtx(self.pc.localDescription.sdp)),  # Opus FEC + DTX, RED before Opus
            "publish": {source: t.mid for source, t in self.publish.items()},
        }

    async def apply_answer(self, sdp_text: Any) -> None:
        if self.pc is None or not self.offer_outstanding:
            raise NegotiationConflict("no offer is waiting for an answer")
        reds = red_payload_types(check_answer(sdp_text, self.config.max_sdp_chars))
        audio = self.publish.get("audio")
        if audio is not None and audio.mid is not None:
            self.red_in = reds.get(audio.mid)  # read when its receiver starts (at the first answer)
            publication = self.publications.get("audio")
            if publication is not None:
                publication.red_pt = self.red_in
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp_text, type="answer"))
        except OperationError as exc:
            raise UnsupportedCodec("no common codec in the answer") from exc
        except InvalidStateError as exc:
            raise NegotiationConflict("the peer connection cannot take an answer now") from exc
        except (ValueError, AssertionError, KeyError, IndexError, TypeError) as exc:
            raise MalformedSdp("the answer does not match the offer") from exc
        self.offer_outstanding, self.pending_offer = False, None
        for slot in self.slots:
            slot.negotiated = slot.transceiver.currentDirection in ("sendonly", "sendrecv")
            if slot.kind == "audio" and slot.mid is not None:
                slot.forwarder.red_payload_type = reds.get(slot.mid)

    def live_sources(self) -> list[str]:
        """Sources the client agreed to send in the last answer."""
        return [s for s, t in self.publish.items() if t.currentDirection in ("recvonly", "sendrecv")]

    def receivers(self) -> list[RTCRtpReceiver]:
        return [t.receiver for t in self.publish.values()]

    async def close_pc(self) -> None:
        pc, self.pc = self.pc, None
        self.pacer.close()
        for slot in self.slots:
            if slot.publication is not None:
                slot.publication.slots.discard(slot)
            slot.publication, slot.active = None, False
            slot.forwarder.clear()
            slot.track.stop()
        self.slots, self.publish = [], {}
        self.offer_outstanding = False
        if pc is not None:
            await pc.close()
