"""python-socketio's Redis manager (Socket.IO rooms across nodes), made to live through a Redis restart.

The library's `AsyncRedisManager` reconnects by building a new client and dropping the old one unclosed (its
connections leak), backs off up to 60 s before it resubscribes (cross-node events are lost for up to a minute after
Redis is back), logs two errors for every emit while Redis is away (a flood), connects without a timeout (an
unreachable Redis would hold every emit), and has no close(). `RedisManager` keeps its behaviour (this node's own
clients get every emit first, Redis or not) and fixes those; the store outage test
(tests/cluster/test_store_outage.py) restarts Redis under it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import socketio

RETRY_MAX = 2.0  # seconds between resubscription attempts while Redis is away
WARN_EVERY = 10.0  # seconds between log lines about failed publishes


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """Also carries OneDoor's own messages between nodes on a channel beside the library's (`<channel>:live`):
    what an HTTP route served by one node changes in a live session another node owns (signaling/publish.py,
    `Publisher.tell_nodes`); `on_live` handles those from the other nodes."""

    connected: bool  # the library's flag: False makes the next publish connect again
    def __init__(self, url: str) -> None:
        super().__init__(url, redis_options={"socket_connect_timeout": 1.0})
        self._closing: set[asyncio.Task[None]] = set()
        self._handling: set[asyncio.Task[None]] = set()
        self._warned = -WARN_EVERY
        self.on_live: Callable[[dict[str, Any]], Coroutine[Any, Any, None]] | None = None

    @property
    def live_channel(self) -> str:
        return f"{self.channel}:live"

    async def tell(self, data: dict[str, Any]) -> None:
        """`data` to the other nodes' `on_live` (not this node's: the caller has done its own part)."""
        await self._publish({**data, "host_id": self.host_id}, channel=self.live_channel)

    async def _publish(self, data: Any, channel: str | None = None) -> Any:
        """To the other nodes (this node's clients already have it): two tries, the second on a new connection
        (the first may be one Redis dropped when it restarted); one log line per interval while it is away."""
        for last in (False, True):
            try:
                if not self.connected:
                    self._redis_connect()
                return await self.redis.publish(channel or self.channel, self.json.dumps(data))
            except Exception as exc:
                self.connected = False
                if last and time.monotonic() - self._warned >= WARN_EVERY:
                    self._warned = time.monotonic()
                    self._get_logger().warning("Cannot publish to redis (%s): other nodes miss events until it "
                                               "is back", exc)
        return None

    def _redis_connect(self) -> None:
        old = [c for c in (getattr(self, "pubsub", None), getattr(self, "redis", None)) if c is not None]
        super()._redis_connect()
        for conn in old:  # the library drops these open; close them (called from its coroutines: a loop runs)
            task = asyncio.get_running_loop().create_task(_quietly_close(conn))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        retry, subscribed = 0.25, False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel, self.live_channel)
                    subscribed, retry = True, 0.25
                async for message in self.pubsub.listen():
                    if _text(message.get("channel")) == self.live_channel:
                        self._live(message.get("data"))
                    else:
                        yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: try again soon (the library's own log line, once per try)
                self._get_logger().warning("Cannot receive from redis (%s); retrying in %.2f s", exc, retry)
                subscribed = False
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)

    def _live(self, raw: Any) -> None:
        try:
            data = self.json.loads(raw) if isinstance(raw, bytes | str) else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("host_id") == self.host_id or self.on_live is None:
            return  # a subscription confirmation, our own message, or nothing to hand it to
        task = asyncio.get_running_loop().create_task(self.on_live(data))
        self._handling.add(task)
        task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._handling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._get_logger().error("a message from another node failed: %r", task.exception())

    async def close(self) -> None:
        """Stop the listener and close the connections."""
        listener = getattr(self, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        for conn in (getattr(self, "pubsub", None), getattr(self, "redis", None)):
            if conn is not None:
                await _quietly_close(conn)
        await asyncio.gather(*self._closing, *self._handling, return_exceptions=True)


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


async def _quietly_close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a connection Redis already dropped may fail to say goodbye
        await conn.aclose()
