"""The hub's offers ask publishers for Opus in-band FEC and DTX (issue 15 item 3)."""

from typing import Any, cast

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media import fixtures
from media.config import MediaConfig
from media.peer import Peer
from media.sdpmunge import opus_fec_dtx
from tests.media.conftest import PC_SETUP_BLOCKS

pytestmark = pytest.mark.timeout(30)

OFFER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=20;stereo=1",
        "m=video 9 UDP/TLS/RTP/SAVPF 97",
        "a=rtpmap:97 VP8/90000",
        "",
    ]
)


def test_opus_gets_fec_and_dtx_in_every_audio_section_and_nothing_else_changes():
    out = opus_fec_dtx(OFFER).split("\r\n")
    assert out[3] == "a=fmtp:96 minptime=10;useinbandfec=1;usedtx=1"
    assert "a=fmtp:111 minptime=10;stereo=1;useinbandfec=1;usedtx=1" in out
    assert not any(line.startswith("a=fmtp:0") or line.startswith("a=fmtp:97") for line in out)
    assert opus_fec_dtx("\r\n".join(out)).split("\r\n") == out  # idempotent
    assert opus_fec_dtx("v=0\nm=video 9 X 97\na=rtpmap:97 VP8/90000\n") == "v=0\nm=video 9 X 97\na=rtpmap:97 VP8/90000\n"


@PC_SETUP_BLOCKS
async def test_a_real_hub_offer_asks_for_fec_and_an_aiortc_client_answers_it():
    peer = Peer("p", {}, MediaConfig())
    peer.open(lambda source: cast(Any, _Publication()), lambda pc, state: None)  # a stand-in: no media flows
    client = RTCPeerConnection(MediaConfig().rtc_configuration())
    try:
        offer = await peer.make_offer()
        audio = offer["sdp"].split("m=")[1]
        assert "useinbandfec=1" in audio and "usedtx=1" in audio
        await client.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await client.setLocalDescription(await client.createAnswer())
        assert "opus/48000" in client.localDescription.sdp
    finally:
        await client.close()
        await peer.close_pc()


class _Publication:
    def attach(self, receiver):
        pass


def test_the_bots_opus_clip_has_fec_and_decodes_whole():
    clip = fixtures.audio_clip()
    decoder = av.CodecContext.create("libopus", "r")
    samples = sum(frame.samples for data in clip.frames for frame in decoder.decode(av.Packet(data)))
    assert samples == 960 * len(clip.frames)
