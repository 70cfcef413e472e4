"""Throttles and rate limits shared by two nodes through the real local Redis (signaling/shared_limits.py): a
client that spreads its attempts over the nodes is throttled as one. Redis database 13 (other tests use 0, 9, 10).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from signaling import public_api
from signaling.app import SIO, create_app
from signaling.config import Settings
from signaling.services import SERVICES
from signaling.session_ns import NAMESPACE
from signaling.shared_limits import RedisBucket, RedisThrottle
from tests.conftest import PASSWORD, seed

REDIS = "redis://127.0.0.1:6379/13"
NS = "/session"
LONG = 600.0  # lock and window lengths in these tests: a busy machine cannot outlast them


async def _clean() -> None:
    r = aioredis.from_url(REDIS)
    keys = [k async for k in r.scan_iter("onedoor:limit:*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


@pytest.fixture
async def nodes(aiohttp_server: Any, settings: Settings) -> AsyncIterator[list[tuple[str, web.Application]]]:
    try:
        await _clean()
    except OSError:
        pytest.skip("no local Redis")
    channel = f"onedoor-test-{uuid.uuid4().hex[:8]}"
    s = dataclasses.replace(settings, redis_url=REDIS)
    out = []
    for _ in range(2):  # two apps, each with its own services (its own memory), one database and one Redis
        app = create_app(s)
        app[SIO].manager.channel = channel
        server = await aiohttp_server(app)
        out.append((str(server.make_url("")).rstrip("/"), app))
        for t in (app[SERVICES].login_throttle, app[NAMESPACE].throttle):
            assert isinstance(t, RedisThrottle)
            t.base = LONG
        b = public_api.bucket(app)
        assert isinstance(b, RedisBucket)
        b.rate = b.burst / LONG
    await seed(out[0][1][SERVICES])
    yield out
    await _clean()


async def _login(http: aiohttp.ClientSession, base: str, password: str) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{base}/api/auth/login", json={"username": "mediator", "password": password}) as r:
        return r.status, await r.json()


async def test_login_throttle_counts_over_both_nodes(nodes: list[tuple[str, web.Application]]) -> None:
    async with aiohttp.ClientSession() as http:
        statuses = [(await _login(http, nodes[i % 2][0], "wrong-password-1"))[0] for i in range(6)]
        assert statuses == [401] * 6  # 3 on each node: no node alone has seen more than 5
        for base, _app in nodes:  # the 6th failure locked the account for both
            status, body = await _login(http, base, PASSWORD)
            assert status == 429 and body["error"]["code"] == "login_throttled", body
            assert body["error"]["detail"]["retry_after"] > 1
        for _base, app in nodes:  # each node's memory counted nothing
            assert app[SERVICES].login_throttle.keys == {}


async def test_failed_connects_and_public_limit_count_over_both_nodes(
        nodes: list[tuple[str, web.Application]]) -> None:
    codes = []
    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(b.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket")
                   for b, _ in nodes]
        for ws in sockets:
            assert (await ws.receive(timeout=30)).data.startswith("0{")
        for i in range(30):  # bad invites, alternating nodes
            ws = sockets[i % 2]
            await ws.send_str(f"40{NS}," + json.dumps({"invite": secrets.token_urlsafe(24), "challenge": "x",
                                                        "signature": "AA==", "public_key": "AA=="}))
            while (msg := await ws.receive(timeout=30)).data == "2":
                await ws.send_str("3")
            codes.append(json.loads(msg.data[len(f"44{NS},"):])["data"]["code"])
        for ws in sockets:
            await ws.close()
        print(f"\n30 bad connects over 2 nodes: {codes.count('bad_invite')} checked, "
              f"{codes.count('rate_limited')} rate_limited")
        assert codes == ["bad_invite"] * 21 + ["rate_limited"] * 9  # the address's 20 free failures in all
        # the public pages: `burst` requests per window for one address, over both nodes together
        statuses = []
        for i in range(31):
            async with http.get(f"{nodes[i % 2][0]}/api/public/verify/NOSUCHCODE") as r:
                statuses.append(r.status)
        assert 429 not in statuses[:30] and statuses[30] == 429, statuses


async def test_redis_unreachable_falls_back_to_this_nodes_memory() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/13", socket_connect_timeout=1, socket_timeout=1)
    try:
        t = RedisThrottle(redis=dead, free=1, base=LONG)
        assert await t.fail("user:x") == []
        locked = await t.fail("user:x")
        assert [k for k, _ in locked] == ["user:x"] and await t.check("user:x") > 1
        b = RedisBucket(redis=dead, burst=2, rate=1 / LONG)
        assert [await b.take_shared("a") for _ in range(3)][2] > 0
    finally:
        await dead.aclose()
