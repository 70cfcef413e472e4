"""The `/session` namespace: authentication in `connect` (mediation.lobby), presence, dispatch (protocol.md)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import socketio
from aiohttp import web

from mediation import lobby
from mediation.accounts import LoginThrottle
from mediation.errors import Forbidden, OneDoorError, RateLimited, Unauthenticated
from signaling.limits import SLOW_CLIENT
from signaling.publish import NS, Publisher, person_room, session_room
from signaling.services import Services
from signaling.sockets import Conn, EventSpec, dispatch, fail
from signaling.takeover import restore

log = logging.getLogger(__name__)
# disconnect reasons of a connection lost rather than closed (engineio.Server.reason)
# (and a client dropped for not reading what it was sent: signaling.limits)
DROPPED = frozenset({"ping timeout", "transport close", "transport error", SLOW_CLIENT})
# events that write session state: on a node of several, refused (`stale_owner`) unless its lease is current
# connect refusals the throttle does not count: not a wrong credential
UNCOUNTED = frozenset({"wrong_node", "rate_limited", "unavailable", "refused"})
FENCED = ("lobby:", "caucus:", "recording:", "session:", "transcript:", "agreement:", "identity:")


class SessionNamespace(socketio.AsyncNamespace):
    def __init__(self, services: Services, publisher: Publisher, handlers: dict[str, EventSpec]) -> None:
        super().__init__(NS)
        self.services = services
        self.publisher = publisher
        self.handlers = handlers
        self.conns: dict[str, Conn] = {}
        self.sids: dict[tuple[int, str], str] = {}  # (session, participant) -> the connection now in use
        self.tasks: set[asyncio.Task[Any]] = set()
        self.restoring: dict[int, asyncio.Task[None]] = {}  # session -> its takeover (signaling/takeover.py)
        # failed connects, per address and per invite token: each costs a lookup and a signature check
        self.throttle = connect_throttle()

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        """The library calls `connect`/`disconnect` while the connection is pending (not yet, or no longer,
        connected); a client-sent event of that name (which signaling.limits.GuardedServer already refuses)
        comes from a connected socket and goes to dispatch, which refuses it as `unknown_event`."""
        sid = args[0]
        if event in ("connect", "disconnect") and not self.server.manager.is_connected(sid, NS):
            if event == "connect":
                return await self.on_connect(*args)
            return await self.on_disconnect(sid, *args[1:2])
        cluster, conn = self.services.cluster, self.conns.get(sid)
        if cluster is not None and conn is not None and isinstance(event, str) and event.startswith(FENCED):
            try:
                await cluster.fence(conn.session_id)
            except OneDoorError as e:
                return fail(e)
        return await dispatch(self.services, self.publisher, self.handlers, self.conns, event, sid, args[1:])

    # ---- connect ------------------------------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        keys = _throttle_keys(environ, auth)
        try:
            wait = await self.throttle.check(*keys)
            if wait > 0:  # refused before any lookup or signature check (not counted again)
                raise RateLimited("too many failed connects; try again later", code="rate_limited",
                                  retry_after=math.ceil(wait))
            joined = await self._authenticate(environ, auth)
        except OneDoorError as e:
            if e.status < 500 and e.code not in UNCOUNTED:
                for k, seconds in await self.throttle.fail(*keys):
                    log.warning("failed connects to %s throttled: %s for %.0f s", NS, k.split(":", 1)[0], seconds)
            raise socketio.exceptions.ConnectionRefusedError(e.message, e.to_dict()) from None
        except Exception:
            log.exception("connect failed")
            err = {"code": "internal", "message": "internal error"}
            raise socketio.exceptions.ConnectionRefusedError(err["message"], err) from None
        if len(keys) > 1:
            await self.throttle.clear(keys[1])  # the invite's own count; the address's stays
        return await self._enter(sid, joined)

    async def _authenticate(self, environ: dict[str, Any], auth: Any) -> lobby.Joined:
        """Who connects (an invite's signed challenge, or a staff login cookie); OneDoorError when refused."""
        sv = self.services
        _same_origin(environ)
        if not isinstance(auth, dict):
            raise Unauthenticated("missing credentials", code="auth_required")
        if "invite" in auth:
            joined = await lobby.join_by_invite(sv.db, auth, secret=sv.challenge_secret)
        elif "session" in auth:
            sid_raw = auth.get("session")
            if not isinstance(sid_raw, int) or isinstance(sid_raw, bool):
                raise Unauthenticated("session must be a number", code="auth_required")
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            token = cookie["od_session"].value if "od_session" in cookie else None
            joined = await lobby.join_as_staff(sv.db, token, sid_raw)
        else:
            raise Unauthenticated("missing credentials", code="auth_required")
        if sv.cluster is not None:  # several nodes: the session's owner serves it; others name the owner
            await sv.cluster.claim(joined.session_id)
        return joined

    async def _enter(self, sid: str, joined: lobby.Joined) -> bool:
        sv = self.services
        fresh = sv.live.get(joined.session_id) is None
        live = sv.live.open(joined.session_id, joined.case_code, joined.host_id)
        live.grace = sv.settings.reconnect_grace
        self.publisher.watch(live)
        if sv.cluster is not None:  # owned here now: maybe taken over from a lost node (its state is durable)
            await self._restored(live, fresh)
        p = live.connect(joined.presence)
        key = (live.session_id, p.pid)
        old = self.sids.get(key)
        self.sids[key] = sid
        self.conns[sid] = Conn(sid, live.session_id, p.pid, joined.actor,
                               tokens=float(sv.settings.event_burst))
        await self.enter_room(sid, session_room(live.session_id))
        await self.enter_room(sid, person_room(live.session_id, p.pid))
        if old is not None:  # the same person on a new connection (network change, reload): drop the old one
            self.conns.pop(old, None)
            await self.leave_room(old, person_room(live.session_id, p.pid))
            self._spawn(self._replace(old))
        return True

    async def _restored(self, live: Any, fresh: bool) -> None:
        task = self.restoring.get(live.session_id)
        if task is None or (fresh and task.done()):
            task = self.restoring[live.session_id] = asyncio.ensure_future(
                restore(self.services, self.publisher, live))
        try:
            await asyncio.shield(task)
        except Exception:  # the session goes on without what could not be restored; said in the log
            log.exception("session %s: taking over its state failed", live.session_id)

    async def _replace(self, old_sid: str) -> None:
        """The old connection goes; the participant's media stays until the new connection's `media:join`
        replaces its peer connection (removing it here could race with, and remove, the new one)."""
        await self.emit("session:replaced", {"message": "you joined from another connection"}, to=old_sid)
        await self.disconnect(old_sid)

    async def drop(self, session_id: int, pid: str) -> None:
        """Close a participant's connection (refused, link reissued, session ended)."""
        sid = self.sids.get((session_id, pid))
        if sid is not None:
            await self.disconnect(sid)

    # ---- disconnect -----------------------------------------------------------------------------------------
    async def on_disconnect(self, sid: str, reason: str | None = None) -> None:
        """A connection that dropped (ping timeout, transport closed or broken) keeps the person's place and media
        for the grace period (`Settings.reconnect_grace`); one the client or the server closed on purpose does not."""
        conn = self.conns.pop(sid, None)
        if conn is None:
            return
        key = (conn.session_id, conn.pid)
        if self.sids.get(key) == sid:
            del self.sids[key]
            live = self.services.live.get(conn.session_id)
            if live is not None:
                await live.leave(conn.pid, grace=reason in DROPPED)

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)


NAMESPACE = web.AppKey("namespace", SessionNamespace)


def connect_throttle(kind: type[LoginThrottle] = LoginThrottle, **kw: Any) -> LoginThrottle:
    """Failed connects: 20 per address and 5 per invite token free, then 1 s x 2^n up to 5 min; an hour quiet
    starts over."""
    return kind(free=5, free_per_address=20, cap=300.0, forget_after=3600.0, **kw)


def _throttle_keys(environ: dict[str, Any], auth: Any) -> tuple[str, ...]:
    """The connect throttle's keys: the client's address and, when one is given, the invite token (hashed)."""
    request = environ.get("aiohttp.request")
    address = (getattr(request, "remote", None) or "")[:64]
    token = auth.get("invite") if isinstance(auth, dict) else None
    if not isinstance(token, str):
        return (f"addr:{address}",)
    return f"addr:{address}", "invite:" + hashlib.sha256(token[:1000].encode()).hexdigest()[:32]


def _same_origin(environ: dict[str, Any]) -> None:
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:  # non-browser clients (bots, CLI) send none; browsers always do on websockets
        return
    host = environ.get("HTTP_HOST", "")
    if urlsplit(origin).netloc != host:
        raise Forbidden("cross-origin connection refused", code="bad_origin")
