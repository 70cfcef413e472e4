"""The whole lobby flow over real Socket.IO against a real server (issue 2; R1, R3, R5, R8, P2, P3)."""

from __future__ import annotations

from typing import Any

import pytest

from mediation import audit
from signaling.app import create_app
from signaling.client import ProtocolError, SessionClient
from signaling.config import Settings
from tests.conftest import World


async def test_lobby_flow_mediator_and_two_parties(world: World) -> None:
    a = await world.party("A")
    await a.wait(lambda c: c.state.get("you", {}).get("admitted") is False)
    assert a.state["mediator_present"] is False
    # Nobody is admitted while no mediator is present (P3): there is nobody who could admit.
    await world.ready(a, "A")
    assert a.state["participants"] == []  # lobby people see nobody

    m = await world.staff("mediator")
    await m.wait(lambda c: bool(c.state.get("lobby")))
    assert m.state["you"]["role"] == "host" and m.state["you"]["admitted"] is True
    await a.wait(lambda c: c.state.get("mediator_present") is True)

    b = await world.party("B")
    # B is not ready yet: admission is refused with the reasons.
    await m.wait(lambda c: len(c.state.get("lobby", [])) == 2)
    with pytest.raises(ProtocolError) as e:
        await m.call("lobby:admit", {"participant": b.pid})
    assert e.value.code == "not_ready"
    assert set(e.value.error["detail"]["blocking"]) == {"identity_check", "notices", "online_consent",
                                                         "recording_consent"}

    # A wrong code is refused, the right one passes.
    await b.call("identity:start", {"method": "otp"})
    with pytest.raises(ProtocolError) as e:
        await b.call("identity:answer", {"code": "000000" if world.codes[f"invite:{world.invite_ids['B']}"] != "000000" else "111111"})
    assert e.value.code == "wrong_code"
    await b.call("identity:answer", {"code": world.codes[f"invite:{world.invite_ids['B']}"]})
    await b.call("lobby:consent", {"kind": "notices", "granted": True})
    await b.call("lobby:consent", {"kind": "online", "granted": True})
    await b.call("lobby:consent", {"kind": "recording", "granted": True})

    res = await m.call("lobby:admit-all")
    assert sorted(res["admitted"]) == sorted([a.pid, b.pid])
    for c in (a, b):
        await c.wait(lambda c: c.state.get("you", {}).get("admitted") is True and len(c.state["participants"]) == 3)
    assert {p["name"] for p in a.state["participants"]} == {"张三", "李四", "mediator"}

    # Every step is in the audit log, and the chain verifies.
    admin = await world.staff("admin", session=False)
    log = await admin.api("GET", f"/api/audit?subject=invite:{world.invite_ids['B']}")
    actions = [e["action"] for e in log["entries"]]
    assert actions[:2] == ["invite.bind", "identity.start"]
    assert "identity.wrong_code" in actions and "identity.passed" in actions
    assert actions.count("consent") == 3
    assert (await admin.api("GET", "/api/audit/verify"))["ok"] is True


