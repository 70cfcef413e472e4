"""Bounds on what a client can make the server parse, hold or log (issue 10 item 6; docs/security.md "Hostile input").

- `loads`: JSON with a nesting limit (`MAX_DEPTH`), for HTTP bodies and Socket.IO/Engine.IO payloads. Deeper input
  raises `TooDeep` (a ValueError, so Engine.IO's own parse treats it as "not JSON"), never RecursionError.
- `GuardedServer`: a python-socketio AsyncServer that screens every Socket.IO packet before the library routes it.
  Binary packets and attachments are refused (`binary_not_allowed`) and never buffered; an EVENT whose name is not
  a string, or is a reserved name (`connect`, `disconnect`, ...), is refused (`unknown_event`) so a client can never
  run the server's connect or disconnect logic; packets that do not parse are refused (`bad_packet`, `too_deep`).
  A refused packet is answered with an ack (when the client asked for one) and an `error` event, and logged as one
  line for the first one of a connection only.
- Transports: Engine.IO's long-polling transport is refused (the pages and clients use websockets only), so every
  frame a client sends goes through `ScreenedWebSocket`.
- `BoundedQueue`: each Engine.IO socket's outgoing queue is bounded in bytes (`max_queue_bytes`); a client that
  does not read (its websocket's write buffer full, the queue growing) is dropped with the reason `slow client`
  rather than buffered for without bound.
- `OncePerConnection`: a logging filter for the `socketio`/`engineio` loggers: a library traceback becomes one line,
  at most one per connection (the rest are counted, not written).

The library methods overridden here (`_handle_eio_message`, `_handle_eio_disconnect`) and the ones they call are
checked by `check_internals()` when the server is built, so an upgrade that renames them fails loudly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import engineio
import socketio
from engineio import async_socket as eio_socket
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

from mediation.errors import InvalidInput, OneDoorError, RateLimited

log = logging.getLogger(__name__)

MAX_DEPTH = 32
SLOW_CLIENT = "slow client"  # the disconnect reason of a client dropped for not reading what it is sent
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "message", "*"})
LIBRARY_LOGGERS = ("socketio.server", "engineio.server", "socketio", "engineio")
_INTERNALS = ("_handle_eio_message", "_handle_eio_disconnect", "_handle_connect", "_handle_disconnect",
              "_handle_event_internal", "_handle_ack", "_send_packet")


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH."""


