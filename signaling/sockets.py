"""Dispatch for the `/session` Socket.IO namespace: schema, size, rate and permission checks in one place.

Each events module builds an `EventTable` with `@events.on(event, action, schema)`; the app factory hands the
tables to the namespace (no registration as a side effect of importing). Handlers receive (Ctx, payload model),
call a use case and return the ack. Every client event gets an ack `{"ok": true, ...}` or
`{"ok": false, "error": {"code", "message"}}`, and errors are also emitted as an `error` event so clients
without acks see them. After every event the live session's state is pushed if it changed (signaling.publish).
Nothing a client sends can raise out of here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from mediation.access import Actor, check_role
from mediation.errors import Forbidden, InvalidInput, OneDoorError, RateLimited, TooLarge
from mediation.live import LiveSession, Presence
from mediation.permissions import Action
from signaling.limits import MAX_DEPTH, depth_exceeds, too_deep_error
from signaling.outage import outage
from signaling.publish import NS, Publisher
from signaling.services import Services

log = logging.getLogger(__name__)

SIO = web.AppKey("sio", socketio.AsyncServer)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Empty(Payload):
    pass


@dataclass
class Conn:
    """One Socket.IO connection: who it is and its token bucket."""

    sid: str
    session_id: int
    pid: str
    actor: Actor
    tokens: float
    last: float = field(default_factory=time.monotonic)


@dataclass
class Ctx:
    services: Services
    publisher: Publisher
    conn: Conn
    live: LiveSession
    me: Presence

    @property
    def actor(self) -> Actor:
        return self.conn.actor

    async def emit(self, event: str, data: Any, to: str | None = None) -> None:
        """To one participant id of this session (default: this person)."""
        await self.publisher.to_person(self.live, to or self.me.pid, event, data)


HandlerFn = Callable[[Ctx, Any], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class EventSpec:
    action: Action
    schema: type[BaseModel]
    fn: HandlerFn
    admitted: bool  # only after admission (media, chat, ...)


class EventTable:
    def __init__(self) -> None:
        self.specs: dict[str, EventSpec] = {}

    def on(self, event: str, action: Action, schema: type[BaseModel] = Empty, *, admitted: bool = False
           ) -> Callable[[HandlerFn], HandlerFn]:
        def deco(fn: HandlerFn) -> HandlerFn:
            self.add(event, EventSpec(action, schema, fn, admitted))
            return fn
        return deco

    def add(self, event: str, spec: EventSpec) -> None:
        assert event not in self.specs, event
        self.specs[event] = spec


def merge(tables: Iterable[EventTable]) -> dict[str, EventSpec]:
    out: dict[str, EventSpec] = {}
    for t in tables:
        for name, spec in t.specs.items():
            assert name not in out, name
            out[name] = spec
    return out


def fail(e: OneDoorError) -> dict[str, Any]:
    return {"ok": False, "error": e.to_dict()}


async def dispatch(services: Services, publisher: Publisher, handlers: dict[str, EventSpec],
                   conns: dict[str, Conn], event: Any, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
    live = None
    label = event[:50] if isinstance(event, str) else None
    try:
        conn = conns.get(sid)
        if conn is None:
            raise Forbidden("not connected to a session", code="not_connected")
        _take_token(services, conn)
        spec = handlers.get(event) if isinstance(event, str) else None
        if spec is None:  # not ours: non-string names and reserved names (connect, disconnect) included
            raise InvalidInput(f"unknown event {label or type(event).__name__!r}", code="unknown_event")
        if len(args) > 1:
            raise InvalidInput("one payload object per event", code="bad_payload")
        raw = args[0] if args else {}
        if not isinstance(raw, dict):
            raise InvalidInput("the payload must be a JSON object", code="bad_payload")
        if len(json.dumps(raw, ensure_ascii=False)) > services.settings.max_event_bytes:
            raise TooLarge("message too large", code="too_large")
        if depth_exceeds(raw, MAX_DEPTH):
            raise too_deep_error()
        live = services.live.get(conn.session_id)
        me = live.people.get(conn.pid) if live else None
        if live is None or me is None or not me.connected or conns.get(sid) is not conn:
            raise Forbidden("this connection was replaced or the session ended", code="not_connected")
        check_role(conn.actor, spec.action)  # the object (this session) is the connection's own
        if spec.admitted and not me.admitted:
            raise Forbidden("wait until the mediator admits you", code="not_admitted")
        payload = spec.schema.model_validate(raw)
        result = await spec.fn(Ctx(services, publisher, conn, live, me), payload)
        await publisher.flush(live)
        return {"ok": True, **(result or {})}
    except ValidationError as e:
        err: OneDoorError = InvalidInput("the message does not match the schema", code="invalid_input",
                                         errors=[{"loc": list(x["loc"]), "msg": x["msg"]} for x in e.errors()[:5]])
    except OneDoorError as e:
        err = e
    except Exception as e:
        down = outage(e)
        if down is None:
            log.exception("handler for %s failed", label)
        err = down or OneDoorError("internal error", code="internal")
    if live is not None:
        await publisher.flush(live)  # what changed before the error is still shown
    await publisher.sio.emit("error", {**err.to_dict(), "event": label}, to=sid, namespace=NS)
    return fail(err)


def _take_token(services: Services, conn: Conn) -> None:
    now = time.monotonic()
    st = services.settings
    conn.tokens = min(st.event_burst, conn.tokens + (now - conn.last) * st.events_per_second)
    conn.last = now
    if conn.tokens < 1:
        raise RateLimited("too many messages; slow down", code="rate_limited")
    conn.tokens -= 1
