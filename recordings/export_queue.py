"""Where export jobs wait and which worker runs them (issue 14 item 5). One small interface, two queues:

- `SaqQueue` (redis_url set, several nodes): SAQ, an asyncio-native task queue on Redis. Every node runs a
  worker on the same queue; a job is handed to one worker at a time. The worker touches the job (heartbeat)
  while ffmpeg runs; a node that dies stops touching it, and SAQ's sweeper (any node, every `sweep` seconds)
  hands it out again after `heartbeat` seconds, to another node (up to `retries` times). A node that stops
  cleanly gives its running job back at once. The job's key is the export job's id, so enqueueing again is
  idempotent: each node re-submits the jobs the database says are still queued when it starts and every
  `resubmit` seconds (a request whose enqueue failed while Redis was away is not lost).
- `LocalQueue` (no Redis: `make run`, one process): the database is the queue. A worker task takes the oldest
  queued job; at start, jobs left `running` by this process's previous life are run again.

`concurrency` 0 makes a node that only queues (its requests' jobs run on the other nodes' workers). Either queue
also runs the exports' upkeep (`upkeep`: finished exports past their keeping time deleted, signaling/exports.py)
at start and every `upkeep_every` seconds, on every node (idempotent: the first node to expire a job records it).

Either way the database (mediation.export_jobs) is the job's truth and `recordings.export_job.run` claims it
with the attempt number as a fence: a worker whose node was given up for dead cannot overwrite the new attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from saq import Queue, Worker
from saq.queue.redis import RedisQueue
from saq.types import Context, PartialTimersDict

from mediation import export_jobs
from mediation.db import Database

log = logging.getLogger(__name__)

Runner = Callable[[str, Callable[[float], Awaitable[None]] | None], Awaitable[str]]
Upkeep = Callable[[], Awaitable[object]]


async def _upkeep_loop(upkeep: Upkeep, every: float) -> None:
    while True:
        try:
            await upkeep()
        except Exception:  # the database or the storage away: the next round
            log.warning("export queue: upkeep failed", exc_info=True)
        await asyncio.sleep(every)


class ExportQueue(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, job_id: str) -> None: ...


class LocalQueue:
    """One process, no Redis: a worker task over the database's queued jobs, `concurrency` at a time."""

    def __init__(self, db: Database, runner: Runner, *, concurrency: int = 1, poll: float = 5.0,
                 upkeep: Upkeep | None = None, upkeep_every: float = 600.0) -> None:
        self.db, self.runner, self.concurrency, self.poll = db, runner, concurrency, poll
        self.upkeep, self.upkeep_every = upkeep, upkeep_every
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()  # job ids this queue's workers are running now

    async def start(self) -> None:
        self._tasks = {asyncio.create_task(self._work(), name=f"export-worker-{i}") for i in range(self.concurrency)}
        if self.upkeep is not None:
            self._tasks.add(asyncio.create_task(_upkeep_loop(self.upkeep, self.upkeep_every), name="export-upkeep"))
        self._wake.set()

    async def submit(self, job_id: str) -> None:
        self._wake.set()

    async def _work(self) -> None:
        while True:
            try:
                ids = await export_jobs.unfinished(self.db)
            except Exception:  # the database away: try again at the next poll
                log.warning("export queue: cannot read the jobs", exc_info=True)
                ids = []
            todo = [i for i in ids if i not in self._busy]
            if not todo:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
                continue
            job_id = todo[0]
            self._busy.add(job_id)
            try:
                await self.runner(job_id, None)
            except Exception:  # the runner ends jobs itself; this is the database failing
                log.exception("export job %s", job_id)
                await asyncio.sleep(self.poll)
            finally:
                self._busy.discard(job_id)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class _Pipeline(Pipeline):
    def setex(self, name: Any, time: Any, value: Any) -> Any:  # SAQ's call; deprecated in redis-py 8
        return self.set(name, value, ex=time)