async def test_mediator_attestation_identity_check(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    await a.call("identity:start", {"method": "attestation"})
    await m.wait(lambda c: any(p["id"] == a.pid for p in c.state.get("lobby", [])))
    await m.call("identity:attest", {"participant": a.pid, "document": "居民身份证", "matched": True})
    await m.wait(lambda c: any(p["id"] == a.pid and p["identity"] for p in c.state.get("lobby", [])))
    # a party cannot attest for itself
    with pytest.raises(ProtocolError) as e:
        await a.call("identity:attest", {"participant": a.pid, "document": "居民身份证", "matched": True})
    assert e.value.code == "forbidden"


async def test_third_party_needs_every_partys_consent(world: World) -> None:
    m = await world.staff("mediator")
    a, b = await world.party("A"), await world.party("B")
    psy = await world.party("psychologist")
    for c, who in ((a, "A"), (b, "B"), (psy, "psychologist")):
        await world.ready(c, who)
    await m.call("lobby:admit", {"participant": a.pid})
    await m.call("lobby:admit", {"participant": b.pid})
    with pytest.raises(ProtocolError) as e:
        await m.call("lobby:admit", {"participant": psy.pid})
    assert e.value.error["detail"]["blocking"] == ["party_consent_to_third_party"]
    # Parties see who the third party is, and consent one by one (R8).
    await a.wait(lambda c: any(g["id"] == psy.pid for g in c.state.get("third_parties", [])))
    await a.call("lobby:consent", {"kind": "third_party", "subject": psy.pid, "granted": True})
    with pytest.raises(ProtocolError):
        await m.call("lobby:admit", {"participant": psy.pid})
    await b.call("lobby:consent", {"kind": "third_party", "subject": psy.pid, "granted": False})
    with pytest.raises(ProtocolError):
        await m.call("lobby:admit", {"participant": psy.pid})
    await b.call("lobby:consent", {"kind": "third_party", "subject": psy.pid, "granted": True})
    await m.call("lobby:admit", {"participant": psy.pid})
    await psy.wait(lambda c: c.state.get("you", {}).get("admitted") is True)


async def test_refuse_and_rejoin_keeps_identity(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    await world.ready(a, "A")
    await m.call("lobby:admit", {"participant": a.pid})
    # A's network changes: the same device reconnects with a fresh challenge and is back without a new check.
    a2 = world.client()
    a2.device_key = a.device_key
    await a2.join_invite(world.tokens["A"], send_key=False)
    await a2.wait(lambda c: c.state.get("you", {}).get("admitted") is True)
    await a.wait(lambda c: bool(c.events["session:replaced"]))
    # Refusing someone in the lobby disconnects them with the reason.
    b = await world.party("B")
    await m.wait(lambda c: any(p["id"] == b.pid for p in c.state.get("lobby", [])))
    await m.call("lobby:refuse", {"participant": b.pid, "reason": "请稍后再试"})
    assert (await b.wait_event("session:refused"))["reason"] == "请稍后再试"
    # the refusal holds: the same device with the same link is not back in the lobby (the refused page tells the
    # party to ask for a new link), until the host reissues it; the new link starts over in the lobby
    again = world.client()
    again.device_key = b.device_key
    with pytest.raises(ProtocolError) as e:
        await again.join_invite(world.tokens["B"])
    assert e.value.code == "refused"
    host = await world.staff("mediator", session=False)
    link = (await host.api("POST", f"/api/sessions/{world.session_id}/invites/{world.invite_ids['B']}/reissue"))[
        "invite"]["link"]
    b2 = world.client()
    await b2.join_invite(link.split("#", 1)[1])
    await m.wait(lambda c: any(p["id"] == b2.pid and p["identity"] is False for p in c.state.get("lobby", [])))
    # and someone admitted is not "refused" (the console offers refusal in the lobby only)
    with pytest.raises(ProtocolError) as e:
        await m.call("lobby:refuse", {"participant": a2.pid, "reason": "x"})
    assert e.value.code == "already_admitted"


async def test_a_refusal_holds_on_every_node_and_after_the_session_is_gone(world: World, aiohttp_server: Any,
                                                                           settings: Settings) -> None:
    """The refusal is the link's, in the database (`invites.refused_at`), not one node's memory: another server on the
    same database refuses the device too, and so does this one once its live session is gone (a node that takes
    the session over after its owner was lost starts with nothing in memory). A staff member may knock again."""
    m = await world.staff("mediator")
    b = await world.party("B")
    judge = await world.staff("judge")
    await judge.wait(lambda c: "you" in c.state)
    await m.wait(lambda c: {b.pid, judge.pid} <= {p["id"] for p in c.state.get("lobby", [])})
    for who in (b, judge):
        await m.call("lobby:refuse", {"participant": who.pid, "reason": "请改日"})
        await who.wait_event("session:refused")
    other = await aiohttp_server(create_app(settings))  # a second node on the same database
    for base in (str(other.make_url("")).rstrip("/"), world.base_url):
        again = SessionClient(base)
        world.clients.append(again)
        again.device_key = b.device_key
        with pytest.raises(ProtocolError) as e:
            await again.join_invite(world.tokens["B"])
        assert e.value.code == "refused"
        # the next round: this node as one that took the session over (its live state starts from nothing)
        for c in (m, judge):
            await c.close()
        gone = world.services.live.close(world.session_id)
        if gone is not None:
            await gone.close()
    knocks = await world.staff("judge")  # staff are named accounts: they may knock again
    await knocks.wait(lambda c: c.state.get("you", {}).get("admitted") is False)
    async with world.services.db.session() as s:  # one refusal on record per person, nothing else changed
        seen = await audit.entries_for(s, f"session:{world.session_id}")
    assert [x.action for x in seen].count("lobby.refuse") == 2


async def test_forwarded_link_on_another_device_is_refused(world: World) -> None:
    a = await world.party("A")
    await a.close()
    other = world.client()  # another device: a different key
    with pytest.raises(ProtocolError) as e:
        await other.join_invite(world.tokens["A"])
    assert e.value.code == "device_mismatch"
    async with world.services.db.session() as s:  # the refusal is on record (its own transaction), nothing else
        seen = await audit.entries_for(s, f"invite:{world.invite_ids['A']}")
    assert [x.action for x in seen].count("invite.device_mismatch") == 1
    # without offering a key, its signature cannot verify against the bound key either
    other2 = world.client()
    with pytest.raises(ProtocolError) as e:
        await other2.join_invite(world.tokens["A"], send_key=False)
    assert e.value.code == "bad_signature"


async def test_end_session(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    await world.ready(a, "A")
    await m.call("lobby:admit", {"participant": a.pid})
    await m.call("session:end", {"reason": "调解结束"})
    assert (await a.wait_event("session:ended"))["reason"] == "调解结束"
    again = world.client()
    with pytest.raises(ProtocolError) as e:
        await again.join_invite(world.tokens["B"])
    assert e.value.code == "session_ended"


async def test_lobby_person_sees_own_progress_and_online_consent_is_required(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    await a.call("identity:start", {"method": "otp"})
    await a.call("identity:answer", {"code": world.codes[f"invite:{world.invite_ids['A']}"]})
    await a.call("lobby:consent", {"kind": "notices", "granted": True})
    await a.call("lobby:consent", {"kind": "recording", "granted": True})
    await a.call("lobby:consent", {"kind": "online", "granted": False})  # R1: prefers in person
    await a.wait(lambda c: c.state["you"].get("readiness", {}).get("identity") is True
                 and c.state["you"]["readiness"]["blocking"] == ["online_consent"])
    assert a.state["you"]["person_id"] == a.info["person_id"] and a.info["person_id"]
    with pytest.raises(ProtocolError) as e:
        await m.call("lobby:admit", {"participant": a.pid})
    assert e.value.error["detail"]["blocking"] == ["online_consent"]


async def test_reissued_link_replaces_a_lost_or_forwarded_one(world: World) -> None:
    a = await world.party("A")  # the link is bound to A's first device
    m = await world.staff("mediator", session=False)
    out = await m.api("POST", f"/api/sessions/{world.session_id}/invites/{world.invite_ids['A']}/reissue")
    link = out["invite"]["link"]
    assert link.startswith(world.base_url + "/join#") and out["invite"]["qr"].startswith("data:image/png")
    await a.wait_event("disconnect")  # the old holder is disconnected
    with pytest.raises(ProtocolError) as e:
        await world.client().join_invite(world.tokens["A"])
    assert e.value.code == "bad_invite"  # the old link no longer works
    new_device = await world.client().join_invite(link.split("#", 1)[1])  # and binds a new device
    assert new_device["bound"] is False
    admin = await world.staff("admin", session=False)
    log = await admin.api("GET", f"/api/audit?subject=invite:{world.invite_ids['A']}")
    assert [e["action"] for e in log["entries"]].count("invite.reissue") == 1
