"""Nodes benchmark (issue 14 item 6): sessions per machine with one node vs one node per core, failover time after
SIGKILL of a session's owner, and Socket.IO connections across two nodes. Figures printed, ratios from one run.

    python bench/bench_nodes.py [--media] [--failover] [--signaling]      (none given: all three)
        --media:     [--max-sessions 24] [--step 2] [--window 6] [--warmup 2] [--node-cpu F --nodes N]
        --failover:  [--failover-runs 1]   (needs root, ip, haproxy, moto_server, local PostgreSQL and Redis)
        --signaling: [--connections 3000] [--room 10] [--messages 3] [--client-procs 4] [--redis-pool N]

(a) --media. A node here is one media-hub process (bench/bench_hub_server.py: the product's media.hub.Hub behind a
    bare Socket.IO namespace, without database or auth; at steady state a session's cost is its media). "1 node":
    every session on one process; "per core": one process per core, sessions placed round-robin (what placement by
    load does with equal nodes). Each 3-party session's bots (media/bots.py) run in a process of their own
    (`--bot-worker`), driven over a line protocol on stdin/stdout. Sessions are added `--step` at a time; after each
    step the publishers pause and drain (bench_hub.py's method), frames are counted over `--window` s, and the ramp
    stops at the first lost frame, when a node uses > 95% of a core, or when the machine's CPUs are > 95% busy
    (then the bots, which share the machine, are the limit, and that is said). With `--node-cpu F` each node
    process is held to F of one core by a cgroup CPU quota (cgroup v1 cpu.cfs_quota_us or v2 cpu.max; root), and
    the comparison is 1 node vs `--nodes` nodes (default: one per core) at that quota: on a machine whose cores
    the bots would fill first (2 cores: the bots cost ~2x a node per session), this still measures whether
    sessions grow with nodes when each node has the same CPU, i.e. whether anything but a node's own CPU limits.
(b) --failover. The rig of tests/cluster/test_balancer.py (two `onedoor serve` nodes in network namespaces, HAProxy,
    shared PostgreSQL/Redis, moto S3): a recorded 3-party session, its owner SIGKILLed; times to the survivor's
    lease, to every client rejoined (SessionClient(rejoin=True)), and to media flowing again.
(c) --signaling. Two Socket.IO server processes sharing Redis through python-socketio's AsyncRedisManager (as
    signaling/app.py does for nodes), `--connections` clients in `--client-procs` processes, rooms of `--room`
    people split across both nodes. Join = connect + enter the room + ack; fan-out = one message to a room, time until
    every member (on either node) has it; each room sends once a second, the rooms' sends spread over the second
    (all rooms at the same instant is a burst that measures queueing, and at 300 rooms it overflows redis-py's
    default pool of 100 connections: "Cannot publish to redis... retrying (Too many connections)"). The
    connection count is bounded by `ulimit -n` (printed). The join here is not the product's /api/join (no
    database, no auth): it is the Socket.IO and Redis part of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from bench_hub import Server, Session, cpu_seconds, losses, machine_info  # noqa: E402

PY = sys.executable


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def busy_cpus() -> tuple[int, int]:
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


# ---- (a) media: a bot worker process per session ---------------------------------------------------------------
async def bot_worker(url: str, name: str) -> None:
    class _Srv:
        pass

    srv = _Srv()
    srv.url = url  # type: ignore[attr-defined]
    s = Session(srv, name)  # type: ignore[arg-type]
    await s.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "pause":
            s.pause(True)
            print("ok", flush=True)
        elif line == "resume":
            s.pause(False)
            print("ok", flush=True)
        elif line == "flowing":
            print("1" if s.flowing() else "0", flush=True)
        elif line == "counters":
            print(json.dumps(s.counters()), flush=True)
        elif line == "stop":
            break
    await s.stop()


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, url: str, name: str) -> Worker:
        proc = await asyncio.create_subprocess_exec(PY, __file__, "--bot-worker", url, name, stdin=subprocess.PIPE,
                                                    stdout=subprocess.PIPE)
        w = cls(proc)
        async with asyncio.timeout(30):
            assert await w.line() == "ready"
        return w

    async def line(self) -> str:
        assert self.proc.stdout is not None
        return (await self.proc.stdout.readline()).decode().strip()

    async def ask(self, cmd: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{cmd}\n".encode())
        await self.proc.stdin.drain()
        return await self.line()

    async def stop(self) -> None:
        with contextlib.suppress(ConnectionError, AssertionError):
            await self.ask("stop")
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class CpuQuota:
    """A cgroup holding the processes added to it to `fraction` of one core."""

    PERIOD = 100_000  # us

    def __init__(self, name: str, fraction: float) -> None:
        quota = str(int(fraction * self.PERIOD))
        if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # v2 (the cpu controller must be enabled)
            self.path = Path("/sys/fs/cgroup") / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{quota} {self.PERIOD}")
        else:  # v1
            self.path = Path("/sys/fs/cgroup/cpu") / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(self.PERIOD))
            (self.path / "cpu.cfs_quota_us").write_text(quota)

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        """Seconds the group's processes were held back by the quota so far."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "throttled_time":  # v1, ns
                return int(value) / 1e9
            if key == "throttled_usec":  # v2
                return int(value) / 1e6
        return 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def linear_fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares y = a + b x; None with fewer than two distinct x."""
    n = len(points)
    if n < 2 or len({x for x, _ in points}) < 2:
        return None
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


async def drained(workers: list[Worker], drain: float) -> list[dict[str, Any]]:
    await asyncio.gather(*(w.ask("pause") for w in workers))
    await asyncio.sleep(drain)
    counters = [json.loads(c) for c in await asyncio.gather(*(w.ask("counters") for w in workers))]
    await asyncio.gather(*(w.ask("resume") for w in workers))
    return counters


async def ramp(nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    servers = [Server("hub", None) for _ in range(nodes)]
    quotas = [CpuQuota(f"onedoor-bench-{os.getpid()}-{nodes}-{i}", args.node_cpu) for i in range(nodes)] \
        if args.node_cpu else []
    for quota, server in zip(quotas, servers, strict=False):
        quota.add(server.proc.pid)
    core = args.node_cpu or 1.0  # what a node may use
    workers: list[Worker] = []
    steps: list[dict[str, Any]] = []
    sustained, limit = 0, f"--max-sessions {args.max_sessions} reached"
    try:
        while len(workers) < args.max_sessions:
            for _ in range(args.step):
                i = len(workers)
                workers.append(await Worker.start(servers[i % nodes].url, f"s{i}"))
            async with asyncio.timeout(30):
                while "0" in await asyncio.gather(*(w.ask("flowing") for w in workers)):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            await asyncio.sleep(args.warmup)
            before = await drained(workers, 0.5)
            await asyncio.sleep(0.5)
            load = os.getloadavg()[0]
            cpu0, m0, t0 = [s.cpu() for s in servers], busy_cpus(), time.monotonic()
            bots0 = sum(cpu_seconds(w.proc.pid) for w in workers)
            await asyncio.sleep(args.window)
            cpu1, m1, t1 = [s.cpu() for s in servers], busy_cpus(), time.monotonic()
            bots1 = sum(cpu_seconds(w.proc.pid) for w in workers)
            after = await drained(workers, 1.0)
            lossy, expected, received = losses(before, after)
            dt = t1 - t0
            step = {"sessions": len(workers), "load_avg": round(load, 2),
                    "node_cores": [round((b - a) / dt, 3) for a, b in zip(cpu0, cpu1, strict=True)],
                    "bots_cores": round((bots1 - bots0) / dt, 3),
                    "machine_busy": round((m1[0] - m0[0]) / max(m1[1] - m0[1], 1), 3),
                    "lossy_streams": lossy, "frames_expected": expected, "frames_received": received}
            steps.append(step)
            print(f"  {nodes} node(s): {json.dumps(step)}", flush=True)
            if lossy:
                limit = "frames lost"
                break
            if quotas:
                step["throttled_s"] = [round(q.throttled_s(), 2) for q in quotas]
            if max(step["node_cores"]) > 0.95 * core:
                limit = "a node's CPU (core or quota) saturated"
                break
            sustained = len(workers)
            if step["machine_busy"] > 0.95:
                limit = "the machine's CPUs saturated (bots share them)"
                break
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
        for s in servers:
            s.stop()
        for q in quotas:
            q.close()
    return {"nodes": nodes, "node_cpu": args.node_cpu, "sustained_sessions": sustained, "limit": limit, "steps": steps}


async def media(args: argparse.Namespace) -> dict[str, Any]:
    cores = args.nodes or len(os.sched_getaffinity(0))
    one = await ramp(1, args)
    many = await ramp(cores, args)
    ratio = many["sustained_sessions"] / max(one["sustained_sessions"], 1)
    # The ramps stop at a step boundary, so the ratio of sessions sustained jumps (a node near its limit is on one
    # side of 95 % or the other by noise). Steadier: fit node CPU = a + b x sessions per node over each ramp's
    # lossless steps, and take the sessions at which a node reaches 95 % of its core or quota.
    core = args.node_cpu or 1.0
    for r in (one, many):
        points = [(s["sessions"] / r["nodes"], sum(s["node_cores"]) / r["nodes"]) for s in r["steps"]
                  if not s["lossy_streams"]]
        r["fit"] = fit = linear_fit(points)
        r["fitted_capacity"] = round(r["nodes"] * (0.95 * core - fit[0]) / fit[1], 1) if fit and fit[1] > 0 else None
        if fit:
            print(f"==> {r['nodes']} node(s): node CPU = {fit[0]:.3f} + {fit[1]:.3f} x sessions per node; "
                  f"fitted capacity {r['fitted_capacity']} sessions", flush=True)
    if one.get("fitted_capacity") and many.get("fitted_capacity"):
        print(f"==> fitted capacity, {cores} nodes / 1 node: {many['fitted_capacity'] / one['fitted_capacity']:.2f}x",
              flush=True)
    for r in (one, many):
        last = next((s for s in r["steps"] if s["sessions"] == r["sustained_sessions"]), None)
        node_cpu = f", nodes at {[round(c * 100) for c in last['node_cores']]}% of a core" if last else ""
        bots = f", bots {last['bots_cores']:.2f} cores" if last else ""
        print(f"==> {r['nodes']} node(s): {r['sustained_sessions']} 3-party sessions without loss{node_cpu}{bots}; "
              f"stopped: {r['limit']}", flush=True)
    quota = f", each node held to {args.node_cpu:.2f} of a core" if args.node_cpu else ""
    print(f"==> sessions, {cores} nodes / 1 node{quota}: {ratio:.2f}x (goal >= 1.8x)", flush=True)
    return {"one": one, "per_core": many, "ratio": round(ratio, 2)}


# ---- (b) failover after SIGKILL ---------------------------------------------------------------------------------
async def failover_once(tmp: Path) -> dict[str, Any]:
    import redis.asyncio as aioredis
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from media.bots import Bot
    from media.channels import SocketIOChannel
    from signaling.cli_server import DEMO_PASSWORD
    from signaling.client import SessionClient
    from tests.cluster.test_balancer import (
        AWS,
        PG,
        REDIS_DB,
        Rig,
        _make_bucket,
        free_port,
        missing,
        run,
        wait_http,
    )

    reason = await missing()
    if reason:
        return {"skipped": reason}
    tag, k = secrets.token_hex(3), 1 + secrets.randbelow(250)
    dbname = f"onedoor_bench_{tag}"
    rig = Rig(tmp)
    admin = create_async_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    clients: list[SessionClient] = []
    bots: list[Bot] = []
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{dbname}"'))
        s3_port, lb_port = free_port(), free_port()
        await asyncio.to_thread(rig.spawn, "moto", ["moto_server", "-H", "127.0.0.1", "-p", str(s3_port)])
        forwards, nodes = [], {}
        for i, name in enumerate(("node-a", "node-b")):
            ns, host_ip, node_ip = f"ob{tag}{i}", f"10.78.{k}.{1 + 4 * i}", f"10.78.{k}.{2 + 4 * i}"
            await asyncio.to_thread(rig.veth, ns, f"ob{tag}h{i}", f"ob{tag}n{i}", host_ip, node_ip)
            forwards += [f"{host_ip}:5432=127.0.0.1:5432", f"{host_ip}:6379=127.0.0.1:6379",
                         f"{host_ip}:{s3_port}=127.0.0.1:{s3_port}"]
            nodes[name] = (ns, host_ip, node_ip)
        fwd = await asyncio.to_thread(rig.spawn, "forward", [PY, str(ROOT / "tests/cluster/forward.py"), *forwards],
                                      pipe=True)
        assert fwd.stdout is not None
        assert (await asyncio.to_thread(fwd.stdout.readline)).strip() == b"ready"
        lb = f"http://127.0.0.1:{lb_port}"
        cli = [PY, "-m", "signaling.cli"]
        common = ["--data-dir", str(tmp / "admin"), "--key-dir", str(tmp / "keys"), "--database-url",
                  f"{PG}/{dbname}"]
        await asyncio.to_thread(run, *cli, "db", "upgrade", *common)
        demo = await asyncio.to_thread(subprocess.run, [*cli, "demo", *common, "--base-url", lb],
                                       capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)
        bucket = f"onedoor-{tag}"
        await asyncio.to_thread(_make_bucket, f"http://127.0.0.1:{s3_port}", bucket)
        for name, (ns, host_ip, node_ip) in nodes.items():
            await asyncio.to_thread(rig.spawn, name, [
                "ip", "netns", "exec", ns, *cli, "serve", "--host", node_ip, "--port", "8080",
                "--data-dir", str(tmp / name), "--key-dir", str(tmp / "keys"),
                "--database-url", f"postgresql+asyncpg://postgres@{host_ip}:5432/{dbname}",
                "--redis-url", f"redis://{host_ip}:6379/{REDIS_DB}", "--node-url", f"http://{node_ip}:8080",
                "--node-id", name, "--s3-bucket", bucket, "--s3-endpoint", f"http://{host_ip}:{s3_port}",
                "--base-url", lb], {**os.environ, **AWS})
        await asyncio.to_thread(rig.spawn, "haproxy", ["haproxy", "-db", "-f", str(ROOT / "deploy/haproxy.cfg")], {
            **os.environ, "ONEDOOR_LB_BIND": f"127.0.0.1:{lb_port}",
            "ONEDOOR_NODE_A": f"{nodes['node-a'][2]}:8080", "ONEDOOR_NODE_B": f"{nodes['node-b'][2]}:8080"})
        for name in nodes:
            await wait_http(f"{lb}/healthz?node={name}", want=name)
        found = re.search(r"session (\d+)", demo.stdout)
        assert found is not None
        session_id, tokens = int(found.group(1)), re.findall(r"/join#(\S+)", demo.stdout)

        m = SessionClient(lb, rejoin=True)
        clients.append(m)
        await m.login("mediator", DEMO_PASSWORD)
        await m.join_staff(session_id)
        parties = []
        for token in tokens:  # join_and_attest's steps, with clients that rejoin on their own
            c = SessionClient(lb, rejoin=True)
            clients.append(c)
            parties.append(c)
            await c.join_invite(token)
            for kind in ("notices", "online", "recording"):
                await c.call("lobby:consent", {"kind": kind, "granted": True})
            await m.call("identity:attest", {"participant": c.pid, "document": "居民身份证", "matched": True})
        await m.call("lobby:admit-all")
        for c in clients:
            bot = Bot(c.pid, SocketIOChannel(c.sio))
            bots.append(bot)
            c.on_rejoined.append(bot.join)
            await bot.join()
        await m.call("recording:start", {})
        await asyncio.sleep(3.0)
        owner = parties[0].node_id
        assert owner in nodes
        survivor = next(n for n in nodes if n != owner)
        r = aioredis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
        killed = time.monotonic()
        rig.procs[owner].send_signal(signal.SIGKILL)
        try:
            async with asyncio.timeout(45):
                while True:
                    raw = await r.get(f"onedoor:lease:{session_id}")
                    if raw and (raw.decode() if isinstance(raw, bytes) else str(raw)).rpartition("|")[0] == survivor:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await r.aclose()
        lease = time.monotonic() - killed
        for c in clients:
            await c.wait(lambda c: bool(c.events["rejoined"]), limit=45)
        rejoined = time.monotonic() - killed
        for b in bots:
            b.mark("failover")
        async with asyncio.timeout(30):
            while True:
                for b in bots:
                    b.mark("now")
                if all(sum(v.get("packets", 0) for v in b.delta("failover", "now").get(o.pid, {}).values()) > 0
                       for b in bots for o in bots if o is not b):
                    break
                await asyncio.sleep(0.05)
        flowing = time.monotonic() - killed
        await m.call("recording:stop", {"reason": "bench"})
        return {"lease_s": round(lease, 2), "rejoined_s": round(rejoined, 2), "media_s": round(flowing, 2),
                "survivor": survivor}
    finally:
        for b in bots:
            with contextlib.suppress(Exception):
                await b.close()
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
        await asyncio.to_thread(rig.close)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        await admin.dispose()
        r = aioredis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
        keys = [key async for key in r.scan_iter("onedoor:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


async def failover(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for i in range(args.failover_runs):
        with tempfile.TemporaryDirectory(prefix="bench-nodes-") as tmp:
            got = await failover_once(Path(tmp))
        print(f"  failover {i + 1}/{args.failover_runs}: {json.dumps(got)}", flush=True)
        if "skipped" in got:
            print(f"==> failover skipped: {got['skipped']}", flush=True)
            return got
        runs.append(got)
    print("==> failover after SIGKILL of the owner: lease on the survivor "
          f"{[r['lease_s'] for r in runs]} s, all clients rejoined {[r['rejoined_s'] for r in runs]} s, media flowing "
          f"both ways again {[r['media_s'] for r in runs]} s", flush=True)
    return {"runs": runs}


# ---- (c) signaling across two nodes -----------------------------------------------------------------------------
async def sig_server(redis_url: str, channel: str, pool: int) -> None:
    import logging

    import socketio
    from aiohttp import web

    class _Why(logging.Filter):  # python-socketio puts the Redis error in `extra`; show it
        def filter(self, record: logging.LogRecord) -> bool:
            why = getattr(record, "redis_exception", None)
            if why:
                record.msg = f"{record.msg} ({why})"
            return True

    logging.basicConfig(level=logging.WARNING, format="sig-server %(process)d: %(message)s")
    for h in logging.getLogger().handlers:
        h.addFilter(_Why())
    mgr = socketio.AsyncRedisManager(redis_url, channel=channel,
                                     redis_options={"max_connections": pool} if pool else None)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=mgr)
    app = web.Application()
    sio.attach(app)

    @sio.on("join", namespace="/s")  # type: ignore[misc]
    async def join(sid: str, room: str) -> dict[str, bool]:
        await sio.enter_room(sid, room, namespace="/s")
        return {"ok": True}

    @sio.on("say", namespace="/s")  # type: ignore[misc]
    async def say(sid: str, data: dict[str, Any]) -> None:
        await sio.emit("said", data, room=data["room"], namespace="/s")

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


async def sig_clients(spec: str) -> None:
    """A client process: connect its share, join, then (on "go") send its messages and report latencies."""
    import socketio

    cfg = json.loads(spec)
    joins: list[float] = []
    fanout: dict[str, list[float]] = {}  # message id -> arrival times
    by_index: dict[int, socketio.AsyncClient] = {}

    async def one(i: int) -> None:
        room, url = cfg["rooms"][i], cfg["urls"][i]
        c = socketio.AsyncClient(reconnection=False)

        async def said(data: dict[str, Any]) -> None:
            fanout.setdefault(data["id"], []).append(time.time() - data["t"])

        c.on("said", said, namespace="/s")
        t0 = time.monotonic()
        await c.connect(url, namespaces=["/s"], transports=["websocket"], wait_timeout=30)
        await c.call("join", room, namespace="/s", timeout=30)
        joins.append(time.monotonic() - t0)
        by_index[i] = c

    sem = asyncio.Semaphore(cfg["parallel"])

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    results = await asyncio.gather(*(limited(i) for i in range(len(cfg["rooms"]))), return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    clients = list(by_index.values())
    print(json.dumps({"connected": len(clients), "errors": errors[:3], "failed": len(errors)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
    mine = [(c, cfg["rooms"][i]) for i, c in sorted(by_index.items())
            if cfg["senders"].get(cfg["rooms"][i]) == i + cfg["offset"]]
    for k in range(cfg["messages"]):  # each room's message once a second, the rooms' sends spread over the second
        for c, room in mine:
            await c.emit("say", {"room": room, "t": time.time(), "id": f"{room}:{k}"}, namespace="/s")
            await asyncio.sleep(1.0 / max(len(mine), 1))
    await asyncio.sleep(2.0)
    print(json.dumps({"joins": joins, "fanout": fanout}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "stop"
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


async def signaling(args: argparse.Namespace) -> dict[str, Any]:
    """With the product's Redis pool (python-socketio's AsyncRedisManager defaults, as signaling/app.py has it:
    redis-py's pool of 100 connections, which raises "Too many connections" when more publishes are in flight), and
    with `--redis-pool` connections if given, in the same run."""
    out = {"default_pool": await signaling_once(args, 0)}
    if args.redis_pool:
        out[f"pool_{args.redis_pool}"] = await signaling_once(args, args.redis_pool)
    return out


async def signaling_once(args: argparse.Namespace, pool: int) -> dict[str, Any]:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = args.connections
    channel = f"bench-nodes-{uuid.uuid4().hex[:8]}"
    servers: list[tuple[asyncio.subprocess.Process, str]] = []
    for _ in range(2):
        srv = await asyncio.create_subprocess_exec(PY, __file__, "--sig-server", "redis://127.0.0.1:6379/0", channel, str(pool),
                                                   stdout=subprocess.PIPE)
        assert srv.stdout is not None
        servers.append((srv, f"http://127.0.0.1:{int((await srv.stdout.readline()).split()[1])}"))
    # connection i: room i // room-size, node i % 2 (each room split across both nodes)
    rooms = [f"r{i // args.room}" for i in range(n)]
    urls = [servers[i % 2][1] for i in range(n)]
    senders = {f"r{r}": r * args.room for r in range((n + args.room - 1) // args.room)}  # first member sends
    procs: list[asyncio.subprocess.Process] = []
    share = (n + args.client_procs - 1) // args.client_procs
    t_connect = time.monotonic()
    for j in range(args.client_procs):
        lo, hi = j * share, min(n, (j + 1) * share)
        spec = json.dumps({"rooms": rooms[lo:hi], "urls": urls[lo:hi], "senders": senders, "offset": lo,
                           "messages": args.messages, "parallel": args.parallel})
        procs.append(await asyncio.create_subprocess_exec(PY, __file__, "--sig-clients", spec, limit=2**24,
                                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE))

    async def line(p: asyncio.subprocess.Process) -> Any:
        assert p.stdout is not None
        return json.loads(await p.stdout.readline())

    async def tell(p: asyncio.subprocess.Process, what: str) -> None:
        assert p.stdin is not None
        p.stdin.write(f"{what}\n".encode())
        await p.stdin.drain()

    try:
        async with asyncio.timeout(240):
            up = await asyncio.gather(*(line(p) for p in procs))
        connect_s = time.monotonic() - t_connect
        connected = sum(u["connected"] for u in up)
        server_cpu0 = [cpu_seconds(p.pid) for p, _ in servers]
        clients_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        t0 = time.monotonic()
        for p in procs:
            await tell(p, "go")
        async with asyncio.timeout(120):
            res = await asyncio.gather(*(line(p) for p in procs))
        dt = time.monotonic() - t0
        server_cores = [round((cpu_seconds(p.pid) - c) / dt, 3) for (p, _), c in zip(servers, server_cpu0, strict=True)]
        clients_cores = round((sum(cpu_seconds(p.pid) for p in procs) - clients_cpu0) / dt, 3)
        for p in procs:
            await tell(p, "stop")
        joins = [x for r in res for x in r["joins"]]
        arrivals: dict[str, list[float]] = {}
        for r in res:
            for mid, ts in r["fanout"].items():
                arrivals.setdefault(mid, []).extend(ts)
        room_of = {mid: mid.split(":")[0] for mid in arrivals}
        size = {room: rooms.count(room) for room in set(rooms)}
        complete = [max(ts) for mid, ts in arrivals.items() if len(ts) == size[room_of[mid]]]
        each = [t for ts in arrivals.values() for t in ts]
        expected = len(senders) * args.messages
        out = {"redis_pool": pool or "default (100)", "fd_limit": [soft, hard], "asked": n, "connected": connected,
               "failed": sum(u["failed"] for u in up), "errors": [e for u in up for e in u["errors"]][:3],
               "connect_all_s": round(connect_s, 1), "join_p50_ms": round(pct(joins, 0.5) * 1000, 1),
               "join_p95_ms": round(pct(joins, 0.95) * 1000, 1), "join_max_ms": round(max(joins) * 1000, 1),
               "messages": expected, "fully_delivered": len(complete),
               "fanout_each_p50_ms": round(pct(each, 0.5) * 1000, 1),
               "fanout_each_p95_ms": round(pct(each, 0.95) * 1000, 1),
               "fanout_room_p95_ms": round(pct(complete, 0.95) * 1000, 1),
               "server_cores_during_fanout": server_cores,
               "client_procs_cores_during_fanout": clients_cores, "load_avg": os.getloadavg()[0]}
        print(f"  signaling: {json.dumps(out)}", flush=True)
        print(f"==> Redis pool {out['redis_pool']}: {connected}/{n} Socket.IO connections across 2 nodes "
              f"(fd limit {soft}); join p95 "
              f"{out['join_p95_ms']} ms (p50 {out['join_p50_ms']}); fan-out to a room of {args.room} split over both "
              f"nodes: p95 per delivery {out['fanout_each_p95_ms']} ms, p95 until the whole room had it "
              f"{out['fanout_room_p95_ms']} ms ({len(complete)}/{expected} messages reached every member)", flush=True)
        return out
    finally:
        for p in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
        for srv, _ in servers:
            srv.terminate()
            await srv.wait()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {json.dumps(machine_info(cores))}", flush=True)
    everything = not (args.media or args.failover or args.signaling)
    out: dict[str, Any] = {}
    if args.media or everything:
        from media.fixtures import audio_clip, video_clip

        video_clip(), audio_clip()  # encode once (cached) before the workers start
        out["media"] = await media(args)
    if args.failover or everything:
        out["failover"] = await failover(args)
    if args.signaling or everything:
        out["signaling"] = await signaling(args)
    if args.json:
        print(json.dumps(out))
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bot-worker":
        asyncio.run(bot_worker(sys.argv[2], sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--sig-server":
        asyncio.run(sig_server(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--sig-clients":
        asyncio.run(sig_clients(sys.argv[2]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--media", action="store_true", help="(a) sessions per machine, 1 node vs one per core")
    p.add_argument("--failover", action="store_true", help="(b) failover time after SIGKILL of the owner")
    p.add_argument("--signaling", action="store_true", help="(c) Socket.IO connections across two nodes")
    p.add_argument("--max-sessions", type=int, default=24)
    p.add_argument("--step", type=int, default=2)
    p.add_argument("--window", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--node-cpu", type=float, default=0.0, help="hold each node to this fraction of a core")
    p.add_argument("--nodes", type=int, default=0, help="nodes in the second ramp (default: one per core)")
    p.add_argument("--failover-runs", type=int, default=1)
    p.add_argument("--connections", type=int, default=3000)
    p.add_argument("--room", type=int, default=10)
    p.add_argument("--messages", type=int, default=3)
    p.add_argument("--client-procs", type=int, default=4)
    p.add_argument("--parallel", type=int, default=10, help="connections being set up at once, per client process")
    p.add_argument("--redis-pool", type=int, default=0, help="a second signaling run with this Redis pool size")
    p.add_argument("--json", action="store_true")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
