"""`onedoor simulate`: a whole mediation with synthetic participants through the real server and protocol.

A server starts in-process on 127.0.0.1 (ephemeral port); a mediator and N-1 parties join over HTTP and
Socket.IO, pass the identity check (one-time codes from an in-memory sender), consent, are admitted, publish
pre-encoded VP8 + Opus (media/bots.py), are recorded (the mediator shares a screen meanwhile: recorded as its own source, in the bundle, reported by
the offline verification), hold a caucus with side A, return to the joint session,
and leave the media. A party uploads a photo of an IOU into the case file and shows it; the mediator writes the
electronic transcript as they go (one entry inside the caucus), closes it for review, and every party confirms
it with its device key (signaling/simulate_casefile.py). Then they agree, sign, apply, and a judge bot confirms
(signaling/simulate_court.py). The JSON summary gives what each bot sent and received per phase, the recording's
export, the document and the transcript, the agreement, the ruling, the evidence bundle's path (under --out, else
the data directory, else var/simulate), what it carries, and its offline verification.

`--server URL` (repeatable) runs the same mediation against nodes that are already running instead (issue 14
item 8): the simulator shares their database, key directory and recording storage (`--database-url`,
`--key-dir`, `--s3-bucket`/`--s3-endpoint`, as `onedoor demo` does) to create the case and to export and verify
afterwards, and every participant enters through the next address in turn (the mediator through the first);
a node that does not own the session sends them to the one that does. The identity check is the mediator's
attestation (the nodes' one-time codes go to their own sender). The summary names the owning node and where
each participant entered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from media.bots import Bot
from media.channels import SocketIOChannel
from media.fixtures import video_clip
from mediation import schema
from mediation.identity import MemoryCodeSender
from recordings.export import export
from recordings.sources import screen_owner
from signaling.app import create_app
from signaling.cli_server import DEMO_PASSWORD, make_demo
from signaling.client import SessionClient
from signaling.config import Settings
from signaling.services import SERVICES, Services
from signaling.simulate_casefile import close_and_confirm, upload_photo, write
from signaling.simulate_court import agree_and_confirm

log = logging.getLogger(__name__)


def simulate(a: argparse.Namespace) -> int:
    if not 3 <= a.participants <= 9:
        raise SystemExit("--participants must be between 3 and 9")
    if getattr(a, "server", None) and not (a.database_url and a.key_dir):
        raise SystemExit("--server needs the nodes' --database-url and --key-dir (and --s3-bucket if they use S3)")
    if a.json:
        logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="onedoor-sim-") as tmp:
        data_dir = Path(a.data_dir) if a.data_dir != "var/data" else Path(tmp) / "data"
        out_dir = Path(a.out) if a.out else data_dir / "bundles" if a.data_dir != "var/data" else Path("var/simulate")
        servers = [u.rstrip("/") for u in (getattr(a, "server", None) or [])]
        settings = Settings(data_dir=data_dir, key_dir=Path(a.key_dir) if a.key_dir else None,
                            database_url=a.database_url, code_sender=MemoryCodeSender(), port=0,
                            s3_bucket=getattr(a, "s3_bucket", None), s3_endpoint=getattr(a, "s3_endpoint", None),
                            base_url=servers[0] if servers else None)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if servers:  # the nodes' database: they (`onedoor db upgrade`) own its schema
            summary = asyncio.run(run_against(settings, servers, a.participants, a.seconds, Path(tmp), out_dir))
        else:
            schema.upgrade(settings.db_url)
            summary = asyncio.run(run(settings, a.participants, a.seconds, Path(tmp), out_dir))
    print(json.dumps(summary, ensure_ascii=False, indent=None if a.json else 2))
    return 0 if summary["ok"] else 1


async def run(settings: Settings, participants: int, seconds: float, workdir: Path, out_dir: Path | None = None
              ) -> dict[str, Any]:
    """The mediation against a server started here, in-process, on an ephemeral port."""
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings.base_url = base = f"http://127.0.0.1:{port}"
    try:
        return await mediation(app[SERVICES], [base], participants, seconds, workdir, out_dir, remote=False)
    finally:
        await runner.cleanup()


async def run_against(settings: Settings, servers: list[str], participants: int, seconds: float, workdir: Path,
                      out_dir: Path | None = None) -> dict[str, Any]:
    """The mediation against running nodes (`--server`): this process serves nothing; it shares their database,
    keys and recording storage for the demo case, the export and the verification."""
    sv = Services.build(settings)
    try:
        return await mediation(sv, servers, participants, seconds, workdir, out_dir, remote=True)
    finally:
        await sv.db.close()


async def mediation(sv: Services, servers: list[str], participants: int, seconds: float, workdir: Path,
                    out_dir: Path | None, *, remote: bool) -> dict[str, Any]:
    """The whole mediation through `servers` (participants enter through each in turn, the mediator first);
    `remote`: the servers are other processes (no code sender here: the mediator attests identities)."""
    base = servers[0]
    clients: list[SessionClient] = []
    bots: dict[str, Bot] = {}
    try:
        demo = await make_demo(sv, parties=participants - 1)
        mediator = SessionClient(base)
        clients.append(mediator)
        await mediator.login("mediator", DEMO_PASSWORD)
        await mediator.join_staff(demo["session"])
        entered = {mediator.pid: base}
        parties = await _lobby(sv, servers, demo["invites"], clients, mediator if remote else None)
        entered.update({c.pid: c.base_url for c in parties})
        await mediator.call("lobby:admit-all")
        everyone = [mediator, *parties]
        for c in everyone:
            bots[c.pid] = Bot(c.pid, SocketIOChannel(c.sio))
            await bots[c.pid].join()
        phase = seconds / 3
        await _phase(bots, "joint", phase)
        rec = (await mediator.call("recording:start", {}))["recording"]
        screen = await _share_screen(bots, mediator.pid, phase)
        photo = await upload_photo(parties[0], [mediator, *parties[1:]])
        await write(mediator, parties[0], "我方出示借条照片一张，借款金额两千六百元。")
        await write(mediator, parties[1], "对借条的真实性没有异议。")
        side_a = [c.pid for c in parties if c.info.get("name") in demo_names(demo, "A")]
        await mediator.call("caucus:open", {"members": [mediator.pid, *side_a]})
        await write(mediator, None, "（背靠背）A方表示可以接受分期履行。")
        await _quiet_across(bots, {mediator.pid, *side_a})
        await _phase(bots, "caucus_side_a", phase)
        await mediator.call("caucus:close")
        await write(mediator, None, "双方同意按调解协议约定修复并赔偿。")
        await _phase(bots, "joint_again", phase)
        await mediator.call("recording:stop", {"reason": "模拟结束"})
        for bot in bots.values():
            await bot.leave()
        transcript = await close_and_confirm(mediator, parties)
        out = workdir / "export.mkv"
        res = await export(sv.db, sv.storage, sv.keys, rec, out, actor="simulate", reason="simulation check")
        court = await agree_and_confirm(sv, base, demo["case"], mediator, parties, clients, out_dir or workdir)
        await mediator.call("session:end", {"reason": "模拟结束"})
        summary: dict[str, Any] = {
            "ok": court["verify"]["ok"], "case": demo["case"], "session": demo["session"], **court,
            "recording": {"id": rec, "export_bytes": res.bytes, "export_seconds": res.duration_ms / 1000,
                          "export_streams": res.streams, "screen_streams": screen_streams(res.streams)},
            "screen": screen,
            "caucus": {"members": [mediator.pid, *side_a]},
            "documents": [photo], "transcript": transcript,
            "bots": {pid: {"sent": b.sent(), "phases": {p: b.delta(p, p + ":end") for p in
                                                        ("joint", "caucus_side_a", "joint_again")}}
                     for pid, b in bots.items()},
        }
        if remote:
            summary["servers"] = servers
            summary["node"] = _owner(parties)
            summary["entered"] = entered
        return summary
    finally:
        for bot in bots.values():
            await bot.close()
        for c in clients:
            await c.close()


async def _share_screen(bots: dict[str, Bot], by: str, seconds: float) -> dict[str, Any]:
    """`by` shares a screen (1280x720, as a page with getDisplayMedia) while everyone is in the joint session and
    the recording runs, until every other bot receives it and a while longer; then stops sharing."""
    clip = await asyncio.to_thread(video_clip, width=1280, height=720, fps=15, bitrate=600_000)  # encoded once
    bot = bots[by]
    await bot.share_screen(clip)
    others = [b for pid, b in bots.items() if pid != by]
    try:
        async with asyncio.timeout(30):
            while not all(b.receiving_from(by, ("screen",)) for b in others):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        log.warning("the shared screen did not reach every bot within 30 s")
    await asyncio.sleep(max(1.0, min(3.0, seconds)))
    sent = bot.screen_track.frames_sent if bot.screen_track is not None else 0
    await bot.stop_screen()
    return {"by": by, "frames_sent": sent,
            "received_by": {pid: b.received[(by, "screen")].frames if (by, "screen") in b.received else 0
                            for pid, b in bots.items() if pid != by}}


def screen_streams(stream_ids: list[str]) -> list[str]:
    """The shared-screen streams among a recording's (`<participant>.screen.<part>`, recordings.sources)."""
    return sorted(sid for sid in stream_ids if screen_owner(sid.rsplit(".", 1)[0]) is not None)


