"""Login flood: is the server still responsive while many clients guess passwords? (issue 10)

Starts `onedoor demo` + `onedoor serve` as a separate process, measures /healthz latency idle, then again while
`--clients` clients post wrong passwords as fast as they can for `--seconds`. Prints p50/p99 of /healthz in both
phases (ratio in the same run), how many guesses reached argon2 (401) and how many the throttle refused (429),
and, for comparison, what one argon2 verification costs on this machine: the time the loop would have been
blocked per guess had the check run on the event loop (the code before issue 10).

    .venv/bin/python bench/bench_login.py [--clients 16] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from argon2 import PasswordHasher

from signaling.client import start_demo_server


async def healthz_latencies(base: str, stop: asyncio.Event, limit: int = 400) -> list[float]:
    out: list[float] = []
    async with aiohttp.ClientSession() as http:
        while not stop.is_set() and len(out) < limit:
            t = time.perf_counter()
            async with http.get(f"{base}/healthz") as r:
                await r.read()
            out.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.01)
    return out


async def guesser(base: str, stop: asyncio.Event, counts: dict[int, int], n: int) -> None:
    async with aiohttp.ClientSession() as http:
        i = 0
        while not stop.is_set():
            i += 1
            body = {"username": "mediator" if i % 2 else f"nobody{n}-{i}", "password": f"wrong-{n}-{i}"}
            async with http.post(f"{base}/api/auth/login", json=body) as r:
                counts[r.status] = counts.get(r.status, 0) + 1


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def main(a: argparse.Namespace) -> None:
    ph = PasswordHasher()
    stored = ph.hash("correct horse battery")
    t = time.perf_counter()
    for _ in range(10):
        try:
            ph.verify(stored, "wrong")
        except Exception:
            pass
    argon_ms = (time.perf_counter() - t) * 100
    with tempfile.TemporaryDirectory() as tmp:
        srv = await start_demo_server(Path(tmp) / "data", 18500 + os.getpid() % 1000)
        try:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(3, stop.set)
            idle = await healthz_latencies(srv.base_url, stop)
            stop = asyncio.Event()
            counts: dict[int, int] = {}
            guessers = [asyncio.create_task(guesser(srv.base_url, stop, counts, n)) for n in range(a.clients)]
            asyncio.get_running_loop().call_later(a.seconds, stop.set)
            flood = await healthz_latencies(srv.base_url, stop, limit=10**9)
            await asyncio.gather(*guessers)
        finally:
            srv.process.kill()
            await srv.process.wait()
    print(f"argon2 verify on this machine: {argon_ms:.1f} ms per guess (the loop stall per guess if run on it)")
    print(f"/healthz idle:  n={len(idle)} p50={statistics.median(idle):.1f} ms p99={pct(idle, 0.99):.1f} ms")
    print(f"/healthz flood: n={len(flood)} p50={statistics.median(flood):.1f} ms p99={pct(flood, 0.99):.1f} ms "
          f"({a.clients} clients, {a.seconds:.0f} s)")
    print(f"p99 flood/idle = {pct(flood, 0.99) / max(pct(idle, 0.99), 1e-6):.1f}x")
    total = sum(counts.values())
    print(f"guesses: {total} ({total / a.seconds:.0f}/s); reached argon2 (401): {counts.get(401, 0)}; "
          f"throttled (429): {counts.get(429, 0)}; other: "
          f"{ {k: v for k, v in counts.items() if k not in (401, 429)} }")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=8.0)
    asyncio.run(main(p.parse_args()))
