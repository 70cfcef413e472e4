"""Throttle and rate-limit counters shared by a node of several through Redis (issue 10; docs/security.md).

With `Settings.redis_url` set, the login throttle, the failed-connect throttle and the public pages' rate limit
count in Redis, so a client that spreads its attempts over the nodes is throttled as one:

- `RedisThrottle` (a `mediation.accounts.LoginThrottle`): a failure is one Lua script per key (atomic `INCR` of
  the key's count with an expiry, and when past the free failures a lock key `SET ... PX <backoff>`); the wait is
  the lock key's `PTTL`; a success deletes both.
- `RedisBucket` (a `signaling.public_api.Bucket`): a fixed window per address, `burst` requests per
  `burst / rate` seconds (atomic `INCR`, the expiry set by the first request of the window).

If Redis cannot be reached, each falls back to its in-process counters (one warning line a minute), so the
limits still hold per node rather than failing open or refusing everyone. Without `redis_url` the in-process
classes are used as they are.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from mediation.accounts import LoginThrottle
from signaling.public_api import Bucket

log = logging.getLogger(__name__)

# KEYS: count, lock; ARGV: count ttl ms, free failures, base ms, cap ms. Returns the lock's ms (0: not locked).
_FAIL = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local free = tonumber(ARGV[2])
if n > free then
  local ms = math.floor(math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(n - free - 1, 20)))
  redis.call('SET', KEYS[2], '1', 'PX', ms)
  return ms
end
return 0
"""
# KEYS: window; ARGV: window ms, allowed. Returns the ms to wait (0: allowed).
_TAKE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
  return left
end
return 0
"""
NO_EXPIRY_MS = 24 * 3600 * 1000  # a count that would never be forgotten in memory: a day in Redis


class _Fallback:
    """One warning line a minute while Redis cannot be reached."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.logged = -math.inf

    def note(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self.logged > 60:
            self.logged = now
            log.warning("%s: Redis unreachable (%s); counting in this node's memory meanwhile", self.what,
                        type(e).__name__)


@dataclass
class RedisThrottle(LoginThrottle):
    redis: Any = None  # redis.asyncio.Redis
    prefix: str = "onedoor:limit:login:"
    _fallback: _Fallback = field(default_factory=lambda: _Fallback("throttle"))

    def __post_init__(self) -> None:
        assert self.redis is not None
        self._fail = self.redis.register_script(_FAIL)
        self._fallback = _Fallback(self.prefix.rstrip(":"))

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}n:{key}", f"{self.prefix}lock:{key}"

    async def check(self, *keys: str) -> float:
        try:
            async with self.redis.pipeline(transaction=False) as p:
                for k in keys:
                    p.pttl(self._keys(k)[1])
                waits = await p.execute()
        except RedisError as e:
            self._fallback.note(e)
            return await super().check(*keys)
        return max([0.0, *(w / 1000 for w in waits if isinstance(w, int) and w > 0)])

    async def fail(self, *keys: str) -> list[tuple[str, float]]:
        ttl = NO_EXPIRY_MS if math.isinf(self.forget_after) else int(self.forget_after * 1000)
        locked = []
        try:
            for k in keys:
                free = self.free_per_address if k.startswith("addr:") else self.free
                ms = await self._fail(keys=list(self._keys(k)),
                                      args=[ttl, free, int(self.base * 1000), int(self.cap * 1000)])
                if int(ms) > 0:
                    locked.append((k, int(ms) / 1000))
        except RedisError as e:
            self._fallback.note(e)
            return await super().fail(*keys)
        return locked

    async def clear(self, key: str) -> None:
        try:
            await self.redis.delete(*self._keys(key))
        except RedisError as e:
            self._fallback.note(e)
            await super().clear(key)


@dataclass
class RedisBucket(Bucket):
    redis: Any = None  # redis.asyncio.Redis
    prefix: str = "onedoor:limit:public:"
    _fallback: _Fallback = field(default_factory=lambda: _Fallback("public rate limit"))

    def __post_init__(self) -> None:
        assert self.redis is not None
        self._take = self.redis.register_script(_TAKE)

    async def take_shared(self, key: str) -> float:
        window_ms = max(1000, int(self.burst / self.rate * 1000))
        try:
            ms = await self._take(keys=[f"{self.prefix}{key}"], args=[window_ms, int(self.burst)])
        except RedisError as e:
            self._fallback.note(e)
            return self.take(key)
        return int(ms) / 1000
