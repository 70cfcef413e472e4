"""The video pacer of a weak subscriber (media/pacer.py) on a real event loop: order, spacing, bounds, flush.

Timing is only ever asserted as a lower bound (a paced packet never leaves before the link could have carried
the ones ahead of it): a busy machine can only make the gaps longer.
"""

from __future__ import annotations

import asyncio

import pytest

from media import fixtures
from media.pacer import BURST, Pacer
from media.rtpforward import RtpForwarder
from tests.media.test_rtpforward import FakeOut, video_params, vp8_packets

pytestmark = pytest.mark.timeout(30)


class TimedOut(FakeOut):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def send(self, data, payload_size, rtp_timestamp, ntp):
        self.times.append(asyncio.get_running_loop().time())
        return super().send(data, payload_size, rtp_timestamp, ntp)


async def drained(pacer: Pacer) -> None:
    """Wait until the pacer has sent everything it holds (its backlog says how long that takes)."""
    for _ in range(1000):
        if pacer.backlog() == 0:
            break
        await asyncio.sleep(pacer.backlog() + 0.01)
    await asyncio.sleep(0.05)


async def test_without_a_rate_packets_go_at_once() -> None:
    out, pacer = TimedOut(), Pacer()
    paced = pacer.wrap(out)
    for i in range(30):
        assert paced.send(bytes([i]) * 1000, 988, i, i)
    assert len(out.packets) == 30 and pacer.paced == 0 and paced.backlog() == 0


async def test_a_burst_leaves_in_order_no_faster_than_the_rate() -> None:
    out, pacer = TimedOut(), Pacer(max_delay=5.0)
    pacer.set_rate(200_000)  # 1000-byte packets: one per 40 ms
    paced = pacer.wrap(out)
    sent = [bytes([i]) * 1000 for i in range(20)]
    assert all(paced.send(p, 988, i, i) for i, p in enumerate(sent))
    assert len(out.packets) == 1  # the first goes at once, the rest wait for the link
    assert paced.backlog() > 0.5
    await drained(pacer)
    assert out.packets == sent  # all of them, in order
    assert pacer.paced == 19
    for k, t in enumerate(out.times):  # never ahead of what the link carries (a lower bound only)
        assert t - out.times[0] >= k * 0.040 - BURST - 1e-3


async def test_two_slots_share_one_budget_and_retransmissions_count() -> None:
    a, b, pacer = TimedOut(), TimedOut(), Pacer(max_delay=5.0)
    pacer.set_rate(80_000)  # 1000 bytes: 100 ms
    pa, pb = pacer.wrap(a), pacer.wrap(b)
    assert pa.send(b"a" * 1000, 988, 0, 0)
    assert pa.resend(b"r" * 1000)  # a retransmission goes at once ...
    assert a.packets == [b"a" * 1000, b"r" * 1000]
    assert pb.send(b"b" * 1000, 988, 0, 0)  # ... but the other slot's next packet waits for both
    assert b.packets == [] and pb.backlog() >= 0.15
    await drained(pacer)
    assert b.packets == [b"b" * 1000]
    assert b.times[0] - a.times[0] >= 0.2 - BURST - 1e-3


async def test_retransmissions_never_push_the_line_so_far_ahead_that_new_packets_are_refused() -> None:
    """A weak receiver asks for every packet its link lost; sent regardless, 100 such requests at 80 kbit/s put the
    line 10 s ahead with nothing queued, and every new packet was refused (max_delay): no video at all."""
    out, pacer = TimedOut(), Pacer(max_delay=3.0)
    pacer.set_rate(80_000)  # 1000 bytes: 100 ms
    paced = pacer.wrap(out)
    resent = [paced.resend(bytes([i]) * 1000) for i in range(100)]
    assert resent[:3] == [True] * 3 and resent.count(True) <= 4  # up to RESEND_HORIZON (0.25 s) of the line
    assert pacer.resends_dropped == resent.count(False)
    assert paced.backlog() == 0 and paced.send(b"n" * 1000, 988, 0, 0)  # the next new packet is accepted
    assert pacer.refused == 0
    await drained(pacer)
    assert out.packets[-1] == b"n" * 1000


async def test_nothing_waits_longer_than_max_delay_and_the_top_step_flushes() -> None:
    out, pacer = TimedOut(), Pacer(max_delay=0.5)
    pacer.set_rate(80_000)  # 100 ms per packet: the sixth or seventh would wait more than 0.5 s
    paced = pacer.wrap(out)
    accepted = [paced.send(bytes([i]) * 1000, 988, i, i) for i in range(10)]
    assert accepted[:6] == [True] * 6 and not any(accepted[7:])
    assert pacer.refused == accepted.count(False)
    pacer.set_rate(None)  # back at full video: what waits goes now
    assert len(out.packets) == accepted.count(True) and paced.backlog() == 0
    pacer.close()


async def test_close_drops_what_waits() -> None:
    out, pacer = TimedOut(), Pacer()
    pacer.set_rate(50_000)
    paced = pacer.wrap(out)
    for i in range(5):
        paced.send(bytes([i]) * 1000, 988, i, i)
    pacer.close()
    await asyncio.sleep(0.3)
    assert len(out.packets) == 1 and pacer.backlog() == 0


async def test_at_key_frames_only_a_key_frame_is_skipped_while_the_last_one_still_leaves() -> None:
    """The key frame rate a weak subscriber gets is what its paced rate carries, not what the publisher sends."""
    params, _ = video_params()
    out, pacer = TimedOut(), Pacer(max_delay=10.0)
    pacer.set_rate(100_000)
    fwd = RtpForwarder("video", 90000, lambda: None)
    fwd.bind(params, pacer.wrap(out))
    fwd.set_keyframes_only(True)
    key = fixtures.video_clip().frames[0]
    frames = vp8_packets([key, key])  # two key frames, back to back
    seq = 1000
    for f, (payloads, _) in enumerate(frames):
        for i, payload in enumerate(payloads):
            fwd.forward(seq, 3000 * f, int(i == len(payloads) - 1), payload, i == 0, "pub", None, 0, 0.0)
            seq += 1
    first = len(frames[0][0])
    assert pacer.backlog() > 0 and fwd.keyframes == 1  # the second key frame came while the first was leaving
    assert fwd.skipped == len(frames[1][0])
    await drained(pacer)
    assert len(out.packets) == first
    # once the first has left, the next key frame is taken
    for i, payload in enumerate(frames[1][0]):
        fwd.forward(seq, 6000, int(i == len(frames[1][0]) - 1), payload, i == 0, "pub", None, 0, 1.0)
        seq += 1
    assert fwd.keyframes == 2
