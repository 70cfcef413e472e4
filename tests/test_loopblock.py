"""The blocked-event-loop detector (tests/loopblock.py): CPU work in a callback is caught, waiting is not."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path

import pytest

from tests.loopblock import BlockDetector

# these tests block on purpose, inside a detector of their own (which the test's own detector would also see)
pytestmark = pytest.mark.allow_blocking("the detector's own tests block the loop on purpose")


def spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def blocking_coroutine() -> None:
    await asyncio.sleep(0)
    spin(0.3)  # a CPU loop on the loop thread, as argon2 or PDF signing would be
    await asyncio.sleep(0)


def run_watched(coro_factory: object) -> BlockDetector:
    detector = BlockDetector()
    detector.install()
    detector.armed = True
    try:
        asyncio.run(coro_factory())  # type: ignore[operator]
    finally:
        detector.uninstall()
    return detector


def test_a_cpu_loop_inside_a_coroutine_is_caught_with_its_location() -> None:
    detector = run_watched(blocking_coroutine)
    assert len(detector.blocks) == 1
    (block,) = detector.blocks
    assert block.cpu >= 0.3
    assert "blocking_coroutine" in block.callback and "test_loopblock.py" in block.callback
    assert "blocking_coroutine" in detector.report()


def test_sleeping_and_threads_are_not_blocking() -> None:
    async def waits() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(spin, 0.3)  # CPU work off the loop thread
        time.sleep(0.15)  # noqa: ASYNC251 (no CPU: not seen; the detector measures CPU, not wall-clock time)

    assert run_watched(waits).blocks == []


def test_a_blocking_timer_callback_is_caught() -> None:
    async def timer() -> None:
        done = asyncio.Event()
        def blocking_timer() -> None:
            spin(0.15)
            done.set()

        asyncio.get_running_loop().call_later(0.01, blocking_timer)
        await done.wait()

    blocks = run_watched(timer).blocks
    assert len(blocks) == 1 and "TimerHandle" in blocks[0].callback


INNER = '''
import asyncio, time
import pytest

def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

async def test_blocks():
    await asyncio.sleep(0)
    spin(0.3)

@pytest.mark.allow_blocking("deliberate: checks the marker")
async def test_blocks_but_allowed():
    spin(0.3)

async def test_sleeps():
    await asyncio.sleep(0.3)

@pytest.fixture
async def slow_setup():
    spin(0.3)  # fixture setup is known setup: not counted

async def test_slow_fixture(slow_setup):
    await asyncio.sleep(0)
'''


def test_the_fixture_fails_a_blocking_test_unless_marked(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "from tests.loopblock import _fail_on_blocked_loop, pytest_configure, pytest_runtest_call  # noqa\n"
    )
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_inner=INNER)
    root = Path(__file__).resolve().parents[1]
    pytester._monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error", "--strict-markers")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_blocks - Failed: the event loop was blocked*"])
    result.stdout.re_match_lines([r".*\d+ ms CPU .*test_blocks\b.*"])


def test_garbage_collection_is_not_counted_against_the_callback() -> None:
    async def collects() -> None:
        junk = [[i] for i in range(300_000)]  # a heap whose full collection takes a while
        await asyncio.sleep(0)
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            gc.collect()
        del junk

    assert run_watched(collects).blocks == []
