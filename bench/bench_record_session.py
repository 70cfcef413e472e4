"""Extra server CPU per recorded stream (issue 4): the same 3-party session through the hub, unrecorded and
recorded, alternating windows in ONE server process; prints the figures.

    python bench/bench_record_session.py [--window 8] [--rounds 3]

Server CPU = utime + stime of the server process (all threads, from /proc/<pid>/stat) over each window. Bots run
in this process and publish pre-encoded VP8 640x480 (~770 kbit/s) + Opus. A "stream" is one participant's audio +
video as recorded (3 per session).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from media.bots import Bot
from signaling.client import SessionClient, join_everyone, start_demo_server

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def window(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


async def main(a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        srv = await start_demo_server(Path(tmp) / "data", 18000 + os.getpid() % 1000)
        server = srv.process
        clients: list[SessionClient] = []
        bots: list[Bot] = []
        try:
            m = await join_everyone(srv, clients, bots)
            await asyncio.sleep(2)
            plain: list[float] = []
            recorded: list[float] = []
            for _ in range(a.rounds):
                plain.append(await window(server.pid, a.window))
                await m.call("recording:start", {})
                await asyncio.sleep(1)
                spy = None
                if a.pyspy and not recorded:  # sample where the recorded window's CPU goes
                    spy = await asyncio.create_subprocess_exec(
                        "py-spy", "record", "-p", str(server.pid), "-d", str(int(a.window)), "-r", "200",
                        "-f", "raw", "-o", a.pyspy, "--nonblocking",
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                recorded.append(await window(server.pid, a.window))
                if spy is not None:
                    await spy.wait()
                await m.call("recording:stop", {"reason": "bench"})
                await asyncio.sleep(1)
        finally:
            for b in bots:
                await b.close()
            for c in clients:
                await c.close()
            server.kill()
            await server.wait()
    p, r = sorted(plain)[len(plain) // 2], sorted(recorded)[len(recorded) // 2]
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"server CPU, 3-party session unrecorded: {p * 100:.1f}% of a core (median of {a.rounds} x {a.window}s)")
    print(f"server CPU, same session recorded:      {r * 100:.1f}% of a core")
    print(f"extra per recorded stream:              {(r - p) * 100 / 3:.2f}% of a core "
          f"(ratio recorded/unrecorded {r / p:.3f})")
    print("rounds (unrecorded, recorded):", [f"{x * 100:.1f}/{y * 100:.1f}" for x, y in zip(plain, recorded, strict=True)])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pyspy", default=None, help="write py-spy collapsed stacks of one recorded window here")
    asyncio.run(main(ap.parse_args()))
