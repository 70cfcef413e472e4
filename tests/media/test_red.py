"""RED in the hub without a browser: the offer's SDP (red before Opus, parsed back from an answer) and the per-packet
path of a publication (RED unchanged to a RED subscriber, its primary block as Opus to the others, malformed RED
dropped and counted without an exception), on real Opus bytes wrapped per RFC 2198. The same with Chromium:
tests/media/test_red_browser.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtpPacket

from media.fixtures import audio_clip
from media.forward import Publication, Slot
from media.rtpforward import AUDIO_LEVEL_URI, MID_URI, RtpForwarder, SendParams
from media.sdpmunge import RED_PT, offer_red, opus_fec_dtx, red_payload_types
from recordings import red
from tests.media.test_rtpforward import FakeOut

pytestmark = pytest.mark.timeout(30)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 97",
        "a=mid:1",
        "a=rtpmap:97 VP8/90000",
        "",
    ]
)


def test_offer_puts_red_before_opus_in_audio_sections_only() -> None:
    out = offer_red(opus_fec_dtx(OFFER)).split("\r\n")
    assert out[4] == f"m=audio 9 UDP/TLS/RTP/SAVPF {RED_PT} 96 0"
    i = out.index(f"a=rtpmap:{RED_PT} red/48000/2")
    assert out[i + 1] == f"a=fmtp:{RED_PT} 96/96" and out[i + 2] == "a=rtpmap:96 opus/48000/2"
    assert "m=video 9 UDP/TLS/RTP/SAVPF 97" in out and sum("red/" in line for line in out) == 1
    assert offer_red(offer_red(OFFER)) == offer_red(OFFER)  # idempotent
    parsed = aiortc_sdp.SessionDescription.parse(offer_red(OFFER))
    assert red_payload_types(parsed) == {"0": RED_PT}
    assert red_payload_types(aiortc_sdp.SessionDescription.parse(OFFER)) == {}


def audio_params(mid: str, ssrc: int) -> SendParams:
    parameters = RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=2, uri=AUDIO_LEVEL_URI),
        ],
        muxId=mid,
    )
    return SendParams.from_parameters("audio", parameters, ssrc=ssrc, rtx_ssrc=0)


def audio_slot(pid: str, out: FakeOut, red_pt: int | None) -> Slot:
    forwarder = RtpForwarder("audio", 48000, lambda: None)
    forwarder.bind(audio_params("3", 1000 + len(pid)), out)
    forwarder.red_payload_type = red_pt
    return Slot(subscriber=pid, kind="audio", transceiver=None, track=None, forwarder=forwarder, active=True)  # type: ignore[arg-type]


def publication(*slots: Slot) -> Publication:
    pub = Publication(owner="a", source="audio", label={}, keyframe_interval=1.0, spawn=lambda _c: None)
    pub.red_pt = RED_PT
    pub.slots.update(slots)
    return pub


def opus_payloads(n: int) -> list[bytes]:
    clip = audio_clip(1)
    return [bytes(f) for f in clip.frames[:n]]


def test_red_to_red_subscribers_unchanged_and_primary_opus_to_others() -> None:
    opus = opus_payloads(20)
    to_red, to_opus = FakeOut(), FakeOut()
    pub = publication(audio_slot("b", to_red, RED_PT), audio_slot("bot", to_opus, None))
    sent = []
    for k, data in enumerate(opus):
        blocks = [red.Block(96, 960, opus[k - 1])] if k else []
        payload = red.build(blocks, red.Block(96, 0, data))
        sent.append(payload)
        pub.on_rtp(
            RtpPacket(
                payload_type=RED_PT, sequence_number=100 + k, timestamp=960 * k, ssrc=5, payload=payload
            )
        )
    got_red = [RtpPacket.parse(p) for p in to_red.packets]
    got_opus = [RtpPacket.parse(p) for p in to_opus.packets]
    assert [p.payload_type for p in got_red] == [RED_PT] * 20 and [p.payload for p in got_red] == sent
    assert [p.payload_type for p in got_opus] == [96] * 20 and [p.payload for p in got_opus] == opus
    seqs = [p.sequence_number for p in got_opus]
    assert seqs == [(seqs[0] + k) & 0xFFFF for k in range(20)]
    assert pub.red_in == 20 and pub.red_malformed == 0


@pytest.mark.parametrize("payload", [b"", b"\xe0", b"\xe0\x0f\x00", b"\xe0\x0f\x03\xff\x60abc", b"\x60"])
def test_malformed_red_goes_to_nobody_and_is_counted(payload: bytes) -> None:
    to_red, to_opus = FakeOut(), FakeOut()
    pub = publication(audio_slot("b", to_red, RED_PT), audio_slot("bot", to_opus, None))
    pub.on_rtp(RtpPacket(payload_type=RED_PT, sequence_number=1, timestamp=0, ssrc=5, payload=payload))
    assert pub.red_malformed == 1 and not to_red.packets and not to_opus.packets


def test_per_packet_cost_of_red_is_small() -> None:
    """Printed figures (docs/performance.md): the publication's per-packet time for Opus and for RED, one RED and
    one Opus subscriber; asserted only loosely (a busy machine)."""
    opus = opus_payloads(50)
    red_payloads = [
        red.build([red.Block(96, 960, opus[k - 1])], red.Block(96, 0, opus[k])) for k in range(1, 50)
    ]

    def per_packet(pt: int, payloads: list[bytes]) -> float:
        pub = publication(audio_slot("b", FakeOut(), RED_PT), audio_slot("bot", FakeOut(), None))
        packets = [
            RtpPacket(payload_type=pt, sequence_number=k & 0xFFFF, timestamp=960 * k, ssrc=5, payload=p)
            for k, p in enumerate(payloads * 40)
        ]
        start = time.perf_counter()
        for packet in packets:
            pub.on_rtp(packet)
        return (time.perf_counter() - start) / len(packets) * 1e6

    times: dict[str, Any] = {}
    for _ in range(3):
        times["opus"] = min(times.get("opus", 1e9), per_packet(96, opus[1:]))
        times["red"] = min(times.get("red", 1e9), per_packet(RED_PT, red_payloads))
    print(f"\nper packet, 2 subscribers: Opus {times['opus']:.1f} us, RED {times['red']:.1f} us")
    assert times["red"] < 3 * times["opus"] + 20
