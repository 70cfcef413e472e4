"""Media hub benchmark: server CPU per 3-party session, our pass-through hub vs aiortc's MediaRelay, and how many
concurrent 3-party sessions one core sustains with no frame loss at the bots.

    python bench/bench_hub.py [--window 8] [--repeat 3] [--baseline-tree DIR] [--max-sessions 30] [--step 2]
                              [--pin] [--json]

Each server (bench/bench_hub_server.py) runs in its own process. The bots (media/bots.py: pre-encoded 640x480 VP8
~800 kbit/s + Opus, tapped receivers) run here and talk to it over real Socket.IO + WebRTC on loopback. Server CPU
= utime+stime of the server process (all its threads) from /proc over a measurement window, divided by the window.
The side-by-side comparison is repeated `--repeat` times, servers interleaved (relay, hub[, baseline tree]), and
medians are reported, each measurement with the 1-minute load average at its start. `--baseline-tree DIR` adds
the hub of another source tree (e.g. `git archive <commit> media bench | tar -x -C DIR`): before/after, same run.

Loss: before and after each window the publishers pause and the path drains (0.5 s / 1 s), so every frame sent
in the window has either arrived or is lost: a stream is lossy if it received fewer than (sent - 2) frames (one
frame per stream can sit in the receiving jitter buffer at each edge).
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
    def __init__(self, mode: str, cpu: int | None, tree: Path | None = None) -> None:
        root = tree or HERE.parent
        cmd = [sys.executable, str(root / "bench" / "bench_hub_server.py"), "--mode", mode]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        env = dict(os.environ, PYTHONPATH=str(root))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
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

    def pause(self, paused: bool) -> None:
        for bot in self.bots:
            bot.pause(paused)

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

    Expected = frames the publisher bot sent in the window (drained at both edges, see `measure`); a stream is
    lossy if it got fewer than that minus 2 (a frame held in the receiver's jitter buffer at each edge)."""
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
                    if got < sent - 2:
                        lossy += 1
    return lossy, expected, received


async def wait_flowing(sessions: list[Session], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not all(s.flowing() for s in sessions):
        if time.monotonic() > deadline:
            raise RuntimeError("media did not start flowing")
        await asyncio.sleep(0.1)


async def drained_counters(sessions: list[Session], drain: float) -> list[dict[str, Any]]:
    """Pause every publisher, let what is in flight arrive, read the counters, resume."""
    for s in sessions:
        s.pause(True)
    await asyncio.sleep(drain)
    counters = [s.counters() for s in sessions]
    for s in sessions:
        s.pause(False)
    return counters


async def measure(server: Server, sessions: list[Session], window: float) -> dict[str, Any]:
    before = await drained_counters(sessions, 0.5)
    resumed = time.monotonic()
    await asyncio.sleep(0.5)  # back to steady state
    load = os.getloadavg()[0]
    cpu0, own0, t0 = server.cpu(), time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    cpu1, own1, t1 = server.cpu(), time.process_time(), time.monotonic()
    after = await drained_counters(sessions, 1.0)
    lossy, expected, received = losses(before, after)
    elapsed = t1 - t0
    frames_per_s = received / (t1 - resumed)  # delivered while publishing (between the two pauses)
    return {
        "sessions": len(sessions),
        "load_avg": round(load, 2),
        "server_cores": round((cpu1 - cpu0) / elapsed, 4),
        "per_session_cores": round((cpu1 - cpu0) / elapsed / len(sessions), 4),
        "bots_cores": round((own1 - own0) / elapsed, 3),
        "server_us_per_delivered_frame": round((cpu1 - cpu0) / elapsed / max(frames_per_s, 1e-9) * 1e6, 1),
        "lossy_streams": lossy,
        "frames_expected": expected,
        "frames_received": received,
    }


async def run_mode(
    mode: str, count: int, window: float, warmup: float, cpu: int | None, tree: Path | None = None
) -> dict[str, Any]:
    server = Server(mode, cpu, tree)
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


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-key median over repeated runs (numbers), plus the range of the load average."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = sorted(r[key] for r in runs)
        out[key] = values[len(values) // 2]
    out["load_avg"] = [min(r["load_avg"] for r in runs), max(r["load_avg"] for r in runs)]
    return out


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
    # Side by side, same conditions, server not pinned (MediaRelay needs more than one core for one session),
    # repeated with the servers interleaved so that changes in the machine's load hit all of them alike.
    modes: list[tuple[str, str, Path | None]] = [("relay", "relay", None), ("hub", "hub", None)]
    if args.baseline_tree:
        modes.append(("baseline", "hub", args.baseline_tree))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in modes}
    for i in range(args.repeat):
        for name, mode, tree in modes:
            run = await run_mode(mode, args.ratio_sessions, args.window, args.warmup, None, tree)
            runs[name].append(run)
            print(f"  {i + 1}/{args.repeat} {name}: {json.dumps(run)}", flush=True)
    med = {name: median_run(rs) for name, rs in runs.items()}
    relay, hub = med["relay"], med["hub"]
    ratio = relay["per_session_cores"] / max(hub["per_session_cores"], 1e-9)
    print(
        f"==> CPU per 3-party session (medians of {args.repeat}): hub {hub['per_session_cores'] * 100:.1f}% of a "
        f"core, MediaRelay {relay['per_session_cores'] * 100:.1f}% => hub is {ratio:.1f}x cheaper",
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
    if "baseline" in med:
        base = med["baseline"]
        print(
            f"==> baseline tree {args.baseline_tree}: {base['per_session_cores'] * 100:.1f}% of a core per "
            f"session, {base['server_us_per_delivered_frame']} us per delivered frame "
            f"(this tree: {hub['per_session_cores'] / max(base['per_session_cores'], 1e-9):.2f}x of it)",
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
        "baseline": med.get("baseline"),
        "runs": runs,
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
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions of the comparison")
    parser.add_argument("--baseline-tree", help="also measure the hub of this source tree (before/after)")
    parser.add_argument("--max-sessions", type=int, default=30)
    parser.add_argument("--step", type=int, default=2, help="sessions added per ramp step")
    parser.add_argument("--json", action="store_true", help="also print a JSON summary")
    parser.add_argument("--pin", action="store_true", help="pin the server to CPU 0 during the ramp")
    args = parser.parse_args()
    if args.baseline_tree:
        args.baseline_tree = Path(args.baseline_tree).resolve()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
