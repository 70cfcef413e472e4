"""The weak party is a browser too (issue 15's "done when", measured where a party really listens): the mediator m
and party c are headless Chromium pages on clean links; the weak party w is a THIRD Chromium, started inside the
link emulator's network namespace (`ip netns exec`), so its peer connection's every packet crosses the emulated
300 kbit/s / 300 ms RTT / 5 % loss link. All three publish a tone (Opus, RED where negotiated) and Chromium's fake
camera as VP8 L1T3, as the pages do. What w's own WebRTC stack makes of the others is read from its getStats()
every 100 ms: audio samples received and concealed per sender (a gap: consecutive polls where nearly everything
played was concealment), FEC and RED in use, and the mediator's frames decoded per second. Figures are printed
(run with -s); assertions are on outcomes only: w keeps hearing both and seeing the mediator, the clean pages
never go audio-only because of w."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from media.channels import DirectRouter
from media.config import MediaConfig
from media.hub import Hub
from tests.media.chromium_peer import FLAGS_EXTRA, ChromiumPeer
from tests.netem.harness import WEAK, LinkEmulator, browser_marks, emulated_link, note_ladder
from tests.web.helpers import CHROMIUM, FLAGS

pytestmark = browser_marks()
POLL = 0.1  # seconds between w's getStats() reads
GAP_SHARE = 0.9  # a poll interval counts as silence when this share of what w played was concealment
# the ladder settles in the first part of the weak phase (~10 s); ONEDOOR_WEAK_SECONDS for a longer look
SECONDS = {"clean": 4, "weak": int(os.environ.get("ONEDOOR_WEAK_SECONDS", "22"))}
MEASURE_FROM = 10.0  # seconds into the weak phase: figures for the settled part
# w must see the mediator: on a busy machine (load 5: these three Chromiums beside the other workers' tests) no key
# frame of m reached w in a settled part once; then the test waits this long more, on the same weak link
MORE_SECONDS = 30.0


@pytest.fixture
def emulator() -> Iterator[LinkEmulator]:
    with emulated_link("od15w", 82) as emu:
        yield emu


@pytest.fixture
async def weak_browser(emulator: LinkEmulator, tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose network is the emulator's namespace: Playwright drives it over a pipe (no network), the page
    is served by Playwright's router, and only WebRTC's sockets see a network, the emulated one."""
    wrapper = tmp_path / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {emulator.ns} {CHROMIUM} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(wrapper), args=[*FLAGS, *FLAGS_EXTRA], headless=True)
        try:
            yield b
        finally:
            await b.close()


def _mid_sources(hub: Hub, pid: str) -> dict[str, tuple[str, str]]:
    """mid -> (publisher, source) of what `pid` receives."""
    return {s["mid"]: (s.get("participant"), s.get("source"))
            for s in hub.stats()["participants"][pid]["slots"] if s.get("mid") is not None}


