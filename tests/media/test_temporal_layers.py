"""VP8 temporal layers without network (issue 15 item 1): the descriptor parser (media/vp8.py) and the per-subscriber
layer selection of RtpForwarder (media/rtpforward.py) on real packets: a Chromium 156 capture (scalabilityMode
L1T3, through a Hub over loopback: tests/media/data/chromium_l1t3_vp8.json, payloads cut to their first 24 bytes:
only the descriptor and the VP8 payload header matter here) and aiortc's packetizer (the bots: no T bit)."""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtp import RtpPacket

from media import fixtures, vp8
from media.bandwidth import layer_for, publisher_rate_for
from media.rtpforward import CACHE, RtpForwarder
from media.vp8 import ALL_LAYERS
from media.weaklink import ladder
from tests.media.test_rtpforward import FakeOut, video_params, vp8_packets

pytestmark = pytest.mark.timeout(30)
CAPTURE = json.loads((Path(__file__).parent / "data" / "chromium_l1t3_vp8.json").read_text())
PACKETS: list[tuple[int, int, int, bytes]] = [(s, t, m, bytes.fromhex(h)) for s, t, m, h in CAPTURE["packets"]]


def desc(payload: bytes) -> vp8.Descriptor:
    d = vp8.parse(payload)
    assert d is not None
    return d


def frames_of(packets: list[tuple[int, int, int, bytes]]) -> list[list[tuple[int, int, int, bytes]]]:
    return [list(g) for _, g in itertools.groupby(packets, key=lambda p: p[1])]


def run(packets: list[tuple[int, int, int, bytes]], cap: int, *, switch: dict[int, int] | None = None
        ) -> tuple[RtpForwarder, list[RtpPacket], list[int]]:
    """Forward `packets` (seq, ts, marker, payload) to one subscriber capped at `cap`; `switch`: {index: new cap}.
    Returns the forwarder, what it sent (parsed) and the input index of each packet sent."""
    params, ext_map = video_params()
    out = FakeOut()
    fwd = RtpForwarder("video", 90000, lambda: None)
    fwd.bind(params, out)
    fwd.layer_cap = cap
    sent_from: list[int] = []
    for i, (seq, ts, marker, payload) in enumerate(packets):
        if switch and i in switch:
            fwd.layer_cap = switch[i]
        d = vp8.parse(payload)
        before = out.counted
        fwd.forward(seq, ts, marker, payload, d is not None and d.keyframe, "pub", b"\x01\x02\x03", 0, 1.0,
                    None, d)
        sent_from += [i] * (out.counted - before)
    return fwd, [RtpPacket.parse(p, ext_map) for p in out.packets], sent_from


def assert_continuous(sent: list[RtpPacket]) -> None:
    seqs = [p.sequence_number for p in sent]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
    pids = [desc(p.payload).picture_id for p in sent if desc(p.payload).start]
    assert all((b - a) % (1 << 15) == 1 for a, b in itertools.pairwise(pids)), pids


# the parser ---------------------------------------------------------------------------------------------------
def test_parser_reads_chromium_l1t3_descriptors() -> None:
    descs = [desc(p) for _, _, _, p in PACKETS]
    assert descs[0].keyframe and descs[0].tid == 0
    assert all(d.picture_id_bits == 15 and d.tl0picidx >= 0 and d.tid in (0, 1, 2) for d in descs)
    starts = [d for d in descs if d.start]
    # L1T3's pattern (after the key frame's own 0, 1, 2), and layer sync on some upper frames
    assert [d.tid for d in starts[:3]] == [0, 1, 2] and [d.tid for d in starts[3:15]] == [0, 2, 1, 2] * 3
    assert any(d.layer_sync and d.tid > 0 for d in starts[3:])
    assert all((b.picture_id - a.picture_id) % (1 << 15) == 1 for a, b in itertools.pairwise(starts))
    # TL0PICIDX: +1 at each TID 0 frame, the same on the frames above it
    for a, b in itertools.pairwise(starts):
        assert (b.tl0picidx - a.tl0picidx) % 256 == (1 if b.tid == 0 else 0)
    # every packet of a frame carries its frame's layer
    for frame in frames_of(PACKETS):
        assert len({(desc(p).tid, desc(p).picture_id) for *_, p in frame}) == 1


