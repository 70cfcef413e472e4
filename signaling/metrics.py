"""What operators watch: Prometheus `/metrics` of one node, served on a separate listener (`--metrics-port`,
bound to `--metrics-host`, 127.0.0.1 by default), never on the public port (issue 14, item 7).

The figures come from three places:
- a sampler task (once a second): the event loop's lag (how late a 0.25 s sleep wakes), the process's CPU, and
  each live session's media hub (`Hub.stats()`, read only): packets/bytes forwarded and dropped, keyframe requests,
  weak-link switches (changes of a subscriber's link level, seen at the sampler's 1 s resolution). A hub's
  counters die with the hub, so the node's counters are "retired + live" and never go down;
- `TimedStorage`, a wrapper around the recording storage: segments written and how long each durable write (the
  file system's write + fsync, or the S3 PUT) took; the recording lag is the age of the newest durable segment of
  each running recording (segments hold at most 1 s, so a healthy recording stays near 1 s);
- the live sessions themselves at scrape time (sessions, participants, recordings running, recorder backlog) and
  the node's placement load (`NodeLoad`, the same figures the placement decision reads: signaling/cluster.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mediation.live import LiveSessions
from recordings.storage import RecordingStorage

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HUB_COUNTERS = ("packets_forwarded", "bytes_forwarded", "packets_dropped", "packets_received", "keyframe_requests",
                "packets_layer_dropped")


@dataclass
class HubTotals:
    """Cumulative media counters of the node: hubs that closed (retired) plus the hubs alive at the last sample."""

    retired: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HUB_COUNTERS, 0))
    live: dict[str, dict[str, int]] = field(default_factory=dict)  # session -> counters at the last sample
    levels: dict[tuple[str, str], Any] = field(default_factory=dict)  # (session, pid) -> link level last seen
    switches: int = 0
    audio_only: int = 0

    def total(self, name: str) -> int:
        return self.retired[name] + sum(c[name] for c in self.live.values())

    def sample(self, stats: dict[str, dict[str, Any]]) -> None:
        """`stats`: session id -> Hub.stats() of every hub alive now."""
        for sid in set(self.live) - set(stats):
            for k, v in self.live.pop(sid).items():
                self.retired[k] += v
        audio_only = 0
        seen: set[tuple[str, str]] = set()
        for sid, st in stats.items():
            c = dict.fromkeys(HUB_COUNTERS, 0)
            for pid, p in st.get("participants", {}).items():
                for pub in p.get("publications", {}).values():
                    c["packets_received"] += int(pub.get("packets_in", 0))
                    c["keyframe_requests"] += int(pub.get("keyframe_requests", 0))
                for slot in p.get("slots", []):
                    c["packets_forwarded"] += int(slot.get("packets_out", 0))
                    c["bytes_forwarded"] += int(slot.get("bytes_out", 0))
                    c["packets_dropped"] += int(slot.get("dropped", 0))
                    c["packets_layer_dropped"] += int(slot.get("layer_dropped", 0))
                audio_only += bool(p.get("audio_only"))
                key = (sid, pid)
                seen.add(key)
                level = p.get("link_level")
                if key in self.levels and self.levels[key] != level:
                    self.switches += 1
                self.levels[key] = level
            # a participant's peer connection replaced (reconnect) restarts its counters: never count down
            old = self.live.get(sid)
            if old is not None:
                for k in HUB_COUNTERS:
                    if c[k] < old[k]:
                        self.retired[k] += old[k] - c[k]
            self.live[sid] = c
        for key in set(self.levels) - seen:
            del self.levels[key]
        self.audio_only = audio_only


class TimedStorage:
    """A `RecordingStorage` that times each durable segment write and counts them (for /metrics)."""

    def __init__(self, inner: RecordingStorage, metrics: NodeMetrics) -> None:
        self.inner, self._m = inner, metrics

    async def create_stream(self, recording_id: str, stream_id: str, header: bytes) -> None:
        await self.inner.create_stream(recording_id, stream_id, header)

    async def append_segment(self, recording_id: str, stream_id: str, index: int, frame: bytes | bytearray
                             ) -> None:
        t0 = time.perf_counter()
        await self.inner.append_segment(recording_id, stream_id, index, frame)
        self._m.fsync_seconds.observe(time.perf_counter() - t0)
        self._m.segments_written.inc()
        self._m.last_segment[recording_id] = time.monotonic()

    def read_stream(self, recording_id: str, stream_id: str) -> AsyncIterator[bytes]:
        return self.inner.read_stream(recording_id, stream_id)

    async def list_recordings(self) -> list[str]:
        return await self.inner.list_recordings()

    async def list_streams(self, recording_id: str) -> list[str]:
        return await self.inner.list_streams(recording_id)

    async def put_object(self, recording_id: str, name: str, data: bytes) -> None:
        await self.inner.put_object(recording_id, name, data)

    async def get_object(self, recording_id: str, name: str) -> bytes | None:
        return await self.inner.get_object(recording_id, name)

    async def delete_recording(self, recording_id: str) -> None:
        await self.inner.delete_recording(recording_id)


def _recorders(live: Any) -> list[Any]:
    return [r for r in (live.recorder, live.caucus_recorder) if r is not None]


class NodeMetrics(Collector):
    """One node's registry (not the process-global one: tests run several nodes in one process)."""

    def __init__(self, live: LiveSessions, interval: float = 1.0) -> None:
        self.live_sessions = live
        self.interval = interval
        self.registry = CollectorRegistry(auto_describe=False)
        self.segments_written = Counter("onedoor_recording_segments_written", "Encrypted segments durably stored",
                                        registry=self.registry)
        self.fsync_seconds = Histogram(
            "onedoor_recording_fsync_seconds", "Time to store one segment durably (write + fsync, or S3 PUT)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=self.registry)
        self.loop_lag = Histogram("onedoor_event_loop_lag_seconds", "How late the event loop runs a timer",
                                  buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
                                  registry=self.registry)
        self.last_segment: dict[str, float] = {}  # recording id -> monotonic time of its newest durable segment
        self.hubs = HubTotals()
        self.loop_lag_last = 0.0
        self.cpu = 0.0  # this process's CPU use over the last sample, in cores
        self.load: Callable[[], dict[str, Any]] | None = None  # the node's placement figures (cluster.py)
        self._cpu_at = (time.monotonic(), time.process_time())
        self._task: asyncio.Task[None] | None = None
        self.registry.register(self)

    # ---- sampling ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sampler(), name="metrics-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sampler(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.interval / 4)
            lag = max(0.0, loop.time() - t0 - self.interval / 4)
            self.loop_lag.observe(lag)
            self.loop_lag_last = lag
            await asyncio.sleep(self.interval * 3 / 4)
            self.sample()

    def sample(self) -> None:
        wall, cpu = time.monotonic(), time.process_time()
        w0, c0 = self._cpu_at
        if wall - w0 > 0.05:
            self.cpu = max(0.0, (cpu - c0) / (wall - w0))
            self._cpu_at = (wall, cpu)
        stats: dict[str, dict[str, Any]] = {}
        for live in self.live_sessions.all():
            hub = live.media
            if hub is not None and hasattr(hub, "stats"):
                try:
                    stats[str(live.session_id)] = hub.stats()
                except Exception:  # a hub closing under us: count it at the next sample
                    log.debug("hub stats failed", exc_info=True)
        self.hubs.sample(stats)

    # ---- scrape ------------------------------------------------------------------------------------------
    def collect(self) -> Iterable[Any]:
        lives = self.live_sessions.all()
        yield GaugeMetricFamily("onedoor_live_sessions", "Live sessions owned by this node", value=len(lives))
        people = GaugeMetricFamily("onedoor_live_participants", "People of the live sessions", labels=["state"])
        connected = sum(len(x.connected()) for x in lives)
        people.add_metric(["connected"], connected)
        people.add_metric(["lobby"], sum(len(x.lobby()) for x in lives))
        people.add_metric(["admitted"], sum(len(x.admitted()) for x in lives))
        people.add_metric(["reconnecting"], sum(len(x.reconnecting()) for x in lives))
        yield people
        for name, help_ in (("packets_forwarded", "RTP packets the hubs forwarded"),
                            ("bytes_forwarded", "RTP bytes the hubs forwarded"),
                            ("packets_dropped", "RTP packets the hubs dropped (a subscriber could not take them)"),
                            ("packets_received", "RTP packets the hubs received from publishers"),
                            ("keyframe_requests", "Keyframe requests (PLI/FIR) from subscribers"),
                            ("packets_layer_dropped",
                             "RTP packets left out by temporal layer selection (a subscriber's layer cap)")):
            yield CounterMetricFamily(f"onedoor_media_{name}", help_, value=self.hubs.total(name))
        yield CounterMetricFamily("onedoor_media_weak_link_switches", "Subscriber link-level changes",
                                  value=self.hubs.switches)
        yield GaugeMetricFamily("onedoor_media_audio_only_subscribers", "Subscribers on audio only",
                                value=self.hubs.audio_only)
        recs = [(r.recorder.recording_id, r) for x in lives for r in _recorders(x)]
        yield GaugeMetricFamily("onedoor_recordings_running", "Recordings in progress", value=len(recs))
        now = time.monotonic()
        for rid in set(self.last_segment) - {rid for rid, _ in recs}:
            del self.last_segment[rid]
        lag = max((now - self.last_segment[rid] for rid, _ in recs if rid in self.last_segment), default=0.0)
        yield GaugeMetricFamily("onedoor_recording_lag_seconds",
                                "Age of the newest durable segment, worst running recording", value=lag)
        yield GaugeMetricFamily("onedoor_recording_backlog_frames", "Frames the recorders hold, not yet written",
                                value=sum(r.backlog for _, r in recs))
        yield GaugeMetricFamily("onedoor_event_loop_lag_last_seconds", "Event-loop lag at the last sample",
                                value=self.loop_lag_last)
        yield GaugeMetricFamily("onedoor_process_cpu_cores", "CPU this process used (cores, last second)",
                                value=self.cpu)
        if self.load is not None:
            figures = self.load()
            info = GaugeMetricFamily("onedoor_node_info", "This node", labels=["node", "url"])
            info.add_metric([str(figures.get("node", "")), str(figures.get("url", ""))], 1)
            yield info
            yield GaugeMetricFamily("onedoor_node_load_score", "The placement score (lower takes sessions first)",
                                    value=float(figures.get("score", 0.0)))
            yield GaugeMetricFamily("onedoor_node_draining", "1 while the node takes no new sessions",
                                    value=1.0 if figures.get("draining") else 0.0)
            yield GaugeMetricFamily("onedoor_node_owned_sessions", "Session leases this node holds",
                                    value=float(figures.get("sessions", 0)))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_app(metrics: NodeMetrics) -> web.Application:
    """The private listener's app: only /metrics."""
    app = web.Application()

    async def handler(_r: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", handler)
    return app


METRICS = web.AppKey("metrics", NodeMetrics)
