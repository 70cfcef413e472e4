"""Liveness on a real hub (issue 15 item 4): the live session keeps a dropped participant's media for its grace
period and removes it afterwards; a reconnect cancels the timer; `media:renegotiate` sends an outstanding offer
again (the client may have missed it while its signaling connection was down). The network version of this is
tests/netem/test_reconnect.py."""

from __future__ import annotations

import asyncio

import pytest

from mediation.live import LiveSession, Presence
from mediation.permissions import SessionRole
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until

pytestmark = [pytest.mark.timeout(60), PC_SETUP_BLOCKS]


def _presence(pid: str) -> Presence:
    return Presence(pid, SessionRole.PARTY, pid, admitted=True)


async def test_grace_period_keeps_then_removes_media_and_a_reconnect_cancels_it(make_session) -> None:
    session = make_session()
    live = LiveSession(1, "C-1", 1, grace=0.6)
    live.media = session.hub
    for pid in ("a", "b"):
        live.connect(_presence(pid))
        await session.join(pid, video=False)
    await wait_until(lambda: session.bots["a"].receiving_from("b", ("audio",)), within=15)

    await live.leave("b", grace=True)
    assert live.people["b"].reconnecting and not live.people["b"].connected
    assert "b" in [p.pid for p in live.admitted()] and live.people["b"].public()["reconnecting"] is True
    live.connect(_presence("b"))  # back within the grace period: nothing is removed
    await asyncio.sleep(1.0)
    assert "b" in session.hub.stats()["participants"] and not live.people["b"].reconnecting

    await live.leave("b", grace=True)
    assert "b" in session.hub.stats()["participants"]  # kept while the timer runs
    await wait_until(lambda: "b" not in session.hub.stats()["participants"], within=10)
    assert not live.people["b"].reconnecting and "b" not in [p.pid for p in live.admitted()]

    await live.leave("a")  # closed on purpose: at once
    assert "a" not in session.hub.stats()["participants"]
    await live.close()


async def test_close_cancels_the_grace_timers(make_session) -> None:
    session = make_session()
    live = LiveSession(1, "C-1", 1, grace=0.3)
    live.media = session.hub
    live.connect(_presence("a"))
    await session.join("a", audio=True, video=False)
    await live.leave("a", grace=True)
    await live.close()
    await asyncio.sleep(0.6)
    assert "a" in session.hub.stats()["participants"] and live.people["a"].reconnecting


async def test_renegotiate_sends_the_outstanding_offer_again(make_session) -> None:
    session = make_session()
    hub, sent = session.hub, session.router.sent
    await hub.add("x", {"name": "x"})  # a client whose offer push is lost: nobody answers it
    assert await hub.handle("x", "media:join", {}) == {"ok": True}
    assert sent.count(("x", "media:offer")) == 1
    ack = await hub.handle("x", "media:renegotiate", {})
    assert ack == {"ok": True, "pending": True}
    assert sent.count(("x", "media:offer")) == 2  # the same offer again (it still waits for its answer)
    assert hub.stats()["participants"]["x"]["offers"] == 1
