"""Node loss (issue 14 item 4): the owner of a recorded session, with a caucus open, is killed with SIGKILL.

The balancer rig of tests/cluster/test_balancer.py (two namespaced `onedoor serve` nodes, HAProxy, shared
PostgreSQL, Redis and moto S3). The clients rejoin on their own through the balancer (SessionClient(rejoin=True))
and are sent to the other node, which takes the lease (the dead node's heartbeat goes stale after 5 s) and restores
the session from the durable record: admissions, the open caucus, and the recording, continued as its next part,
and so is the caucus's separate privileged recording (the center records caucuses, R9).
After the stop, the lost node's streams are in S3 up to its last stored segment, the signed manifest covers both
parts and verifies, and the export plays them in order with the gap marked.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from playwright.async_api import WebSocket, async_playwright, expect
from sqlalchemy import select, update

from media.bots import Bot
from media.channels import SocketIOChannel
from mediation.db import Database
from mediation.keyring import KeyRing
from mediation.models import Center
from mediation.recording_records import Recording, RecordingEvent, RecordingStream
from recordings.export import export
from recordings.recover import recover
from recordings.storage import S3Storage
from signaling.cli_server import DEMO_PASSWORD
from signaling.client import SessionClient, join_and_attest
from tests.cluster.test_balancer import AWS, REDIS_DB, Env, env  # noqa: F401  (env: the rig's fixture)
from tests.media.conftest import PC_SETUP_BLOCKS
from tests.web.helpers import CHROMIUM, FLAGS

pytestmark = [PC_SETUP_BLOCKS, pytest.mark.slow, pytest.mark.timeout(240)]


def media_from(bot: Bot, other: Bot, start: str, end: str) -> int:
    return sum(v.get("packets", 0) for v in bot.delta(start, end).get(other.pid, {}).values())


async def owner_of(session_id: int) -> str | None:
    r = aioredis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    try:
        raw = await r.get(f"onedoor:lease:{session_id}")
    finally:
        await r.aclose()
    return (raw.decode() if isinstance(raw, bytes) else str(raw)).rpartition("|")[0] if raw else None


async def test_owner_killed_while_recording(env: Env, tmp_path: Path) -> None:  # noqa: F811
    clients: list[SessionClient] = []
    bots: list[Bot] = []
    db = Database(env.db_url)
    async with db.session() as s:  # the center records caucuses separately (privileged, R9)
        await s.execute(update(Center).values(record_caucus=True))
    try:
        m = SessionClient(env.lb, rejoin=True)
        clients.append(m)
        await m.login("mediator", DEMO_PASSWORD)
        await m.join_staff(env.session_id)
        parties = []
        for token in env.tokens:
            c = SessionClient(env.lb, rejoin=True)
            clients.append(c)
            parties.append(c)
            await c.join_invite(token)
            for kind in ("notices", "online", "recording"):
                await c.call("lobby:consent", {"kind": kind, "granted": True})
            await m.call("identity:attest", {"participant": c.pid, "document": "居民身份证", "matched": True})
        await m.call("lobby:admit-all")
        a = parties[0]
        old = a.node_id
        assert old in env.nodes and await owner_of(env.session_id) == old
        for c in clients:
            bot = Bot(c.pid, SocketIOChannel(c.sio))
            bots.append(bot)
            c.on_rejoined.append(bot.join)  # a new peer connection with the new owner's hub
            await bot.join()
        bm, ba, bb = bots
        rid = (await m.call("recording:start", {}))["recording"]
        await m.call("caucus:open", {"members": [m.pid, a.pid]})
        await asyncio.sleep(3.0)

        killed = time.monotonic()
        env.procs[old].send_signal(signal.SIGKILL)
        survivor = next(n for n in env.nodes if n != old)
        async with asyncio.timeout(45):
            while await owner_of(env.session_id) != survivor:  # noqa: ASYNC110  (another process's key)
                await asyncio.sleep(0.1)
        taken = time.monotonic() - killed
        for c in clients:
            await c.wait(lambda c: bool(c.events["rejoined"]), limit=45)
        rejoined = time.monotonic() - killed
        print(f"failover: lease on {survivor} {taken:.1f} s after SIGKILL, everyone rejoined at {rejoined:.1f} s")
        assert taken < 10.0, taken  # lease expiry / stale heartbeat 5 s, then the next join places it again
        assert all(c.node_id == survivor for c in parties)
        # the durable state came back: admissions, the caucus, the recording
        for c in clients:
            await c.wait(lambda c: c.state.get("you", {}).get("admitted") is True, limit=15)
        await m.wait(lambda c: c.state.get("recording") == "running", limit=15)
        members = sorted([m.pid, a.pid])  # shown once both are back (a push follows each one's rejoin)
        await m.wait(lambda c: sorted((c.state.get("caucus") or {}).get("member_ids", [])) == members, limit=15)
        await asyncio.sleep(2.0)
        for bot in bots:
            bot.mark("after")
        await asyncio.sleep(3.0)
        for bot in bots:
            bot.mark("after:end")
        assert media_from(bm, ba, "after", "after:end") > 0 and media_from(ba, bm, "after", "after:end") > 0
        assert media_from(bb, ba, "after", "after:end") == 0  # the restored caucus still keeps B out
        await m.call("caucus:close")
        stopped = await m.call("recording:stop", {"reason": "节点故障测试结束"})
        assert stopped["segments"] > 0
    finally:
        for bot in bots:
            await bot.close()
        for c in clients:
            await c.close()

    try:
        async with db.session() as s:
            privileged = (await s.scalars(select(Recording.id).where(
                Recording.session_id == str(env.session_id), Recording.privileged.is_(True)))).all()
            assert len(privileged) == 1, privileged  # the caucus's recording, one recording in two parts
            caucus_streams = (await s.scalars(select(RecordingStream).where(
                RecordingStream.recording_id == privileged[0]))).all()
            caucus_kinds = [e.kind for e in (await s.scalars(select(RecordingEvent).where(
                RecordingEvent.recording_id == privileged[0]).order_by(RecordingEvent.id))).all()]
            streams = (await s.scalars(select(RecordingStream).where(RecordingStream.recording_id == rid))).all()
            kinds = [e.kind for e in (await s.scalars(select(RecordingEvent).where(
                RecordingEvent.recording_id == rid).order_by(RecordingEvent.id))).all()]
        assert kinds.count("node_lost") == 1 and kinds.count("continued") == 1, kinds
        assert caucus_kinds.count("node_lost") == 1 and caucus_kinds.count("continued") == 1, caucus_kinds
        assert {x.part for x in caucus_streams} >= {0} and any(x.part > 0 for x in caucus_streams), [
            (x.stream_id, x.part, x.segments) for x in caucus_streams]
        first = [x for x in streams if x.part == 0]
        later = [x for x in streams if x.part > 0]
        assert first and later, [(x.stream_id, x.status, x.segments) for x in streams]
        assert all(x.segments > 0 for x in first)  # the lost node's media up to its last fsync
        storage = S3Storage(env.bucket, endpoint_url=env.s3, aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"], region_name=AWS["AWS_DEFAULT_REGION"])
        keys = KeyRing.load_or_create(env.key_dir)
        checked = {r.recording_id: r for r in await recover(db, storage, keys)}
        for r in (rid, privileged[0]):  # each signed manifest covers both parts
            assert r in checked and checked[r].status == "ok", checked.get(r)
        res = await export(db, storage, keys, rid, tmp_path / "out.mp4", actor="test", reason="failover test")
        assert len(res.gaps) == 1 and res.gaps[0][1] > res.gaps[0][0], res.gaps
        assert res.bytes > 0 and res.duration_ms > 8000
        playable = {x.stream_id for x in first if x.status == "complete" or x.segments >= 2}
        assert playable and set(res.streams) >= playable | {x.stream_id for x in later}
    finally:
        await db.close()


REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]


def _redis_up() -> bool:
    return subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True,
                          timeout=5).stdout.strip() == "PONG"


def _restart_redis() -> None:
    """The machine's own start command (docs of this machine: python-svc.md); waits until it answers."""
    if not _redis_up():
        subprocess.run(REDIS_START, check=True, capture_output=True, timeout=20)
    deadline = time.monotonic() + 20
    while not _redis_up() and time.monotonic() < deadline:
        time.sleep(0.1)


