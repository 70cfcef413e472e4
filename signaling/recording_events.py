"""Recording controls (R1, R12, P2): the host starts, pauses, resumes and stops; consent first.

Recording starts only when every admitted person with an invite has consented (staff consent by their role);
while it runs, nobody who refused is admitted (lobby readiness) and a withdrawal pauses it for everyone. The
recorder subscribes through the hub (media/recorder.py), so a caucus it is not in is not recorded (R9).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field
from sqlalchemy import select

from media.recorder import RecorderParticipant
from mediation import sessions
from mediation.errors import Conflict
from mediation.models import Case, Center, Invite
from mediation.permissions import Action
from recordings.recorder import Participant as RecSource
from recordings.recorder import Recorder
from signaling.events_media import hub_for, sync_routing
from signaling.rooms import Participant
from signaling.session_ns import push_state
from signaling.sockets import Ctx, Payload, on

log = logging.getLogger(__name__)


class Reason(Payload):
    reason: str = Field(min_length=1, max_length=500)


class StartIn(Payload):
    reason: str = Field("all parties consented", min_length=1, max_length=500)


async def _consented(ctx: Ctx, p: Participant) -> bool:
    if p.invite_id is None:
        return True  # staff: recording is part of their duty; documented in docs/security.md
    async with ctx.services.db.session() as s:
        inv = await s.get(Invite, p.invite_id)
        assert inv
        return (await sessions.consents_of(s, [inv.id]))[inv.id].get("recording") is True


def _source(p: Participant, consented: bool) -> RecSource:
    return RecSource(p.pid, f"{p.name} ({p.role.value})", consented)


@on("recording:start", Action.RECORDING_CONTROL, StartIn, admitted=True)
async def start(ctx: Ctx, body: StartIn) -> dict[str, Any]:
    room = ctx.room
    if room.recorder is not None:
        raise Conflict("the session is already being recorded", code="recording_running")
    people = room.admitted()
    missing = [p.pid for p in people if not await _consented(ctx, p)]
    if missing:
        raise Conflict("recording needs the consent of everyone present (R1)", code="consent_missing",
                       participants=missing)
    sv = ctx.services
    rec = await Recorder.start(db=sv.db, storage=sv.storage, keyring=sv.keys, session_id=str(room.session_id),
                               case_code=room.case_code, participants=[_source(p, True) for p in people],
                               actor=ctx.me.pid, reason=body.reason)
    room.recorder = RecorderParticipant(hub_for(ctx), rec)
    room.recorder.start()
    room.recording = "running"
    await push_state(sv, ctx.sio, room)
    return {"recording": rec.recording_id}


def _recorder(ctx: Ctx) -> RecorderParticipant:
    if ctx.room.recorder is None:
        raise Conflict("the session is not being recorded", code="not_recording")
    rp: RecorderParticipant = ctx.room.recorder
    return rp


@on("recording:pause", Action.RECORDING_CONTROL, Reason, admitted=True)
async def pause(ctx: Ctx, body: Reason) -> dict[str, Any]:
    await pause_with(ctx, body.reason, ctx.me.pid)
    return {}


async def pause_with(ctx: Ctx, reason: str, actor: str) -> None:
    rp = _recorder(ctx)
    if ctx.room.recording != "running":
        raise Conflict("the recording is not running", code="not_running")
    await rp.recorder.pause(reason, actor=actor)
    ctx.room.recording = "paused"
    await push_state(ctx.services, ctx.sio, ctx.room)


@on("recording:resume", Action.RECORDING_CONTROL, Reason, admitted=True)
async def resume(ctx: Ctx, body: Reason) -> dict[str, Any]:
    rp = _recorder(ctx)
    if ctx.room.recording != "paused":
        raise Conflict("the recording is not paused", code="not_paused")
    missing = [p.pid for p in ctx.room.admitted() if not await _consented(ctx, p)]
    if missing:
        raise Conflict("someone present has not consented to recording", code="consent_missing",
                       participants=missing)
    await rp.recorder.resume(body.reason, actor=ctx.me.pid)
    for pid in rp.recorder.waiting_for_keyframe():
        rp.hub.request_keyframe(pid)
    ctx.room.recording = "running"
    await push_state(ctx.services, ctx.sio, ctx.room)
    return {}


@on("recording:stop", Action.RECORDING_CONTROL, Reason, admitted=True)
async def stop(ctx: Ctx, body: Reason) -> dict[str, Any]:
    rp = _recorder(ctx)
    manifest = await rp.stop(body.reason, actor=ctx.me.pid)
    ctx.room.recorder, ctx.room.recording = None, "off"
    await push_state(ctx.services, ctx.sio, ctx.room)
    return {"recording": rp.recorder.recording_id, "segments": _segments(manifest)}


def _segments(manifest: dict[str, Any]) -> int:
    body = manifest.get("manifest", manifest)
    return sum(int(s.get("segments", 0)) for s in body.get("streams", []) if isinstance(s, dict))


async def on_admitted(ctx: Ctx, p: Participant) -> None:
    """Someone admitted while recording runs becomes a recorded source (the lobby already checked consent)."""
    if ctx.room.recorder is not None:
        rp: RecorderParticipant = ctx.room.recorder
        await rp.recorder.add_participant(_source(p, await _consented(ctx, p)), actor=ctx.me.pid)


CAUCUS_SINK = "recorder-caucus"


async def _center_records_caucus(ctx: Ctx) -> bool:
    async with ctx.services.db.session() as s:
        q = select(Center.record_caucus).join(Case, Case.center_id == Center.id).where(Case.code == ctx.room.case_code)
        return bool(await s.scalar(q))


async def on_caucus_opened(ctx: Ctx) -> None:
    """By default a caucus is not recorded: the joint recorder is outside the group. A center may choose to
    record it separately (Center.record_caucus): a second, privileged recording whose sink is a caucus member."""
    room = ctx.room
    if room.recording != "running" or not await _center_records_caucus(ctx):
        return
    members = [room.people[m] for m in sorted(room.caucus) if m in room.people]
    if not all([await _consented(ctx, p) for p in members]):
        log.info("caucus of session %s not recorded: a member has not consented", room.session_id)
        return
    sv = ctx.services
    rec = await Recorder.start(db=sv.db, storage=sv.storage, keyring=sv.keys, session_id=str(room.session_id),
                               case_code=room.case_code, participants=[_source(p, True) for p in members],
                               actor=ctx.me.pid, reason="caucus recorded separately by center policy (R9)",
                               privileged=True, record_type="caucus_recording")
    hub = hub_for(ctx)
    hub.routing.add(CAUCUS_SINK)  # into the caucus group before it receives anything
    room.caucus_sinks = frozenset({CAUCUS_SINK})
    await sync_routing(room)
    room.caucus_recorder = RecorderParticipant(hub, rec, sink_id=CAUCUS_SINK)
    room.caucus_recorder.start()


async def on_caucus_closed(ctx: Ctx) -> None:
    rp: RecorderParticipant | None = ctx.room.caucus_recorder
    if rp is not None:
        await rp.stop("caucus closed", actor=ctx.me.pid)
    ctx.room.caucus_recorder, ctx.room.caucus_sinks = None, frozenset()


async def on_consent_withdrawn(ctx: Ctx) -> None:
    """R1/P2: a participant withdrawing recording consent pauses the recording for everyone."""
    if ctx.room.recording == "running":
        await pause_with(ctx, f"recording consent withdrawn by {ctx.me.name}", ctx.me.pid)
