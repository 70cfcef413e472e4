"""Benchmark server process: a bare Socket.IO `/session` namespace in front of media hubs (one per session).

    python bench/bench_hub_server.py --mode hub|relay [--cpu N]

Prints "PORT <n>" when listening. Clients connect with auth {"session": ..., "participant": ...}; every
`media:*` event goes to that session's hub (media.hub.Hub, or the MediaRelay baseline) and its return is the ack.
This is benchmark glue only, not the product's signaling server (that lives in signaling/).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

import socketio
from aiohttp import web

from media.config import MediaConfig
from media.hub import Hub
from mediation.errors import OneDoorError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_hub_relay import RelayHub

EVENTS = (
    "media:join",
    "media:answer",
    "media:renegotiate",
    "media:audio-only",
    "media:keyframe",
    "media:leave",
)
NS = "/session"


async def serve(mode: str) -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp", max_http_buffer_size=256_000)
    app = web.Application()
    sio.attach(app)
    config = MediaConfig()
    hubs: dict[str, Any] = {}
    who: dict[str, tuple[str, str]] = {}
    sids: dict[tuple[str, str], str] = {}

    def make_send(session: str) -> Any:
        async def send(pid: str, event: str, payload: dict[str, Any]) -> None:
            sid = sids.get((session, pid))
            if sid is not None:
                await sio.emit(event, payload, to=sid, namespace=NS)

        return send

    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, str]) -> None:
        session, pid = auth["session"], auth["participant"]
        hub = hubs.get(session)
        if hub is None:
            cls = Hub if mode == "hub" else RelayHub
            hub = hubs[session] = cls(session, config, make_send(session))
        await hub.add(pid, {"name": pid})
        who[sid], sids[(session, pid)] = (session, pid), sid

    async def disconnect(sid: str, reason: Any = None) -> None:
        session, pid = who.pop(sid, ("", ""))
        sids.pop((session, pid), None)
        if session in hubs:
            await hubs[session].remove(pid)

    def handler(event: str) -> Any:
        async def handle(sid: str, data: Any) -> dict[str, Any]:
            session, pid = who[sid]
            try:
                result: dict[str, Any] = await hubs[session].handle(pid, event, data)
                return result
            except OneDoorError as exc:
                return {"ok": False, "error": exc.to_dict()}

        return handle

    sio.on("connect", connect, namespace=NS)
    sio.on("disconnect", disconnect, namespace=NS)
    for event in EVENTS:
        sio.on(event, handler(event), namespace=NS)

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["hub", "relay"], required=True)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.mode))


if __name__ == "__main__":
    main()
