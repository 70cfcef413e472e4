"""Public, unauthenticated answers behind the QR codes (mediation.public): no personal data, cheap, cacheable for
a short while, and limited per address (429 `rate_limited` with Retry-After) so probing case codes is slow."""

from __future__ import annotations

import json
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mediation.errors import RateLimited
from mediation.public import PublicFacts
from signaling.httpkit import Api, Ctx, error_response

api = Api()


@dataclass
class Bucket:
    """A token bucket per client address: `rate` requests per second, bursts of `burst`."""

    rate: float = 1.0
    burst: float = 30.0
    tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        if len(self.tokens) > 10_000:
            self.tokens = {k: v for k, v in self.tokens.items() if now - v[1] < 120}
        have, at = self.tokens.get(key, (self.burst, now))
        have = min(self.burst, have + (now - at) * self.rate)
        if have < 1:
            self.tokens[key] = (have, now)
            return (1 - have) / self.rate
        self.tokens[key] = (have - 1, now)
        return 0.0

    async def take_shared(self, key: str) -> float:
        """`take`, counted across the nodes when they share Redis (signaling.shared_limits.RedisBucket)."""
        return self.take(key)


_buckets: weakref.WeakKeyDictionary[web.Application, Bucket] = weakref.WeakKeyDictionary()  # one per app


def bucket(app: web.Application) -> Bucket:
    if app not in _buckets:
        _buckets[app] = Bucket()
    return _buckets[app]


def share(app: web.Application, shared: Bucket) -> None:
    """Use `shared` (a node of several: counted in Redis) as the app's bucket."""
    _buckets[app] = shared


async def _limited(ctx: Ctx) -> web.Response | None:
    wait = await bucket(ctx.request.app).take_shared(ctx.request.remote or "")
    if not wait:
        return None
    resp = error_response(RateLimited("请求过于频繁，请稍后再试 / too many requests; try again shortly",
                                      code="rate_limited", retry_after=round(wait, 1)))
    resp.headers["Retry-After"] = str(math.ceil(wait))
    return resp


def _facts(ctx: Ctx) -> PublicFacts:
    sv = ctx.services
    return PublicFacts(sv.db, lambda: sv.notary, lambda: sv.courts)


def _cached(data: dict[str, Any]) -> web.Response:
    resp = web.json_response(data, dumps=lambda v: json.dumps(v, ensure_ascii=False))
    resp.headers["Cache-Control"] = "public, max-age=30"
    return resp


@api.route("GET", "/api/public/verify/{code}", staff=False)
async def verify(ctx: Ctx, _: None) -> web.Response:
    """Whether an agreement with this case code exists: version, status, seal time, the SHA-256 fingerprints a
    PDF is checked against, the ruling's outcome and fingerprints. No personal data."""
    return await _limited(ctx) or _cached(await _facts(ctx).verify(ctx.param("code")))


@api.route("GET", "/api/public/cases/{code}", staff=False)
async def case_page(ctx: Ctx, _: None) -> web.Response:
    """Where a case stands, what happens next and whom to call (the center's name, address, phone)."""
    return await _limited(ctx) or _cached(await _facts(ctx).case_page(ctx.param("code")))
