"""`onedoor simulate --server URL --server URL` (issue 14 item 8): the whole mediation against two running nodes
(tests/cluster/test_balancer.py's rig: namespaced `onedoor serve` nodes, shared PostgreSQL, Redis and S3), each
participant entering through the next address in turn; the summary names the node that owned the session."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.test_balancer import AWS, ROOT, Env, env  # noqa: F401  (env: the rig's fixture)
from tests.media.conftest import PC_SETUP_BLOCKS

pytestmark = [PC_SETUP_BLOCKS, pytest.mark.slow, pytest.mark.timeout(300)]


async def test_simulate_against_two_running_nodes(env: Env, tmp_path: Path) -> None:  # noqa: F811
    servers = [env.nodes["node-a"], env.nodes["node-b"]]
    cmd = [sys.executable, "-m", "signaling.cli", "simulate", "--json", "--participants", "3", "--seconds", "4.5",
           *(x for url in servers for x in ("--server", url)),
           "--database-url", env.db_url, "--key-dir", str(env.key_dir), "--data-dir", str(tmp_path / "sim"),
           "--s3-bucket", env.bucket, "--s3-endpoint", env.s3, "--out", str(tmp_path / "out")]
    (tmp_path / "out").mkdir()
    r = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=240, cwd=ROOT,
                                env={**os.environ, **AWS})
    logs = "".join(f"\n--- {n}.log (tail)\n" + (tmp_path / f"{n}.log").read_text(errors="replace")[-3000:]
                   for n in env.nodes if (tmp_path / f"{n}.log").exists())
    assert r.returncode == 0, r.stderr[-4000:] + r.stdout[-2000:] + logs
    summary = json.loads(r.stdout)
    assert summary["ok"] is True
    assert summary["servers"] == servers
    node = summary["node"]
    assert node["id"] in env.nodes and node["url"] == env.nodes[node["id"]] and node["agreed"] is True
    # the mediator entered through the first address, the parties through the second and then the first again
    assert list(summary["entered"].values()) == [servers[0], servers[1], servers[0]]
    rec = summary["recording"]
    assert rec["export_bytes"] > 0 and rec["export_seconds"] > 2 and len(rec["export_streams"]) >= 3
    for pid, bot in summary["bots"].items():  # media flowed in the joint phase to every bot from every other
        got = bot["phases"]["joint"]
        assert all(sum(v.get("packets", 0) for v in got.get(other, {}).values()) > 0
                   for other in summary["bots"] if other != pid), (pid, got)
    assert summary["verify"]["ok"] is True and summary["transcript"]
    # a screen shared during the recording on the owning node: recorded as its own source, in the bundle, verified
    assert rec["screen_streams"] and summary["screen"]["frames_sent"] > 0
    assert summary["bundle_contents"]["recordings"][0]["screen_streams"] == rec["screen_streams"]
    assert summary["verify"]["shared_screens"], summary["verify"]