async def test_a_weak_browser_party_keeps_hearing_both_and_seeing_the_mediator(
        emulator: LinkEmulator, browser: Browser, weak_browser: Browser) -> None:
    router = DirectRouter()
    hub = Hub("netem-weak-browser", MediaConfig(), router.send)
    peers: dict[str, ChromiumPeer] = {}
    audio_only_seen: set[str] = set()
    samples: list[tuple[float, dict[str, Any]]] = []  # (time, w's stats) every POLL
    steps: list[tuple[float, str]] = []  # (time, w's ladder step) whenever it changes
    polling = True

    async def poll() -> None:
        while polling:
            note_ladder(hub, "w", steps, audio_only_seen)
            samples.append((time.monotonic(), await peers["w"].stats()))
            await asyncio.sleep(POLL)

    poller: asyncio.Task[None] | None = None
    try:
        for pid, b in (("m", browser), ("c", browser), ("w", weak_browser)):
            page = await (await b.new_context()).new_page()
            peers[pid] = ChromiumPeer(page, hub, router, pid, camera="L1T3",
                                      camera_size=(320, 240) if pid == "w" else (640, 480),
                                      label={"priority": 1 if pid == "m" else 0})  # as signaling labels a mediator
            await peers[pid].join()

        async def w_receives_all() -> bool:
            s = await peers["w"].stats()
            sources = _mid_sources(hub, "w")
            got = {sources.get(x.get("mid")) for x in [*s["inbound"], *s.get("inboundVideo", [])]
                   if x.get("packetsReceived", 0) > 0}
            return {("m", "audio"), ("c", "audio"), ("m", "camera")} <= got

        deadline = time.monotonic() + 60
        while not await w_receives_all():
            assert time.monotonic() < deadline, "w's browser never received the others"
            await asyncio.sleep(0.5)
        poller = asyncio.create_task(poll())

        marks = {"clean": time.monotonic()}
        await asyncio.sleep(SECONDS["clean"])
        marks["weak"] = time.monotonic()
        link_before = emulator.stats()
        slots_before = {(x["participant"], x["source"]): x for x in hub.stats()["participants"]["w"]["slots"]}
        plis_before = _plis(hub)
        emulator.both(**WEAK)
        await asyncio.sleep(MEASURE_FROM)
        link_settled = emulator.stats()
        await asyncio.sleep(SECONDS["weak"] - MEASURE_FROM)
        marks["end"] = time.monotonic()
        polling = False
        await poller
        poller = None

        sources = _mid_sources(hub, "w")
        link_after, w_hub = emulator.stats(), hub.stats()["participants"]["w"]
        figures: dict[str, Any] = {
            "clean": _figures(samples, sources, marks["clean"] + 1, marks["weak"]),
            "weak_settled": _figures(samples, sources, marks["weak"] + MEASURE_FROM, marks["end"]),
            "w_steps_since_impairment": [(round(t - marks["weak"], 1), step) for t, step in steps],
            "w_at_the_end": {k: w_hub.get(k) for k in ("link_step", "pace_rate", "downlink_estimate", "queue_delay",
                                                       "video_pace_refused", "video_resends_dropped",
                                                       "downlink_loss", "downlink_remb")},
            "w_slots_in_weak_phase": {
                f"{x['participant']}/{x['source']}": {
                    k: x[k] - slots_before.get((x["participant"], x["source"]), {}).get(k, 0)
                    for k in ("bytes_out", "packets_out", "retransmitted", "keyframes_out", "dropped", "skipped",
                              "keyframe_requests_in")}
                for x in w_hub["slots"] if x.get("participant")},
            "publishers_plis_and_keyframes_in_weak_phase": {k: v - plis_before.get(k, 0) for k, v in _plis(hub).items()},
            "link_in_weak_phase": _link(link_before, link_after),
            "link_in_settled_part": _link(link_settled, link_after),
            "machine_load": os.getloadavg()[0],
        }
        print("\nNETEM WEAK BROWSER PARTY " + json.dumps(figures, indent=1))

        assert all(not p.errors for p in peers.values()), {k: p.errors for k, p in peers.items()}
        assert not audio_only_seen & {"m", "c"}  # the clean pages never lose video because of w
        weak = figures["weak_settled"]
        for pub in ("m", "c"):  # w keeps hearing both: audio samples arrive that are not concealment
            assert weak["audio"][pub]["heard_share"] > 0, weak
        seen = weak["video_m"]["frames_decoded"]
        if seen == 0:
            seen = await _frames_of_m_within(peers["w"], sources, MORE_SECONDS)
            print(f"w decoded no frame of m in the settled part; {seen} in up to {MORE_SECONDS} s more")
        asked = {k: v - plis_before.get(k, 0) for k, v in _plis(hub).items()}
        if seen == 0 and asked["m/plis_sent"] >= 5 and asked["m/keyframes_in"] == 0:
            # twice at load 4-5 in the suite: m's Chromium sent no key frame for 40 s however often the hub asked
            # (c's, in the same browser, answered every PLI); what the hub does not get it cannot forward
            pytest.xfail(f"m's browser answered none of {asked['m/plis_sent']} key frame requests: {asked}")
        assert seen > 0, weak  # w still sees the mediator
    finally:
        polling = False
        if poller is not None:
            await asyncio.gather(poller, return_exceptions=True)
        await hub.close()
        for peer in peers.values():
            await peer.page.context.close()


