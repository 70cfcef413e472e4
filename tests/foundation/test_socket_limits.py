"""Transport-level bounds against a real server over the network (issue 10 item 6, follow-ups):

- long-polling is refused (its POST bodies would bypass the websocket frame screening);
- a client that stops reading is dropped (`slow client`) once what waits to be sent to it passes the bound, and the
  others go on;
- failed `/session` connects are throttled per address and per invite token (`rate_limited` with a retry time).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from signaling.app import create_app
from signaling.config import Settings
from signaling.limits import GuardedEngine
from signaling.services import SERVICES
from signaling.session_ns import NAMESPACE
from signaling.sockets import SIO
from tests.conftest import PASSWORD, World, seed

NS = "/session"
LIMIT = 256 * 1024


@dataclass
class Served:
    world: World
    app: web.Application

    @property
    def engine(self) -> GuardedEngine:
        eio = self.app[SIO].eio
        assert isinstance(eio, GuardedEngine)
        return eio


@pytest.fixture
async def served(aiohttp_server: Any, settings: Settings) -> AsyncIterator[Served]:
    settings.max_outgoing_bytes = LIMIT
    settings.event_burst, settings.events_per_second = 100_000, 100_000.0
    app = create_app(settings)
    # the slow client answers no ping: a long ping timeout, so that only the queue's bound can drop it however
    # long the flood takes on a busy machine
    app[SIO].eio.ping_interval = app[SIO].eio.ping_timeout = 600
    server = await aiohttp_server(app)
    w = World(str(server.make_url("")).rstrip("/"), app[SERVICES])
    seeded = await seed(w.services)
    w.case_code, w.session_id, w.tokens, w.invite_ids = (seeded["case"], seeded["session"], seeded["tokens"],
                                                         seeded["ids"])
    yield Served(w, app)
    for c in w.clients:
        await c.close()


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---- 1. long-polling refused ---------------------------------------------------------------------------------

async def test_polling_refused(served: Served) -> None:
    base = served.world.base_url + "/socket.io/"
    batched = '40/session,{"session":1}\x1e42/session,["disconnect"]\x1e' + "4" + "[" * 5000  # three packets
    async with aiohttp.ClientSession() as http:
        for method, query, body in [("GET", "?EIO=4&transport=polling", None), ("GET", "?EIO=4", None),
                                    ("POST", "?EIO=4&transport=polling", batched)]:
            async with http.request(method, base + query, data=body) as r:
                assert r.status == 400, (method, query, r.status)
        # a session opened on the websocket cannot be fed through polling either
        async with http.ws_connect(base.replace("http", "ws", 1) + "?EIO=4&transport=websocket") as ws:
            opened = await ws.receive(timeout=30)
            eio_sid = json.loads(opened.data[1:])["sid"]
            for method in ("GET", "POST"):
                async with http.request(method, base + f"?EIO=4&transport=polling&sid={eio_sid}",
                                        data=batched if method == "POST" else None) as r:
                    assert r.status == 400, (method, r.status)
    assert served.app[SIO].refused_total == 0  # nothing reached the packet handling
    m = await served.world.staff("mediator")  # the websocket transport works
    assert (await m.call("chat:send", {"text": "over the websocket"}))["ok"]


# ---- 2. a client that does not read --------------------------------------------------------------------------

class RawWebSocket:
    """A websocket client on a plain TCP socket with a small receive buffer, so that it can stop reading."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base_url: str, cookie: str) -> RawWebSocket:
        host, port = base_url.split("://", 1)[1].split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 101"), head[:100]
        return cls(reader, writer)

    def send(self, text: str) -> None:
        data, mask = text.encode(), secrets.token_bytes(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def receive(self) -> str | None:
        """The next text frame (server frames are not masked); None when the server closed the connection."""
        try:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            data = await self.reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return data.decode() if b0 & 0x0F == 1 else ""

    async def drain_to_close(self) -> int:
        """Read everything left until the server's close; the bytes read."""
        total = 0
        while True:
            try:
                chunk = await self.reader.read(2**16)
            except ConnectionError:
                return total
            if not chunk:
                return total
            total += len(chunk)


@pytest.mark.timeout(300)
async def test_slow_client_dropped(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    w, ns = served.world, served.app[NAMESPACE]
    m = await w.staff("mediator")
    a = await w.party("A")
    await w.ready(a, "A")
    await m.call("lobby:admit", {"participant": a.pid})
    await a.wait(lambda c: c.state.get("you", {}).get("admitted") is True)
    # the slow client: a co-mediator on a raw websocket that stops reading once it is in
    login = w.client()
    await login.login("mediator2", PASSWORD)
    cookie = "; ".join(f"{c.key}={c.value}" for c in login.http.cookie_jar)
    slow = await RawWebSocket.open(w.base_url, cookie)
    assert (await slow.receive() or "").startswith("0{")
    slow.send(f'40{NS},{json.dumps({"session": w.session_id})}')
    while not (frame := await asyncio.wait_for(slow.receive(), 30) or "").startswith(f"40{NS},"):
        assert frame is not None
    assert len(ns.conns) == 3
    await asyncio.to_thread(gc.collect)
    rss0 = rss_mib()
    text = "漏" * 2000  # a full chat message: ~6 KB on the wire, pushed to all three
    sent, peak = 0, 0
    while served.engine.slow_dropped == 0:
        await a.call("chat:send", {"text": text}, limit=60)
        sent += 1
        peak = max(peak, *(getattr(s.queue, "size", 0) for s in served.engine.sockets.values()))
        if sent % 100 == 0:
            for c in (m, a):
                c.events.clear()
        assert sent < 5000, "the slow client was never dropped"
    await asyncio.to_thread(gc.collect)
    grown = rss_mib() - rss0
    left = await asyncio.wait_for(slow.drain_to_close(), 120)  # the server closed its side: reading ends
    slow.writer.close()
    print(f"\nslow client dropped after {sent} chat messages (~{sent * 6} KB pushed to it); peak queue "
          f"{peak / 1024:.0f} KiB (bound {LIMIT // 1024} KiB); {left / 1024:.0f} KiB were still in transit; "
          f"RSS {grown:+.1f} MiB")
    assert peak <= LIMIT
    assert len(ns.conns) == 2 and served.engine.slow_dropped == 1
    assert grown < 64
    assert [r for r in caplog.records if "slow client" in r.getMessage()]
    # the others go on
    await a.call("chat:send", {"text": "still here"})
    assert (await m.wait_event("chat:message", limit=30))["text"] == "still here"
    await a.call("hand:raise", {"up": True})
    await m.wait(lambda c: any(p.get("hand") for p in c.state.get("participants", []) if p["id"] == a.pid), 30)


# ---- 3. failed connects throttled ----------------------------------------------------------------------------

async def connect_burst(base_url: str, auths: list[dict[str, Any]], local: str = "127.0.0.1"
                        ) -> list[dict[str, Any]]:
    """Namespace connects, one after the other over one raw websocket: each answer (CONNECT_ERROR data)."""
    url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    out: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(local, 0))) as http, \
            http.ws_connect(url) as ws:
        assert (await ws.receive(timeout=30)).data.startswith("0{")
        for auth in auths:
            await ws.send_str(f"40{NS},{json.dumps(auth)}")
            while True:
                msg = await ws.receive(timeout=30)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                if msg.data == "2":
                    await ws.send_str("3")
                    continue
                assert msg.data.startswith(f"44{NS},"), msg.data
                out.append(json.loads(msg.data[len(f"44{NS},"):]))
                break
    return out


