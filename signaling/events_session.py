"""In-session events: hand, mute, chat (kept in the case record), caucus (R7, R9), ending the session."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mediation import session_room as rooms
from mediation.permissions import Action
from signaling import recording_events
from signaling.sockets import Ctx, Empty, EventTable, Payload

events = EventTable()


class Hand(Payload):
    up: bool


class Mute(Payload):
    muted: bool


class Who(Payload):
    participant: str = Field(max_length=40)


class ChatIn(Payload):
    text: str = Field(min_length=1, max_length=rooms.CHAT_MAX)


class CaucusIn(Payload):
    members: list[str] = Field(min_length=2, max_length=20)


class EndIn(Payload):
    reason: str = Field("", max_length=500)


@events.on("hand:raise", Action.HAND, Hand, admitted=True)
async def hand(ctx: Ctx, body: Hand) -> dict[str, Any]:
    ctx.live.raise_hand(ctx.me.pid, body.up)
    return {}


@events.on("mute:self", Action.MUTE_SELF, Mute, admitted=True)
async def mute_self(ctx: Ctx, body: Mute) -> dict[str, Any]:
    await ctx.live.mute(ctx.me.pid, body.muted)
    return {}


@events.on("mute:other", Action.MUTE_OTHER, Who, admitted=True)
async def mute_other(ctx: Ctx, body: Who) -> dict[str, Any]:
    """A mediator may mute someone, never unmute them: only the person unmutes themselves."""
    p = await rooms.mute_other(ctx.services.db, ctx.live, ctx.actor, body.participant)
    await ctx.live.mute(p.pid, True)
    await ctx.emit("mute:forced", {"by": ctx.me.name}, to=p.pid)
    return {}


@events.on("chat:send", Action.CHAT, ChatIn, admitted=True)
async def chat(ctx: Ctx, body: ChatIn) -> dict[str, Any]:
    """Chat goes to everyone who may hear the sender: inside a caucus it stays inside (R9)."""
    out, to = await rooms.chat(ctx.services.db, ctx.live, ctx.me, body.text)
    for pid in to:
        await ctx.emit("chat:message", out, to=pid)
    return {"id": out["id"]}


async def _set_caucus(ctx: Ctx, members: frozenset[str], kind: str) -> None:
    if not members:
        await recording_events.on_caucus_closed(ctx)  # before the group dissolves into the joint session
        await ctx.live.close_caucus()
    else:
        await ctx.live.open_caucus(members, kind)
        await recording_events.on_caucus_opened(ctx)
    await rooms.log_caucus(ctx.services.db, ctx.live, ctx.actor, members, kind)


@events.on("caucus:open", Action.CAUCUS_OPEN, CaucusIn, admitted=True)
async def caucus_open(ctx: Ctx, body: CaucusIn) -> dict[str, Any]:
    """背靠背 (R7): the host with a chosen group; the hub stops forwarding between inside and outside."""
    await _set_caucus(ctx, rooms.caucus_members(ctx.live, ctx.me, body.members), "caucus")
    return {"members": sorted(ctx.live.caucus)}


@events.on("caucus:private-talk", Action.PRIVATE_TALK, Who, admitted=True)
async def private_talk(ctx: Ctx, body: Who) -> dict[str, Any]:
    """A psychologist's private talk with one party: the same mechanism as a caucus."""
    await _set_caucus(ctx, rooms.private_talk_members(ctx.live, ctx.me, body.participant), "private_talk")
    return {"members": sorted(ctx.live.caucus)}


@events.on("caucus:close", Action.PRIVATE_TALK, Empty, admitted=True)
async def caucus_close(ctx: Ctx, _: Empty) -> dict[str, Any]:
    rooms.may_close_caucus(ctx.live, ctx.me)
    await _set_caucus(ctx, frozenset(), ctx.live.caucus_kind)
    return {}


@events.on("session:end", Action.SESSION_END, EndIn, admitted=True)
async def end(ctx: Ctx, body: EndIn) -> dict[str, Any]:
    live = ctx.live
    await recording_events.on_caucus_closed(ctx)
    await recording_events.stop_all(ctx, body.reason or "session ended")
    if live.media is not None:
        await live.media.close()
    await rooms.end(ctx.services.db, ctx.services.keys.signing_key, live, ctx.actor)
    await ctx.publisher.to_session(live, "session:ended", {"reason": body.reason})
    ctx.services.live.close(live.session_id)
    live.dirty = False
    for p in live.connected():  # the host's own connection closes from its side after this ack
        if p.pid != ctx.me.pid:
            await ctx.publisher.drop(live, p.pid)
    return {}
