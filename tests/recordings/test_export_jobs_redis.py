"""Export jobs across nodes (issue 14 item 5): two app instances on one Redis (SAQ) share the export queue, and a
job claimed by an instance that stops before finishing is run by the other (attempt 2), which serves the result.
Redis db 11 is this test's own."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from mediation.export_jobs import ExportJob
from signaling.app import create_app
from signaling.config import Settings
from tests.conftest import World
from tests.recordings.test_export_jobs import plaintext_media, post_export, record, status_of, wait_done

REDIS = "redis://127.0.0.1:6379/11"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, redis_url=REDIS, export_heartbeat=3, export_sweep=1)


@pytest.fixture(autouse=True)
async def clean_redis() -> None:
    r = aioredis.from_url(REDIS)
    await r.flushdb()
    await r.aclose()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_two_nodes_share_the_queue_and_a_stopped_nodes_job_is_finished_by_the_other(
    world: World, aiohttp_server: Any, settings: Settings, tmp_path: Path
) -> None:
    m, rid = await record(world, seconds=6.0)
    app_b = create_app(dataclasses.replace(settings))  # a second instance: same database, storage and Redis
    st, body = await post_export(m, rid, reason="review on two nodes")
    assert st == 202, body
    job = body["job"]["id"]
    # the first instance (world's) takes it (watched in the database: the job is short)
    async with asyncio.timeout(60):
        while True:
            async with world.services.db.session() as s:
                row = await s.get(ExportJob, job)
                assert row is not None and row.status in ("queued", "running"), row and row.status
                if row.status == "running":
                    break
            await asyncio.sleep(0.01)
    _, j = await status_of(m, job)
    first = j["job"]["node"]
    assert j["job"]["attempts"] == 1

    # the first stops before finishing its job; then the second instance starts
    await world.services.exports.stop()  # type: ignore[union-attr]
    _, j = await status_of(m, job)
    assert j["job"]["status"] == "running" and j["job"]["progress"] < 1, j  # left unfinished
    server_b = await aiohttp_server(app_b)

    # the second instance finishes it; the first serves nothing (its worker is gone), the second serves the file
    m.base_url = str(server_b.make_url("")).rstrip("/")
    _, _, final = await wait_done(m, job, limit=90)
    assert final["status"] == "done", final
    assert final["attempts"] == 2 and final["node"] != first, final
    async with m.http.get(f"{m.base_url}/api/exports/{job}/file") as r:
        assert r.status == 200
        got = await r.read()
    assert hashlib.sha256(got).hexdigest() == final["sha256"]
    assert await asyncio.to_thread(plaintext_media, settings.data_dir) == []
    # only the finished attempt's result is kept
    assert sorted(p.name for p in (settings.data_dir / "exports" / job).iterdir()) == ["a2.odr"]
