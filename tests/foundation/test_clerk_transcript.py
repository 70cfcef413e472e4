"""Issue 13 item 3: the case's center clerk (书记员) in the session writes the electronic transcript; a clerk of
another center reaches neither the session nor its transcript (role AND object scope, mediation.access.check)."""

from __future__ import annotations

import pytest

from mediation import accounts
from mediation.access import Actor, Resource, check
from mediation.errors import Forbidden, NotFound
from mediation.models import Center
from mediation.permissions import TABLE, Action, SessionRole, StaffRole, session_role_for_staff
from signaling.client import ProtocolError
from tests.conftest import PASSWORD, World


def test_rules_clerk_writes_only_in_a_session_of_its_center() -> None:
    assert session_role_for_staff(StaffRole.INTAKE_CLERK, 7, host_id=1) is SessionRole.CLERK
    assert SessionRole.CLERK in TABLE[Action.TRANSCRIPT_WRITE]
    assert SessionRole.CLERK not in TABLE[Action.TRANSCRIPT_CLOSE]  # the mediators close it for review
    assert StaffRole.INTAKE_CLERK not in TABLE[Action.TRANSCRIPT_WRITE]  # only from inside the session
    session_a = Resource("session", center_id=1, session_id=10)
    check(Actor("staff-7", SessionRole.CLERK, center_id=1, staff_id=7, session_id=10), Action.TRANSCRIPT_WRITE,
          session_a)
    with pytest.raises(NotFound):  # a clerk bound to another center's session: A's session does not exist for it
        check(Actor("staff-8", SessionRole.CLERK, center_id=2, staff_id=8, session_id=20), Action.TRANSCRIPT_WRITE,
              session_a)
    with pytest.raises(NotFound):  # and cannot join it
        check(Actor("staff-8", StaffRole.INTAKE_CLERK, center_id=2, staff_id=8), Action.SESSION_JOIN, session_a)
    with pytest.raises(Forbidden):  # a clerk not in any session (HTTP) has no transcript role at all
        check(Actor("staff-7", StaffRole.INTAKE_CLERK, center_id=1, staff_id=7), Action.TRANSCRIPT_WRITE, session_a)


async def test_center_clerk_writes_the_transcript_other_center_clerk_cannot(world: World) -> None:
    m, a, b = await world.trio()
    clerk = await world.staff("clerk")  # waits in the lobby until both parties consent to its presence (R8)
    await clerk.wait(lambda c: "you" in c.state, limit=30)
    assert clerk.state["you"]["role"] == "clerk" and clerk.state["you"]["admitted"] is False
    with pytest.raises(ProtocolError) as e:
        await clerk.call("transcript:write", {"speaker": "书记员", "text": "x"})
    assert e.value.code == "not_admitted"
    for c in (a, b):
        await c.call("lobby:consent", {"kind": "third_party", "subject": clerk.pid, "granted": True})
    await m.call("lobby:admit", {"participant": clerk.pid})
    await clerk.wait(lambda c: c.state.get("you", {}).get("admitted") is True, limit=30)
    out = await clerk.call("transcript:write", {"speaker": "张三", "speaker_id": a.pid, "text": "借款五千元属实"})
    assert out["seq"] == 1
    got = await a.wait_event("transcript:entry", limit=30)
    assert got["text"] == "借款五千元属实" and got["speaker"] == "张三"
    assert [x["text"] for x in (await m.call("transcript:get"))["entries"]] == ["借款五千元属实"]
    with pytest.raises(ProtocolError) as closing:  # the clerk writes; closing it for review is the mediator's
        await clerk.call("transcript:close")
    assert closing.value.code == "forbidden"

    async with world.services.db.session() as s:
        other = Center(code="QH-CD", name="城东区社会治理综合服务中心", address="西宁市城东区")
        s.add(other)
        await s.flush()
        await accounts.create_user(s, other, username="clerk_b", password=PASSWORD, role="intake_clerk",
                                   display_name="clerk_b", actor="test")
    outsider = world.client()
    await outsider.login("clerk_b", PASSWORD)
    with pytest.raises(ProtocolError) as e:
        await outsider.join_staff(world.session_id)
    assert e.value.code in ("session_not_found", "forbidden")
    assert len((await m.call("transcript:get"))["entries"]) == 1
