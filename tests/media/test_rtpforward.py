"""RtpForwarder alone (no network): header rewrite, sequence continuity, keyframe gating, retransmission."""

import itertools
from fractions import Fraction

import pytest
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx

from media import fixtures, passthrough, rtpforward
from media.rtpforward import ABS_SEND_TIME_URI, CACHE, MID_URI, RtpForwarder, SendParams, vp8_keyframe_start

pytestmark = pytest.mark.timeout(30)


class FakeOut:
    def __init__(self):
        self.packets: list[bytes] = []
        self.counted = 0
        self.accept = True

    def send(self, data, payload_size, rtp_timestamp, ntp):
        if self.accept:
            self.packets.append(data)
            self.counted += 1
        return self.accept

    def resend(self, data):
        self.packets.append(data)
        return True

    def backlog(self):
        return 0.0


def video_params():
    parameters = RTCRtpSendParameters(
        codecs=[
            RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": 97}
            ),
        ],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI),
        ],
        muxId="7",
    )
    ext_map = HeaderExtensionsMap()
    ext_map.configure(parameters)
    return SendParams.from_parameters("video", parameters, ssrc=1111, rtx_ssrc=2222), ext_map


def vp8_packets(frames):
    """RTP payloads of real VP8 frames, as a publisher's packetizer makes them: [(payloads, keyframe)]."""
    encoder = Vp8Encoder()
    out = []
    for i, data in enumerate(frames):
        payloads, _ = encoder.pack(passthrough.encoded_packet(data, i * 3000, Fraction(1, 90000)))
        out.append((payloads, passthrough.is_vp8_keyframe(data)))
    return out


def feed(fwd, frames, source, seq0, ts0, now0=100.0):
    seq = seq0
    for n, (payloads, _) in enumerate(frames):
        for i, payload in enumerate(payloads):
            marker = int(i == len(payloads) - 1)
            fwd.forward(
                seq & 0xFFFF,
                ts0 + 3000 * n,
                marker,
                payload,
                vp8_keyframe_start(payload),
                source,
                b"\x01\x02\x03",
                0,
                now0 + n / 30,
            )
            seq += 1
    return seq


def test_vp8_keyframe_start_is_only_the_first_packet_of_a_keyframe():
    frames = vp8_packets(fixtures.video_clip().frames[:3])
    payloads, keyframe = frames[0]
    assert keyframe and len(payloads) > 1
    assert vp8_keyframe_start(payloads[0]) and not any(vp8_keyframe_start(p) for p in payloads[1:])
    assert not any(vp8_keyframe_start(p) for payloads, _ in frames[1:] for p in payloads)


def test_rewritten_headers_continuous_sequence_and_keyframe_gating_across_publishers():
    clip = fixtures.video_clip()
    params, ext_map = video_params()
    out = FakeOut()
    asked = []
    fwd = RtpForwarder("video", 90000, lambda: asked.append(1))
    fwd.bind(params, out)
    assert asked  # binding asks for a keyframe (what came before was dropped)
    delta_first = vp8_packets(clip.frames[1:3]) + vp8_packets(clip.frames[:5])
    feed(fwd, delta_first, "pub-1", seq0=65530, ts0=4_294_960_000)  # wraps both counters
    parsed = [RtpPacket.parse(p, ext_map) for p in out.packets]
    assert fwd.dropped == sum(len(p) for p, _ in delta_first[:2])  # nothing before the keyframe
    assert vp8_keyframe_start(parsed[0].payload)
    assert {(p.ssrc, p.payload_type, p.extensions.mid) for p in parsed} == {(1111, 97, "7")}
    assert all(p.extensions.abs_send_time == 0x010203 for p in parsed)
    seqs = [p.sequence_number for p in parsed]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    payloads = [p for frame, _ in delta_first[2:] for p in frame]
    assert [p.payload for p in parsed] == payloads  # payload (VP8 descriptor included) untouched
    assert sum(p.marker for p in parsed) == 5 and fwd.frames == 5

    # another publisher on the same slot: waits for its keyframe, sequence and timestamps carry on
    n = len(out.packets)
    last_ts = parsed[-1].timestamp
    feed(
        fwd, vp8_packets(clip.frames[1:2]) + vp8_packets(clip.frames[:2]), "pub-2", seq0=10, ts0=0, now0=101.0
    )
    more = [RtpPacket.parse(p, ext_map) for p in out.packets[n:]]
    assert vp8_keyframe_start(more[0].payload)
    assert (more[0].sequence_number - seqs[-1]) & 0xFFFF == 1
    assert 0 < (more[0].timestamp - last_ts) & 0xFFFFFFFF < 90000 * 2

    # restart (caucus over): gated again, continuous again; late packets from before the restart are not sent
    fwd.restart()
    n = len(out.packets)
    end = feed(fwd, vp8_packets(clip.frames[:1]), "pub-2", seq0=500, ts0=90000)
    fwd.forward(499, 87000, 1, b"\x10late", False, "pub-2", None, 0, 102.0)
    again = [RtpPacket.parse(p, ext_map) for p in out.packets[n:]]
    assert len(again) == end - 500
    assert (again[0].sequence_number - more[-1].sequence_number) & 0xFFFF == 1


