"""An address change mid-session (issue 15 item 6): the weak party's phone leaves Wi-Fi for 4G.

Party w is a bot in network namespace "wifi" behind one link emulator; the mediator m and party c are on loopback.
Mid-session the Wi-Fi link goes dead and, at once, w continues from a second namespace ("4g", another emulator,
another address) with a new peer connection and `media:join` as the same participant: what the page does on a
network change (web/js/media.js: the hub is aiortc, so no ICE restart). The old peer connection then closes.
Figures (run with -s): how long m and the recorder went without w's audio, and w without m's, across the move.
Assertions are on outcomes: the same participant, media both ways again, the recording of w goes on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from media.bots import Bot
from media.channels import DirectChannel, DirectRouter
from media.config import MediaConfig
from media.hub import Hub
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until
from tests.netem.harness import LinkEmulator, NamespacedBot, emulated_link, netem_available
from tests.netem.test_weak_link import RecordingTap

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.slow,
    PC_SETUP_BLOCKS,
    pytest.mark.skipif(netem_available() is not None, reason=str(netem_available())),
]


@pytest.fixture
def wifi() -> Iterator[LinkEmulator]:
    with emulated_link("od15w", 81) as emu:
        yield emu


@pytest.fixture
def lte() -> Iterator[LinkEmulator]:
    with emulated_link("od15g", 82) as emu:
        yield emu


async def test_a_party_moving_from_wifi_to_4g_continues_as_the_same_participant(
    wifi: LinkEmulator, lte: LinkEmulator
) -> None:
    config = MediaConfig()
    router = DirectRouter()
    hub = Hub("netem-move", config, router.send)
    tap = RecordingTap()
    hub.add_sink("recorder", tap)
    bots: dict[str, Bot] = {}
    old: NamespacedBot | None = None
    new: NamespacedBot | None = None
    try:
        wifi.both(delay=0.010)
        lte.both(delay=0.040, rate=2_000_000, queue=64_000)  # a mobile link: longer, narrower
        for pid in ("m", "c"):
            await hub.add(pid, {"name": pid})
            bots[pid] = Bot(pid, router.attach(DirectChannel(hub, pid)), config)
            await bots[pid].join()
        await hub.add("w", {"name": "w"})
        old = NamespacedBot(hub, router, "w", wifi.ns, config)
        await old.start()
        await old.run(lambda bot: bot.join())
        w_old = old.bot
        await wait_until(lambda: all(b.receiving_from("w") for b in bots.values())
                         and w_old.receiving_from("m") and w_old.receiving_from("c"), within=30)
        pc_before = hub.stats()["participants"]["w"]["offers"]

        # the move: Wi-Fi is gone, and the page starts over on 4G at once
        moved = time.monotonic()
        wifi.both(blocked=True)
        new = NamespacedBot(hub, router, "w", lte.ns, config)
        await new.start()
        await new.run(lambda bot: bot.join())
        w_new = new.bot
        await wait_until(lambda: w_new.receiving_from("m") and w_new.receiving_from("c"), within=30)
        await old.close()  # the old peer connection closes (its ICE can no longer reach the hub)
        old = None
        await asyncio.sleep(3)
        end = time.monotonic()

        def first_after(counter: Any, since: float) -> float | None:
            t = next((a for a in list(counter.arrivals) if a > since), None) if counter else None
            return None if t is None else round(t - since, 2)

        figures = {
            "w_audio_at_m_longest_gap_s": round(bots["m"].received[("w", "audio")].longest_gap(moved - 1, end), 2),
            "w_audio_at_c_longest_gap_s": round(bots["c"].received[("w", "audio")].longest_gap(moved - 1, end), 2),
            "m_audio_at_w_first_after_move_s": first_after(w_new.received.get(("m", "audio")), moved),
            "recording_w_audio_longest_gap_s": round(tap.longest_gap("w", "audio", moved - 1, end), 2),
            "recording_w_camera_longest_gap_s": round(tap.longest_gap("w", "camera", moved - 1, end), 2),
            "offers_to_w": [pc_before, hub.stats()["participants"]["w"]["offers"]],
        }
        print("\nADDRESS CHANGE FIGURES " + json.dumps(figures, indent=1))

        # the same participant, with media both ways again after the old connection closed
        participants = hub.stats()["participants"]
        assert set(participants) == {"m", "c", "w"} and participants["w"]["connection"] == "connected"
        recent = time.monotonic() - 1.0
        for pid in ("m", "c"):
            assert any(t > recent for t in bots[pid].received[("w", "audio")].arrivals)  # they hear w
            assert any(t > recent for t in w_new.received[(pid, "audio")].arrivals)  # w hears them
        assert any(t > recent for t in tap.arrivals.get(("w", "audio"), []))  # w's recording goes on
        assert bots["m"].audio_only_events == [] and bots["c"].audio_only_events == []
    finally:
        for bot in bots.values():
            await bot.close()
        await hub.close()
        for nb in (old, new):
            if nb is not None:
                await nb.close()
