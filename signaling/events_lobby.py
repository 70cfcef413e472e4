"""Lobby events: identity check, notices and consents, admission (R1, R3, R5, R8, P2, P3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mediation import audit, identity, sessions
from mediation.errors import Conflict, InvalidInput, NotFound
from mediation.models import Invite, Person
from mediation.permissions import THIRD_PARTIES, Action
from signaling import events_media, recording_events
from signaling.agreement_common import push_agreement
from signaling.rooms import Participant
from signaling.session_ns import party_invite_ids, push_state, session_row
from signaling.sockets import Ctx, Empty, Payload, on


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


async def _invite(s: Any, p: Participant) -> Invite:
    if p.invite_id is None:
        raise InvalidInput("staff do not take the invite identity check", code="not_applicable")
    inv = await s.get(Invite, p.invite_id)
    assert inv is not None
    return inv


def _target(ctx: Ctx, pid: str) -> Participant:
    p = ctx.room.people.get(pid)
    if p is None or p.sid is None:
        raise NotFound("that participant is not connected", code="participant_not_found")
    return p


@on("identity:start", Action.IDENTITY_SELF, IdentityStart)
async def identity_start(ctx: Ctx, body: IdentityStart) -> dict[str, Any]:
    async with ctx.services.db.session() as s:
        inv = await _invite(s, ctx.me)
        if await identity.passed(s, inv):
            return {"passed": True}
        person = await s.get(Person, inv.person_id) if inv.person_id else None
        out = await ctx.services.verifiers[body.method].start(s, inv, phone=person.phone if person else "",
                                                              actor=ctx.me.pid)
    await push_state(ctx.services, ctx.sio, ctx.room)
    return out


@on("identity:answer", Action.IDENTITY_SELF, IdentityAnswer)
async def identity_answer(ctx: Ctx, body: IdentityAnswer) -> dict[str, Any]:
    async with ctx.services.db.session() as s:
        inv = await _invite(s, ctx.me)
        ok = await ctx.services.verifiers["otp"].answer(s, inv, {"code": body.code}, actor=ctx.me.pid)
    await push_state(ctx.services, ctx.sio, ctx.room)
    if not ok:
        raise InvalidInput("the code is not right; try again", code="wrong_code")
    return {"passed": True}


@on("identity:attest", Action.IDENTITY_ATTEST, Attest)
async def identity_attest(ctx: Ctx, body: Attest) -> dict[str, Any]:
    target = _target(ctx, body.participant)
    async with ctx.services.db.session() as s:
        inv = await _invite(s, target)
        ok = await ctx.services.verifiers["attestation"].answer(
            s, inv, {"document": body.document, "matched": body.matched}, actor=ctx.me.pid)
    await push_state(ctx.services, ctx.sio, ctx.room)
    return {"passed": ok}


@on("lobby:consent", Action.LOBBY_CONSENT, ConsentIn)
async def consent(ctx: Ctx, body: ConsentIn) -> dict[str, Any]:
    if body.kind == "third_party":
        t = ctx.room.people.get(body.subject)
        if t is None or t.role not in THIRD_PARTIES:
            raise NotFound("no such third party in this session", code="participant_not_found")
    async with ctx.services.db.session() as s:
        inv = await _invite(s, ctx.me)
        await sessions.record_consent(s, inv, body.kind, body.granted, subject=body.subject, actor=ctx.me.pid)
    if body.kind == "recording" and not body.granted and ctx.me.admitted:
        await recording_events.on_consent_withdrawn(ctx)
    await push_state(ctx.services, ctx.sio, ctx.room)
    return {}


async def admit_one(ctx: Ctx, p: Participant) -> None:
    if p.admitted:
        return
    async with ctx.services.db.session() as s:
        party_ids = await party_invite_ids(s, ctx.room.session_id)
        if p.invite_id is None:  # staff third party (judge, psychologist): login is identity; parties consent (R8)
            ok = await sessions.parties_consented(s, p.pid, party_ids)
            blocking = [] if ok else ["party_consent_to_third_party"]
        else:
            r = await sessions.readiness(s, await _invite(s, p), party_ids)
            blocking = r.blocking(ctx.room.recording != "off")
        if blocking:
            raise Conflict(f"{p.name} is not ready: {', '.join(blocking)}", code="not_ready", blocking=blocking,
                           participant=p.pid)
        sess = await session_row(s, ctx.room)
        if sess.state == sessions.SessionState.OPEN:
            await sessions.set_state(s, sess, sessions.SessionState.LIVE, actor=ctx.me.pid)
        await audit.append(s, actor=ctx.me.pid, action="lobby.admit", subject=f"session:{ctx.room.session_id}",
                           detail={"participant": p.pid, "role": p.role.value})
    p.admitted = True
    await events_media.on_admitted(ctx.room, p.pid)
    await recording_events.on_admitted(ctx, p)
    await ctx.emit("session:admitted", {"participant": p.pid}, to=p.sid)


async def _after_admission(ctx: Ctx) -> None:
    await push_state(ctx.services, ctx.sio, ctx.room)
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)  # a late joiner sees the draft at once


@on("lobby:admit", Action.LOBBY_ADMIT, Who)
async def admit(ctx: Ctx, body: Who) -> dict[str, Any]:
    await admit_one(ctx, _target(ctx, body.participant))
    await _after_admission(ctx)
    return {}


@on("lobby:admit-all", Action.LOBBY_ADMIT)
async def admit_all(ctx: Ctx, _: Empty) -> dict[str, Any]:
    admitted, waiting = [], []
    for p in ctx.room.lobby():
        try:
            await admit_one(ctx, p)
            admitted.append(p.pid)
        except Conflict as e:
            waiting.append({"participant": p.pid, "blocking": e.detail.get("blocking", [])})
    await _after_admission(ctx)
    return {"admitted": admitted, "not_ready": waiting}


@on("lobby:refuse", Action.LOBBY_ADMIT, Refuse)
async def refuse(ctx: Ctx, body: Refuse) -> dict[str, Any]:
    p = _target(ctx, body.participant)
    if p.is_mediator:
        raise Conflict("mediators cannot be refused", code="bad_target")
    async with ctx.services.db.session() as s:
        await audit.append(s, actor=ctx.me.pid, action="lobby.refuse", subject=f"session:{ctx.room.session_id}",
                           detail={"participant": p.pid}, reason=body.reason or None)
    p.admitted = False
    sid = p.sid
    await ctx.emit("session:refused", {"reason": body.reason or "the mediator did not admit you"}, to=sid)
    assert sid is not None
    await ctx.sio.disconnect(sid, namespace="/session")
    return {}