def test_parser_round_trips_descriptors_built_per_rfc7741() -> None:
    for pid, long, tl0, tid, sync, keyidx, start in itertools.product(
        (None, 0, 5, 127, 0x7FFF), (True, False), (None, 0, 255), (None, 0, 1, 2, 3), (False, True),
        (None, 7), (False, True),
    ):
        if pid is not None and not long and pid > 127:
            continue
        raw = vp8.descriptor_bytes(start=start, picture_id=pid, long_picture_id=long, tl0picidx=tl0, tid=tid,
                                   layer_sync=sync, keyidx=keyidx)
        d = vp8.parse(raw + b"\x00\x00\x00")
        assert d is not None
        assert d.start == start and d.picture_id == (-1 if pid is None else pid)
        assert d.picture_id_bits == (0 if pid is None else 15 if long else 7)
        assert d.tl0picidx == (-1 if tl0 is None else tl0)
        assert d.tid == (-1 if tid is None else tid) and d.layer_sync == (tid is not None and sync)
        if pid is not None:
            rewritten = vp8.with_picture_id(raw, 100, d.picture_id_bits)
            again = vp8.parse(rewritten)
            assert again is not None and again.picture_id == 100 and again._replace(picture_id=pid) == d._replace(
                keyframe=False)


def test_malformed_and_short_descriptors_never_raise() -> None:
    # every prefix of real packets (a truncated descriptor is None, never an exception)
    for _, _, _, payload in PACKETS[:40]:
        for n in range(len(payload) + 1):
            d = vp8.parse(payload[:n])
            if n < 7:  # X, I (2 bytes), L, T announced: 5 descriptor bytes + at least the payload header's first
                assert d is None or not d.keyframe
    assert vp8.parse(b"") is None and vp8.parse(b"\x90") is None
    assert vp8.parse(b"\x80\x80") is None  # I announced, no picture id
    assert vp8.parse(b"\x80\x80\x80") is None  # a 15-bit picture id cut in half
    assert vp8.parse(b"\x80\x40") is None and vp8.parse(b"\x80\x20") is None  # L, T announced, missing
    rng = random.Random(7)
    for _ in range(20_000):
        vp8.parse(bytes(rng.randrange(256) for _ in range(rng.randrange(12))))
    # and through the forwarder: garbage between real packets of a layered stream is never an exception
    packets = list(PACKETS[:60])
    for i in range(5, 60, 7):
        seq, ts, marker, payload = packets[i]
        packets[i] = (seq, ts, marker, payload[: rng.randrange(4)])
    for cap in (0, 1, ALL_LAYERS):
        run(packets, cap)


# the rewriter ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cap", [0, 1, 2, ALL_LAYERS])
def test_a_capped_subscriber_gets_consecutive_numbers_and_only_its_layers(cap: int) -> None:
    fwd, sent, _ = run(PACKETS, cap)
    assert_continuous(sent)
    frames_in = sum(1 for *_, p in PACKETS if desc(p).start)
    frames_out = sum(1 for p in sent if desc(p.payload).start)
    tids = [desc(p.payload).tid for p in sent]
    assert max(tids) <= cap
    expected = {0: 0.25, 1: 0.5, 2: 1.0, ALL_LAYERS: 1.0}[cap]
    assert abs(frames_out / frames_in - expected) < 0.05, (frames_out, frames_in)
    # TL0PICIDX unchanged: every TID 0 frame is sent, with its own index
    tl0_in = [desc(p).tl0picidx for *_, p in PACKETS if desc(p).start and desc(p).tid == 0]
    tl0_out = [desc(p.payload).tl0picidx for p in sent if desc(p.payload).start and desc(p.payload).tid == 0]
    assert tl0_out == tl0_in
    assert fwd.layer_dropped == len(PACKETS) - len(sent) and fwd.dropped == 0 and fwd.upstream_missing == 0
    if cap >= 2:  # nothing left out: the payloads are the publisher's, byte for byte
        assert [p.payload for p in sent] == [p for *_, p in PACKETS]
    print(f"\ncap {cap}: {frames_out}/{frames_in} frames, {len(sent)}/{len(PACKETS)} packets sent")


