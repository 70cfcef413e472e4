"""REMB to publishers from their subscribers' downlink estimates (issue 15 item 1), with real aiortc bots.

p publishes; m is a clean subscriber; w's downlink drops one RTP packet in three before its receiver counts them
(its real RTCP receiver reports then say so). The hub's REMB to p falls to the floor, and p's encoder target
follows it; when w is switched down the ladder, or leaves, the REMB goes back up stepwise; m receives p's video
throughout. Figures are printed (run with -s)."""

import asyncio
import dataclasses
import itertools
import time

import pytest

from media.config import MediaConfig
from tests.media.conftest import PC_SETUP_BLOCKS, assert_floored, wait_until

pytestmark = [pytest.mark.timeout(120), PC_SETUP_BLOCKS]

FLOOR = 250_000
CONFIG = MediaConfig(
    monitor_interval=0.25,
    remb_interval=0.25,
    loss_window=1.5,
    loss_min_packets=20,
    # the ladder leaves w alone at 1/3 loss and acts at 9/10: on a busy machine real loss adds to the 1/3 dropped
    # here (0.45 was once crossed in CI, and a subscriber the ladder takes down no longer counts for REMB)
    loss_threshold=0.8,
    recover_after=600.0,  # no recovery during the test
    remb_floor=FLOOR,
)


class Figures:
    """Samples (t, REMB to p, p's encoder target, w's downlink estimate) every 0.5 s."""

    def __init__(self, s):
        self.s, self.rows, self.t0 = s, [], time.monotonic()
        self.task = asyncio.create_task(self._run())

    def remb(self) -> int | None:
        return self.s.hub.stats()["participants"]["p"]["publications"]["camera"]["remb"]

    def target(self) -> int | None:
        return self.s.bots["p"].encoder_target()

    async def _run(self):
        while True:
            parts = self.s.hub.stats()["participants"]
            w = parts.get("w", {})
            self.rows.append(
                (round(time.monotonic() - self.t0, 1), self.remb(), self.target(), w.get("downlink_estimate"))
            )
            await asyncio.sleep(0.5)

    async def stop(self, title: str):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        print(f"\n{title}: t(s), REMB to p (bit/s), p's encoder target, w's downlink estimate")
        for row in self.rows:
            print("  ", row)


def remb_since(s, t: float) -> list[int]:
    return [b for when, b, _uplink in s.hub._peers["p"].publications["camera"].remb_log if when >= t]


async def rises_stepwise(s, since: float) -> list[int]:
    await wait_until(lambda: (s.bots["p"].encoder_target() or 0) >= 3 * FLOOR, within=30)
    values = remb_since(s, since)
    rising = [v for v in values if v > FLOOR]
    assert len(set(rising)) >= 3, values  # several steps, not one jump
    assert all(b <= a * CONFIG.remb_step_up + 1 for a, b in itertools.pairwise(values)), values
    return values


def print_frames(s, phases):
    for phase in phases:
        got = s.bots["m"].delta(phase + ":start", phase + ":end")
        print(f"m received from p during {phase}: {got['p']['camera']}")
        assert got["p"]["camera"]["packets"] > 0 and got["p"]["camera"]["frames"] > 0


async def test_remb_falls_to_the_floor_and_comes_back_when_the_ladder_switches_the_weak_subscriber(make_session):
    s = make_session(CONFIG)
    figures = None
    try:
        await s.join("p")
        figures = Figures(s)
        await s.join("m")
        await s.join("w")
        await s.flowing(within=20)
        await wait_until(lambda: (s.bots["p"].encoder_target() or 0) > 2 * FLOOR, within=20)
        w = s.bots["w"]
        w.set_downlink_loss([True, False, False])
        s.bots["m"].mark("weak:start")
        await wait_until(lambda: figures.remb() == FLOOR, within=60)
        await wait_until(lambda: figures.target() == FLOOR, within=10)  # aiortc's encoder follows the REMB
        s.bots["m"].mark("weak:end")
        assert not s.hub.routing.is_audio_only("w") and not s.hub._peers["w"].keyframes_only_from(None)
        assert_floored(s.hub._peers["p"].publications["camera"].remb_log, FLOOR)
        assert s.hub.stats()["participants"]["w"]["downlink_estimate"] < 1_000_000  # from 2.5 Mbit/s
        assert s.hub.stats()["participants"]["m"]["downlink_estimate"] >= 1_000_000

        since = time.monotonic()
        s.bots["m"].mark("ladder:start")
        w.set_downlink_loss([True] * 9 + [False])  # 9/10: the ladder takes w down (key frames only, audio only)
        await wait_until(lambda: s.hub._peers["w"].link.level < s.hub._peers["w"].link.top, within=30)
        values = await rises_stepwise(s, since)
        s.bots["m"].mark("ladder:end")
        print("\nREMB to p after w went down the ladder:", values[:16])
        print_frames(s, ("weak", "ladder"))
    finally:
        if figures is not None:
            await figures.stop("ladder")


async def test_remb_comes_back_stepwise_when_the_weak_subscriber_leaves(make_session):
    # the ladder kept out of it (threshold 0.95): on a busy machine real loss adds to the 1/3 dropped here, and a
    # subscriber the ladder takes down no longer counts for REMB (media/bandwidth.py), so REMB would never reach
    # the floor that this test is about
    s = make_session(dataclasses.replace(CONFIG, loss_threshold=0.95))
    figures = None
    try:
        await s.join("p")
        figures = Figures(s)
        await s.join("m")
        await s.join("w")
        await s.flowing(within=20)
        await wait_until(lambda: (figures.target() or 0) > 2 * FLOOR, within=20)
        s.bots["w"].set_downlink_loss([True, False, False])
        s.bots["m"].mark("weak:start")
        await wait_until(lambda: figures.remb() == FLOOR, within=60)
        await wait_until(lambda: figures.target() == FLOOR, within=10)
        s.bots["m"].mark("weak:end")
        assert_floored(s.hub._peers["p"].publications["camera"].remb_log, FLOOR)

        since = time.monotonic()
        s.bots["m"].mark("left:start")
        await s.bots.pop("w").leave()
        await s.hub.remove("w")
        values = await rises_stepwise(s, since)
        s.bots["m"].mark("left:end")
        print("\nREMB to p after w left:", values[:16])
        print_frames(s, ("weak", "left"))
    finally:
        if figures is not None:
            await figures.stop("leave")
