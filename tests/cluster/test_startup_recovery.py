"""A node restarting while another node continues a recording after a takeover leaves that recording alone
(signaling/cli_server.py `_recover_at_start`, signaling.cluster.LeaseProbe): only recordings whose session no
other node holds a live lease of are finalized as truncated. Real local Redis; the database is the test's own."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from mediation.recording_records import Recording
from recordings.recorder import Participant, Recorder
from signaling.cli_server import _recover_at_start
from signaling.config import Settings
from signaling.services import Services

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 10  # `onedoor serve` uses the default key prefix: a database of its own, and only our keys touched
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    r = aioredis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    try:
        await r.ping()
    except OSError:
        await r.aclose()
        pytest.skip("no local Redis on 127.0.0.1:6379")
    yield r
    await r.aclose()


async def interrupted(sv: Services, session_id: str) -> str:
    """A recording left "recording" (its process died without stopping it)."""
    rec = await Recorder.start(db=sv.db, storage=sv.storage, keyring=sv.keys, session_id=session_id,
                               case_code="QH-HX-2026-000001", participants=[Participant("p1", "A", consented=True)],
                               actor="mediator:1", reason="all parties consented")
    return rec.recording_id


async def status(sv: Services, rid: str) -> str:
    async with sv.db.session() as s:
        row = await s.get(Recording, rid)
        assert row is not None
        return row.status


async def test_restart_leaves_recordings_another_node_continues(settings: Settings,
                                                                redis_db: aioredis.Redis) -> None:
    base = 900_000_000 + secrets.randbelow(90_000_000)
    elsewhere, own, nobody = str(base), str(base + 1), str(base + 2)
    keys = [f"onedoor:lease:{s}" for s in (elsewhere, own, nobody)]
    sv = Services.build(settings)
    try:
        rids = {s: await interrupted(sv, s) for s in (elsewhere, own, nobody)}
        await redis_db.set(keys[0], "node-b|7", px=30_000)  # node-b took the session over and records part 2
        await redis_db.set(keys[1], "node-a|3", px=30_000)  # this node's previous (killed) process
        node = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
                                   node_url="http://127.0.0.1:18080", node_id="node-a")
        await _recover_at_start(node)
        assert await status(sv, rids[elsewhere]) == "recording"  # left for node-b to continue and stop
        assert await status(sv, rids[own]) == "truncated"
        assert await status(sv, rids[nobody]) == "truncated"

        await redis_db.delete(keys[0])  # node-b's lease gone (it stopped, or died too): the next start finalizes
        await _recover_at_start(node)
        assert await status(sv, rids[elsewhere]) == "truncated"

        rid = await interrupted(sv, str(base + 3))  # Redis unreachable at start: nothing can be known, none finalized
        await _recover_at_start(dataclasses.replace(node, redis_url="redis://127.0.0.1:1/0"))
        assert await status(sv, rid) == "recording"
        await _recover_at_start(settings)  # a single server (no cluster) finalizes as before
        assert await status(sv, rid) == "truncated"
    finally:
        await redis_db.delete(*keys)
        await sv.db.close()


async def test_recover_command_leaves_recordings_a_node_continues(settings: Settings, redis_db: aioredis.Redis) -> None:
    """`onedoor recordings recover --redis-url` (an operator's run on a cluster) skips a recording whose session a
    node owns now, as a node's own start does; without --redis-url (one server) it finalizes every one."""
    base = 900_000_000 + secrets.randbelow(90_000_000)
    owned, free = str(base), str(base + 1)
    key = f"onedoor:lease:{owned}"
    sv = Services.build(settings)
    try:
        rids = {s: await interrupted(sv, s) for s in (owned, free)}
        await redis_db.set(key, "node-b|9", px=60_000)
        cli = [sys.executable, "-m", "signaling.cli", "recordings", "recover", "--data-dir", str(settings.data_dir),
               "--key-dir", str(settings.key_dir), "--database-url", settings.db_url]
        env = dict(os.environ)
        run = await asyncio.to_thread(subprocess.run, [*cli, "--redis-url", f"redis://127.0.0.1:6379/{REDIS_DB}"],
                                      capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        assert await status(sv, rids[owned]) == "recording"  # node-b continues it
        assert await status(sv, rids[free]) == "truncated"
        await redis_db.delete(key)
        run = await asyncio.to_thread(subprocess.run, cli, capture_output=True, text=True, timeout=120, cwd=ROOT,
                                      env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        assert await status(sv, rids[owned]) == "truncated"
    finally:
        await redis_db.delete(key)
        await sv.db.close()