def test_layers_switch_down_at_a_frame_boundary_and_up_only_at_a_tid0_frame() -> None:
    starts = [i for i, (*_, p) in enumerate(PACKETS) if desc(p).start]
    tid = {i: desc(PACKETS[i][3]).tid for i in starts}
    # down in the middle of a multi-packet upper-layer frame; up at the start of an upper-layer frame
    frame_k = next(k for k in range(8, len(starts) - 1) if tid[starts[k]] > 0 and starts[k + 1] - starts[k] >= 2)
    down_at = starts[frame_k] + 1
    up_at = next(i for i in starts if i > down_at + 40 and tid[i] > 0)
    fwd, sent, sent_from = run(PACKETS, ALL_LAYERS, switch={down_at: 0, up_at: ALL_LAYERS})
    assert_continuous(sent)
    sent_set = set(sent_from)
    # down: the frame in progress is finished, from the next frame start on only TID 0
    assert set(range(starts[frame_k], starts[frame_k + 1])) <= sent_set
    next_start = starts[frame_k + 1]
    # up: at the first safe frame after the switch: a TID 0 frame, or a layer-sync frame (its layer only)
    safe = next(i for i in starts if i >= up_at and (tid[i] == 0 or desc(PACKETS[i][3]).layer_sync))
    between = [desc(PACKETS[i][3]).tid for i in sent_from if next_start <= i < safe]
    assert between and set(between) == {0}
    assert safe in sent_set
    first_tid0_after_up = next(i for i in starts if i >= up_at and tid[i] == 0)
    assert all(i in sent_set for i in range(first_tid0_after_up, len(PACKETS)))
    assert fwd.layer == ALL_LAYERS


def test_late_packets_get_their_own_frames_numbers_or_are_left_out_with_it() -> None:
    """A publisher's retransmission (of an upstream loss the hub's receiver NACKed) arrives late: a packet of a
    sent frame fills exactly its own gap; one of a left-out frame is left out (no number is ever used twice)."""
    frames = frames_of(PACKETS)
    multi = [i for i, f in enumerate(frames) if len(f) >= 2]
    kept = next(i for i in multi if desc(frames[i][0][3]).tid == 0 and i > 4)
    cut = next(i for i in multi if desc(frames[i][0][3]).tid == 2 and i > kept)
    late_kept, late_cut = frames[kept][0], frames[cut][-1]  # a sent frame's first packet, a cut frame's last
    order = [p for p in PACKETS if p not in (late_kept, late_cut)]
    at = order.index(frames[cut + 3][0])  # delivered three frames later
    order[at:at] = [late_cut, late_kept]
    _, base, base_from = run(PACKETS, 0)
    first = base[0].sequence_number  # (each run starts at a random number)
    expected = {PACKETS[i][0]: ((p.sequence_number - first) & 0xFFFF, p.payload)
                for i, p in zip(base_from, base, strict=True)}
    fwd, sent, sent_from = run(order, 0)
    first = sent[0].sequence_number
    got = {order[i][0]: ((p.sequence_number - first) & 0xFFFF, p.payload)
           for i, p in zip(sent_from, sent, strict=True)}
    assert got == expected  # the same numbers as without the delay, the late kept packet included
    assert late_kept[0] in got and late_cut[0] not in got
    assert fwd.upstream_missing == 0  # the gap was filled