class _Redis(Redis):
    """redis-py 8 deprecates SETEX, which SAQ 0.26 calls: the same command as SET ... EX (no warning)."""

    def setex(self, name: Any, time: Any, value: Any) -> Any:
        return self.set(name, value, ex=time)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        return _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class _Queue(RedisQueue):
    """SAQ's Redis queue, patient while Redis is away: a failed dequeue waits a second instead of spinning."""

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Any:  # noqa: ASYNC109 - SAQ's signature
        try:
            return await super().dequeue(timeout=timeout, poll_interval=poll_interval)
        except (RedisError, OSError):
            await asyncio.sleep(1.0)
            return None


class SaqQueue:
    """Several nodes: SAQ on Redis (see the module docstring)."""

    FUNCTION = "onedoor.export"

    def __init__(self, db: Database, runner: Runner, redis_url: str, *, name: str = "onedoor-exports",
                 concurrency: int = 1, heartbeat: int = 15, sweep: int = 5, retries: int = 3,
                 resubmit: float = 30.0, upkeep: Upkeep | None = None, upkeep_every: float = 600.0) -> None:
        self.db, self.runner = db, runner
        self.heartbeat, self.retries, self.resubmit = heartbeat, retries, resubmit
        self.upkeep, self.upkeep_every = upkeep, upkeep_every
        self.queue: Queue = _Queue(_Redis.from_url(redis_url), name=name)
        self.worker: Worker | None = None  # concurrency 0: this node only queues
        if concurrency > 0:
            self.worker = Worker(self.queue, functions=[(self.FUNCTION, self._run)], concurrency=concurrency,
                                 timers=PartialTimersDict(sweep=sweep, abort=1, schedule=1, worker_info=10),
                                 dequeue_timeout=5.0, shutdown_grace_period_s=0)
            self.worker.SIGNALS = []  # the server handles its own signals; stopping the app stops the worker
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[Any]] = set()  # the jobs this node runs now

    async def _run(self, ctx: Context, *, job_id: str) -> str:
        job = ctx["job"]
        me = asyncio.current_task()
        assert me is not None
        self._running.add(me)
        me.add_done_callback(self._running.discard)
        stop = asyncio.Event()
        # touched three times per heartbeat of the job (the one it was queued with, by whichever node: the sweepers
        # judge it by that one), also while ffmpeg reports nothing
        every = max(0.5, (job.heartbeat or self.heartbeat) / 3)

        async def touch() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
                if not stop.is_set():
                    with contextlib.suppress(RedisError, OSError):
                        await job.update()

        async def beat(progress: float) -> None:
            with contextlib.suppress(RedisError, OSError):
                await job.update(progress=progress)

        toucher = asyncio.create_task(touch())
        try:
            return await self.runner(job_id, beat)
        finally:
            stop.set()
            await toucher

    async def submit(self, job_id: str) -> None:
        await self.queue.enqueue(self.FUNCTION, key=job_id, job_id=job_id, heartbeat=self.heartbeat,
                                 retries=self.retries, timeout=0, ttl=3600)

    async def _resubmit(self) -> None:
        while True:
            try:
                for job_id in await export_jobs.unfinished(self.db, status=("queued",)):
                    await self.submit(job_id)
            except Exception:  # Redis or the database away: the next round
                log.warning("export queue: resubmitting failed", exc_info=True)
            await asyncio.sleep(self.resubmit)

    async def start(self) -> None:
        await self.queue.connect()
        self._tasks = {asyncio.create_task(self._resubmit(), name="export-resubmit")}
        if self.worker is not None:
            self._tasks.add(asyncio.create_task(self.worker.start(), name="export-saq-worker"))
        if self.upkeep is not None:
            self._tasks.add(asyncio.create_task(_upkeep_loop(self.upkeep, self.upkeep_every), name="export-upkeep"))

    async def stop(self) -> None:
        """Stop taking jobs; a running job is given back to the queue (another node runs it). Our running jobs
        are cancelled and awaited first (ffmpeg killed and reaped), then SAQ's worker sees them cancelled and
        re-queues them, and stops."""
        if self.worker is not None:
            self.worker.event.set()
            running = list(self._running)
            for t in running:
                t.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await asyncio.sleep(0.1)  # SAQ's process task re-queues the cancelled job
            await self.worker.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.queue.disconnect()
