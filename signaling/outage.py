"""PostgreSQL or Redis unreachable or restarting (issue 14 item 4): every HTTP route and Socket.IO event answers a
clear 503 `unavailable` (Retry-After) instead of a 500 with a traceback per request; the log gets one line per store
per interval, not a flood; live sessions keep running (media never touches either store); and everything recovers
without a restart (the database pool pre-pings, python-socketio's Redis manager reconnects)."""

from __future__ import annotations

import logging
import time

from redis import exceptions as redis_errors

from mediation.db import unreachable
from mediation.errors import Unavailable

log = logging.getLogger(__name__)
RETRY_AFTER = 5  # seconds: PostgreSQL restarts in a few; the client's retry comes after
LOG_EVERY = 10.0
_last_logged: dict[str, float] = {}


def outage(e: BaseException) -> Unavailable | None:
    """The 503 for `e` if it says a store cannot be reached now; None for any other error."""
    if isinstance(e, redis_errors.ConnectionError | redis_errors.TimeoutError | redis_errors.BusyLoadingError):
        store = "redis"
    elif unreachable(e):
        store = "database"
    else:
        return None
    now = time.monotonic()
    if now - _last_logged.get(store, -LOG_EVERY) >= LOG_EVERY:
        _last_logged[store] = now
        log.warning("%s unreachable (%s: %s); answering 503 until it is back", store, type(e).__name__,
                    str(e)[:200])
    return Unavailable("服务暂时不可用，请稍后重试 / the service is briefly unavailable; try again shortly",
                       code="unavailable", store=store, retry_after=RETRY_AFTER)


class StoreOutageFilter(logging.Filter):
    """A library's traceback for an unreachable store (SAQ's worker loops, every second while Redis restarts)
    becomes the one line per store per LOG_EVERY s that `outage` writes; anything else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or outage(exc) is None


def install_outage_filter(*loggers: str) -> None:
    for name in loggers:
        lg = logging.getLogger(name)
        if not any(isinstance(f, StoreOutageFilter) for f in lg.filters):
            lg.addFilter(StoreOutageFilter())