@pytest.mark.parametrize("where", ["middle", "tail", "head"])
def test_upstream_loss_inside_a_left_out_frame_leaves_no_gap(where: str) -> None:
    frames = frames_of(PACKETS)
    i = next(i for i, f in enumerate(frames) if len(f) >= 3 and desc(f[0][3]).tid == 2 and i > 4)
    frame = frames[i]
    lost = {"middle": frame[1], "tail": frame[-1], "head": frame[0]}[where]
    fwd, sent, _ = run([p for p in PACKETS if p is not lost], 0)
    assert_continuous(sent)
    assert fwd.upstream_missing == 0  # closed: the subscriber has nothing to NACK


def test_whole_frames_lost_upstream_stay_a_gap_the_subscriber_can_report() -> None:
    """A TID 0 frame lost upstream is a real loss (the publisher's uplink): its gap is not hidden."""
    frames = frames_of(PACKETS)
    i = next(i for i, f in enumerate(frames) if desc(f[0][3]).tid == 0 and i > 4)
    lost = set(map(id, frames[i]))
    fwd, _, _ = run([p for p in PACKETS if id(p) not in lost], 0)
    assert fwd.upstream_missing == len(frames[i])


def test_nacks_are_answered_from_what_was_sent_and_never_reach_the_publisher() -> None:
    """The subscriber NACKs the hub's own numbers; a packet left out has none, so every NACK finds a packet the
    subscriber was sent (the hub never forwards a subscriber's NACK to the publisher)."""
    params, ext_map = video_params()
    out = FakeOut()
    fwd = RtpForwarder("video", 90000, lambda: None)
    fwd.bind(params, out)
    fwd.layer_cap = 0
    for seq, ts, marker, payload in PACKETS:
        fwd.forward(seq, ts, marker, payload, desc(payload).keyframe, "pub", b"\x01\x02\x03", 0, 1.0)
    sent = [RtpPacket.parse(p, ext_map) for p in out.packets]
    n = len(out.packets)
    for p in sent[-min(len(sent), CACHE):]:
        fwd.retransmit(p.sequence_number)
    assert fwd.retransmitted == min(len(sent), CACHE)
    rtx = [RtpPacket.parse(p, ext_map) for p in out.packets[n:]]
    assert [int.from_bytes(r.payload[:2], "big") for r in rtx] == [p.sequence_number for p in sent[-len(rtx):]]
    fwd.retransmit((sent[-1].sequence_number + 1) & 0xFFFF)  # a number never sent: nothing
    assert fwd.retransmitted == min(len(sent), CACHE)


def test_a_publisher_without_temporal_layers_is_forwarded_as_before_whatever_the_cap() -> None:
    """aiortc's packetizer (the bots) sets no T bit: the cap changes nothing, byte for byte."""
    packets = []
    seq = 500
    for n, (payloads, _) in enumerate(vp8_packets(fixtures.video_clip().frames[:40])):
        for i, payload in enumerate(payloads):
            packets.append((seq, 3000 * n, int(i == len(payloads) - 1), payload))
            seq += 1
    assert all(desc(p).tid == -1 for *_, p in packets)
    outs = []
    for cap in (0, ALL_LAYERS):
        fwd, sent, _ = run(packets, cap)
        assert fwd.layer_dropped == 0 and len(sent) == len(packets)
        outs.append([(p.sequence_number - sent[0].sequence_number, p.payload, p.marker) for p in sent])
    assert outs[0] == outs[1]


def test_a_run_does_not_end_after_32768_packets() -> None:
    """Regression: the before-the-run check compared with the run's first packet, so after 2^15 packets (11 min
    of audio, ~5 min of video) every packet looked older than the run and was silently not sent."""
    out = FakeOut()
    fwd = RtpForwarder("audio", 48000, lambda: None)
    fwd.bind(video_params()[0], out)
    for i in range(70_000):
        fwd.forward(i & 0xFFFF, i * 960, 0, b"x", True, "pub", None, 0, 0.0)
    assert out.counted == 70_000
    fwd.forward((70_000 - 3) & 0xFFFF, 0, 0, b"x", True, "pub", None, 0, 0.0)  # a late one is still sent
    assert out.counted == 70_001


