"""Malformed, oversized, out-of-order and flooding messages get error codes; the room keeps working (issue 2)."""

from __future__ import annotations

import pytest

from signaling.client import ProtocolError
from tests.conftest import World

NS = "/session"


async def test_bad_messages_answered_with_codes_and_room_survives(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    cases = [
        ("no:such-event", {}, "unknown_event"),
        ("lobby:consent", "not an object", "bad_payload"),
        ("lobby:consent", {"kind": "recording"}, "invalid_input"),  # missing field
        ("lobby:consent", {"kind": "telepathy", "granted": True}, "invalid_input"),
        ("lobby:consent", {"kind": "recording", "granted": True, "extra": 1}, "invalid_input"),
        ("identity:answer", {"code": "12"}, "invalid_input"),
        ("identity:answer", {"code": "123456"}, "no_pending_check"),  # out of order: no code requested
        ("chat:send", {"text": "hi"}, "not_admitted"),  # out of order: still in the lobby
        ("lobby:consent", {"kind": "notices", "granted": False}, "bad_consent"),
        ("lobby:consent", {"kind": "third_party", "granted": True, "subject": "inv-999"}, "participant_not_found"),
    ]
    for event, payload, code in cases:
        ack = await a.sio.call(event, payload, namespace=NS, timeout=5)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
    # the error event carries the same code
    assert any(e["code"] == "unknown_event" for e in a.events["error"])
    # two payload arguments
    ack = await a.sio.call("lobby:consent", ({}, {}), namespace=NS, timeout=5)
    assert ack["error"]["code"] == "bad_payload"
    # oversized: rejected with a code (under the transport limit) ...
    ack = await a.sio.call("lobby:consent", {"kind": "recording", "granted": True, "subject": "x" * 70_000},
                           namespace=NS, timeout=5)
    assert ack["error"]["code"] == "too_large"
    # ... mediators' out-of-order commands
    with pytest.raises(ProtocolError) as e:
        await m.call("caucus:close")
    assert e.value.code == "no_caucus"
    with pytest.raises(ProtocolError) as e:
        await m.call("lobby:admit", {"participant": "inv-424242"})
    assert e.value.code == "participant_not_found"
    # after all that, the flow still works for the same connection
    await world.ready(a, "A")
    await m.call("lobby:admit", {"participant": a.pid})
    await a.call("chat:send", {"text": "你好"})
    msg = await m.wait_event("chat:message")
    assert msg["text"] == "你好" and msg["from"] == a.pid


async def test_rate_limit(world: World) -> None:
    world.services.settings.event_burst = 10
    world.services.settings.events_per_second = 1
    await world.staff("mediator")
    a = await world.party("A")
    codes = []
    for _ in range(30):
        ack = await a.sio.call("hand:raise", {"up": True}, namespace=NS, timeout=5)
        codes.append(ack.get("error", {}).get("code"))
    assert "rate_limited" in codes
    assert codes[0] == "not_admitted"  # before the limit kicks in, the normal answer


async def test_malformed_connect_auth(world: World) -> None:
    for auth in ({"invite": 5}, {"invite": "x" * 500, "challenge": "c", "signature": "s"}, {"session": "1"},
                 {"session": True}, {}):
        c = world.client()
        with pytest.raises(ProtocolError) as e:
            await c._connect(auth)
        assert e.value.code in ("auth_required", "bad_invite", "login_required"), auth
    # a valid token but a forged challenge
    c = world.client()
    with pytest.raises(ProtocolError) as e:
        await c._connect({"invite": world.tokens["A"], "challenge": "1.9999999999.x.y",
                          "signature": c.device_key.sign(b"x"), "public_key": c.device_key.spki_b64})
    assert e.value.code == "bad_challenge"
    # a replayed challenge
    info = await world.party("A")
    c2 = world.client()
    c2.device_key = info.device_key
    async with c2.http.post(f"{world.base_url}/api/join", json={"token": world.tokens["A"]}) as r:
        ch = (await r.json())["challenge"]
    from mediation.devicekeys import join_message

    auth = {"invite": world.tokens["A"], "challenge": ch, "signature": info.device_key.sign(join_message(ch))}
    await c2._connect(auth)
    c3 = world.client()
    with pytest.raises(ProtocolError) as e:
        await c3._connect(auth)
    assert e.value.code == "challenge_used"


async def test_cross_origin_socket_refused(world: World) -> None:
    import socketio

    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(world.base_url, namespaces=[NS], transports=["websocket"], auth={"session": 1},
                          headers={"Origin": "http://evil.example"}, wait_timeout=5)


async def test_http_errors_are_json(world: World) -> None:
    c = world.client()
    async with c.http.post(f"{world.base_url}/api/join", data=b"{not json") as r:
        assert r.status == 422 and (await r.json())["error"]["code"] == "bad_json"
    async with c.http.post(f"{world.base_url}/api/join", json={"token": "short"}) as r:
        assert r.status == 422 and (await r.json())["error"]["code"] == "invalid_input"
    async with c.http.post(f"{world.base_url}/api/join", data=b"x" * 300_000) as r:
        assert r.status == 413
    async with c.http.get(f"{world.base_url}/api/nothing-here") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "http_404"
    async with c.http.get(f"{world.base_url}/api/openapi.json") as r:
        spec = await r.json()
        assert spec["openapi"].startswith("3.") and "/api/cases" in spec["paths"]
    async with c.http.get(f"{world.base_url}/healthz") as r:
        assert (await r.json())["ok"] is True
