"""A participant over the real protocol (HTTP + Socket.IO), for tests, bots and `onedoor simulate`.

Parties: POST /api/join with the invite token → challenge; sign it with the device key; connect to `/session`.
Staff: POST /api/auth/login → cookie; connect with {"session": id} and the cookie.
Several nodes: the join answer's `node` (or a connect refused with `wrong_node`) names the node that owns the
session; the Socket.IO connection goes there (`node_url`), HTTP calls keep using `base_url` (any node answers).
With `rejoin=True` a connection that drops (the node died, the network went) is made again on the client's own:
a new join (parties: a new challenge) through `base_url`, which names the session's owner now, retried with
backoff for `rejoin_limit` seconds; then the `on_rejoined` callbacks run (a bot makes a new peer connection).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from media.bots import Bot
from media.channels import SocketIOChannel
from mediation.devicekeys import DeviceKey, join_message
from signaling.config import DEMO_PASSWORD

NS = "/session"
log = logging.getLogger(__name__)


class ProtocolError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.error = error


class SessionClient:
    def __init__(self, base_url: str, *, device_key: DeviceKey | None = None, rejoin: bool = False,
                 rejoin_limit: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_key = device_key or DeviceKey()
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.state: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.csrf = ""
        self.node_url: str | None = None  # the owning node's own address, once a node named it
        self.node_id: str | None = None
        self._changed = asyncio.Event()
        self.sio.on("*", self._on_any, namespace=NS)
        self.sio.on("connect_error", self._on_connect_error, namespace=NS)
        self.sio.on("disconnect", self._on_disconnect, namespace=NS)
        self._refusal: dict[str, Any] | None = None
        self.rejoin, self.rejoin_limit = rejoin, rejoin_limit
        self.connect_wait = 10.0  # seconds the server has to accept or refuse a connect
        self.on_rejoined: list[Callable[[], Any]] = []
        self.rejoins: list[float] = []  # seconds each rejoin took, from the drop to connected again
        self._auth: dict[str, Any] | None = None  # how this client joined: {"invite": token} or {"session": id}
        self._closing = False
        self._rejoining: asyncio.Task[None] | None = None

    async def _on_disconnect(self, *_: Any) -> None:
        self.events["disconnect"].append(None)
        self._changed.set()
        if self.rejoin and not self._closing and self._auth is not None and self._rejoining is None:
            self._rejoining = asyncio.get_running_loop().create_task(self._rejoin(), name="client-rejoin")

    async def _rejoin(self) -> None:
        """Join again through `base_url` until connected (or `rejoin_limit`): the owner may be dead for a few
        seconds (its lease and heartbeat expire first), so refusals and unreachable nodes are retried."""
        started, delay = time.monotonic(), 0.2
        try:
            while not self._closing and time.monotonic() - started < self.rejoin_limit:
                await asyncio.sleep(delay)
                self.node_url = None  # ask again who owns the session
                try:
                    if self.sio.connected:
                        await self.sio.disconnect()
                    assert self._auth is not None
                    if "invite" in self._auth:
                        await self.join_invite(self._auth["invite"])
                    else:
                        await self._connect(self._auth)
                except (ProtocolError, aiohttp.ClientError, OSError, socketio.exceptions.SocketIOError) as e:
                    log.info("rejoin: %s; retrying", e)
                    delay = min(delay * 1.5, 1.0)
                    continue
                self.rejoins.append(time.monotonic() - started)
                self.events["rejoined"].append(self.node_id)
                self._changed.set()
                for fn in self.on_rejoined:
                    got = fn()
                    if asyncio.iscoroutine(got):
                        await got
                return
            log.warning("rejoin gave up after %.0f s", self.rejoin_limit)
        finally:
            self._rejoining = None

    async def _on_connect_error(self, data: Any = None) -> None:
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]  # python-socketio wraps a refusal: {"message": ..., "data": {code, message}}
        self._refusal = data if isinstance(data, dict) else {"code": "connect_failed", "message": str(data)}

    async def _on_any(self, event: str, data: Any = None) -> None:
        self.events[event].append(data)
        if event == "session:state":
            self.state = data
        self._changed.set()

    # ---- joining ----

    async def join_invite(self, token: str, *, send_key: bool | None = None) -> dict[str, Any]:
        """POST /api/join (any node) → a challenge and the session's node → connect there. A challenge is spent
        by the connect that used it, so a `wrong_node` refusal (the session moved meanwhile) means a new join."""
        for _ in range(4):
            async with self.http.post(f"{self.base_url}/api/join", json={"token": token}) as r:
                body = await r.json()
                if r.status != 200:
                    raise ProtocolError(body["error"])
            self.info = body
            self._auth = {"invite": token}
            if isinstance(body.get("node"), dict):
                self._follow(body["node"])
            ch = body["challenge"]
            auth = {"invite": token, "challenge": ch, "signature": self.device_key.sign(join_message(ch))}
            if send_key if send_key is not None else True:
                auth["public_key"] = self.device_key.spki_b64
            refusal = await self._connect_once(auth)
            if refusal is None:
                return dict(body)
            if refusal.get("code") != "wrong_node" or not isinstance(refusal.get("detail"), dict):
                raise ProtocolError(refusal)
            self._follow(refusal["detail"])
        raise ProtocolError({"code": "wrong_node", "message": "the session's node kept changing"})

    async def login(self, username: str, password: str) -> dict[str, Any]:
        async with self.http.post(f"{self.base_url}/api/auth/login",
                                  json={"username": username, "password": password}) as r:
            body = await r.json()
            if r.status != 200:
                raise ProtocolError(body["error"])
        self.csrf = body["csrf"]
        return body

    async def api(self, method: str, path: str, json: Any = None) -> Any:
        async with self.http.request(method, f"{self.base_url}{path}", json=json,
                                     headers={"X-CSRF-Token": self.csrf}) as r:
            body = await r.json()
            if r.status != 200:
                raise ProtocolError(body["error"])
            return body

    async def join_staff(self, session_id: int) -> None:
        self._auth = {"session": session_id}
        await self._connect(self._auth)

    def _follow(self, node: dict[str, Any]) -> None:
        self.node_id = str(node.get("id") or "") or None
        url = str(node.get("url") or "").rstrip("/")
        self.node_url = url if url and url != self.base_url else None

    async def _connect(self, auth: dict[str, Any]) -> None:
        """Connect to the session's node; a node that does not own the session refuses with `wrong_node` and
        names the owner: follow it (a session being placed again after a node's loss may take one more step)."""
        for _ in range(4):
            refusal = await self._connect_once(auth)
            if refusal is None:
                return
            if refusal.get("code") != "wrong_node" or not isinstance(refusal.get("detail"), dict):
                raise ProtocolError(refusal)
            self._follow(refusal["detail"])
        raise ProtocolError({"code": "wrong_node", "message": "the session's node kept changing"})

    async def _connect_once(self, auth: dict[str, Any]) -> dict[str, Any] | None:
        """One connection attempt: None when connected, else the server's refusal."""
        cookies = "; ".join(f"{c.key}={c.value}" for c in self.http.cookie_jar)
        self._refusal = None
        try:
            await self.sio.connect(self.node_url or self.base_url, namespaces=[NS], auth=auth,
                                   transports=["websocket"], headers={"Cookie": cookies} if cookies else {},
                                   wait_timeout=self.connect_wait)
            return None
        except socketio.exceptions.ConnectionError as e:
            # no answer from the server within connect_wait (or the connection broke): not a refusal
            return self._refusal or {"code": "connect_failed", "message": str(e)}

    # ---- talking ----

    async def call(self, event: str, payload: Any = None, *, limit: float = 10) -> dict[str, Any]:
        ack = await self.sio.call(event, payload if payload is not None else {}, namespace=NS, timeout=limit)
        if not ack.get("ok"):
            raise ProtocolError(ack["error"])
        return ack

    async def wait(self, pred: Callable[[SessionClient], bool], limit: float = 10) -> None:
        async with asyncio.timeout(limit):
            while not pred(self):
                self._changed.clear()
                await self._changed.wait()

    async def wait_event(self, event: str, limit: float = 10) -> Any:
        await self.wait(lambda c: bool(c.events[event]), limit)
        return self.events[event][-1]

    @property
    def pid(self) -> str:
        return str(self.state.get("you", {}).get("id") or self.info.get("participant", ""))

    async def close(self) -> None:
        self._closing = True
        if self._rejoining is not None:
            self._rejoining.cancel()
            await asyncio.gather(self._rejoining, return_exceptions=True)
        if self.sio.connected:
            await self.sio.disconnect()
        await self.http.close()


async def join_and_attest(base_url: str, mediator: SessionClient, tokens: list[str]) -> list[SessionClient]:
    """Each invitee joins, acknowledges the notices and consents; the mediator attests their ID and admits all.

    What a mediator and parties do in the lobby, for tests, benchmarks and crash drills against a server process.
    """
    parties = []
    for token in tokens:
        c = SessionClient(base_url)
        parties.append(c)
        await c.join_invite(token)
        for kind in ("notices", "online", "recording"):
            await c.call("lobby:consent", {"kind": kind, "granted": True})
        await mediator.call("identity:attest", {"participant": c.pid, "document": "居民身份证", "matched": True})
    await mediator.call("lobby:admit-all")
    return parties


async def wait_healthy(base_url: str, limit: float = 30.0) -> None:
    """Wait until a server process answers /healthz."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(limit):
        while True:
            try:
                async with http.get(f"{base_url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


@dataclass
class DemoServer:
    """`onedoor demo` then `onedoor serve` as separate processes on one data directory (crash drills, benches)."""

    process: asyncio.subprocess.Process
    base_url: str
    tokens: list[str]
    session_id: int
    log: Path  # the serve process's stderr (its log)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def start_demo_server(data_dir: Path, port: int, *serve_args: str) -> DemoServer:
    base = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "signaling.cli"]
    demo = await asyncio.create_subprocess_exec(*cli, "demo", "--data-dir", str(data_dir), "--base-url", base,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(120):
            out, err = await demo.communicate()
    except TimeoutError:
        demo.kill()
        await demo.wait()
        raise RuntimeError("onedoor demo did not finish within 120 s") from None
    if demo.returncode != 0:
        raise RuntimeError(f"onedoor demo failed: {err.decode()[-2000:]}")
    text = out.decode()
    found = re.search(r"session (\d+)", text)
    assert found is not None, text
    log = data_dir.parent / f"serve-{port}.log"
    with log.open("ab") as sink:
        serve = await asyncio.create_subprocess_exec(*cli, "serve", "--data-dir", str(data_dir), "--port", str(port),
                                                     *serve_args, stdout=asyncio.subprocess.DEVNULL, stderr=sink)
    await wait_healthy(base)
    return DemoServer(serve, base, re.findall(r"/join#(\S+)", text), int(found.group(1)), log)


async def join_everyone(srv: DemoServer, clients: list[SessionClient], bots: list[Any]) -> SessionClient:
    """The demo's mediator and every party join and are admitted; each publishes as a bot. Returns the mediator;
    every client and bot made is appended to the caller's lists, so the caller's `finally` closes them."""
    m = SessionClient(srv.base_url)
    clients.append(m)
    await m.login("mediator", DEMO_PASSWORD)
    await m.join_staff(srv.session_id)
    clients += await join_and_attest(srv.base_url, m, srv.tokens)
    for c in clients:
        bots.append(Bot(c.pid, SocketIOChannel(c.sio)))
        await bots[-1].join()
    return m
