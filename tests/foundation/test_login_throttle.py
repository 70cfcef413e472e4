"""Password guessing (issue 10): argon2 runs off the event loop, failures are throttled per account and per
address with exponential backoff, lockouts are audited, and the server keeps answering during a login flood."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from mediation import audit
from mediation.accounts import LoginThrottle
from tests.conftest import PASSWORD, World


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _login(http: aiohttp.ClientSession, base: str, user: str, password: str) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{base}/api/auth/login", json={"username": user, "password": password}) as r:
        return r.status, await r.json()


async def test_account_locks_after_failures_backs_off_and_unlocks(world: World) -> None:
    clock = Clock()
    world.services.login_throttle = LoginThrottle(clock=clock)
    async with aiohttp.ClientSession() as http:
        statuses = [(await _login(http, world.base_url, "mediator", f"wrong-{i}"))[0] for i in range(6)]
        assert statuses == [401] * 6  # five free failures, the sixth counts and locks
        status, body = await _login(http, world.base_url, "mediator", PASSWORD)
        assert status == 429 and body["error"]["code"] == "login_throttled"  # even the right password waits
        assert body["error"]["detail"]["retry_after"] >= 1
        clock.t += 2  # the first lock is 1 s
        status, _ = await _login(http, world.base_url, "mediator", "wrong-again")
        assert status == 401
        status, body = await _login(http, world.base_url, "mediator", PASSWORD)
        assert status == 429 and body["error"]["detail"]["retry_after"] >= 2  # the next lock is longer
        clock.t += 3
        status, _ = await _login(http, world.base_url, "mediator", PASSWORD)
        assert status == 200  # and success clears the account's count
        assert (await _login(http, world.base_url, "mediator", "wrong"))[0] == 401
    async with world.services.db.session() as s:
        actions = [e.action for e in await audit.entries_for(s, "user:mediator")]
    assert actions.count("login.locked") == 2 and actions.count("login.failed") == 8


async def test_one_address_guessing_many_accounts_is_throttled() -> None:
    clock = Clock()
    t = LoginThrottle(clock=clock)
    locked = [t.failed(f"user:u{i}", "addr:10.0.0.9") for i in range(21)]
    assert all(not x for x in locked[:20]) and locked[20] == ["addr:10.0.0.9"]
    assert t.retry_after("user:someone-else", "addr:10.0.0.9") > 0
    assert t.retry_after("user:someone-else", "addr:10.0.0.10") == 0
    clock.t += 1.5
    assert t.retry_after("addr:10.0.0.9") == 0


async def test_server_answers_during_a_login_flood(world: World) -> None:
    """The guesses' argon2 checks run in worker threads (the loop-block fixture would fail this test if they
    ran on the loop): /healthz keeps answering while 24 guesses are being verified."""
    world.services.login_throttle = LoginThrottle(free=1000, free_per_address=1000)
    order: list[str] = []

    async def guess(http: aiohttp.ClientSession, i: int) -> None:
        await _login(http, world.base_url, f"user{i}", "wrong-password")
        order.append("login")

    async def healthz(http: aiohttp.ClientSession) -> None:
        await asyncio.sleep(0.05)
        async with http.get(f"{world.base_url}/healthz") as r:
            assert r.status == 200
        order.append("healthz")

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(guess(http, i) for i in range(24)), healthz(http))
    assert order.count("login") == 24
    assert order.index("healthz") < 23  # answered while guesses were still being checked


async def test_two_admins_creating_the_same_user_at_once_make_one(world: World) -> None:
    admin = await world.staff("admin", session=False)
    body = {"username": "twin", "password": "long-enough-password", "role": "mediator", "display_name": "孪生"}

    async def create() -> int:
        async with admin.http.post(f"{world.base_url}/api/users", json=body,
                                   headers={"X-CSRF-Token": admin.csrf}) as r:
            return r.status

    statuses = sorted(await asyncio.gather(*(create() for _ in range(8))))
    assert statuses == [200] + [409] * 7