async def join_status(url: str, token: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(f"{url}/api/join", json={"token": token}) as r:
        return r.status, str((await r.json()).get("error", {}).get("code", ""))


async def test_redis_restart_keeps_sessions_and_answers_503(env: Env) -> None:  # noqa: F811
    if shutil.which("redis-cli") is None or shutil.which("redis-server") is None:
        pytest.skip("no redis-cli/redis-server to restart Redis with")
    clients: list[SessionClient] = []
    bots: list[Bot] = []
    try:
        m = SessionClient(env.lb)
        clients.append(m)
        await m.login("mediator", DEMO_PASSWORD)
        await m.join_staff(env.session_id)
        clients += await join_and_attest(env.lb, m, env.tokens[:1])
        for c in clients:
            bots.append(Bot(c.pid, SocketIOChannel(c.sio)))
            await bots[-1].join()
        await m.call("recording:start", {})
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", "6379", "shutdown", "nosave"],
                                    capture_output=True, timeout=10)
            for b in bots:
                b.mark("out")
            await asyncio.sleep(2.5)
            status, code = await join_status(env.lb, env.tokens[1])
            assert (status, code) == (503, "unavailable")  # a clear 503 while Redis is away
            for b in bots:
                b.mark("out:end")
            for b in bots:  # the running session's media went on meanwhile
                other = next(x for x in bots if x is not b)
                assert media_from(b, other, "out", "out:end") > 0
        finally:
            await asyncio.to_thread(_restart_redis)
        async with asyncio.timeout(30):  # back without restarting any node
            while (await join_status(env.lb, env.tokens[1]))[0] != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.3)
        await m.call("recording:pause", {"reason": "Redis 重启后"}, limit=15)  # fenced: the lease was retaken
        await m.wait(lambda c: c.state.get("recording") == "paused", limit=15)  # pushed through Redis again
        await m.call("recording:stop", {"reason": "结束"})
    finally:
        for b in bots:
            await b.close()
        for c in clients:
            await c.close()
        await asyncio.to_thread(_restart_redis)


