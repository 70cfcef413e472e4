"""Lobby events: identity check, notices and consents, admission (R1, R3, R5, R8, P2, P3) — mediation.lobby."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mediation import lobby
from mediation.errors import Conflict, InvalidInput
from mediation.notices import AgreementChanged
from mediation.permissions import Action
from mediation.recording_policy import withdrawal_pauses
from signaling import recording_events
from signaling.sockets import Ctx, Empty, EventTable, Payload

events = EventTable()


class IdentityStart(Payload):
    method: Literal["otp", "attestation"] = "otp"


class IdentityAnswer(Payload):
    code: str = Field(pattern=r"^\d{6}$")


class Attest(Payload):
    participant: str = Field(max_length=40)
    document: str = Field(min_length=1, max_length=50)
    matched: bool


class ConsentIn(Payload):
    kind: Literal["notices", "recording", "online", "third_party"]
    granted: bool
    subject: str = Field("", max_length=40)


class Who(Payload):
    participant: str = Field(max_length=40)


class Refuse(Payload):
    participant: str = Field(max_length=40)
    reason: str = Field("", max_length=500)


@events.on("identity:start", Action.IDENTITY_SELF, IdentityStart)
async def identity_start(ctx: Ctx, body: IdentityStart) -> dict[str, Any]:
    out = await lobby.identity_start(ctx.services.db, ctx.services.verifiers, ctx.me, body.method)
    ctx.live.changed()
    return out


@events.on("identity:answer", Action.IDENTITY_SELF, IdentityAnswer)
async def identity_answer(ctx: Ctx, body: IdentityAnswer) -> dict[str, Any]:
    ok = await lobby.identity_answer(ctx.services.db, ctx.services.verifiers, ctx.me, body.code)
    ctx.live.changed()
    if not ok:
        raise InvalidInput("the code is not right; try again", code="wrong_code")
    return {"passed": True}


@events.on("identity:attest", Action.IDENTITY_ATTEST, Attest)
async def identity_attest(ctx: Ctx, body: Attest) -> dict[str, Any]:
    ok = await lobby.identity_attest(ctx.services.db, ctx.services.verifiers, ctx.live, ctx.actor,
                                     body.participant, body.document, body.matched)
    ctx.live.changed()
    return {"passed": ok}


@events.on("lobby:consent", Action.LOBBY_CONSENT, ConsentIn)
async def consent(ctx: Ctx, body: ConsentIn) -> dict[str, Any]:
    await lobby.consent(ctx.services.db, ctx.live, ctx.me, body.kind, body.granted, body.subject)
    if body.kind == "recording" and not body.granted and withdrawal_pauses(ctx.live, ctx.me):
        await recording_events.pause_with(ctx, f"recording consent withdrawn by {ctx.me.name}", ctx.me.pid)
    ctx.live.changed()
    return {}


async def admit_one(ctx: Ctx, pid: str) -> None:
    p = await lobby.admit(ctx.services.db, ctx.live, ctx.actor, pid)
    if p.admitted:
        return
    await ctx.live.admit(p.pid)
    await recording_events.on_admitted(ctx, p)
    await ctx.emit("session:admitted", {"participant": p.pid}, to=p.pid)


async def _after_admission(ctx: Ctx) -> None:
    await ctx.publisher.flush(ctx.live)
    await ctx.publisher.deliver([AgreementChanged(ctx.live.case_code)])  # a late joiner sees the draft at once


@events.on("lobby:admit", Action.LOBBY_ADMIT, Who)
async def admit(ctx: Ctx, body: Who) -> dict[str, Any]:
    await admit_one(ctx, body.participant)
    await _after_admission(ctx)
    return {}


@events.on("lobby:admit-all", Action.LOBBY_ADMIT)
async def admit_all(ctx: Ctx, _: Empty) -> dict[str, Any]:
    admitted, waiting = [], []
    for p in ctx.live.lobby():
        try:
            await admit_one(ctx, p.pid)
            admitted.append(p.pid)
        except Conflict as e:
            waiting.append({"participant": p.pid, "blocking": e.detail.get("blocking", [])})
    await _after_admission(ctx)
    return {"admitted": admitted, "not_ready": waiting}


@events.on("lobby:refuse", Action.LOBBY_ADMIT, Refuse)
async def refuse(ctx: Ctx, body: Refuse) -> dict[str, Any]:
    p = await lobby.refuse(ctx.services.db, ctx.live, ctx.actor, body.participant, body.reason)
    ctx.live.refuse(p.pid)
    await ctx.emit("session:refused", {"reason": body.reason or "the mediator did not admit you"}, to=p.pid)
    await ctx.publisher.drop(ctx.live, p.pid)
    return {}
