"""Fail a test whose event loop is blocked: one callback using more than `LIMIT` s of the loop thread's CPU.

Every callback the loop runs (a task step, a timer, an I/O callback) goes through `asyncio.events.Handle._run`;
while a test's body runs (not its fixtures' setup or teardown: known setup), that method is wrapped to measure
the CPU time of the running thread (`time.thread_time`) each callback consumes. CPU time, not wall-clock time:
load from other processes on a busy machine does not count, only work done on the loop thread itself. (A blocking
system call that uses no CPU, such as `time.sleep` or a slow `fsync`, is not seen.) Work moved off the loop
(`asyncio.to_thread`) runs on another thread and does not count either, nor does the garbage collector's work
(a full collection starts in whichever callback allocates at the wrong moment; gc.callbacks measure it).

A test that really has to block says why: `@pytest.mark.allow_blocking("reason")`.
tests/conftest.py imports the fixture and the hooks; tests/test_loopblock.py tests the detector.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import threading
import time
import traceback
import tracemalloc
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

LIMIT = 0.1  # seconds of loop-thread CPU time in one callback
MARKER = "allow_blocking"


@dataclass(frozen=True)
class Block:
    cpu: float  # seconds of the loop thread's CPU time used by the callback
    wall: float  # seconds of wall-clock time it took (for information: includes time other processes had)
    callback: str  # the callback's repr and, for a task step, where its coroutine stack stands after the step


def _coroutine_stack(coro: Any) -> str:
    """'file:line function' of each coroutine in an await chain, outermost first."""
    parts = []
    while isinstance(coro, types.CoroutineType | types.GeneratorType):
        frame = coro.cr_frame if isinstance(coro, types.CoroutineType) else coro.gi_frame
        if frame is None:
            break
        parts.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_qualname}")
        coro = coro.cr_await if isinstance(coro, types.CoroutineType) else coro.gi_yieldfrom
    return " -> ".join(parts)


def describe(handle: asyncio.Handle) -> str:
    text = repr(handle)
    owner = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        where = f" {code.co_qualname} ({code.co_filename}:{code.co_firstlineno})" if code else ""
        stack = _coroutine_stack(coro)
        text = f"{text} of task {owner.get_name()!r}{where}" + (f", now at {stack}" if stack else ", finished")
    return text


class BlockDetector:
    """Wraps `Handle._run` between `install()` and `uninstall()`; records callbacks over `limit` while armed.

    While a callback runs, a watchdog thread samples the loop thread's stack every `sample_every` s of wall time,
    so a report shows where the CPU went (the last sample), not only which callback it was.
    """

    def __init__(self, limit: float = LIMIT, sample_every: float = 0.05) -> None:
        self.limit = limit
        self.sample_every = sample_every
        self.armed = False
        self.blocks: list[Block] = []
        self._original: Callable[[asyncio.Handle], None] | None = None
        self._running: tuple[int, int, float] | None = None  # (thread id, run number, wall start)
        self._sample: tuple[int, str] | None = None  # (run number, stack)
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._gc_cpu = 0.0  # loop-thread CPU spent in the garbage collector, subtracted from callbacks
        self._gc_started: float | None = None

    def install(self) -> None:
        original = self._original = asyncio.events.Handle._run
        detector = self
        runs = itertools.count()

        loop_thread = threading.get_ident()  # the test's event loop runs here (pytest-asyncio's runner)

        def _run(handle: asyncio.Handle) -> None:
            if not detector.armed or threading.get_ident() != loop_thread:
                return original(handle)  # a private loop in a worker thread (asyncio.run in to_thread) blocks nobody
            run = next(runs)
            cpu, wall, gc_cpu = time.thread_time(), time.perf_counter(), detector._gc_cpu
            detector._running = (threading.get_ident(), run, wall)
            try:
                return original(handle)
            finally:
                detector._running = None
                used = time.thread_time() - cpu - (detector._gc_cpu - gc_cpu)
                if used > detector.limit:
                    sample = detector._sample
                    where = f"\n      last sampled at: {sample[1]}" if sample and sample[0] == run else ""
                    detector.blocks.append(Block(used, time.perf_counter() - wall, describe(handle) + where))

        asyncio.events.Handle._run = _run  # type: ignore[method-assign,assignment]
        gc.callbacks.append(self._on_gc)
        self._stop.clear()
        self._watchdog = threading.Thread(target=self._watch, name="loop-block-watchdog", daemon=True)
        self._watchdog.start()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """A collection is the interpreter's, not the callback's code (a full one over a large heap can take
        ~200 ms wherever it happens to start): its CPU time on the loop thread is not counted."""
        running = self._running
        if running is None or running[0] != threading.get_ident():
            return
        if phase == "start":
            self._gc_started = time.thread_time()
        elif self._gc_started is not None:
            self._gc_cpu += time.thread_time() - self._gc_started
            self._gc_started = None

    def _watch(self) -> None:
        while not self._stop.wait(self.sample_every):
            running = self._running
            if running is None or time.perf_counter() - running[2] < self.sample_every:
                continue
            frame = sys._current_frames().get(running[0])
            if frame is not None and self._running is running:
                stack = traceback.extract_stack(frame)[-6:]
                self._sample = (running[1], " <- ".join(f"{f.filename}:{f.lineno} {f.name}" for f in reversed(stack)))

    def uninstall(self) -> None:
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign,assignment]
            self._original = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None

    def report(self) -> str:
        lines = [f"the event loop was blocked (more than {self.limit * 1000:.0f} ms of CPU in one callback):"]
        for block in sorted(self.blocks, key=lambda b: -b.cpu)[:5]:
            lines.append(f"  {block.cpu * 1000:.0f} ms CPU ({block.wall * 1000:.0f} ms wall): {block.callback}")
        lines.append(f"move the work off the loop (asyncio.to_thread), or mark the test @pytest.mark.{MARKER}(reason)")
        return "\n".join(lines)


_DETECTOR = pytest.StashKey[BlockDetector]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(reason): the test may block the event loop (CPU work on the loop thread); say why"
    )


@pytest.fixture(autouse=True)
def _fail_on_blocked_loop(request: pytest.FixtureRequest) -> Iterator[BlockDetector]:
    """Watch the event loop while the test body runs (armed by `pytest_runtest_call`)."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and not (marker.args or marker.kwargs.get("reason")):
        raise pytest.UsageError(f"@pytest.mark.{MARKER} needs a reason")
    detector = BlockDetector()
    detector.install()
    request.node.stash[_DETECTOR] = detector
    try:
        yield detector
    finally:
        detector.uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    detector = item.stash.get(_DETECTOR, None)
    if detector is None or tracemalloc.is_tracing():  # tracemalloc (PYTHONTRACEMALLOC) slows everything down
        return (yield)
    detector.armed = True
    try:
        result = yield
    finally:
        detector.armed = False
    if detector.blocks and item.get_closest_marker(MARKER) is None:
        pytest.fail(detector.report(), pytrace=False)
    return result
