"""Two nodes in one test process, sharing the database, keys and the local Redis (each its own live sessions and
ClusterNode): a party who asks either node to join is sent to the session's owner, the mediator who connects to
the other node is refused with `wrong_node` and follows; /metrics shows the placement figures; draining a node
sends new sessions elsewhere; a Redis outage answers joins with 503 and the running session goes on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from mediation import audit
from mediation.errors import OneDoorError
from mediation.notices import NOTICE, NOTICE_DELIVERED, Notice
from signaling.app import PUBLISHER, SIO, create_app
from signaling.config import Settings
from signaling.services import SERVICES, Services
from tests.cluster.test_metrics import free_port, scrape
from tests.conftest import World, seed

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    r = aioredis.from_url(REDIS)
    try:
        await r.ping()
    except OSError:
        await r.aclose()
        pytest.skip("no local Redis on 127.0.0.1:6379")
    p = f"onedoor-test-{uuid.uuid4().hex[:8]}:"
    yield p
    keys = [k async for k in r.scan_iter(f"{p}*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


async def start_node(aiohttp_server: Any, settings: Settings, name: str, prefix: str, channel: str
                     ) -> tuple[web.Application, str, int]:
    port, mport = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    st = dataclasses.replace(settings, redis_url=REDIS, node_url=url, node_id=name, metrics_port=mport,
                             lease_ms=1500)
    sv = Services.build(st)
    app = create_app(st, services=sv)
    assert sv.cluster is not None
    sv.cluster.store.p = prefix  # isolate this test's keys
    app[SIO].manager.channel = channel
    await aiohttp_server(app, port=port)
    return app, url, mport


Node = tuple[web.Application, str, int]  # the app, its URL, its metrics port


async def two_nodes(aiohttp_server: Any, settings: Settings, prefix: str) -> tuple[dict[str, Node], World]:
    """Nodes n1 and n2 on one Redis channel, and the seeded world entering through n1."""
    channel = f"onedoor-test-{uuid.uuid4().hex[:8]}"
    nodes = {name: await start_node(aiohttp_server, settings, name, prefix, channel) for name in ("n1", "n2")}
    sv = nodes["n1"][0][SERVICES]
    seeded = await seed(sv)
    return nodes, World(nodes["n1"][1], sv, seeded["case"], seeded["session"], seeded["tokens"], seeded["ids"])


async def test_clients_end_up_on_the_owner(aiohttp_server: Any, settings: Settings, prefix: str) -> None:
    nodes, w = await two_nodes(aiohttp_server, settings, prefix)
    (app1, url1, m1), (app2, url2, m2) = nodes["n1"], nodes["n2"]
    try:
        a = await w.party("A")  # asks node 1
        owner = a.info["node"]
        assert owner["id"] in ("n1", "n2") and a.node_id == owner["id"]
        other_url = url2 if owner["id"] == "n1" else url1
        owner_app = app1 if owner["id"] == "n1" else app2
        other_app = app2 if owner["id"] == "n1" else app1
        w.base_url = other_url  # the mediator and party B come in through the other node
        m = await w.staff("mediator")
        b = await w.party("B")
        assert m.node_url == owner["url"] or (m.node_url is None and other_url == owner["url"])
        assert owner_app[SERVICES].live.get(w.session_id) is not None
        assert other_app[SERVICES].live.get(w.session_id) is None
        await w.ready(a, "A")
        await w.ready(b, "B")
        await m.call("lobby:admit-all")
        for c in (a, b):
            await c.wait(lambda c: c.state.get("you", {}).get("admitted") is True)
        got = await scrape(f"http://127.0.0.1:{m1 if owner['id'] == 'n1' else m2}/metrics")
        assert got["onedoor_live_sessions"] == 1
        assert got["onedoor_node_owned_sessions"] == 1
        assert got[f"onedoor_node_info{{node={owner['id']}}}{{url={owner['url']}}}"] == 1
        # drain the owner: the running session stays, a new session would go to the other node
        cluster = owner_app[SERVICES].cluster
        assert cluster is not None
        await cluster.store.set_draining(owner["id"], True)
        await cluster.tick()
        placed = await other_app[SERVICES].cluster.where(999_999)  # type: ignore[union-attr]
        assert placed.lease.node_id != owner["id"]
        assert (await other_app[SERVICES].cluster.where(w.session_id)).lease.node_id == owner["id"]  # type: ignore[union-attr]
    finally:
        for c in w.clients:
            await c.close()


async def test_redis_unreachable_answers_503(aiohttp_server: Any, settings: Settings, prefix: str) -> None:
    port = free_port()
    st = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0", node_url=f"http://127.0.0.1:{port}",
                             node_id="lonely")
    app = create_app(st)
    await aiohttp_server(app, port=port)
    seeded = await seed(app[SERVICES])
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}/api/join", json={"token": seeded["tokens"]["A"]}) as r:
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "unavailable"


async def test_what_one_node_serves_reaches_the_owners_people(aiohttp_server: Any, settings: Settings,
                                                               prefix: str) -> None:
    """HTTP is served by whichever node the balancer chose; the session's people are connected to its owner. A
    change made through the other node reaches them there (signaling/publish.py `tell_nodes`, over Redis): the
    agreement's new state, a notice to the parties (recorded once, and its delivery by the owner), and a reissued
    link (whoever holds the old one leaves the owner's session; the new link starts over in the lobby)."""
    nodes, w = await two_nodes(aiohttp_server, settings, prefix)
    try:
        m, a, b = await w.trio()
        owner_id = a.info["node"]["id"]
        other_app, other_url, _ = nodes["n2" if owner_id == "n1" else "n1"]
        owner_sv = nodes[owner_id][0][SERVICES]
        w.base_url = m.base_url = other_url  # the HTTP calls and the new link below go through the other node
        assert other_app[SERVICES].live.get(w.session_id) is None
        # the agreement drafted through the other node: the admitted people see it at the owner
        await m.api("POST", f"/api/cases/{w.case_code}/agreement", {"template": "neighbours"})
        for c in (m, a, b):
            await c.wait(lambda c: bool(c.events["agreement:state"]))
        # a notice the other node sends (a court's decision is served there): B, connected to the owner, gets it
        subject = f"case:{w.case_code}/nodes-test"
        await other_app[PUBLISHER].deliver([Notice(w.case_code, subject, "test_notice", {"n": 1})])
        got = await b.wait_event("court:notice")
        assert got["kind"] == "test_notice" and got["n"] == 1
        seen: list[Any] = []
        for _ in range(100):
            async with owner_sv.db.session() as s:
                seen = [e for e in await audit.entries_for(s, subject)]
            if len(seen) == 2:
                break
            await asyncio.sleep(0.1)
        by_action = {e.action: json.loads(e.detail) for e in seen}
        assert by_action[NOTICE]["delivered_to"] == []  # the sending node had nobody of the case
        assert sorted(by_action[NOTICE_DELIVERED]["delivered_to"]) == sorted([a.pid, b.pid])
        assert by_action[NOTICE_DELIVERED]["node"] == owner_id
        # A's link reissued through the other node: the old device leaves the owner's session at once
        live = owner_sv.live.get(w.session_id)
        assert live is not None
        link = (await m.api("POST", f"/api/sessions/{w.session_id}/invites/{w.invite_ids['A']}/reissue"))[
            "invite"]["link"]
        for _ in range(100):
            if a.pid not in live.people:
                break
            await asyncio.sleep(0.1)
        assert a.pid not in live.people
        a2 = w.client()
        await a2.join_invite(link.split("#", 1)[1])
        await m.wait(lambda c: any(p["id"] == a2.pid and p["identity"] is False for p in c.state.get("lobby", [])))
    finally:
        for c in w.clients:
            await c.close()


async def test_a_recording_started_by_event_writes_each_part_only_while_its_node_owns_the_session(
        aiohttp_server: Any, settings: Settings, prefix: str) -> None:
    """`recording:start` gives the recorder the owner check (`ClusterNode.fence`) that every new stream part and
    the stop make, as a takeover's continued recording has: once another node holds the lease, this node's
    recorder refuses to open a part (`stale_owner`) instead of writing beside the new owner."""
    nodes, w = await two_nodes(aiohttp_server, settings, prefix)
    apps = {name: node[0] for name, node in nodes.items()}
    try:
        m, a, _ = await w.trio()
        owner = a.info["node"]["id"]
        other = "n2" if owner == "n1" else "n1"
        live = apps[owner][SERVICES].live.get(w.session_id)
        assert live is not None
        await m.call("recording:start", {"reason": "调解过程录像"})
        assert live.recorder is not None
        rec = live.recorder.recorder
        assert rec.fence is not None
        await rec.fence()  # the owner: passes
        owner_cluster, other_cluster = apps[owner][SERVICES].cluster, apps[other][SERVICES].cluster
        assert owner_cluster is not None and other_cluster is not None
        taken = None  # the other node takes the lease, as after this node was presumed lost
        while taken is None:  # (this node's heartbeat may retake it in between: try again)
            await owner_cluster.store.r.delete(f"{prefix}lease:{w.session_id}")
            taken = await other_cluster.store.acquire(w.session_id, other, 60_000)
        with pytest.raises(OneDoorError) as e:
            await rec.fence()
        assert e.value.code == "stale_owner"
    finally:
        for c in w.clients:
            await c.close()
