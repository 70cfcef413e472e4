"""Socket.IO through Redis (AsyncRedisManager, for several nodes): two server instances share the local Redis;
a broadcast to a session room emitted on one node reaches a client connected to the other."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from signaling.app import SIO, create_app
from signaling.client import SessionClient
from signaling.config import Settings
from signaling.publish import session_room
from signaling.services import SERVICES
from tests.conftest import PASSWORD, World, seed

REDIS = "redis://127.0.0.1:6379/0"


async def _redis_up() -> bool:
    try:
        r = aioredis.from_url(REDIS)
        await r.ping()
        await r.aclose()
        return True
    except OSError:
        return False


async def test_room_emit_crosses_nodes(aiohttp_server: Any, settings: Settings) -> None:
    if not await _redis_up():
        pytest.skip("no local Redis")
    channel = f"onedoor-test-{uuid.uuid4().hex[:8]}"
    s1 = dataclasses.replace(settings, redis_url=REDIS)
    app1 = create_app(s1)
    app1[SIO].manager.channel = channel  # isolate this test's pub/sub channel
    node1 = await aiohttp_server(app1)
    app2 = create_app(s1, services=app1[SERVICES])  # same database and keys, another Socket.IO server
    app2[SIO].manager.channel = channel
    node2 = await aiohttp_server(app2)
    seeded = await seed(app1[SERVICES])
    w2 = World(str(node2.make_url("")).rstrip("/"), app1[SERVICES], seeded["case"], seeded["session"],
               seeded["tokens"], seeded["ids"])
    m = SessionClient(str(node2.make_url("")).rstrip("/"))
    try:
        await m.login("mediator", PASSWORD)
        await m.join_staff(w2.session_id)
        await m.wait(lambda c: bool(c.state))
        # node 1 emits to the session's room; the client on node 2 receives it through Redis
        await app1[SIO].emit("session:ended", {"reason": "cross-node"}, room=session_room(w2.session_id),
                             namespace="/session")
        got = await m.wait_event("session:ended", limit=10)
        assert got == {"reason": "cross-node"}
        assert node1 is not node2
    finally:
        await m.close()
        # the app's cleanup closes the Redis manager (signaling/app.py _close_redis_manager)
