"""How a client (a bot) talks to the server: a tiny request/ack + server-push abstraction.

`Channel.call(event, payload)` sends a client event and returns its ack payload
(`{"ok": true, ...}` or `{"ok": false, "error": {"code", "message"}}`); `Channel.on(event, handler)` registers a
handler for server-pushed events. Handlers must not block (bots just enqueue).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mediation.errors import OneDoorError

if TYPE_CHECKING:
    from media.hub import Hub

logger = logging.getLogger(__name__)

PushHandler = Callable[[dict[str, Any]], Any]


class Channel(Protocol):
    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]: ...

    def on(self, event: str, handler: PushHandler) -> None: ...


class DirectChannel:
    """In-process channel to a Hub (tests, benchmarks). Pair it with a `DirectRouter` as the hub's `send`."""

    def __init__(self, hub: Hub, participant_id: str) -> None:
        self.hub = hub
        self.participant_id = participant_id
        self._handlers: dict[str, PushHandler] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.hub.handle(self.participant_id, event, payload)
        except OneDoorError as exc:
            return {"ok": False, "error": exc.to_dict()}

    def on(self, event: str, handler: PushHandler) -> None:
        self._handlers[event] = handler

    def deliver(self, event: str, payload: dict[str, Any]) -> None:
        handler = self._handlers.get(event)
        if handler is None:
            return
        result = handler(payload)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


class DirectRouter:
    """The hub's `send` for in-process clients: delivers server pushes to the participant's DirectChannel."""

    def __init__(self) -> None:
        self.channels: dict[str, DirectChannel] = {}
        self.sent: list[tuple[str, str]] = []

    def attach(self, channel: DirectChannel) -> DirectChannel:
        self.channels[channel.participant_id] = channel
        return channel

    async def send(self, participant_id: str, event: str, payload: dict[str, Any]) -> None:
        self.sent.append((participant_id, event))
        channel = self.channels.get(participant_id)
        if channel is not None:
            channel.deliver(event, payload)


class SocketIOChannel:
    """A python-socketio `AsyncClient` connected to the server's `/session` namespace."""

    def __init__(self, sio: Any, namespace: str = "/session", timeout: float = 15.0) -> None:
        self.sio = sio
        self.namespace = namespace
        self.timeout = timeout

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        result = await self.sio.call(event, payload, namespace=self.namespace, timeout=self.timeout)
        if not isinstance(result, dict):
            return {"ok": False, "error": {"code": "bad_ack", "message": f"unexpected ack {result!r}"}}
        return result

    def on(self, event: str, handler: PushHandler) -> None:
        self.sio.on(event, handler, namespace=self.namespace)
