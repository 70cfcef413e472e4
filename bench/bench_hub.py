"""Media hub benchmark: server CPU per 3-party session, our pass-through hub vs aiortc's MediaRelay, and how many
concurrent 3-party sessions one core sustains with no frame loss at the bots.

    python bench/bench_hub.py [--window 8] [--max-sessions 30] [--step 2] [--json]

The server (bench/bench_hub_server.py) runs in its own process; for the ramp it is pinned to CPU 0 ("one core").
The bots (media/bots.py: pre-encoded 640x480 VP8 ~800 kbit/s + Opus, tapped receivers) run here and talk to it over real Socket.IO + WebRTC on loopback. Server CPU = utime+stime of the server process (all its
threads) from /proc over a measurement window, divided by the window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import socketio

from media.bots import Bot
from media.channels import SocketIOChannel
from media.fixtures import audio_clip, video_clip

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
PIDS = ("mediator", "party-a", "party-b")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Server:
    def __init__(self, mode: str, cpu: int | None) -> None:
        cmd = [sys.executable, str(HERE / "bench_hub_server.py"), "--mode", mode]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Session:
    def __init__(self, server: Server, name: str) -> None:
        self.server, self.name = server, name
        self.bots: list[Bot] = []
        self.clients: list[socketio.AsyncClient] = []

    async def start(self) -> None:
        for pid in PIDS:
            sio = socketio.AsyncClient(reconnection=False)
            bot = Bot(pid, SocketIOChannel(sio))
            await sio.connect(
                self.server.url,
                namespaces=["/session"],
                transports=["websocket"],
                auth={"session": self.name, "participant": pid},
            )
            await bot.join()
            self.clients.append(sio)
            self.bots.append(bot)

    def flowing(self) -> bool:
        return all(b.receiving_from(o.pid) for b in self.bots for o in self.bots if o is not b)

    def counters(self) -> dict[str, Any]:
        return {
            "sent": {b.pid: b.sent() for b in self.bots},
            "received": {b.pid: b.snapshot() for b in self.bots},
        }

    async def stop(self) -> None:
        for bot, sio in zip(self.bots, self.clients, strict=True):
            await bot.close()
            await sio.disconnect()


def losses(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(streams with loss, frames expected, frames received) over all sessions' video and audio streams.

    Expected = frames the publisher bot sent in the window; a stream counts as lossy if it got fewer than that
    minus what can be in flight at the window's edges (3 video / 5 audio frames)."""
    lossy = expected = received = 0
    for b, a in zip(before, after, strict=True):
        for sub, sources in a["received"].items():
            for pub, by_source in sources.items():
                for source, counts in by_source.items():
                    sent = a["sent"][pub][source]["frames"] - b["sent"][pub][source]["frames"]
                    got = counts["frames"] - b["received"].get(sub, {}).get(pub, {}).get(source, {}).get(
                        "frames", 0
                    )
                    expected += sent
                    received += got
                    if got < sent - (3 if source == "camera" else 5):
                        lossy += 1
    return lossy, expected, received


