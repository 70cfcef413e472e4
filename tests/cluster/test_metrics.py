"""/metrics of one node (issue 14, item 7): Prometheus text on its own listener, never on the public port; the
figures move with a real mediation (bots publishing through the hub, a recording running)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from media.bots import Bot
from media.channels import SocketIOChannel
from signaling.app import create_app
from signaling.config import Settings
from signaling.services import SERVICES
from tests.conftest import World, seed
from tests.media.conftest import PC_SETUP_BLOCKS

pytestmark = PC_SETUP_BLOCKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scrape(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(s.labels.items()))
            out[key] = s.value
    return out


@pytest.mark.timeout(90)
async def test_metrics_on_a_private_port_follow_a_recorded_session(aiohttp_server: Any, settings: Settings) -> None:
    port = free_port()
    app = create_app(dataclasses.replace(settings, metrics_port=port))
    server = await aiohttp_server(app)
    sv = app[SERVICES]
    seeded = await seed(sv)
    w = World(str(server.make_url("")).rstrip("/"), sv, seeded["case"], seeded["session"], seeded["tokens"],
              seeded["ids"])
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    before = await scrape(metrics_url)
    assert before["onedoor_live_sessions"] == 0
    async with aiohttp.ClientSession() as http, http.get(f"{w.base_url}/metrics") as r:
        assert r.status == 404  # the public listener does not serve it
    bots: list[Bot] = []
    try:
        m, a, b = await w.trio()
        for c in (m, a, b):
            bots.append(Bot(c.pid, SocketIOChannel(c.sio)))
            await bots[-1].join()
        await m.call("recording:start", {})
        await asyncio.sleep(3.5)
        got = await scrape(metrics_url)
        assert got["onedoor_live_sessions"] == 1
        assert got["onedoor_live_participants{state=connected}"] == 3
        assert got["onedoor_live_participants{state=admitted}"] == 3
        assert got["onedoor_recordings_running"] == 1
        assert got["onedoor_media_packets_forwarded_total"] > 100
        assert got["onedoor_media_bytes_forwarded_total"] > got["onedoor_media_packets_forwarded_total"]
        assert got["onedoor_media_packets_received_total"] > 0
        assert got["onedoor_media_keyframe_requests_total"] >= 0
        assert "onedoor_media_weak_link_switches_total" in got
        assert "onedoor_media_packets_dropped_total" in got
        assert got["onedoor_recording_segments_written_total"] > 0
        assert got["onedoor_recording_fsync_seconds_count"] == got["onedoor_recording_segments_written_total"]
        assert 0 < got["onedoor_recording_lag_seconds"] < 10
        assert got["onedoor_event_loop_lag_seconds_count"] >= 2
        assert got["onedoor_process_cpu_cores"] >= 0
        await m.call("recording:stop", {"reason": "done"})
        for bot in bots:
            await bot.leave()
        await asyncio.sleep(1.5)  # one sampler round: the closed hubs' counters are retired, not lost
        after = await scrape(metrics_url)
        assert after["onedoor_media_packets_forwarded_total"] >= got["onedoor_media_packets_forwarded_total"]
        assert after["onedoor_recordings_running"] == 0
    finally:
        for bot in bots:
            await bot.close()
        for c in w.clients:
            await c.close()
