"""Someone admitted after the draft exists sees it at once (everyone sees the draft live, issue 5.1)."""

from __future__ import annotations

from tests.conftest import World


async def test_late_joiner_receives_the_current_draft_on_admission(world: World) -> None:
    m = await world.staff("mediator")
    a = await world.party("A")
    await world.ready(a, "A")
    await m.call("lobby:admit", {"participant": a.pid})
    draft = (await m.call("agreement:draft", {"template": "neighbours"}))["agreement"]
    b = await world.party("B")
    await world.ready(b, "B")
    assert not b.events["agreement:state"]  # nothing while in the lobby
    await m.call("lobby:admit", {"participant": b.pid})
    state = await b.wait_event("agreement:state")
    assert state["agreement"]["id"] == draft["id"]