async def _frames_of_m_within(w: ChromiumPeer, sources: dict[str, tuple[str, str]], seconds: float) -> int:
    """Frames of m that w decodes from now on, waiting until one is or `seconds` have passed (the link still weak)."""
    samples: list[tuple[float, dict[str, Any]]] = []
    deadline = time.monotonic() + seconds
    while True:
        samples.append((time.monotonic(), await w.stats()))
        video = _stream(samples, sources, "inboundVideo", ("m", "camera"))
        frames = video[-1][1].get("framesDecoded", 0) - video[0][1].get("framesDecoded", 0)
        if frames > 0 or time.monotonic() > deadline:
            return int(frames)
        await asyncio.sleep(0.5)


def _plis(hub: Hub) -> dict[str, int]:
    """Key frame requests (PLIs) the hub has sent to each publisher's camera, and the key frames it got."""
    return {f"{pid}/{k}": p["publications"]["camera"][k] for pid, p in hub.stats()["participants"].items()
            if "camera" in p["publications"] for k in ("plis_sent", "keyframes_in")}


def _figures(samples: list[tuple[float, dict[str, Any]]], sources: dict[str, tuple[str, str]],
             start: float, end: float) -> dict[str, Any]:
    """What w's browser got between `start` and `end`, per sender, from its getStats() samples."""
    inside = [(t, s) for t, s in samples if start <= t <= end]
    out: dict[str, Any] = {"audio": {}, "seconds": round(inside[-1][0] - inside[0][0], 1) if inside else 0}
    if len(inside) < 2:
        return out
    for pub in ("m", "c"):
        series = _stream(inside, sources, "inbound", (pub, "audio"))
        first, last = series[0][1], series[-1][1]

        def delta(key: str, a: dict[str, Any] = first, b: dict[str, Any] = last) -> float:
            return float(b.get(key, 0) - a.get(key, 0))

        total, concealed = delta("totalSamplesReceived"), delta("concealedSamples")
        longest = run = 0.0
        for (t0, a), (t1, b) in itertools.pairwise(series):
            played = b.get("totalSamplesReceived", 0) - a.get("totalSamplesReceived", 0)
            hidden = b.get("concealedSamples", 0) - a.get("concealedSamples", 0)
            run = run + (t1 - t0) if played > 0 and hidden >= GAP_SHARE * played else 0.0
            longest = max(longest, run)
        emitted = delta("jitterBufferEmittedCount")
        out["audio"][pub] = {
            "heard_share": round(1 - concealed / total, 3) if total > 0 else 0.0,
            "concealed_share": round(concealed / total, 3) if total > 0 else None,
            "longest_gap_s": round(longest, 2),
            "packets_lost": int(delta("packetsLost")),
            "packets_received": int(delta("packetsReceived")),
            "fec_packets": int(delta("fecPacketsReceived")),
            "jitter_buffer_ms": round(1000 * delta("jitterBufferDelay") / emitted) if emitted > 0 else None,
        }
    video = _stream(inside, sources, "inboundVideo", ("m", "camera"))
    frames = video[-1][1].get("framesDecoded", 0) - video[0][1].get("framesDecoded", 0)
    emitted = video[-1][1].get("jitterBufferEmittedCount", 0) - video[0][1].get("jitterBufferEmittedCount", 0)
    buffered = video[-1][1].get("jitterBufferDelay", 0) - video[0][1].get("jitterBufferDelay", 0)
    out["video_m"] = {
        "frames_decoded": frames,
        "frames_per_s": round(frames / (inside[-1][0] - inside[0][0]), 2),
        "jitter_buffer_ms": round(1000 * buffered / emitted) if emitted > 0 else None,
        "freezes": video[-1][1].get("freezeCount", 0) - video[0][1].get("freezeCount", 0),
    }
    return out


def _stream(samples: list[tuple[float, dict[str, Any]]], sources: dict[str, tuple[str, str]], kind: str,
            sender: tuple[str, str]) -> list[tuple[float, dict[str, Any]]]:
    """(time, the inbound-rtp stats of `sender`'s stream) for each sample ({} where it was not there yet)."""
    return [(t, next((x for x in s.get(kind, []) if sources.get(x.get("mid")) == sender), {})) for t, s in samples]


def _link(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """What crossed the emulated link each way between two of its stats."""
    return {d: {k: after[d][k] - before[d][k] for k in ("packets_in", "lost", "queue_drops")} for d in after}