def too_deep_error() -> InvalidInput:
    return InvalidInput(f"JSON nested deeper than {MAX_DEPTH} levels", code="too_deep")


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that refuses nesting deeper than `max_depth` (TooDeep) and never raises RecursionError."""
    try:
        obj = json.loads(text)
    except RecursionError:
        raise TooDeep("nested too deep") from None
    opens = text.count("[") + text.count("{") if isinstance(text, str) else text.count(b"[") + text.count(b"{")
    if opens > max_depth and depth_exceeds(obj, max_depth):  # fewer brackets than the limit: cannot be too deep
        raise TooDeep("nested too deep")
    return obj


def depth_exceeds(obj: Any, max_depth: int) -> bool:
    """Whether containers nest deeper than `max_depth` (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


class Json:
    """The `json` module python-socketio and python-engineio parse and write packets with."""

    @staticmethod
    def dumps(obj: object, **kw: object) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def loads(s: str | bytes, **kw: object) -> object:
        return loads(s)


class GuardedPacket(sio_packet.Packet):
    """A Socket.IO packet whose decoding never raises: a packet that does not parse keeps its namespace and id (when
    they were read) and carries `error`."""

    json = Json
    error: OneDoorError | None = None

    def decode(self, encoded_packet: Any) -> int:
        self.error = None
        if not _ascii_header(encoded_packet):  # int() reads "١" as 1: a Unicode digit was a DISCONNECT packet
            self.packet_type, self.data = None, None
            self.error = InvalidInput("malformed Socket.IO packet", code="bad_packet")
            return 0
        try:
            return int(super().decode(encoded_packet) or 0)
        except TooDeep:
            self.error = too_deep_error()
        except (ValueError, TypeError, IndexError, AttributeError, RecursionError):
            self.error = InvalidInput("malformed Socket.IO packet", code="bad_packet")
        self.data = None
        return 0


def _ascii_header(text: Any) -> bool:
    """Packet type, attachment count, namespace and id (everything before the JSON data) are ASCII."""
    if not isinstance(text, str) or text[:1] not in ("0", "1", "2", "3", "4", "5", "6"):
        return False
    ends = [i for i in (text.find("["), text.find("{"), text.find('"')) if i >= 0]
    return text[:min([*ends, len(text), 300])].isascii()


def _binary() -> InvalidInput:
    return InvalidInput("binary attachments are not accepted", code="binary_not_allowed")


def _unknown(name: Any) -> InvalidInput:
    shown = name[:50] if isinstance(name, str) else type(name).__name__
    return InvalidInput(f"unknown event {shown!r}", code="unknown_event")


class GuardedServer(socketio.AsyncServer):
    """AsyncServer that screens packets (see the module docstring). `default_namespace` is where refusals of
    packets that name no namespace (raw binary frames) are reported."""

    def __init__(self, *args: Any, default_namespace: str = "/", max_inflight: int = 32,
                 max_queue_bytes: int = 1024 * 1024, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", GuardedPacket)
        kwargs.setdefault("json", Json)
        kwargs.setdefault("transports", ["websocket"])  # long-polling bodies would bypass ScreenedWebSocket
        super().__init__(*args, **kwargs)
        assert isinstance(self.eio, GuardedEngine)
        self.eio.max_queue_bytes = max_queue_bytes
        check_internals(self)
        if self.async_mode == "aiohttp":  # Engine.IO frames are screened as they are read (ScreenedWebSocket)
            self.eio._async = {**self.eio._async, "websocket": ScreenedWebSocket}
        self.default_namespace = default_namespace
        self.refused: dict[str, int] = {}  # eio sid -> packets refused on that connection (while it is open)
        self.refused_total = 0
        self.max_inflight = max_inflight
        self.inflight: dict[str, int] = {}  # eio sid -> events being handled now

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return GuardedEngine

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if isinstance(data, bytes | bytearray):  # a binary frame: an attachment or raw bytes; never buffered
            await self._refuse(eio_sid, self.default_namespace, None, _binary())
            return
        if not isinstance(data, str):  # Engine.IO parsed the frame as JSON: not a Socket.IO packet
            await self._refuse(eio_sid, self.default_namespace, None,
                               InvalidInput("malformed Socket.IO packet", code="bad_packet"))
            return
        pkt = self.packet_class(encoded_packet=data)
        ptype, ns, err = pkt.packet_type, pkt.namespace or "/", pkt.error
        ack_id = pkt.id if ptype in (sio_packet.EVENT, sio_packet.BINARY_EVENT) else None
        if err is None:
            if ptype in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
                err = _binary()
            elif ptype == sio_packet.EVENT:
                d = pkt.data
                if not isinstance(d, list) or not d:
                    err = InvalidInput("an event is a non-empty list", code="bad_packet")
                elif not isinstance(d[0], str) or d[0] in RESERVED_EVENTS:
                    err = _unknown(d[0])
            elif ptype == sio_packet.ACK:
                if not isinstance(pkt.data, list):
                    err = InvalidInput("an ack is a list", code="bad_packet")
            elif ptype not in (sio_packet.CONNECT, sio_packet.DISCONNECT):
                err = InvalidInput("unexpected Socket.IO packet type", code="bad_packet")
        if err is not None:  # a packet that names no namespace is answered on the default one
            await self._refuse(eio_sid, pkt.namespace or self.default_namespace, ack_id, err)
        elif ptype == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif ptype == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif ptype == sio_packet.EVENT:
            await self._event(eio_sid, ns, pkt.id, pkt.data)
        else:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)

    async def _event(self, eio_sid: str, ns: str, ack_id: int | None, data: list[Any]) -> None:
        """The library's `_handle_event` without its extra task per event: Engine.IO already runs each message in a
        task, and this one counts them, so one connection has at most `max_inflight` events being handled."""
        sid = self.manager.sid_from_eio_sid(eio_sid, ns)
        if sid is None or not self.manager.is_connected(sid, ns):
            return
        n = self.inflight.get(eio_sid, 0)
        if n >= self.max_inflight:
            await self._refuse(eio_sid, ns, ack_id, RateLimited("too many messages in flight; slow down",
                                                               code="rate_limited"), log_it=False)
            return
        self.inflight[eio_sid] = n + 1
        try:
            await self._handle_event_internal(self, sid, eio_sid, data, ns, ack_id)
        finally:
            left = self.inflight.get(eio_sid, 1) - 1
            if left > 0:
                self.inflight[eio_sid] = left
            else:
                self.inflight.pop(eio_sid, None)

    async def _refuse(self, eio_sid: str, namespace: str, ack_id: int | None, err: OneDoorError,
                      log_it: bool = True) -> None:
        n = self.refused.get(eio_sid, 0) + 1
        self.refused[eio_sid] = n
        self.refused_total += 1
        if n == 1 and log_it:
            log.warning("refused malformed Socket.IO input on connection %s: %s (further refusals on this "
                        "connection are not logged)", eio_sid, err.code)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return  # not in that namespace: nobody to tell, nothing kept
        body = err.to_dict()
        if ack_id is not None:
            await self._send_packet(eio_sid, self.packet_class(
                sio_packet.ACK, namespace=namespace, id=ack_id, data=[{"ok": False, "error": body}]))
        await self.emit("error", {**body, "event": None}, to=sid, namespace=namespace)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self.refused.pop(eio_sid, None)
        self.inflight.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)