@pytest.mark.timeout(120)
async def test_failed_connects_throttled(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    w = served.world
    throttle = served.app[NAMESPACE].throttle
    now = [1000.0]
    throttle.clock = lambda: now[0]  # the throttle's time stands still during the bursts (a busy machine is slow)
    # a burst of bad invites from one address: refused as such up to the address's allowance, then rate_limited
    bad = [{"invite": secrets.token_urlsafe(24), "challenge": "x", "signature": "AA==", "public_key": "AA=="}
           for _ in range(100)]
    answers = await connect_burst(w.base_url, bad)
    codes = [x.get("data", x).get("code") for x in answers]
    refused = codes.index("rate_limited")
    print(f"\n{len(bad)} bad connects: {refused} checked ({set(codes[:refused])}), "
          f"{codes.count('rate_limited')} refused rate_limited")
    assert refused == throttle.free_per_address + 1 and set(codes[refused:]) == {"rate_limited"}
    retry = answers[refused].get("data", answers[refused])["detail"]["retry_after"]
    assert isinstance(retry, int) and retry >= 1
    # another address is not affected; one invite's bad attempts lock that invite (from any address)
    token = w.tokens["A"]
    wrong = {"invite": token, "challenge": "x", "signature": "AA==", "public_key": "AA=="}
    codes2 = [x.get("data", x).get("code")
              for x in await connect_burst(w.base_url, [wrong] * (throttle.free + 3), local="127.0.0.2")]
    assert "rate_limited" not in codes2[:throttle.free + 1] and codes2[throttle.free + 1:] == ["rate_limited"] * 2, \
        codes2
    # the log: a line when a lock starts, not one per attempt
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) <= 4, [r.getMessage() for r in lines]
    # after the wait, the right client gets in (from the throttled address, with the throttled invite)
    assert served.app[NAMESPACE].throttle.retry_after(*throttle.keys) <= retry
    now[0] += retry
    a = await w.party("A")
    assert a.sio.connected and a.pid