@pytest.mark.browser
async def test_the_pages_through_the_balancer_reach_the_owner_and_rejoin_after_its_loss(env: Env) -> None:  # noqa: F811
    """The mediator's console (laptop size) and the party's own page (phone size), real Chromium through HAProxy:
    each page's Socket.IO asks the balancer for the owner (the party's first connection already: its join answer
    names the node; a `wrong_node` refusal would have spent its challenge). When the owner is killed, both pages
    rejoin by themselves: the survivor owns the session, both people are admitted again from the durable record,
    and each page's new peer connection reaches the survivor's hub."""
    sockets: dict[str, list[str]] = {"console": [], "party": []}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            pages = {}
            for who, (width, height) in (("console", (1366, 768)), ("party", (390, 844))):
                ctx = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
                page = pages[who] = await ctx.new_page()
                page.set_default_timeout(20_000)
                page.on("websocket", functools.partial(_note_socket, sockets[who]))
            med, party = pages["console"], pages["party"]
            await med.goto(f"{env.lb}/console")
            await med.fill("#username", "mediator")
            await med.fill("#password", DEMO_PASSWORD)
            await med.get_by_role("button", name="登录").click()
            await expect(med.get_by_role("heading", name="案件列表")).to_be_visible()
            await med.evaluate(f"location.hash = '#/session/{env.session_id}'")
            await party.goto(f"{env.lb}/join#{env.tokens[0]}")
            await expect(party.locator("[data-step=identity]")).to_be_visible()
            await party.click("#attest-start")  # the mediator checks the ID
            await expect(party.locator("[data-step=notices]")).to_be_visible()
            await party.check("#ack")
            await party.get_by_role("button", name="继续").click()
            await party.locator("[data-consent=online] input[value=yes]").check()
            await party.locator("[data-consent=recording] input[value=yes]").check()
            await party.get_by_role("button", name="确认并进入等候").click()
            await expect(party.locator("[data-step=lobby]")).to_be_visible()
            await med.locator("#lobby li.lobby-person").get_by_role("button", name="证件与本人一致").click()
            await expect(med.locator("#lobby li[data-ready=true]")).to_have_count(1)
            await med.click("#admit-all")
            connected = ("() => { const o = window.__onedoor; return !!(o.state && o.state.you && o.state.you.admitted"
                         " && o.pc && o.pc.connectionState === 'connected'); }")
            for page in (med, party):
                await page.wait_for_function(connected)
                await page.evaluate("window.__firstPc = window.__onedoor.pc")
            old = await owner_of(env.session_id)
            assert old is not None
            assert sockets["party"] and f"node={old}" in sockets["party"][0], (old, sockets)
            # (the console's first connection goes wherever the balancer sends it, and follows a `wrong_node` once)

            env.procs[old].send_signal(signal.SIGKILL)
            survivor = next(n for n in env.nodes if n != old)
            for page in (med, party):
                await page.wait_for_function("() => window.__onedoor.pc && window.__onedoor.pc !== window.__firstPc",
                                             timeout=60_000)
                await page.wait_for_function(connected, timeout=30_000)
            assert await owner_of(env.session_id) == survivor
            assert await party.evaluate("window.__onedoor.rejoins") >= 1
            assert await party.evaluate("window.__onedoor.view") == "session"
            # the party's new join named the survivor; the console asks again for the node it knew, which the
            # balancer no longer sends anything to (its health check marked it down): either way, the survivor
            assert f"node={survivor}" in sockets["party"][-1], sockets
        finally:
            await browser.close()


def _note_socket(urls: list[str], ws: WebSocket) -> None:
    urls.append(ws.url)