def _queued_size(item: Any) -> int:
    """What an Engine.IO packet waiting in a socket's queue holds (characters or bytes, plus a little)."""
    data = getattr(item, "data", None)
    return 64 + (len(data) if isinstance(data, str | bytes | bytearray) else 0)


class BoundedQueue(asyncio.Queue[Any]):
    """An Engine.IO socket's outgoing queue, bounded in bytes. The packet that would pass `limit` is not queued:
    the queue empties, refuses everything after it but the writer's stop sentinel (None), and `on_overflow` is
    called once (ScreenedWebSocket drops the client)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.size = 0
        self.overflowed = False
        self.on_overflow: Callable[[], None] | None = None

    def put_nowait(self, item: Any) -> None:
        if item is not None:
            if self.overflowed:
                return
            if self.size + _queued_size(item) > self.limit:
                self.overflowed = True
                self._discard()
                if self.on_overflow is not None:
                    self.on_overflow()
                return
            self.size += _queued_size(item)
        super().put_nowait(item)

    def get_nowait(self) -> Any:
        item = super().get_nowait()
        if item is not None:
            self.size -= _queued_size(item)
        return item

    def _discard(self) -> None:
        stop = False
        while not self.empty():
            stop = stop or self.get_nowait() is None
            self.task_done()
        if stop:
            super().put_nowait(None)


class GuardedEngine(engineio.AsyncServer):
    """python-engineio's server whose sockets' outgoing queues are `BoundedQueue`s."""

    max_queue_bytes = 1024 * 1024
    slow_dropped = 0  # clients dropped for not reading (this server)

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[Any]:
        if args or kwargs:
            return asyncio.Queue(*args, **kwargs)
        return BoundedQueue(self.max_queue_bytes)


class ScreenedWebSocket(eio_aiohttp.WebSocket):
    """python-engineio's aiohttp websocket, reading past text frames that are not Engine.IO packets.

    Engine.IO decodes each frame outside any error handling: an empty frame or one whose first character is not a
    packet type ended the connection with a traceback. Here such frames are dropped (the first one of a connection
    logged as one line); a connection that sends `MAX_BAD_FRAMES` of them is closed.
    """

    MAX_BAD_FRAMES = 100
    dropping: ClassVar[set[asyncio.Task[None]]] = set()  # drops under way (a reference keeps them alive)

    async def __call__(self, environ: dict[str, Any]) -> Any:
        sock = getattr(self.handler, "__self__", None)  # the engineio AsyncSocket this websocket carries
        queue = getattr(sock, "queue", None)
        if isinstance(queue, BoundedQueue):
            request = environ["aiohttp.request"]
            queue.on_overflow = lambda: self._drop(sock, request, queue.limit)
        return await super().__call__(environ)

    def _drop(self, sock: Any, request: Any, limit: int) -> None:
        """A client that does not read what it is sent: the server's disconnect logic runs with the reason
        `slow client`, then its TCP connection is aborted (nothing more can be written to it anyway)."""
        server = getattr(sock, "server", None)
        if isinstance(server, GuardedEngine):
            server.slow_dropped += 1
        log.warning("dropped a slow client (connection %s): more than %d KiB waiting to be sent to it",
                    getattr(sock, "sid", "?"), limit // 1024)

        async def drop() -> None:
            try:
                await sock.close(wait=False, abort=True, reason=SLOW_CLIENT)
            finally:
                if request.transport is not None:
                    request.transport.abort()

        task = asyncio.ensure_future(drop())
        self.dropping.add(task)
        task.add_done_callback(self.dropping.discard)

    async def wait(self) -> Any:
        while True:
            data = await super().wait()
            if not isinstance(data, str) or (data and data[0] in "0123456"):
                return data
            self.bad_frames = getattr(self, "bad_frames", 0) + 1
            if self.bad_frames == 1:
                log.warning("dropped a malformed Engine.IO frame (%r...); further ones on this connection are "
                            "not logged", data[:20])
            if self.bad_frames >= self.MAX_BAD_FRAMES:
                return None  # closes the connection


def check_internals(server: socketio.AsyncServer) -> None:
    """The python-socketio methods GuardedServer overrides or calls must still exist (an upgrade renaming them
    would silently bypass the screening)."""
    missing = [name for name in _INTERNALS if not callable(getattr(socketio.AsyncServer, name, None))]
    missing += [f"engineio AsyncSocket.{name}" for name in ("_websocket_handler", "close", "poll")
                if not callable(getattr(eio_socket.AsyncSocket, name, None))]
    eio_async = getattr(server.eio, "_async", None)
    if server.async_mode == "aiohttp" and not (isinstance(eio_async, dict) and eio_async.get("websocket")
                                                   is eio_aiohttp.WebSocket):
        missing.append("engineio AsyncServer._async['websocket']")
    if missing or not hasattr(server, "reason") or not hasattr(sio_packet.Packet, "decode"):
        raise RuntimeError(f"python-socketio {socketio.__version__ if hasattr(socketio, '__version__') else '?'} "
                           f"no longer has {missing}: signaling/limits.py must be reviewed")


class OncePerConnection(logging.Filter):
    """For the python-socketio/engineio loggers: drop tracebacks (a record becomes one line) and let through at most
    one warning-or-worse record per connection id found in the message (or `per_key` records for records naming
    none, per message text). The rest are counted in `suppressed`."""

    def __init__(self, per_key: int = 1) -> None:
        super().__init__()
        self.per_key = per_key
        self.seen: dict[str, int] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a library's malformed format arguments
            text = str(record.msg)
        key = _connection_key(text) or text[:80]
        n = self.seen.get(key, 0) + 1
        if len(self.seen) > 10_000:  # bounded: forget the oldest keys
            self.seen.clear()
        self.seen[key] = n
        if n > self.per_key:
            self.suppressed += 1
            return False
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{text} ({type(exc).__name__}: {str(exc)[:200]}; traceback omitted)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _connection_key(text: str) -> str | None:
    for word in text.replace(":", " ").replace(",", " ").split():
        if len(word) == 20 and word.replace("-", "").replace("_", "").isalnum():  # engine.io / socket.io sids
            return word
    return None


def install_log_filter() -> OncePerConnection:
    """Attach one filter to the library loggers (idempotent)."""
    for name in LIBRARY_LOGGERS:
        lg = logging.getLogger(name)
        for f in lg.filters:
            if isinstance(f, OncePerConnection):
                return f
    f = OncePerConnection()
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(f)
    return f