def test_nacked_packets_are_resent_from_the_cache_as_rtx():
    clip = fixtures.video_clip()
    params, ext_map = video_params()
    out = FakeOut()
    fwd = RtpForwarder("video", 90000, lambda: None)
    fwd.bind(params, out)
    feed(fwd, vp8_packets(clip.frames[:3]), "pub", seq0=1000, ts0=0)
    sent = [RtpPacket.parse(p, ext_map) for p in out.packets]
    lost = sent[2]
    fwd.retransmit(lost.sequence_number)
    fwd.retransmit((lost.sequence_number + CACHE) & 0xFFFF)  # not in the cache: ignored
    assert fwd.retransmitted == 1 and out.counted == len(sent)
    rtx = RtpPacket.parse(out.packets[-1], ext_map)
    assert (rtx.payload_type, rtx.ssrc) == (98, 2222)
    original = unwrap_rtx(rtx, payload_type=97, ssrc=1111)
    assert (original.sequence_number, original.timestamp, original.payload) == (
        lost.sequence_number,
        lost.timestamp,
        lost.payload,
    )


def test_a_refused_send_drops_and_waits_for_the_next_keyframe():
    clip = fixtures.video_clip()
    params, _ = video_params()
    out = FakeOut()
    asked = []
    fwd = RtpForwarder("video", 90000, lambda: asked.append(1))
    fwd.bind(params, out)
    seq = feed(fwd, vp8_packets(clip.frames[:2]), "pub", seq0=0, ts0=0)
    out.accept = False
    seq = feed(fwd, vp8_packets(clip.frames[2:3]), "pub", seq0=seq, ts0=6000)
    out.accept = True
    feed(fwd, vp8_packets(clip.frames[3:5]), "pub", seq0=seq, ts0=9000)
    assert fwd.need_start and len(asked) == 2 and fwd.frames == 2


def test_audio_needs_no_keyframe_and_carries_the_audio_level():
    parameters = RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        ],
        muxId="3",
    )
    ext_map = HeaderExtensionsMap()
    ext_map.configure(parameters)
    out = FakeOut()
    fwd = RtpForwarder("audio", 48000, lambda: None)
    fwd.bind(SendParams.from_parameters("audio", parameters, 5, 6), out)
    fwd.forward(7, 960, 0, b"opus-1", True, "pub", bytes([0x80 | 30]), 0, 1.0)
    fwd.forward(8, 1920, 0, b"opus-2", True, "pub", None, 0, 1.02)
    first, second = (RtpPacket.parse(p, ext_map) for p in out.packets)
    assert first.extensions.audio_level == (True, 30) and first.extensions.mid == "3"
    assert second.extensions.audio_level is None and second.payload == b"opus-2"
    assert (second.sequence_number - first.sequence_number) & 0xFFFF == 1
    assert (second.timestamp - first.timestamp) & 0xFFFFFFFF == 960


def test_upstream_missing_counts_gaps_in_what_the_hub_forwards_and_late_fills():
    params, _ = video_params()
    out = FakeOut()
    fwd = RtpForwarder("audio", 48000, lambda: None)
    fwd.bind(params, out)
    src = object()
    for seq in (100, 101, 104, 105):  # 102 and 103 never reached the hub
        fwd.forward(seq, seq * 960, 0, b"x", True, src, None, 0, 0.0)
    assert fwd.upstream_missing == 2
    fwd.forward(102, 102 * 960, 0, b"x", True, src, None, 0, 0.0)  # late (a retransmission): fills one
    fwd.forward(105, 105 * 960, 0, b"x", True, src, None, 0, 0.0)  # a duplicate changes nothing
    assert fwd.upstream_missing == 1
    fwd.restart()  # a restart continues the output sequence: no gap
    fwd.forward(500, 500 * 960, 0, b"x", True, src, None, 0, 0.0)
    assert fwd.upstream_missing == 1


def test_keyframes_only_sends_key_frames_with_continuous_sequence_and_picture_ids():
    """The weak subscriber's middle step: only key frames, no sequence gap (no NACKs), picture ids +1 per frame."""
    clip = fixtures.video_clip()
    params, ext_map = video_params()
    out = FakeOut()
    asked = []
    fwd = RtpForwarder("video", 90000, lambda: asked.append(1))
    fwd.bind(params, out)
    frames = vp8_packets(clip.frames)  # two key frames (0 and 60) in 120 frames
    end = feed(fwd, frames[:10], "pub", seq0=100, ts0=0)
    sent_full = len(out.packets)
    before = len(asked)
    fwd.set_keyframes_only(True)
    assert len(asked) == before + 1  # a key frame asked for at once
    end = feed(fwd, frames[10:] + frames, "pub", seq0=end, ts0=3000 * 10)
    parsed = [RtpPacket.parse(p, ext_map) for p in out.packets]
    seqs = [p.sequence_number for p in parsed]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))  # nothing the subscriber could NACK
    keyframe_packets = [p for payloads, key in frames[60:] + frames[:61] for p in payloads if key]
    assert [p.payload[4:] for p in parsed[sent_full:]] == [p[4:] for p in keyframe_packets]
    only = parsed[sent_full:]
    assert sum(p.marker for p in only) == 3  # key frames 60, 0 and 60 again
    pids = [_pid(p.payload) for p in parsed if p.marker]
    assert all((b - a) % (1 << 15) == 1 for a, b in itertools.pairwise(pids))  # rewritten: one per frame sent
    assert fwd.skipped == sum(len(p) for p, key in frames[10:] + frames if not key)
    assert fwd.dropped == 0

    # back to everything: from the next key frame on, continuous again
    fwd.set_keyframes_only(False)
    n = len(out.packets)
    feed(fwd, frames[60:64], "pub", seq0=end, ts0=0)
    back = [RtpPacket.parse(p, ext_map) for p in out.packets[n:]]
    assert vp8_keyframe_start(back[0].payload) and sum(p.marker for p in back) == 4
    assert (back[0].sequence_number - seqs[-1]) & 0xFFFF == 1
    pid = _pid(back[-1].payload)
    assert (pid - pids[-1]) % (1 << 15) == 4


def _pid(payload: bytes) -> int:
    found = rtpforward.vp8_picture_id(payload)
    assert found is not None
    return found[0]
