"""Two nodes in network namespaces behind HAProxy running deploy/haproxy.cfg, sharing PostgreSQL, Redis and an S3
endpoint (moto's server): a whole mediation whose participants enter through the balancer (issue 14, items 3-4).

Each node is `onedoor serve` in a namespace of its own (a veth pair: host 10.76.k.1 or .5, node .2 or .6); it
reaches PostgreSQL, Redis and S3, which listen on the host's 127.0.0.1, through a forwarder on the host end of its
veth (tests/cluster/forward.py). HAProxy and the participants are on the host. Participants POST /api/join and log
in through the balancer; the answer names the owner and their Socket.IO goes there; media goes to the owner's own
address (no hop through the balancer). Skips, with the reason, without root, `ip`, `haproxy`, `moto_server`, or
the local PostgreSQL/Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import boto3
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from media.bots import Bot
from media.channels import SocketIOChannel
from mediation.db import Database
from mediation.keyring import KeyRing
from recordings.export import export
from recordings.storage import S3Storage
from signaling.cli_server import DEMO_PASSWORD
from signaling.client import SessionClient, join_and_attest
from tests import hostaddrs
from tests.media.conftest import PC_SETUP_BLOCKS

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
REDIS_DB = 9  # the nodes' leases and heartbeats, apart from other tests' keys
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
pytestmark = [PC_SETUP_BLOCKS, pytest.mark.slow, pytest.mark.timeout(180)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


async def missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for binary in ("ip", "haproxy", "moto_server"):
        if shutil.which(binary) is None:
            return f"no {binary} binary"
    return await stores_missing()


async def stores_missing() -> str | None:
    """Why the local Redis and PostgreSQL cannot be used, or None."""
    try:
        r = aioredis.from_url("redis://127.0.0.1:6379/0")
        await r.ping()
        await r.aclose()
        eng = create_async_engine(f"{PG}/postgres")
        async with eng.connect() as c:
            await c.execute(text("SELECT 1"))
        await eng.dispose()
    except Exception as e:  # any failure means the service is not there
        return f"local Redis/PostgreSQL not reachable: {e}"
    return None


class Rig:
    """The processes, namespaces and log files a test made (blocking calls: used through asyncio.to_thread)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.namespaces, self.logs = tmp, list[str](), contextlib.ExitStack()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None, *, pipe: bool = False
              ) -> subprocess.Popen[bytes]:
        err = self.logs.enter_context(open(self.tmp / f"{name}.log", "wb"))
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=err,
                                            stdout=subprocess.PIPE if pipe else subprocess.DEVNULL)
        return self.procs[name]

    def veth(self, ns: str, host_end: str, node_end: str, host_ip: str, node_ip: str) -> None:
        run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end)
        run("ip", "link", "set", node_end, "netns", ns)
        run("ip", "addr", "add", f"{host_ip}/30", "dev", host_end)
        run("ip", "link", "set", host_end, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{node_ip}/30", "dev", node_end)
        run("ip", "netns", "exec", ns, "ip", "link", "set", node_end, "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()
        self.logs.close()
        for ns in self.namespaces:  # deleting a namespace deletes its veth end, and so the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@dataclass
class Env:
    lb: str
    tokens: list[str]
    session_id: int
    db_url: str
    key_dir: Path
    bucket: str
    s3: str
    nodes: dict[str, str]  # node id -> its own URL
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


async def wait_http(url: str, limit: float = 90.0, want: str | None = None) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(limit):
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url) as r:
                    if r.status == 200 and (want is None or (await r.json()).get("node") == want):
                        return
            await asyncio.sleep(0.2)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    reason = await missing()
    if reason:
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    k = 1 + secrets.randbelow(250)
    dbname = f"onedoor_lb_{tag}"
    rig = Rig(tmp_path)
    addresses = contextlib.ExitStack()  # the participants' ICE uses the veths' host ends (tests/hostaddrs.py)
    addresses.enter_context(hostaddrs.own(f"10.76.{k}.0/24"))
    admin = create_async_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as c:
            await c.execute(text(f'CREATE DATABASE "{dbname}"'))
        s3_port, lb_port = free_port(), free_port()
        await asyncio.to_thread(rig.spawn, "moto", ["moto_server", "-H", "127.0.0.1", "-p", str(s3_port)])
        forwards, nodes = [], {}
        for i, name in enumerate(("node-a", "node-b")):
            ns, host_ip, node_ip = f"od{tag}{i}", f"10.76.{k}.{1 + 4 * i}", f"10.76.{k}.{2 + 4 * i}"
            await asyncio.to_thread(rig.veth, ns, f"od{tag}h{i}", f"od{tag}n{i}", host_ip, node_ip)
            forwards += [f"{host_ip}:5432=127.0.0.1:5432", f"{host_ip}:6379=127.0.0.1:6379",
                         f"{host_ip}:{s3_port}=127.0.0.1:{s3_port}"]
            nodes[name] = (ns, host_ip, node_ip)
        fwd = await asyncio.to_thread(rig.spawn, "forward",
                                      [sys.executable, str(ROOT / "tests/cluster/forward.py"), *forwards], pipe=True)
        assert fwd.stdout is not None
        assert (await asyncio.to_thread(fwd.stdout.readline)).strip() == b"ready"
        lb = f"http://127.0.0.1:{lb_port}"
        key_dir, db_url = tmp_path / "keys", f"{PG}/{dbname}"
        cli = [sys.executable, "-m", "signaling.cli"]
        common = ["--data-dir", str(tmp_path / "admin"), "--key-dir", str(key_dir), "--database-url", db_url]
        await asyncio.to_thread(run, *cli, "db", "upgrade", *common)
        demo = await asyncio.to_thread(subprocess.run, [*cli, "demo", *common, "--base-url", lb],
                                       capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)
        bucket = f"onedoor-{tag}"
        await asyncio.to_thread(_make_bucket, f"http://127.0.0.1:{s3_port}", bucket)
        node_env = {**os.environ, **AWS}
        for name, (ns, host_ip, node_ip) in nodes.items():
            await asyncio.to_thread(rig.spawn, name, [
                "ip", "netns", "exec", ns, *cli, "serve", "--host", node_ip, "--port", "8080",
                "--data-dir", str(tmp_path / name), "--key-dir", str(key_dir),
                "--database-url", f"postgresql+asyncpg://postgres@{host_ip}:5432/{dbname}",
                "--redis-url", f"redis://{host_ip}:6379/{REDIS_DB}", "--node-url", f"http://{node_ip}:8080",
                "--node-id", name, "--s3-bucket", bucket, "--s3-endpoint", f"http://{host_ip}:{s3_port}",
                "--base-url", lb], node_env)
        await asyncio.to_thread(rig.spawn, "haproxy", ["haproxy", "-db", "-f", str(ROOT / "deploy/haproxy.cfg")], {
            **os.environ, "ONEDOOR_LB_BIND": f"127.0.0.1:{lb_port}",
            "ONEDOOR_NODE_A": f"{nodes['node-a'][2]}:8080", "ONEDOOR_NODE_B": f"{nodes['node-b'][2]}:8080"})
        for name in nodes:  # through the balancer, pinned to each node in turn (`?node=`, deploy/haproxy.cfg)
            await wait_http(f"{lb}/healthz?node={name}", want=name)
        found = re.search(r"session (\d+)", demo.stdout)
        assert found is not None, demo.stdout
        yield Env(lb, re.findall(r"/join#(\S+)", demo.stdout), int(found.group(1)), db_url, key_dir, bucket,
                  f"http://127.0.0.1:{s3_port}", {n: f"http://{v[2]}:8080" for n, v in nodes.items()}, rig.procs)
    finally:
        await asyncio.to_thread(rig.close)
        addresses.close()
        async with admin.connect() as c:
            await c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        await admin.dispose()
        r = aioredis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
        keys = [key async for key in r.scan_iter("onedoor:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


def _make_bucket(endpoint: str, bucket: str) -> None:
    boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in AWS.items()
                                                 if k != "AWS_DEFAULT_REGION"},
                 region_name=AWS["AWS_DEFAULT_REGION"]).create_bucket(Bucket=bucket)


async def test_a_mediation_through_the_balancer(env: Env, tmp_path: Path) -> None:
    clients: list[SessionClient] = []
    bots: list[Bot] = []
    try:
        m = SessionClient(env.lb)
        clients.append(m)
        await m.login("mediator", DEMO_PASSWORD)
        await m.join_staff(env.session_id)
        clients += await join_and_attest(env.lb, m, env.tokens)
        owners = {c.node_id for c in clients[1:]}
        assert len(owners) == 1, owners  # every party was sent to the same node
        owner = owners.pop()
        assert owner in env.nodes
        assert all(c.node_url in (None, env.nodes[owner]) for c in clients)
        for c in clients:
            bots.append(Bot(c.pid, SocketIOChannel(c.sio)))
            await bots[-1].join()
        rid = (await m.call("recording:start", {}))["recording"]
        await asyncio.sleep(1.0)
        for b in bots:
            b.mark("joint")
        await asyncio.sleep(4.0)
        for b in bots:
            b.mark("joint:end")
        stopped = await m.call("recording:stop", {"reason": "负载均衡测试结束"})
        assert stopped["segments"] > 0
        for b in bots:  # media flowed from every participant to every other, straight to the owner
            got = b.delta("joint", "joint:end")
            for other in bots:
                if other is not b:
                    assert sum(v.get("packets", 0) for v in got.get(other.pid, {}).values()) > 0, (b.pid, other.pid)
        # the recording is in shared storage (S3): export it from here, with no node's local disk
        db = Database(env.db_url)
        try:
            storage = S3Storage(env.bucket, endpoint_url=env.s3, aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
                                region_name=AWS["AWS_DEFAULT_REGION"])
            res = await export(db, storage, KeyRing.load_or_create(env.key_dir), rid, tmp_path / "out.mkv",
                               actor="test", reason="balancer test")
        finally:
            await db.close()
        assert res.bytes > 0 and res.duration_ms > 2000 and len(res.streams) >= 2
    finally:
        for b in bots:
            await b.close()
        for c in clients:
            await c.close()