def test_per_packet_cost_of_layer_selection_is_small() -> None:
    """Publication.on_rtp's share for one subscriber: parse once + forward, layered at cap 0 vs ALL, and the
    bots' unlayered packets (printed; the figures go to docs/performance.md)."""
    unlayered = []
    for n, (payloads, _) in enumerate(vp8_packets(fixtures.video_clip().frames[:60])):
        unlayered += [(n, 3000 * n, int(i == len(payloads) - 1), p) for i, p in enumerate(payloads)]
    figures: dict[str, float] = {}
    for name, packets, cap in (("unlayered", unlayered, ALL_LAYERS), ("L1T3 all", PACKETS, ALL_LAYERS),
                               ("L1T3 cap 0", PACKETS, 0)):
        best = float("inf")
        for _ in range(3):
            params, _ = video_params()
            fwd = RtpForwarder("video", 90000, lambda: None)
            fwd.bind(params, FakeOut())
            fwd.layer_cap = cap
            data: list[Any] = [(s & 0xFFFF, t, m, p) for k in range(8) for s, t, m, p in
                               ((s + k * 4096, t + k * 900000, m, p) for s, t, m, p in packets)]
            t0 = time.perf_counter()
            for seq, ts, marker, payload in data:
                d = vp8.parse(payload)
                fwd.forward(seq, ts, marker, payload, d is not None and d.keyframe, "pub", b"\x01\x02\x03", 0,
                            1.0, None, d)
            best = min(best, (time.perf_counter() - t0) / len(data) * 1e6)
        figures[name] = best
    print("\nper packet (parse + forward, one subscriber, best of 3): "
          + ", ".join(f"{k} {v:.2f} us" for k, v in figures.items()))
    assert figures["L1T3 cap 0"] < 50 and figures["L1T3 all"] < 50


# the choice of layer ---------------------------------------------------------------------------------------------
def test_layer_choice_goes_down_at_once_and_up_one_layer_at_a_time_with_a_margin() -> None:
    rates = [300_000, 450_000, 600_000]  # layers 0, 0-1, 0-2
    assert layer_for(None, rates, ALL_LAYERS, 0.85) == ALL_LAYERS
    assert layer_for(100, [], 0, 0.85) == ALL_LAYERS  # no layers: nothing to cap
    assert layer_for(1_000_000, rates, ALL_LAYERS, 0.85) == ALL_LAYERS
    assert layer_for(350_000, rates, ALL_LAYERS, 0.85) == 0  # down at once, two layers
    assert layer_for(100_000, rates, ALL_LAYERS, 0.85) == 0  # never below 0: the ladder's business
    assert layer_for(500_000, rates, 0, 0.85) == 0  # 450k fits but not within the margin (425k)
    assert layer_for(540_000, rates, 0, 0.85) == 1  # up one layer
    assert layer_for(1_000_000, rates, 0, 0.85) == 1  # one at a time
    assert layer_for(1_000_000, rates, 1, 0.85) == ALL_LAYERS
    assert publisher_rate_for(300_000, rates, 0) == 600_000  # its layer fits when the whole is 2x
    assert publisher_rate_for(300_000, rates, ALL_LAYERS) == 300_000
    assert publisher_rate_for(300_000, [], 0) == 300_000


def test_the_ladder_drops_temporal_layers_before_key_frames_only_and_audio_only() -> None:
    assert ladder(True, True) == ("audio_only", "keyframes_only", "base_layer", "full")
    assert ladder(True, False) == ("audio_only", "keyframes_only", "full")
    assert ladder(False, True) == ("audio_only", "base_layer", "full")
