"""Authorization matrix (issue 2): every HTTP route and every Socket.IO event × every role, an outsider, an expired
invite and a forwarded invite. Only the cells the permission table allows get past authorization."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from mediation.models import Invite
from mediation.permissions import MEDIATORS, TABLE, Action, SessionRole
from signaling.app import api_routes, event_handlers
from signaling.client import ProtocolError, SessionClient
from tests.conftest import STAFF, World


def _path(path: str, w: World) -> str:
    return (path.replace("{code}", w.case_code).replace("{id}", str(w.session_id))
            .replace("{invite}", str(w.invite_ids["B"])).replace("{job}", "1"))


async def _status(c: SessionClient, method: str, path: str) -> int:
    async with c.http.request(method, f"{c.base_url}{path}", json={},
                              headers={"X-CSRF-Token": c.csrf}) as r:
        return r.status


async def test_http_matrix(world: World) -> None:
    clients = {name: await world.staff(name, session=False) for name in STAFF}
    outsider = world.client()
    checked = 0
    for r in api_routes().routes:
        path = _path(r.path, world)
        if r.path in ("/api/auth/logout",):
            continue  # would end the login used for the other cells; covered below
        got = await _status(outsider, r.method, path)
        if r.staff:
            assert got == 401, (r.path, "outsider", got)
        for name, role in STAFF.items():
            got = await _status(clients[name], r.method, path)
            allowed = (not r.staff) or r.action is None or role in TABLE[r.action]
            if allowed:
                assert got not in (401, 403), (r.method, r.path, role, got)
            else:
                assert got == 403, (r.method, r.path, role, got)
            checked += 1
    assert checked >= len(STAFF) * (len(api_routes().routes) - 1)
    # CSRF: a staff POST without the token is refused even for an allowed role.
    m = clients["mediator"]
    async with m.http.post(f"{m.base_url}/api/cases/{world.case_code}/stage", json={"to": "triage"}) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf"
    assert await _status(m, "POST", "/api/auth/logout") == 200
    assert await _status(m, "GET", "/api/auth/me") == 401


async def _admitted_everyone(world: World) -> dict[SessionRole, SessionClient]:
    host = await world.staff("mediator")
    co = await world.staff("mediator2")
    a, b, psy = await world.party("A"), await world.party("B"), await world.party("psychologist")
    judge = await world.staff("judge")
    for c, who in ((a, "A"), (b, "B"), (psy, "psychologist")):
        await world.ready(c, who)
    for c in (a, b):
        for third in (psy, judge):
            await c.call("lobby:consent", {"kind": "third_party", "subject": third.pid, "granted": True})
    await host.call("lobby:admit-all")
    for c in (a, b, psy, judge, co):
        await c.wait(lambda c: c.state.get("you", {}).get("admitted") is True)
    return {SessionRole.HOST: host, SessionRole.CO_MEDIATOR: co, SessionRole.PARTY: a, SessionRole.PSYCHOLOGIST: psy, SessionRole.JUDGE: judge}


async def test_event_matrix(world: World) -> None:
    by_role = await _admitted_everyone(world)
    checked = 0
    for event, spec in sorted(event_handlers().items()):
        if event == "session:end":
            continue
        for role, c in by_role.items():
            try:
                await c.call(event, {})
                outcome: Any = "ok"
            except ProtocolError as e:
                outcome = e.code
            if role in TABLE[spec.action]:
                assert outcome != "forbidden", (event, role)
            else:
                assert outcome == "forbidden", (event, role, outcome)
            checked += 1
    assert checked == (len(event_handlers()) - 1) * len(by_role)
    for role, c in by_role.items():
        if role is not SessionRole.HOST:
            with pytest.raises(ProtocolError) as refused:
                await c.call("session:end", {})
            assert refused.value.code == "forbidden"
    await by_role[SessionRole.HOST].call("session:end", {})


async def test_lobby_people_cannot_use_session_events(world: World) -> None:
    await world.staff("mediator")
    a = await world.party("A")
    for event, spec in event_handlers().items():
        if spec.admitted and SessionRole.PARTY in TABLE[spec.action]:
            with pytest.raises(ProtocolError) as e:
                await a.call(event, {})
            assert e.value.code in ("not_admitted", "invalid_input"), event


async def test_outsiders_expired_and_forwarded_invites_cannot_connect(world: World) -> None:
    for name in ("admin",):  # staff roles with no place in a session (a clerk joins as one: test_clerk_transcript)
        with pytest.raises(ProtocolError) as e:
            await world.staff(name)
        assert e.value.code == "forbidden"
    nobody = world.client()
    with pytest.raises(ProtocolError) as e:
        await nobody.join_staff(world.session_id)
    assert e.value.code == "login_required"
    with pytest.raises(ProtocolError) as e:
        await world.client().join_invite("x" * 32)
    assert e.value.code == "bad_invite"
    async with world.services.db.session() as s:
        await s.execute(update(Invite).where(Invite.id == world.invite_ids["B"])
                        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    with pytest.raises(ProtocolError) as e:
        await world.party("B")
    assert e.value.code == "invite_expired"
    await (await world.party("A")).close()
    with pytest.raises(ProtocolError) as e:
        await world.party("A")  # a new client = a new device key
    assert e.value.code == "device_mismatch"


def test_permission_table_denies_by_default() -> None:
    assert all(TABLE.get(a) for a in Action), "every action has an explicit entry"
    assert SessionRole.OUTSIDER not in set().union(*TABLE.values())
    assert TABLE[Action.LOBBY_ADMIT] == frozenset(MEDIATORS)
