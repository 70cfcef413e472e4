"""Fixtures for media tests: a real Hub with real aiortc bots over loopback (no mocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable

import pytest
from playwright.async_api import Browser, async_playwright

from media.bots import Bot
from media.channels import DirectChannel, DirectRouter
from media.config import MediaConfig
from media.hub import Hub
from tests.media.chromium_peer import FLAGS_EXTRA
from tests.web.helpers import CHROMIUM, FLAGS

# Setting up a peer connection costs one callback of loop CPU that can pass 100 ms on a busy 2-core machine:
# aioice's gathering (interfaces, sockets) in the hub's first offer, and aiortc building receivers (each video
# RemoteBitrateEstimator allocates ~1000 buckets, which can set off a full garbage collection) in a bot's
# setRemoteDescription. It happens once per join, not per packet; tests of steady-state media carry this mark.
PC_SETUP_BLOCKS = pytest.mark.allow_blocking(
    "peer-connection setup (aioice gathering, aiortc receiver construction) once per join; see conftest"
)


async def wait_until(predicate: Callable[[], bool], within: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


def assert_floored(log: Iterable[tuple[float, int, int | None]], floor: int) -> None:
    """No subscriber takes a publisher's REMB below the floor: in a publication's `remb_log` (every value told to
    the publisher, with the hub's estimate of its uplink then), a value below the floor comes only at or after a
    moment when that estimate was below it (it is not floored, media/bandwidth.py; on a busy machine the
    delay-based estimator sees queueing on loopback), while REMB climbs back from it stepwise."""
    entries = list(log)
    dips = [when for when, _b, uplink in entries if uplink is not None and uplink < floor]
    low = [(when, b) for when, b, _uplink in entries if b < floor]
    assert all(dips and when >= dips[0] for when, _b in low), (low, entries)


class MediaSession:
    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self.router = DirectRouter()
        self.hub = Hub("test-session", config, self.router.send)
        self.bots: dict[str, Bot] = {}

    async def join(self, pid: str, *, audio: bool = True, video: bool = True) -> Bot:
        await self.hub.add(pid, {"name": pid})
        bot = Bot(pid, self.router.attach(DirectChannel(self.hub, pid)), self.config, audio=audio, video=video)
        self.bots[pid] = bot
        await bot.join()
        return bot

    async def flowing(self, within: float = 10.0) -> None:
        """Wait until every bot receives audio and decodable video from every other bot."""

        def ok() -> bool:
            return all(b.receiving_from(o) for b in self.bots.values() for o in self.bots if o != b.pid)

        await wait_until(ok, within)

    async def phase(self, name: str, seconds: float, settle: float = 0.4) -> None:
        """Let in-flight media drain for `settle` s, then count what arrives during `seconds`."""
        await asyncio.sleep(settle)
        for bot in self.bots.values():
            bot.mark(name + ":start")
        await asyncio.sleep(seconds)
        for bot in self.bots.values():
            bot.mark(name + ":end")

    def got(self, subscriber: str, phase: str) -> dict[str, dict[str, dict[str, int]]]:
        return self.bots[subscriber].delta(phase + ":start", phase + ":end")

    async def close(self) -> None:
        for bot in self.bots.values():
            await bot.close()
        await self.hub.close()


@pytest.fixture
async def make_session() -> AsyncIterator[Callable[..., MediaSession]]:
    sessions: list[MediaSession] = []

    def make(config: MediaConfig | None = None) -> MediaSession:
        session = MediaSession(config or MediaConfig())
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for the media tests that put browser pages into a Hub (tests/media/chromium_peer.py)."""
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, *FLAGS_EXTRA], headless=True)
        try:
            yield b
        finally:
            await b.close()
