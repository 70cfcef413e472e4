"""Fixed regressions of the workflow state machine (issue 11): the defects new users met acting in their natural
order, and the shrunk counterexamples of tests/agreements/test_workflow_model.py, through the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from signaling.app import create_app
from signaling.client import ProtocolError, SessionClient
from signaling.config import Settings
from signaling.services import SERVICES
from tests.conftest import World, seed
from tests.court.helpers import COURT, complete_people, draft_and_finalize, http_status, party_sign, sealed


@pytest.fixture
async def world(aiohttp_server: Any, settings: Settings) -> AsyncIterator[World]:
    """The real server's seeded world (tests/conftest.py), under the name this directory's domain fixture hides."""
    app = create_app(settings)
    server = await aiohttp_server(app)
    w = World(str(server.make_url("")).rstrip("/"), app[SERVICES])
    seeded = await seed(w.services)
    w.case_code, w.session_id, w.tokens, w.invite_ids = (seeded["case"], seeded["session"], seeded["tokens"],
                                                         seeded["ids"])
    yield w
    for c in w.clients:
        await c.close()


def offered(state: dict[str, Any], action: str) -> list[str]:
    """Who has `action` ready in a state's next_actions."""
    return [a["actor"] for a in state["next_actions"] if a["action"] == action and a["ready"]]


async def console(world: World, m: SessionClient) -> dict[str, Any]:
    return dict(await m.api("GET", f"/api/cases/{world.case_code}/agreement"))


async def test_parties_sign_first_then_the_mediator_is_offered_the_signature_and_it_seals(world: World) -> None:
    people = await complete_people(world)
    m, a, b = await world.trio()
    await draft_and_finalize(m, people)
    await party_sign(a)
    assert (await party_sign(b))["status"] == "effective"
    med = await world.staff("mediator", session=False)
    state = await console(world, med)
    assert state["workflow"]["stage"] == "effective"
    assert offered(state, "sign_as_mediator") and offered(state, "start_application")
    out = await med.api("POST", f"/api/cases/{world.case_code}/agreement/sign")
    assert out["sealed"] is True and out["agreement"]["status"] == "sealed"
    assert not offered(await console(world, med), "sign_as_mediator")


async def test_application_signed_before_the_mediator_is_submitted_when_the_mediator_signs(world: World) -> None:
    people = await complete_people(world)
    m, a, b = await world.trio()
    await draft_and_finalize(m, people)
    await party_sign(a)
    await party_sign(b)
    med = await world.staff("mediator", session=False)
    await med.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": COURT})
    await party_sign(a, "application")
    assert (await party_sign(b, "application"))["status"] == "draft"  # the seal is still missing
    state = await console(world, med)
    assert state["workflow"]["stage"] == "application" and offered(state, "sign_as_mediator")
    assert not offered(state, "accept")  # the court waits for the mediator
    out = await m.call("agreement:sign-mediator")  # in the session this time
    assert out["sealed"] is True
    state = await console(world, med)
    assert state["application"]["status"] == "submitted" and state["workflow"]["stage"] == "submitted"
    assert offered(state, "accept") == [f"court:{COURT}"]
    await a.wait(lambda c: any(n["kind"] == "application_submitted" for n in c.events["court:notice"]))


async def test_a_party_who_signed_cannot_refuse_afterwards(world: World) -> None:
    """Shrunk from the model: draft, edit, finalize, the mediator signs, B signs, B refuses -> was accepted (the
    signed agreement became `refused`), although `refuse` was not offered to B any more."""
    people = await complete_people(world)
    m, a, b = await world.trio()
    await draft_and_finalize(m, people)
    await m.call("agreement:sign-mediator")
    await party_sign(b)
    state = await console(world, await world.staff("mediator", session=False))
    b_id = f"person:{people['B']}"
    assert b_id not in offered(state, "refuse") and f"person:{people['A']}" in offered(state, "refuse")
    with pytest.raises(ProtocolError) as e:
        await b.call("agreement:refuse", {"note": "我不同意"})
    assert e.value.code == "already_signed"
    assert (await party_sign(a))["sealed"] is True


async def test_after_the_session_ends_the_mediator_is_offered_a_new_session(world: World) -> None:
    """Session ends with a signature missing: no dead end, the mediator schedules a new session."""
    people = await complete_people(world)
    m, a, _ = await world.trio()
    await draft_and_finalize(m, people)
    await party_sign(a)
    await m.call("session:end", {"reason": "明天继续"})
    med = await world.staff("mediator", session=False)
    state = await console(world, med)
    waiting = [x for x in state["next_actions"] if x["action"] == "sign_agreement"]
    assert waiting and not any(x["ready"] for x in waiting)
    assert all(any(w["action"] == "schedule_session" for w in x["waits_for"]) for x in waiting)
    assert offered(state, "schedule_session")


async def test_a_power_of_attorney_is_offered_only_for_an_applying_agent_and_refused_otherwise(world: World) -> None:
    """The model's counterexample (CI, issue 11): a power of attorney was accepted while none was offered. Now it is
    offered while an applying agent has none, and refused, storing nothing, for anyone else."""
    import base64

    people = await complete_people(world)
    m, a, b = await world.trio()
    await draft_and_finalize(m, people)
    await party_sign(a)
    await party_sign(b)
    med = await world.staff("mediator", session=False)
    await med.api("POST", f"/api/cases/{world.case_code}/agreement/sign")
    await med.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": COURT})
    state = await console(world, med)
    assert not offered(state, "add_power_of_attorney")  # no agent applies in this case
    before = await med.api("GET", f"/api/cases/{world.case_code}/documents")
    body = {"kind": "power_of_attorney", "filename": "授权委托书.pdf", "person_id": people["A"],
            "data": base64.b64encode(b"%PDF-1.4 poa").decode()}
    with pytest.raises(ProtocolError) as e:
        await med.api("POST", f"/api/cases/{world.case_code}/application/documents", body)
    assert e.value.code == "not_an_agent"
    assert await med.api("GET", f"/api/cases/{world.case_code}/documents") == before  # nothing stored


async def test_no_second_application_once_the_court_has_ruled(world: World) -> None:
    """Shrunk from the model (the CI soak, 200 runs): sealed, applied, both signed, accepted, ruled (rejected), then
    the mediator's new application to the same court -> was accepted in the objection window, although nothing
    offered it: only applications still under way were checked. After a ruling the same agreement is not applied
    for again (CPL 206: after a rejection the parties change it or make a new one in mediation)."""
    _, a, b, _ = await sealed(world)
    med = await world.staff("mediator", session=False)
    start = (f"/api/cases/{world.case_code}/application", {"court_id": COURT})
    app_id = (await med.api("POST", *start))["application"]["id"]
    await party_sign(a, "application")
    assert (await party_sign(b, "application"))["status"] == "submitted"
    judge = await world.staff("judge", session=False)
    await judge.api("POST", f"/api/court/applications/{app_id}/accept")
    await judge.api("POST", f"/api/court/applications/{app_id}/rule",
                    {"outcome": "rejected", "ground": "not_voluntary", "reasoning": "经审查，违背自愿原则。"})
    state = await console(world, med)
    assert state["workflow"]["stage"] == "objection_window" and not offered(state, "start_application")
    status, err = await http_status(med, "POST", *start)
    assert status == 409 and err["error"]["code"] == "already_ruled", err
    after = await console(world, med)
    assert after["application"]["id"] == app_id and after["workflow"] == state["workflow"]  # nothing changed