def _owner(parties: list[SessionClient]) -> dict[str, Any] | None:
    """The node that owned the session: named by the join answers (every party was sent to the same one)."""
    named = {(str(n.get("id")), str(n.get("url"))) for c in parties
             if isinstance(n := c.info.get("node"), dict)}
    if not named:
        return None  # a single server (no cluster): it owned the session
    node_id, url = sorted(named)[0]
    return {"id": node_id, "url": url, "agreed": len(named) == 1}


def demo_names(demo: dict[str, Any], side: str) -> set[str]:
    # make_demo alternates sides: even positions are side A
    return {i["name"] for n, i in enumerate(demo["invites"]) if "AB"[n % 2] == side}


async def _lobby(sv: Services, servers: list[str], invites: list[dict[str, Any]], clients: list[SessionClient],
                 attester: SessionClient | None) -> list[SessionClient]:
    """Each party joins through the next address in turn (after the mediator's), passes the identity check (the
    one-time code from this process's sender, or with `attester` the mediator's attestation) and consents."""
    sender = sv.settings.code_sender
    out = []
    for n, inv in enumerate(invites):
        c = SessionClient(servers[(n + 1) % len(servers)])
        clients.append(c)
        await c.join_invite(inv["token"])
        if attester is None:
            assert isinstance(sender, MemoryCodeSender)
            await c.call("identity:start", {"method": "otp"})
            await c.call("identity:answer", {"code": sender.sent[f"invite:{inv['invite_id']}"]})
        for kind in ("notices", "online", "recording"):
            await c.call("lobby:consent", {"kind": kind, "granted": True})
        if attester is not None:
            await attester.call("identity:attest", {"participant": c.pid, "document": "居民身份证", "matched": True})
        out.append(c)
    return out


async def _quiet_across(bots: dict[str, Bot], members: set[str], within: float = 10.0) -> None:
    """Before a caucus phase is counted: what was in flight across its line when it opened (in the hub's and the
    bots' socket buffers; on a busy machine a bot reads them seconds late) has arrived, i.e. no packet has crossed
    it for 0.5 s. The hub stops forwarding at once; a leak would go on, and after `within` it is counted."""
    def crossing() -> int:
        return sum(counts["packets"] for who, b in bots.items() for frm, sources in b.snapshot().items()
                   if (who in members) != (frm in members) for counts in sources.values())
    deadline, last, since = time.monotonic() + within, crossing(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < 0.5:
        await asyncio.sleep(0.1)
        now = crossing()
        if now != last:
            last, since = now, time.monotonic()


async def _phase(bots: dict[str, Bot], name: str, seconds: float) -> None:
    await asyncio.sleep(min(1.0, seconds / 3))  # let routing changes settle before counting
    for b in bots.values():
        b.mark(name)
    await asyncio.sleep(seconds)
    for b in bots.values():
        b.mark(name + ":end")
