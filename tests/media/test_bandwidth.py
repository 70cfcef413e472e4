"""Bandwidth logic with deterministic numbers: the loss-based downlink estimate, shares, the publisher's REMB."""

import itertools

import pytest

from media.bandwidth import DownlinkEstimate, PaceControl, RembControl, queue_free, share
from media.config import MediaConfig

pytestmark = pytest.mark.timeout(10)

CFG = MediaConfig(bwe_start=1_000_000, bwe_min=30_000, bwe_max=2_000_000, bwe_min_packets=20,
                  remb_floor=250_000, remb_ceiling=2_000_000, remb_step_up=1.2, report_timeout=2.0)


def feed(est: DownlinkEstimate, steps: int, lost: int, received: int, t0: float = 0.0,
         random_loss: bool = False) -> list[int]:
    est.update(0, 0, True, t0)  # baseline
    out, tl, tr = [], 0, 0
    for i in range(steps):
        tl, tr = tl + lost, tr + received
        est.update(tl, tr, True, t0 + i + 1, random_loss=random_loss)
        out.append(est.value(t0 + i + 1))
    return out


def test_heavy_loss_decreases_by_half_the_loss_and_is_bounded():
    est = DownlinkEstimate(CFG)
    values = feed(est, 40, lost=20, received=80)  # 20 % loss: x0.9 per report
    assert values[0] == 900_000 and values[1] == 810_000
    assert all(b <= a for a, b in itertools.pairwise(values))
    assert values[-1] == CFG.bwe_min


def test_low_loss_increases_by_8_percent_and_moderate_loss_holds():
    est = DownlinkEstimate(CFG)
    assert feed(est, 2, lost=0, received=100) == [1_080_000, 1_166_400]
    est = DownlinkEstimate(CFG)
    assert feed(est, 3, lost=5, received=95) == [1_000_000] * 3  # 5 %: between 2 % and 10 %
    est = DownlinkEstimate(CFG)
    assert feed(est, 40, lost=0, received=100)[-1] == CFG.bwe_max


def test_too_few_packets_keep_the_interval_open_and_stale_reports_do_nothing():
    est = DownlinkEstimate(CFG)
    est.update(0, 0, True, 0)
    est.update(3, 7, True, 1)  # 10 packets: not enough
    assert est.value(1) == 1_000_000 and est.updates == 0
    est.update(3, 7, False, 2)
    est.update(6, 24, True, 3)  # 30 packets since the baseline, 20 % loss
    assert est.value(3) == 900_000 and est.updates == 1


def test_moderate_loss_without_a_queue_is_random_loss_and_the_estimate_climbs():
    """5 % loss while the round-trip times show no standing queue (the pacer's reading): the link's own loss, not
    congestion; the estimate climbs as at low loss. Heavy loss still brings it down, queue or not."""
    est = DownlinkEstimate(CFG)
    assert feed(est, 2, lost=5, received=95, random_loss=True) == [1_080_000, 1_166_400]
    est = DownlinkEstimate(CFG)
    assert feed(est, 1, lost=20, received=80, random_loss=True) == [900_000]


def test_loss_counts_as_the_links_own_only_while_paced_without_a_queue_and_near_what_is_sent():
    """`queue_free`: paced, no standing queue, and the estimate under 1.5x what is sent (video pace + 50 kbit/s per
    audio stream): 1.5 x (100k + 2 x 50k) = 300k."""
    low = CFG.pace_queue_low
    assert queue_free(low / 2, 100_000, 2, 250_000, CFG)
    assert not queue_free(low / 2, 100_000, 2, 300_000, CFG)  # far above what it is sent: no further climb
    assert not queue_free(low, 100_000, 2, 100_000, CFG)  # a standing queue: congestion
    assert not queue_free(None, 100_000, 2, 100_000, CFG)  # no reading yet
    assert not queue_free(low / 2, None, 2, 100_000, CFG)  # not paced (the top step)


def test_the_subscribers_own_remb_caps_the_estimate_while_fresh():
    est = DownlinkEstimate(CFG)
    est.on_remb(400_000, now=10.0)
    assert est.value(11.0) == 400_000
    assert est.value(11.0, remb=False) == 1_000_000  # what the pacer's ceiling uses (the REMB follows the pacing)
    assert est.value(13.0) == 1_000_000  # older than report_timeout: ignored


def test_share_gives_audio_first_then_splits_between_full_rate_video():
    assert share(1_000_000, audio_slots=2, video_slots=2, audio_allowance=50_000) == 450_000
    assert share(1_000_000, audio_slots=2, video_slots=0, audio_allowance=50_000) is None
    assert share(60_000, audio_slots=2, video_slots=1, audio_allowance=50_000) == 0


def test_remb_is_floored_capped_by_uplink_and_rises_stepwise():
    control = RembControl(CFG)
    assert control.tick() == CFG.remb_ceiling  # nobody counts yet
    control.downlink = 100_000  # one weak subscriber's share
    assert control.tick() == CFG.remb_floor  # down at once, never below the floor
    control.downlink = None  # it was switched down the ladder, or left
    ups = [control.tick() for _ in range(12)]
    assert ups[0] == 300_000 and ups[1] == 360_000  # x1.2 per interval
    assert all(b <= a * 1.2 + 1 for a, b in zip([CFG.remb_floor, *ups], ups, strict=False))
    assert ups[-1] == CFG.remb_ceiling
    # the publisher's own uplink is not floored, and the estimator's REMB never exceeds the last tick
    assert control.on_uplink(150_000) == 150_000
    control.uplink = None
    control.downlink = 500_000
    assert control.on_uplink(3_000_000) == 150_000
    assert control.tick() == 180_000


def test_pace_starts_low_and_follows_the_queue_not_the_propagation_delay():
    config = MediaConfig(pace_start=100_000, pace_min=60_000, pace_queue_high=0.15, pace_queue_low=0.06,
                         pace_down=0.8, pace_up=1.06)
    pace = PaceControl(config)
    pace.on_rtt(0.02)  # measured before pacing began (a clean link): forgotten when it starts
    assert pace.update(ceiling=2_000_000) == 100_000  # the link just proved too weak for full video
    for rtt in (0.31, 0.30, 0.32):  # a 300 ms link with its queue empty: propagation, not queue
        pace.on_rtt(rtt)
    assert pace.update(2_000_000) == pytest.approx(106_000) and pace.queue_delay == pytest.approx(0.02)
    pace.on_rtt(0.55)  # the queue fills: a quarter of a second above the lowest
    assert pace.update(2_000_000) == pytest.approx(106_000 * 0.8)
    assert pace.update(2_000_000) == pytest.approx(106_000 * 0.8)  # no new report: no change
    pace.on_rtt(0.40)
    assert pace.update(2_000_000) == pytest.approx(106_000 * 0.8)  # in between: hold
    for _ in range(20):
        pace.on_rtt(0.9)
        pace.update(2_000_000)
    assert pace.rate == 60_000  # never below pace_min
    for _ in range(60):
        pace.on_rtt(0.3)
        pace.update(150_000)
    assert pace.rate == 150_000  # never above the estimate less audio
    pace.stop()
    assert pace.rate is None and pace.base_rtt is None
    pace.on_rtt(-1.0)  # a clock step: ignored
    assert pace.base_rtt is None
