"""In-session events: hand, mute, chat (kept in the case record), caucus (R7, R9), ending the session."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mediation import audit, sessions
from mediation.errors import Conflict, Forbidden, InvalidInput, NotFound
from mediation.models import ChatMessage
from mediation.permissions import MEDIATORS, Action, Role
from signaling import recording_events
from signaling.events_media import sync_routing
from signaling.rooms import Participant
from signaling.session_ns import push_state, room_name, session_row
from signaling.sockets import NS, Ctx, Empty, Payload, on

CHAT_MAX = 2000


class Hand(Payload):
    up: bool


class Mute(Payload):
    muted: bool


class Who(Payload):
    participant: str = Field(max_length=40)


class ChatIn(Payload):
    text: str = Field(min_length=1, max_length=CHAT_MAX)


class CaucusIn(Payload):
    members: list[str] = Field(min_length=2, max_length=20)


class EndIn(Payload):
    reason: str = Field("", max_length=500)


@on("hand:raise", Action.HAND, Hand, admitted=True)
async def hand(ctx: Ctx, body: Hand) -> dict[str, Any]:
    ctx.me.hand = body.up
    await push_state(ctx.services, ctx.sio, ctx.room)
    return {}


@on("mute:self", Action.MUTE_SELF, Mute, admitted=True)
async def mute_self(ctx: Ctx, body: Mute) -> dict[str, Any]:
    ctx.me.muted = body.muted
    await _apply_mute(ctx, ctx.me)
    await push_state(ctx.services, ctx.sio, ctx.room)
    return {}


@on("mute:other", Action.MUTE_OTHER, Who, admitted=True)
async def mute_other(ctx: Ctx, body: Who) -> dict[str, Any]:
    """A mediator may mute someone, never unmute them: only the person unmutes themselves."""
    p = ctx.room.people.get(body.participant)
    if p is None or not p.admitted:
        raise NotFound("that participant is not in the session", code="participant_not_found")
    if p.role in MEDIATORS:
        raise Forbidden("mediators cannot mute each other", code="forbidden")
    p.muted = True
    await _apply_mute(ctx, p)
    async with ctx.services.db.session() as s:
        await audit.append(s, actor=ctx.me.pid, action="mute.other", subject=f"session:{ctx.room.session_id}",
                           detail={"participant": p.pid})
    if p.sid:
        await ctx.emit("mute:forced", {"by": ctx.me.name}, to=p.sid)
    await push_state(ctx.services, ctx.sio, ctx.room)
    return {}


async def _apply_mute(ctx: Ctx, p: Participant) -> None:
    """Muting is enforced by the hub (it stops forwarding the audio), not left to the muted browser."""
    if ctx.room.hub is not None:
        await ctx.room.hub.set_muted(p.pid, p.muted)


@on("chat:send", Action.CHAT, ChatIn, admitted=True)
async def chat(ctx: Ctx, body: ChatIn) -> dict[str, Any]:
    """Chat goes to everyone who may hear the sender: inside a caucus it stays inside (R9)."""
    text = "".join(ch for ch in body.text if ch >= " " or ch in "\n\t")
    if not text.strip():
        raise InvalidInput("empty message", code="invalid_input")
    caucus = "caucus" if ctx.me.pid in ctx.room.caucus else None
    async with ctx.services.db.session() as s:
        msg = ChatMessage(session_id=ctx.room.session_id, sender=ctx.me.pid, sender_name=ctx.me.name,
                          caucus=caucus, text=text)
        s.add(msg)
        await s.flush()
        out = {"id": msg.id, "from": ctx.me.pid, "name": ctx.me.name, "text": text, "at": msg.at.isoformat(),
               "private": caucus is not None}
    for p in ctx.room.admitted():
        if ctx.room.same_side_of_caucus(ctx.me.pid, p.pid):
            await ctx.emit("chat:message", out, to=p.sid)
    return {"id": out["id"]}


def _check_members(ctx: Ctx, members: list[str]) -> frozenset[str]:
    ms = frozenset(members)
    if ctx.me.pid not in ms:
        raise InvalidInput("you must be in the private room you open", code="bad_caucus")
    for m in ms:
        p = ctx.room.people.get(m)
        if p is None or not p.admitted:
            raise NotFound(f"{m} is not in the session", code="participant_not_found")
    if ms >= {p.pid for p in ctx.room.admitted()}:
        raise InvalidInput("a private room must leave someone out", code="bad_caucus")
    return ms


async def _set_caucus(ctx: Ctx, members: frozenset[str], kind: str) -> None:
    if not members:
        await recording_events.on_caucus_closed(ctx)  # before the group dissolves into the joint session
    ctx.room.caucus, ctx.room.caucus_kind = members, kind
    await sync_routing(ctx.room)
    if members:
        await recording_events.on_caucus_opened(ctx)
    async with ctx.services.db.session() as s:
        await audit.append(s, actor=ctx.me.pid, action=f"{kind}.{'open' if members else 'close'}",
                           subject=f"session:{ctx.room.session_id}", detail={"members": sorted(members)})
    await push_state(ctx.services, ctx.sio, ctx.room)


@on("caucus:open", Action.CAUCUS_OPEN, CaucusIn, admitted=True)
async def caucus_open(ctx: Ctx, body: CaucusIn) -> dict[str, Any]:
    """背靠背 (R7): the host with a chosen group; the hub stops forwarding between inside and outside."""
    if ctx.room.caucus:
        raise Conflict("a private room is already open; close it first", code="caucus_open")
    await _set_caucus(ctx, _check_members(ctx, body.members), "caucus")
    return {"members": sorted(ctx.room.caucus)}


@on("caucus:private-talk", Action.PRIVATE_TALK, Who, admitted=True)
async def private_talk(ctx: Ctx, body: Who) -> dict[str, Any]:
    """A psychologist's private talk with one party: the same mechanism as a caucus."""
    target = ctx.room.people.get(body.participant)
    if target is None or target.role is not Role.PARTY:
        raise InvalidInput("a private talk is with one party", code="bad_caucus")
    if ctx.room.caucus:
        raise Conflict("a private room is already open; close it first", code="caucus_open")
    await _set_caucus(ctx, _check_members(ctx, [ctx.me.pid, target.pid]), "private_talk")
    return {"members": sorted(ctx.room.caucus)}


