"""Media through the real server: bots join over Socket.IO after the lobby, caucus is enforced by the hub (R7)."""

from __future__ import annotations

import asyncio

import pytest

from media.bots import Bot
from media.channels import SocketIOChannel
from media.hub import Hub
from signaling.client import ProtocolError
from tests.conftest import World
from tests.media.conftest import PC_SETUP_BLOCKS

# bots join over real peer connections: see PC_SETUP_BLOCKS in tests/media/conftest.py
pytestmark = PC_SETUP_BLOCKS


async def _until(pred, limit: float = 15) -> None:  # type: ignore[no-untyped-def]
    """Bots count in callbacks without an event to wait on: poll their counters."""
    async with asyncio.timeout(limit):
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.1)


@pytest.mark.timeout(90)
async def test_three_party_media_and_caucus_through_the_server(world: World) -> None:
    m, a, b = await world.trio()
    bots = {c.pid: Bot(c.pid, SocketIOChannel(c.sio)) for c in (m, a, b)}
    try:
        for bot in bots.values():
            await bot.join()
        assert all(ev["ice_servers"] == [] for ev in m.events["media:ice"])  # no public STUN by default
        pids = list(bots)
        await _until(lambda: all(bots[x].receiving_from(y) for x in pids for y in pids if x != y))
        for bot in bots.values():
            bot.mark("joint")
        await asyncio.sleep(1.5)
        for bot in bots.values():
            bot.mark("joint-end")

        await m.call("caucus:open", {"members": [m.pid, a.pid]})
        await b.wait(lambda c: c.state["caucus"]["active"] and not c.state["caucus"]["you_inside"])
        assert set(b.state["caucus"]["members"]) == {"张三", "mediator"}  # told who, never what
        await asyncio.sleep(1.0)  # frames in flight drain
        for bot in bots.values():
            bot.mark("caucus")
        await asyncio.sleep(2.0)
        for bot in bots.values():
            bot.mark("caucus-end")
        await m.call("caucus:close")
        await asyncio.sleep(1.0)
        for bot in bots.values():
            bot.mark("rejoined")
        await asyncio.sleep(2.0)
        for bot in bots.values():
            bot.mark("rejoined-end")

        def packets(who: str, frm: str, start: str, end: str) -> int:
            d = bots[who].delta(start, end).get(frm, {})
            return sum(v.get("packets", 0) for v in d.values())

        for x in pids:
            for y in pids:
                if x != y:
                    assert packets(x, y, "joint", "joint-end") > 0, (x, y)
                    assert packets(x, y, "rejoined", "rejoined-end") > 0, (x, y)
        assert packets(b.pid, a.pid, "caucus", "caucus-end") == 0
        assert packets(b.pid, m.pid, "caucus", "caucus-end") == 0
        assert packets(a.pid, b.pid, "caucus", "caucus-end") == 0
        assert packets(m.pid, b.pid, "caucus", "caucus-end") == 0
        assert packets(a.pid, m.pid, "caucus", "caucus-end") > 0
        assert packets(m.pid, a.pid, "caucus", "caucus-end") > 0

        # chat inside the caucus stays inside (R9)
        await m.call("caucus:open", {"members": [m.pid, b.pid]})
        await b.call("chat:send", {"text": "私下说"})
        await m.wait(lambda c: any(x["text"] == "私下说" for x in c.events["chat:message"]))
        await asyncio.sleep(0.3)
        assert not any(x["text"] == "私下说" for x in a.events["chat:message"])
    finally:
        for bot in bots.values():
            await bot.close()
    room = world.services.live.get(world.session_id)
    assert room is not None and isinstance(room.media, Hub)
    hub = room.media
    assert hub.stats()["peer_connections"] == 3
    assert all(p["publications"]["camera"]["decoded_frames"] == 0 for p in hub.stats()["participants"].values())
    await m.call("session:end")
    st = hub.stats()
    assert (st["peer_connections"], st["tasks"], st["queued_frames"]) == (0, 0, 0)
    assert world.services.live.get(world.session_id) is None


@pytest.mark.timeout(90)
async def test_lobby_camera_reaches_mediators_only_for_the_id_check(world: World) -> None:
    """R5 by online document comparison: a person in the lobby may show an ID on camera to the mediators; the
    lobby person receives nothing, and nobody else (parties, the recorder) sees them before admission."""
    m, b = await world.staff("mediator"), await world.party("B")
    await world.ready(b, "B")
    await m.call("lobby:admit", {"participant": b.pid})
    a = await world.party("A")
    bm, bb, ba = (Bot(c.pid, SocketIOChannel(c.sio)) for c in (m, b, a))
    try:
        for bot in (bm, bb, ba):
            await bot.join()
        await _until(lambda: bm.receiving_from(a.pid) and bm.receiving_from(b.pid) and bb.receiving_from(m.pid))
        for bot in (bm, bb, ba):
            bot.mark("lobby")
        await asyncio.sleep(1.5)
        for bot in (bm, bb, ba):
            bot.mark("lobby-end")

        def got(bot: Bot, frm: str) -> int:
            return sum(v.get("packets", 0) for v in bot.delta("lobby", "lobby-end").get(frm, {}).values())

        assert got(bm, a.pid) > 0  # the mediator sees the ID shown on camera
        assert got(bb, a.pid) == 0 and got(ba, m.pid) == 0 and got(ba, b.pid) == 0
        await m.call("identity:attest", {"participant": a.pid, "document": "居民身份证", "matched": True})
        for kind in ("notices", "online", "recording"):
            await a.call("lobby:consent", {"kind": kind, "granted": True})
        await m.call("lobby:admit", {"participant": a.pid})
        await _until(lambda: bb.receiving_from(a.pid) and ba.receiving_from(m.pid) and ba.receiving_from(b.pid))
    finally:
        for bot in (bm, bb, ba):
            await bot.close()


async def test_bad_sdp_and_unknown_media_events_leave_the_session_working(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    with pytest.raises(ProtocolError) as e:
        await a.call("media:audio-only", {"enabled": True})
    assert e.value.code == "not_admitted"
    await world.ready(a, "A")
    await m.call("lobby:admit", {"participant": a.pid})
    await a.call("media:join", {})
    with pytest.raises(ProtocolError) as e:
        await a.call("media:answer", {"sdp": "v=0 garbage"})
    assert e.value.code not in ("internal", "forbidden")
    with pytest.raises(ProtocolError) as e:
        await a.call("media:nonsense", {})
    assert e.value.code == "unknown_event"
    # the session still works: a bot joins and exchanges media with the mediator
    bm, ba = Bot(m.pid, SocketIOChannel(m.sio)), Bot(a.pid, SocketIOChannel(a.sio))
    try:
        await bm.join()
        await ba.join()
        await _until(lambda: bm.receiving_from(a.pid) and ba.receiving_from(m.pid))
    finally:
        await bm.close()
        await ba.close()
