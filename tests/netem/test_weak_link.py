"""A party behind an emulated weak link (issue 15 item 6): 300 kbit/s, 300 ms RTT, 5 % loss, then a 5 s outage.

The mediator `m` and the other party `c` are on clean links (loopback); the weak party `w` is a bot whose
sockets live in a network namespace behind tests/netem/linkemu.py. Figures are printed (run with -s); the
assertions are on outcomes only, never on how fast something happened (a busy machine can be slow).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from media.bots import Bot
from media.channels import DirectChannel, DirectRouter
from media.config import MediaConfig
from media.fixtures import video_clip
from media.hub import Hub
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until
from tests.netem.harness import (
    LinkEmulator,
    NamespacedBot,
    emulated_link,
    join_weak_party,
    netem_available,
    weak_link_phases,
)

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.slow,
    PC_SETUP_BLOCKS,
    pytest.mark.skipif(netem_available() is not None, reason=str(netem_available())),
]

AUDIO_PPS = 50


class RecordingTap:
    """What the recorder participant would receive: arrival times per (owner, source)."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], list[float]] = {}

    def __call__(self, owner: str, source: str, data: bytes, ts: int, keyframe: bool) -> None:
        self.arrivals.setdefault((owner, source), []).append(time.monotonic())

    def longest_gap(self, owner: str, source: str, start: float, end: float) -> float:
        times = [start, *(t for t in self.arrivals.get((owner, source), []) if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(times))


@pytest.fixture
def emulator() -> Iterator[LinkEmulator]:
    with emulated_link("od15", 77) as emu:
        yield emu


def _figures(bots: dict[str, Bot], names: list[str], start: float, end: float) -> dict[str, Any]:
    seconds = end - start
    out: dict[str, Any] = {}
    for sub in names:
        for pub in names:
            if sub == pub:
                continue
            audio = bots[sub].received.get((pub, "audio"))
            video = bots[sub].received.get((pub, "camera"))
            n_audio = sum(1 for t in list(audio.arrivals) if start < t < end) if audio else 0
            n_packets = n_frames = 0
            if video:
                n_packets = sum(1 for t in list(video.arrivals) if start < t < end)
                n_frames = sum(1 for t in list(video.frame_ends) if start < t < end)  # frames whose last packet came
            out[f"{pub}->{sub}"] = {
                "audio_delivered": round(n_audio / (AUDIO_PPS * seconds), 3),
                "audio_longest_gap_s": round(audio.longest_gap(start, end), 2) if audio else seconds,
                "video_packets_per_s": round(n_packets / seconds, 1),
                "video_frames_per_s": round(n_frames / seconds, 2),
            }
    return out


# `before` (video or audio only) and `unpaced` (the key-frames step without pacing) are the comparisons for
# docs/performance.md: `make bench` runs them (ONEDOOR_NETEM_ALL=1); CI runs the ladder as it is, with m and c
# publishing one layer (`after`) and three temporal layers (`layered`: L1T3, as the pages send).
LADDERS = ["before", "unpaced", "after", "layered"] if os.environ.get("ONEDOOR_NETEM_ALL") else ["after", "layered"]


@pytest.mark.parametrize("ladder", LADDERS)
async def test_weak_party_at_300k_300ms_5pct_and_a_5s_outage(emulator, ladder):
    """`before`: the ladder as it was (video or audio only); `unpaced`: with the key-frames-only step; `after`:
    with that step and the weak party's video paced (media/pacer.py); `layered`: as `after`, with m and c
    publishing VP8 L1T3 (the base-layer step above key frames only)."""
    config = MediaConfig(
        loss_window=2.0, recover_after=3.0, monitor_interval=0.5, loss_min_packets=30, probe_window=8.0,
        report_timeout=2.0, keyframes_step=ladder != "before", pacing=ladder in ("after", "layered"),
    )
    router = DirectRouter()
    hub = Hub("netem", config, router.send)
    tap = RecordingTap()
    hub.add_sink("recorder", tap)
    bots: dict[str, Bot] = {}
    weak: NamespacedBot | None = None
    levels: list[tuple[float, str, int]] = []  # (time, pid, level) whenever a level changes
    steps: list[tuple[float, str]] = []  # (time, w's step name) whenever it changes
    audio_only_seen: set[str] = set()
    marks: dict[str, float] = {}
    polling = True

    pacing: list[tuple[float, Any, Any, Any]] = []  # (time, w's downlink estimate, pace rate, queue delay)

    async def poll() -> None:
        last: dict[str, int] = {}
        while polling:
            participants = hub.stats()["participants"]
            if "w" in participants:
                w_info = participants["w"]
                pacing.append((time.monotonic(), w_info["downlink_estimate"], w_info["pace_rate"],
                               w_info["queue_delay"]))
            for pid, info in participants.items():
                if info["audio_only"]:
                    audio_only_seen.add(pid)
                if last.get(pid) != info["link_level"]:
                    last[pid] = info["link_level"]
                    levels.append((time.monotonic(), pid, info["link_level"]))
                    if pid == "w":
                        steps.append((time.monotonic(), info["link_step"]))
            await asyncio.sleep(0.1)

    poller: asyncio.Task[None] | None = None
    try:
        layered = await asyncio.to_thread(video_clip, 640, 480, 30, 4, 800_000, 2, None, 3)
        for pid in ("m", "c"):
            await hub.add(pid, {"name": pid, "priority": 1 if pid == "m" else 0})  # as signaling labels a mediator
            bots[pid] = Bot(pid, router.attach(DirectChannel(hub, pid)), config,
                            clip=layered if ladder == "layered" else None)
            await bots[pid].join()
        weak = await join_weak_party(hub, router, emulator.ns, config)
        bots["w"] = weak.bot
        names = ["m", "c", "w"]

        def all_flowing() -> bool:
            return all(bots[s].receiving_from(p) for s in names for p in names if s != p)

        await wait_until(all_flowing, within=20)
        poller = asyncio.create_task(poll())

        await weak_link_phases(emulator, marks)
        link = emulator.stats()

        phases = [("clean", "weak"), ("weak", "outage"), ("outage", "back"), ("back", "end")]
        figures: dict[str, Any] = {
            f"{a}": _figures(bots, names, marks[a], marks[b]) for a, b in phases
        }
        weak_levels = [(round(t - marks["weak"], 2), level) for t, pid, level in levels if pid == "w"]
        figures["w_link_levels_since_impairment"] = weak_levels
        figures["w_steps_since_impairment"] = [(round(t - marks["weak"], 2), step) for t, step in steps]
        first_change = next((t for t, lvl in weak_levels if t > 0 and lvl < 1), None)
        figures["time_to_adapt_s"] = first_change
        # frames of m that reached w while w was at the key-frames-only step, and at the base-layer step
        timeline = [*steps, (marks["end"], "end")]
        m_video = bots["w"].received.get(("m", "camera"))
        for name in ("keyframes_only", "base_layer"):
            spans = [(a, b) for (a, step), (b, _) in itertools.pairwise(timeline) if step == name]
            figures[f"m_frames_to_w_at_{name}_step"] = {
                "seconds": round(sum(b - a for a, b in spans), 2),
                "frames": sum(1 for t in (list(m_video.frame_ends) if m_video else []) for a, b in spans if a < t < b),
            }

        def first_after(sub: str, pub: str, since: float) -> float | None:
            counter = bots[sub].received.get((pub, "audio"))
            t = next((a for a in list(counter.arrivals) if a > since), None) if counter else None
            return None if t is None else round(t - since, 2)

        figures["audio_back_after_outage_s"] = {
            "m->w": first_after("w", "m", marks["back"]), "w->m": first_after("m", "w", marks["back"]),
        }
        figures["recording_longest_gap_s"] = {
            f"{owner}/{source}@{a}": round(tap.longest_gap(owner, source, marks[a], marks[b]), 2)
            for owner in names for source in ("audio", "camera") for a, b in phases if a != "outage"
        }
        in_weak = [(e, r, q) for t, e, r, q in pacing if marks["weak"] < t < marks["outage"]]
        rates = sorted(r for _, r, _ in in_weak if r is not None)
        delays = sorted(q for _, _, q in in_weak if q is not None)
        figures["w_pacing_in_weak_phase"] = {
            "estimate_kbps_min_max": [round(min(e for e, _, _ in in_weak) / 1000),
                                      round(max(e for e, _, _ in in_weak) / 1000)] if in_weak else None,
            "paced_share_of_time": round(len(rates) / len(in_weak), 2) if in_weak else None,
            "pace_rate_kbps_min_median_max": [round(rates[k] / 1000) for k in (0, len(rates) // 2, -1)] if rates
            else None,
            "queue_delay_s_median_max": [round(delays[len(delays) // 2], 2), round(delays[-1], 2)] if delays else None,
            "packets_paced": hub.stats()["participants"]["w"]["video_paced"],
            "packets_refused": hub.stats()["participants"]["w"]["video_pace_refused"],
        }
        figures["link"] = {d: {k: link[d][k] for k in ("packets_in", "lost", "queue_drops")} for d in link}
        print(f"\nNETEM FIGURES ({ladder}) " + json.dumps(figures, indent=1))

        # outcomes
        assert "m" not in audio_only_seen and "c" not in audio_only_seen  # the clean ones never lose video
        assert bots["m"].audio_only_events == [] and bots["c"].audio_only_events == []
        weak_phase = figures["weak"]
        assert weak_phase["m->w"]["audio_delivered"] > 0  # the weak party hears the mediator
        assert weak_phase["w->m"]["audio_delivered"] > 0  # and is heard
        assert weak_phase["m->c"]["video_packets_per_s"] > 0  # clean participants keep each other's video
        at_keyframes = figures["m_frames_to_w_at_keyframes_only_step"]
        if ladder != "before" and at_keyframes["seconds"] > 3:  # there the weak party still sees the mediator
            assert at_keyframes["frames"] > 0
        if ladder == "layered":  # the base-layer step exists for w (m and c send layers), and m is seen at it
            assert any(step == "base_layer" for _, step in steps), steps
            assert figures["m_frames_to_w_at_base_layer_step"]["frames"] > 0
        if ladder in ("after", "layered"):  # and its video was paced, at a rate its receiver reports' round-trip times steered
            pacing_figures = figures["w_pacing_in_weak_phase"]
            assert pacing_figures["paced_share_of_time"] > 0 and pacing_figures["queue_delay_s_median_max"]
        after = figures["back"]
        assert after["m->w"]["audio_delivered"] > 0 and after["w->m"]["audio_delivered"] > 0
        assert after["c->m"]["video_packets_per_s"] > 0
        assert any(t > marks["back"] for t in tap.arrivals.get(("w", "audio"), []))  # w's recording resumes
    finally:
        polling = False
        if poller is not None:
            await asyncio.gather(poller, return_exceptions=True)
        for pid, bot in bots.items():
            if pid != "w":
                await bot.close()
        await hub.close()
        if weak is not None:
            await weak.close()