@on("caucus:close", Action.PRIVATE_TALK, Empty, admitted=True)
async def caucus_close(ctx: Ctx, _: Empty) -> dict[str, Any]:
    if not ctx.room.caucus:
        raise Conflict("no private room is open", code="no_caucus")
    if ctx.me.role is not Role.HOST and ctx.me.pid not in ctx.room.caucus:
        raise Forbidden("only the host or a member closes it", code="forbidden")
    await _set_caucus(ctx, frozenset(), ctx.room.caucus_kind)
    return {}


@on("session:end", Action.SESSION_END, EndIn, admitted=True)
async def end(ctx: Ctx, body: EndIn) -> dict[str, Any]:
    room = ctx.room
    await recording_events.on_caucus_closed(ctx)
    if room.recorder is not None:
        await room.recorder.stop(body.reason or "session ended", actor=ctx.me.pid)
        room.recorder, room.recording = None, "off"
    if room.hub is not None:
        await room.hub.close()
    async with ctx.services.db.session() as s:
        sess = await session_row(s, room)
        await sessions.set_state(s, sess, sessions.SessionState.ENDED, actor=ctx.me.pid)
        await audit.checkpoint(s, ctx.services.keys.signing_key)
    await ctx.sio.emit("session:ended", {"reason": body.reason}, room=room_name(room.session_id), namespace=NS)
    ctx.services.rooms.close(room.session_id)
    for p in room.connected():  # the host's own connection closes from its side after this ack
        if p.sid and p.sid != ctx.conn.sid:
            await ctx.sio.disconnect(p.sid, namespace=NS)
    return {}
