"""Malformed, oversized, out-of-order and flooding messages get error codes; the room keeps working (issue 2)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest

from signaling.app import api_routes
from signaling.client import ProtocolError, SessionClient
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
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(world.base_url, namespaces=[NS], transports=["websocket"], auth={"session": 1},
                              headers={"Origin": "http://evil.example"}, wait_timeout=5)
    finally:
        if sio.eio.http is not None:
            await sio.eio.http.close()


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


# ---- hostile Socket.IO packets (issue 10 item 6; signaling/limits.py) -------------------------------------------

async def _raw_refusal(c: SessionClient, data: str | bytes) -> dict[str, Any]:
    """Send one raw Engine.IO message on the client's connection; the `error` event the server answers with."""
    before = len(c.events["error"])
    await c.sio.eio.send(data)
    await c.wait(lambda c: len(c.events["error"]) > before, limit=5)
    return c.events["error"][before]


def _ev(data: Any, ack: int | None = None) -> str:
    return f"2{NS}," + ("" if ack is None else str(ack)) + json.dumps(data)


async def test_event_names_not_ours_are_refused(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    await world.ready(a, "A")
    await m.call("lobby:admit", {"participant": a.pid})
    await a.wait(lambda c: c.state.get("you", {}).get("admitted") is True)
    for name in (None, 7, 1.5, True, [], ["chat:send"], {"x": 1}, "connect", "disconnect", "connect_error",
                 "message", "*", "no:such"):
        err = await _raw_refusal(a, _ev([name, {"text": "x"}], ack=9))
        assert err["code"] == "unknown_event", (name, err)
    # "connect" with a client-made environ re-runs no authentication; "disconnect" leaves the party present
    err = await _raw_refusal(a, _ev(["connect", {"HTTP_COOKIE": "od_session=x", "HTTP_ORIGIN": "x"}, {"session": 1}]))
    assert err["code"] == "unknown_event"
    err = await _raw_refusal(a, _ev(["disconnect", "client namespace disconnect"]))
    assert err["code"] == "unknown_event"
    shapes: list[Any] = ["not a list", {"a": 1}, 5, []]
    for data in shapes:
        err = await _raw_refusal(a, _ev(data))
        assert err["code"] in ("bad_packet", "unknown_event"), (data, err)
    # a Unicode digit as the packet type or in the id: int() reads "١" as 1 (DISCONNECT); refused instead
    for text in (f"١{NS},", f"٢{NS},[\"chat:send\",{{}}]", f"2{NS},١٢[\"chat:send\",{{}}]", f"5١-{NS},[\"x\"]"):
        err = await _raw_refusal(a, text)
        assert err["code"] == "bad_packet", (text, err)
    me = next(p for p in m.state["participants"] if p["id"] == a.pid)
    assert me["connected"] is True and a.sio.connected
    await a.call("chat:send", {"text": "still here"})
    assert (await m.wait_event("chat:message"))["text"] == "still here"


async def test_binary_refused_not_buffered_and_no_wedge(world: World) -> None:
    await world.staff("mediator")
    b = await world.party("B")  # a lobby connection
    # a binary event header announcing many attachments: refused at once, nothing waits for the attachments
    err = await _raw_refusal(b, f'59999999999-{NS},["lobby:consent",{{"_placeholder":true,"num":0}}]')
    assert err["code"] in ("binary_not_allowed", "bad_packet")
    err = await _raw_refusal(b, f'51-{NS},3["lobby:consent",{{"_placeholder":true,"num":0}}]')
    assert err["code"] == "binary_not_allowed"
    err = await _raw_refusal(b, b"\x00" * 1000)
    assert err["code"] == "binary_not_allowed"
    # the next text message is a message again, not an attachment: the connection is not wedged
    ack = await b.sio.call("lobby:consent", {"kind": "notices", "granted": True}, namespace=NS, timeout=5)
    assert ack["ok"] is True, ack
    # what python-socketio's own client sends for bytes: refused with a code, never `internal`
    ack = await b.sio.call("lobby:consent", {"kind": "notices", "granted": b"\x01\x02"}, namespace=NS, timeout=5)
    assert ack["error"]["code"] == "binary_not_allowed"


async def test_deep_nesting_refused(world: World) -> None:
    a = await world.party("A")
    for depth in (40, 900, 5000, 100_000):
        err = await _raw_refusal(a, _ev(["lobby:consent", "[" * depth + "]" * depth]).replace('"[', "[").replace(
            ']"', "]"))
        assert err["code"] in ("too_deep", "bad_packet"), (depth, err)
    ok = await a.sio.call("lobby:consent", {"kind": "notices", "granted": True}, namespace=NS, timeout=5)
    assert ok["ok"] is True


async def test_http_deep_json_and_odd_digits(world: World) -> None:
    c = await world.staff("admin", session=False)
    for depth in (40, 900, 100_000):
        body = ('{"token":' + "[" * depth + "]" * depth + "}").encode()
        async with c.http.post(f"{world.base_url}/api/join", data=body) as r:  # before any login
            assert r.status == 422 and (await r.json())["error"]["code"] == "too_deep", depth
        async with c.http.post(f"{world.base_url}/api/users", data=body,
                               headers={"X-CSRF-Token": c.csrf}) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "too_deep", depth
    async with c.http.post(f"{world.base_url}/api/join", data=b"\xff\xfe{}") as r:
        assert r.status == 422
    # every path parameter, with Unicode digits and other odd values: 4xx, never 5xx
    paths = sorted({r.path for r in api_routes().routes if "{" in r.path})
    methods = {(r.method, r.path) for r in api_routes().routes if "{" in r.path}
    odd = ["²", "١٢", "１", "0x1", "-1", "1e3", "9" * 40, " 1", "%00", "..", "\u00bd", "ⅷ"]
    for method, path in sorted(methods):
        for v in odd:
            url = world.base_url + "".join(
                quote(v, safe="") if seg.startswith("{") else seg for seg in re.split(r"(\{[^}]+\})", path))
            async with c.http.request(method, url, json={}, headers={"X-CSRF-Token": c.csrf}) as r:
                assert r.status < 500, (method, path, v, r.status, await r.text())
    assert paths
