"""Dispatch for the `/session` Socket.IO namespace: schema, size, rate and permission checks in one place.

Handlers register with `@on(event, action, schema)` and receive (Ctx, payload model). Every client event gets an
ack `{"ok": true, ...}` or `{"ok": false, "error": {"code", "message"}}`, and errors are also emitted as an
`error` event so clients without acks see them. Nothing a client sends can raise out of here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from pydantic import BaseModel, ConfigDict, ValidationError

from mediation.errors import Forbidden, InvalidInput, OneDoorError, RateLimited, TooLarge
from mediation.permissions import Action, require
from signaling.rooms import Participant, Room
from signaling.services import Services

log = logging.getLogger(__name__)
NS = "/session"


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
    tokens: float
    last: float = field(default_factory=time.monotonic)


@dataclass
class Ctx:
    services: Services
    sio: socketio.AsyncServer
    conn: Conn
    room: Room
    me: Participant

    async def emit(self, event: str, data: Any, to: str | None = None) -> None:
        await self.sio.emit(event, data, to=to or self.conn.sid, namespace=NS)


HandlerFn = Callable[[Ctx, Any], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class EventSpec:
    action: Action
    schema: type[BaseModel]
    fn: HandlerFn
    admitted: bool  # only after admission (media, chat, ...)


HANDLERS: dict[str, EventSpec] = {}


def on(event: str, action: Action, schema: type[BaseModel] = Empty, *, admitted: bool = False
       ) -> Callable[[HandlerFn], HandlerFn]:
    def deco(fn: HandlerFn) -> HandlerFn:
        assert event not in HANDLERS, event
        HANDLERS[event] = EventSpec(action, schema, fn, admitted)
        return fn
    return deco


def fail(e: OneDoorError) -> dict[str, Any]:
    return {"ok": False, "error": e.to_dict()}


async def dispatch(services: Services, sio: socketio.AsyncServer, conns: dict[str, Conn], event: str, sid: str,
                   args: tuple[Any, ...]) -> dict[str, Any]:
    try:
        conn = conns.get(sid)
        if conn is None:
            raise Forbidden("not connected to a session", code="not_connected")
        _take_token(services, conn)
        spec = HANDLERS.get(event)
        if spec is None:
            raise InvalidInput(f"unknown event {event[:50]!r}", code="unknown_event")
        if len(args) > 1:
            raise InvalidInput("one payload object per event", code="bad_payload")
        raw = args[0] if args else {}
        if not isinstance(raw, dict):
            raise InvalidInput("the payload must be a JSON object", code="bad_payload")
        if len(json.dumps(raw, ensure_ascii=False)) > services.settings.max_event_bytes:
            raise TooLarge("message too large", code="too_large")
        room = services.rooms.get(conn.session_id)
        me = room.people.get(conn.pid) if room else None
        if room is None or me is None or me.sid != sid:
            raise Forbidden("this connection was replaced or the session ended", code="not_connected")
        require(me.role, spec.action)
        if spec.admitted and not me.admitted:
            raise Forbidden("wait until the mediator admits you", code="not_admitted")
        payload = spec.schema.model_validate(raw)
        result = await spec.fn(Ctx(services, sio, conn, room, me), payload)
        return {"ok": True, **(result or {})}
    except ValidationError as e:
        err: OneDoorError = InvalidInput("the message does not match the schema", code="invalid_input",
                                         errors=[{"loc": list(x["loc"]), "msg": x["msg"]} for x in e.errors()[:5]])
    except OneDoorError as e:
        err = e
    except Exception:
        log.exception("handler for %s failed", event)
        err = OneDoorError("internal error", code="internal")
    await sio.emit("error", {**err.to_dict(), "event": event[:50]}, to=sid, namespace=NS)
    return fail(err)


def _take_token(services: Services, conn: Conn) -> None:
    now = time.monotonic()
    st = services.settings
    conn.tokens = min(st.event_burst, conn.tokens + (now - conn.last) * st.events_per_second)
    conn.last = now
    if conn.tokens < 1:
        raise RateLimited("too many messages; slow down", code="rate_limited")
    conn.tokens -= 1
