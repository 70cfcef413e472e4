"""Test harness around the link emulator: the emulator process, and a bot whose sockets live behind it.

`LinkEmulator` starts tests/netem/linkemu.py (its own process: the packet loop never runs on the test's event
loop) and changes its settings. `NamespacedBot` runs a `Bot` on its own event loop in a thread that has entered
the emulator's network namespace (setns is per thread), so every socket the bot's aiortc creates is behind the
emulated link; it talks to the hub on the test's loop through a thread-safe channel. `NamespaceThread` is the
same loop-in-a-namespace for anything else (a Socket.IO client and its bot against a real server).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from media.bots import Bot
from media.channels import DirectChannel, DirectRouter, PushHandler
from media.config import MediaConfig
from media.fixtures import video_clip
from media.hub import Hub
from tests import hostaddrs
from tests.media.conftest import PC_SETUP_BLOCKS

CLONE_NEWNET = 0x40000000
ROOT = Path(__file__).resolve().parents[2]


def netem_available() -> str | None:
    """Why the emulator cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "no 'ip netns'"
    return None


def browser_marks() -> list[pytest.MarkDecorator]:
    """The marks of a link-emulator test with Chromium pages."""
    why = netem_available()
    return [pytest.mark.timeout(240), pytest.mark.slow, pytest.mark.browser, PC_SETUP_BLOCKS,
            pytest.mark.skipif(why is not None, reason=str(why))]


@contextlib.contextmanager
def emulated_link(tag: str, octet: int) -> Iterator[LinkEmulator]:
    """A started link emulator named for this process: namespace `<tag>-<pid>`, addresses 10.<octet>.<20..219>.*
    (each test module its own tag and octet; tests in other workers or runs never share one)."""
    n = os.getpid() % 200 + 20
    emu = LinkEmulator(f"{tag}-{os.getpid() % 100000}", f"10.{octet}.{n}")
    emu.start()
    try:
        with hostaddrs.own(f"{emu.net}.0/24"):  # ICE may use this link's addresses (tests/hostaddrs.py)
            yield emu
    finally:
        emu.close()


class LinkEmulator:
    def __init__(self, ns: str, net: str, seed: int = 15) -> None:
        self.ns, self.net, self.seed = ns, net, seed
        self.proc: subprocess.Popen[str] | None = None

    @property
    def outer_address(self) -> str:
        return f"{self.net}.1"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.netem.linkemu", "--ns", self.ns, "--net", self.net, "--seed", str(self.seed)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise RuntimeError(f"link emulator did not start: {line!r}")

    def set(self, up: dict[str, Any] | None = None, down: dict[str, Any] | None = None) -> None:
        self._send({"up": up or {}, "down": down or {}})

    def both(self, **settings: Any) -> None:
        self.set(settings, settings)

    def stats(self) -> dict[str, Any]:
        self._send({"stats": True})
        assert self.proc is not None and self.proc.stdout is not None
        return json.loads(self.proc.stdout.readline())

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # EOF: the emulator removes its namespace and exits
                proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)  # if it died without cleaning


def enter_namespace(ns: str) -> None:
    """Move the CALLING THREAD into network namespace `ns`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({ns}) failed")
    finally:
        os.close(fd)


class ThreadChannel:
    """A bot's channel from its own loop to the hub's DirectChannel on the test's loop."""

    def __init__(self, direct: DirectChannel, hub_loop: asyncio.AbstractEventLoop) -> None:
        self.direct, self.hub_loop = direct, hub_loop
        self.loop: asyncio.AbstractEventLoop | None = None  # the bot's loop, set once it runs

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        future = asyncio.run_coroutine_threadsafe(self.direct.call(event, payload), self.hub_loop)
        return await asyncio.wrap_future(future)

    def on(self, event: str, handler: PushHandler) -> None:
        def deliver(payload: dict[str, Any]) -> None:
            if self.loop is not None and not self.loop.is_closed():  # (after the bot stopped: nobody listens)
                self.loop.call_soon_threadsafe(handler, payload)

        self.direct.on(event, deliver)