async def wait_flowing(sessions: list[Session], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not all(s.flowing() for s in sessions):
        if time.monotonic() > deadline:
            raise RuntimeError("media did not start flowing")
        await asyncio.sleep(0.1)


async def measure(server: Server, sessions: list[Session], window: float) -> dict[str, Any]:
    before = [s.counters() for s in sessions]
    cpu0, own0, t0 = server.cpu(), time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    cpu1, own1, t1 = server.cpu(), time.process_time(), time.monotonic()
    after = [s.counters() for s in sessions]
    lossy, expected, received = losses(before, after)
    elapsed = t1 - t0
    return {
        "sessions": len(sessions),
        "server_cores": round((cpu1 - cpu0) / elapsed, 4),
        "per_session_cores": round((cpu1 - cpu0) / elapsed / len(sessions), 4),
        "bots_cores": round((own1 - own0) / elapsed, 3),
        "server_us_per_delivered_frame": round((cpu1 - cpu0) / max(received, 1) * 1e6, 1),
        "lossy_streams": lossy,
        "frames_expected": expected,
        "frames_received": received,
    }


async def run_mode(mode: str, count: int, window: float, warmup: float, cpu: int | None) -> dict[str, Any]:
    server = Server(mode, cpu)
    sessions = [Session(server, f"{mode}-{i}") for i in range(count)]
    try:
        for s in sessions:
            await s.start()
        await wait_flowing(sessions)
        await asyncio.sleep(warmup)
        return await measure(server, sessions, window)
    finally:
        for s in sessions:
            await s.stop()
        server.stop()


async def ramp(args: argparse.Namespace, cpu: int | None, cores: int) -> dict[str, Any]:
    server = Server("hub", cpu)
    sessions: list[Session] = []
    steps: list[dict[str, Any]] = []
    sustained = 0
    try:
        while len(sessions) < args.max_sessions:
            new = [Session(server, f"ramp-{len(sessions) + i}") for i in range(args.step)]
            for s in new:
                await s.start()
            sessions += new
            await wait_flowing(sessions)
            await asyncio.sleep(args.warmup)
            step = await measure(server, sessions, args.window)
            steps.append(step)
            print(f"  ramp: {json.dumps(step)}", flush=True)
            if step["lossy_streams"] or step["server_cores"] > 0.95:
                break
            sustained = len(sessions)
            if step["bots_cores"] > 0.9:
                print(
                    "  ramp: the bots' process is saturated; stopping (the server was not the limit)",
                    flush=True,
                )
                break
    finally:
        for s in sessions:
            await s.stop()
        server.stop()
    return {"steps": steps, "sustained_sessions": sustained}


def machine_info(cores: int) -> dict[str, Any]:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in ln
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": cores,
        "load_avg_at_start": os.getloadavg(),
        "python": platform.python_version(),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    video, audio = video_clip(), audio_clip()  # encode once, before any timing
    cores = len(os.sched_getaffinity(0))
    # --pin: the ramp pins the server to CPU 0 (bots may use every core). On a machine shared with other
    # work, pinning starves the server whenever something else runs on CPU 0, so it is off by default and the
    # ramp stops when the server process needs more than one core's worth of CPU time instead.
    server_cpu = 0 if cores >= 2 and args.pin else None
    machine = machine_info(cores)
    machine["clip"] = {"video_kbps": round(video.bitrate / 1000), "audio_kbps": round(audio.bitrate / 1000)}
    print(f"machine: {json.dumps(machine)}", flush=True)
    # Side by side, same conditions, server not pinned (MediaRelay needs more than one core for one session).
    relay = await run_mode("relay", args.ratio_sessions, args.window, args.warmup, None)
    print(f"MediaRelay baseline: {json.dumps(relay)}", flush=True)
    hub = await run_mode("hub", args.ratio_sessions, args.window, args.warmup, None)
    print(f"pass-through hub:    {json.dumps(hub)}", flush=True)
    ratio = relay["per_session_cores"] / max(hub["per_session_cores"], 1e-9)
    print(
        f"==> CPU per 3-party session: hub {hub['per_session_cores'] * 100:.1f}% of a core, MediaRelay "
        f"{relay['per_session_cores'] * 100:.1f}% => hub is {ratio:.1f}x cheaper",
        flush=True,
    )
    # A starved MediaRelay drops frames and so spends less CPU than the full job needs: compare the CPU spent
    # per frame actually delivered to a subscriber as well.
    per_frame = relay["server_us_per_delivered_frame"] / max(hub["server_us_per_delivered_frame"], 1e-9)
    print(
        f"==> server CPU per delivered frame: hub {hub['server_us_per_delivered_frame']} us, MediaRelay "
        f"{relay['server_us_per_delivered_frame']} us => {per_frame:.1f}x",
        flush=True,
    )
    result = await ramp(args, server_cpu, cores)
    last_ok = next(
        (s for s in reversed(result["steps"]) if s["sessions"] == result["sustained_sessions"]), None
    )
    print(
        f"==> sustained {result['sustained_sessions']} concurrent 3-party sessions with no frame loss"
        + (f", the server using {last_ok['server_cores'] * 100:.0f}% of one core" if last_ok else "")
        + (f" (=> {last_ok['sessions'] / last_ok['server_cores']:.1f} sessions per core)" if last_ok else ""),
        flush=True,
    )
    summary = {
        "machine": machine,
        "relay": relay,
        "hub": hub,
        "ratio": round(ratio, 2),
        "ratio_per_frame": round(per_frame, 2),
        "ramp": result,
    }
    if args.json:
        print(json.dumps(summary))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=float, default=8.0, help="measurement window, seconds")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds after media flows, before measuring"
    )
    parser.add_argument("--ratio-sessions", type=int, default=1, help="sessions for the hub/relay comparison")
    parser.add_argument("--max-sessions", type=int, default=30)
    parser.add_argument("--step", type=int, default=2, help="sessions added per ramp step")
    parser.add_argument("--json", action="store_true", help="also print a JSON summary")
    parser.add_argument("--pin", action="store_true", help="pin the server to CPU 0 during the ramp")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
