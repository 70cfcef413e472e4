"""Agreement events inside a session (R15-R17, R21): live drafting by the mediator, signing by each party with
the device key bound to its own invite, refusal (R28), and the joint application for judicial confirmation.
All of it is the workflow facade (mediation.workflow), the same one the console's HTTP routes call.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mediation.permissions import Action
from signaling.sockets import Ctx, Empty, EventTable, Payload

events = EventTable()


class DraftIn(Payload):
    template: str = Field(min_length=1, max_length=40)


class UpdateIn(Payload):
    content: dict[str, Any]
    base_version: int = Field(ge=1)
    note: str = Field("", max_length=500)


class SignIn(Payload):
    signature: str = Field(min_length=1, max_length=200)  # base64 of the 64-byte raw r||s


class RefuseIn(Payload):
    note: str = Field("", max_length=2000)


@events.on("agreement:get", Action.AGREEMENT_READ, Empty, admitted=True)
async def get(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The agreement, the application and the notices sent to the parties (the read is logged)."""
    return await ctx.services.workflow.read_in_session(ctx.actor)


async def _done(ctx: Ctx, result: tuple[dict[str, Any], list[Any]]) -> dict[str, Any]:
    out, evs = result
    await ctx.publisher.deliver(evs)
    return out


@events.on("agreement:draft", Action.AGREEMENT_DRAFT, DraftIn, admitted=True)
async def draft(ctx: Ctx, body: DraftIn) -> dict[str, Any]:
    return await _done(ctx, await ctx.services.workflow.draft(ctx.actor, None, body.template))


@events.on("agreement:update", Action.AGREEMENT_DRAFT, UpdateIn, admitted=True)
async def update(ctx: Ctx, body: UpdateIn) -> dict[str, Any]:
    return await _done(ctx, await ctx.services.workflow.update(ctx.actor, None, body.content, body.base_version,
                                                               body.note))


@events.on("agreement:finalize", Action.AGREEMENT_DRAFT, Empty, admitted=True)
async def finalize(ctx: Ctx, _: Empty) -> dict[str, Any]:
    return await _done(ctx, await ctx.services.workflow.finalize(ctx.actor, None))


@events.on("agreement:payload", Action.AGREEMENT_SIGN_PARTY, Empty, admitted=True)
async def payload(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The exact bytes to sign (base64) — the browser signs them with its bound device key."""
    return await ctx.services.workflow.signing_payload(ctx.actor)


@events.on("agreement:sign", Action.AGREEMENT_SIGN_PARTY, SignIn, admitted=True)
async def sign(ctx: Ctx, body: SignIn) -> dict[str, Any]:
    return await _done(ctx, await ctx.services.workflow.sign_party(ctx.actor, body.signature))


@events.on("agreement:sign-mediator", Action.AGREEMENT_SIGN_MEDIATOR, Empty, admitted=True)
async def sign_mediator(ctx: Ctx, _: Empty) -> dict[str, Any]:
    out = await _done(ctx, await ctx.services.workflow.sign_mediator(ctx.actor, None))
    out.pop("agreement", None)
    return out


@events.on("agreement:refuse", Action.AGREEMENT_SIGN_PARTY, RefuseIn, admitted=True)
async def refuse(ctx: Ctx, body: RefuseIn) -> dict[str, Any]:
    """A party refuses to sign: the agreement is refused and the mediation ends (R16, R28)."""
    return await _done(ctx, await ctx.services.workflow.refuse(ctx.actor, body.note))


@events.on("application:payload", Action.APPLICATION_SIGN, Empty, admitted=True)
async def application_payload(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The application document and the exact bytes this party signs for it (base64)."""
    return await ctx.services.workflow.application_payload(ctx.actor)


@events.on("application:sign", Action.APPLICATION_SIGN, SignIn, admitted=True)
async def application_sign(ctx: Ctx, body: SignIn) -> dict[str, Any]:
    """The last party signature submits the application to the court (and its recordings are wrapped to it)."""
    return await _done(ctx, await ctx.services.workflow.sign_application(ctx.actor, body.signature))