class NamespaceThread:
    """An event loop in a thread that has entered network namespace `ns`: every socket made on it (aiortc's,
    a Socket.IO client's) is behind the emulated link. `run(make)` runs `make()` there and waits for it."""

    def __init__(self, ns: str, name: str = "ns") -> None:
        self.ns = ns
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"{name}-{ns}", daemon=True)
        self._error: BaseException | None = None
        self.on_stop: Callable[[], Coroutine[Any, Any, Any]] | None = None  # run on the loop before it ends

    def _main(self) -> None:
        try:
            enter_namespace(self.ns)
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test by start()/run()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        if self.on_stop is not None:
            await self.on_stop()

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error

    async def run(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(make(), self.loop))

    async def close(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, 10)


class NamespacedBot:
    """A Bot on its own loop, in a thread inside network namespace `ns`, talking to an in-process hub."""

    def __init__(self, hub: Hub, router: DirectRouter, pid: str, ns: str, config: MediaConfig, **kwargs: Any):
        self.channel = ThreadChannel(router.attach(DirectChannel(hub, pid)), asyncio.get_running_loop())
        self.bot = Bot(pid, self.channel, config, **kwargs)
        self.ns = ns
        self.thread = NamespaceThread(ns, f"bot-{pid}")
        self.thread.on_stop = self.bot.close

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.thread.loop

    async def start(self) -> None:
        await self.thread.start()
        self.channel.loop = self.thread.loop

    async def run(self, make: Callable[[Bot], Coroutine[Any, Any, Any]]) -> Any:
        """Run `make(bot)` on the bot's loop and wait for its result."""
        return await self.thread.run(lambda: make(self.bot))

    async def close(self) -> None:
        await self.thread.close()


WEAK = {"rate": 300_000, "delay": 0.150, "loss": 0.05, "queue": 24_000}  # per direction: RTT 300 ms


def note_ladder(hub: Hub, pid: str, steps: list[tuple[float, str]], audio_only_seen: set[str]) -> None:
    """One look at the hub for the weak-link tests' pollers: who is audio-only now, and `pid`'s ladder step
    appended to `steps` (time, step) when it changed."""
    participants = hub.stats()["participants"]
    audio_only_seen.update(p for p, info in participants.items() if info["audio_only"])
    step = participants.get(pid, {}).get("link_step")
    if not steps or steps[-1][1] != step:
        steps.append((time.monotonic(), step))


async def weak_link_phases(emulator: LinkEmulator, marks: dict[str, float],
                           on_phase: Callable[[str], None] = lambda _name: None) -> None:
    """The story the weak-link tests tell: clean 3 s, WEAK 20 s, a 5 s outage, 10 s back on the weak link.
    `marks[name]` is when each phase began ("clean", "weak", "outage", "back") and "end"; `on_phase(name)` runs at
    each of those moments, before the link changes."""
    for name, seconds, change in (("clean", 3, None), ("weak", 20, WEAK), ("outage", 5, {"blocked": True}),
                                  ("back", 10, {"blocked": False})):
        marks[name] = time.monotonic()
        on_phase(name)
        if change is not None:
            emulator.both(**change)
        await asyncio.sleep(seconds)
    marks["end"] = time.monotonic()
    on_phase("end")


async def join_weak_party(hub: Hub, router: DirectRouter, ns: str, config: MediaConfig) -> NamespacedBot:
    """Party "w" behind the emulator in `ns`, joined. Its browser would adapt its encoder to its uplink: the bot
    publishes a small clip (320x240, 15 fps, 120 kbit/s)."""
    await hub.add("w", {"name": "w"})
    small = await asyncio.to_thread(video_clip, 320, 240, 15, 4, 120_000, 2)
    weak = NamespacedBot(hub, router, "w", ns, config, clip=small)
    await weak.start()
    await weak.run(lambda bot: bot.join())
    return weak
