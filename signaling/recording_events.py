"""Recording controls (R1, R12, P2): the host starts, pauses, resumes and stops; consent first
(mediation.recording_policy). The recorder subscribes through the hub (media/recorder.py), so a caucus it is not
in is not recorded (R9); a center may record a caucus separately as a privileged recording.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from media.hub import Hub
from media.recorder import RecorderParticipant
from mediation import recording_policy
from mediation.errors import Conflict
from mediation.live import LiveSession, Presence
from mediation.permissions import Action
from recordings.recorder import Participant as RecSource
from recordings.recorder import Recorder
from signaling.events_media import hub_for
from signaling.services import Services
from signaling.sockets import Ctx, EventTable, Payload

log = logging.getLogger(__name__)
events = EventTable()
CAUCUS_SINK = "recorder-caucus"


class Reason(Payload):
    reason: str = Field(min_length=1, max_length=500)


class StartIn(Payload):
    reason: str = Field("all parties consented", min_length=1, max_length=500)


def fence_for(sv: Services, session_id: int) -> Callable[[], Awaitable[Any]] | None:
    """On a node of several, the owner check a recorder makes before each new part and the stop."""
    cluster = sv.cluster
    return (lambda: cluster.fence(session_id)) if cluster is not None else None


def _source(p: Presence, consented: bool) -> RecSource:
    return RecSource(p.pid, f"{p.name} ({p.role.value})", consented)


@events.on("recording:start", Action.RECORDING_CONTROL, StartIn, admitted=True)
async def start(ctx: Ctx, body: StartIn) -> dict[str, Any]:
    live, sv = ctx.live, ctx.services
    if live.recorder is not None:
        raise Conflict("the session is already being recorded", code="recording_running")
    await recording_policy.require_consent(sv.db, live)
    people = live.admitted()
    rec = await Recorder.start(db=sv.db, storage=sv.storage, keyring=sv.keys, session_id=str(live.session_id),
                               case_code=live.case_code, participants=[_source(p, True) for p in people],
                               actor=ctx.me.pid, reason=body.reason, fence=fence_for(sv, live.session_id))
    live.recorder = RecorderParticipant(hub_for(sv, ctx.publisher, live), rec)
    live.recorder.start()
    live.set_recording("running")
    return {"recording": rec.recording_id}


def _recorder(ctx: Ctx) -> RecorderParticipant:
    if ctx.live.recorder is None:
        raise Conflict("the session is not being recorded", code="not_recording")
    rp: RecorderParticipant = ctx.live.recorder
    return rp


@events.on("recording:pause", Action.RECORDING_CONTROL, Reason, admitted=True)
async def pause(ctx: Ctx, body: Reason) -> dict[str, Any]:
    await pause_with(ctx, body.reason, ctx.me.pid)
    return {}


async def pause_with(ctx: Ctx, reason: str, actor: str) -> None:
    rp = _recorder(ctx)
    if ctx.live.recording != "running":
        raise Conflict("the recording is not running", code="not_running")
    await rp.recorder.pause(reason, actor=actor)
    ctx.live.set_recording("paused")


@events.on("recording:resume", Action.RECORDING_CONTROL, Reason, admitted=True)
async def resume(ctx: Ctx, body: Reason) -> dict[str, Any]:
    rp = _recorder(ctx)
    if ctx.live.recording != "paused":
        raise Conflict("the recording is not paused", code="not_paused")
    missing = await recording_policy.not_consented(ctx.services.db, ctx.live.admitted())
    if missing:
        raise Conflict("someone present has not consented to recording", code="consent_missing",
                       participants=missing)
    await rp.recorder.resume(body.reason, actor=ctx.me.pid)
    for pid in rp.recorder.waiting_for_keyframe():
        rp.hub.request_keyframe(pid)
    ctx.live.set_recording("running")
    return {}


@events.on("recording:stop", Action.RECORDING_CONTROL, Reason, admitted=True)
async def stop(ctx: Ctx, body: Reason) -> dict[str, Any]:
    rp = _recorder(ctx)
    manifest = await rp.stop(body.reason, actor=ctx.me.pid)
    ctx.live.recorder = None
    ctx.live.set_recording("off")
    return {"recording": rp.recorder.recording_id, "segments": _segments(manifest)}


async def stop_all(ctx: Ctx, reason: str) -> None:
    if ctx.live.recorder is not None:
        await ctx.live.recorder.stop(reason, actor=ctx.me.pid)
        ctx.live.recorder = None
        ctx.live.set_recording("off")


def _segments(manifest: dict[str, Any]) -> int:
    body = manifest.get("manifest", manifest)
    return sum(int(s.get("segments", 0)) for s in body.get("streams", []) if isinstance(s, dict))


async def on_admitted(ctx: Ctx, p: Presence) -> None:
    """Someone admitted while recording runs becomes a recorded source (the lobby already checked consent)."""
    if ctx.live.recorder is not None:
        consented = not await recording_policy.not_consented(ctx.services.db, [p])
        await ctx.live.recorder.recorder.add_participant(_source(p, consented), actor=ctx.me.pid)


async def on_caucus_opened(ctx: Ctx) -> None:
    """By default a caucus is not recorded: the joint recorder is outside the group. A center may choose to
    record it separately (Center.record_caucus): a second, privileged recording whose sink is a caucus member."""
    live, sv = ctx.live, ctx.services
    if not await recording_policy.records_caucus(sv.db, live):
        return
    members = [live.people[m] for m in sorted(live.caucus) if m in live.people]
    rec = await Recorder.start(db=sv.db, storage=sv.storage, keyring=sv.keys, session_id=str(live.session_id),
                               case_code=live.case_code, participants=[_source(p, True) for p in members],
                               actor=ctx.me.pid, reason="caucus recorded separately by center policy (R9)",
                               privileged=True, record_type="caucus_recording", fence=fence_for(sv, live.session_id))
    await record_caucus_with(hub_for(sv, ctx.publisher, live), live, rec)


async def record_caucus_with(hub: Hub, live: LiveSession, rec: Recorder) -> None:
    """The caucus recorder's sink joins the open caucus (before it receives anything) and records what it hears:
    at a caucus's opening, and when a node takes the session over with the caucus open (signaling.takeover)."""
    hub.routing.add(CAUCUS_SINK)
    live.caucus_sinks = frozenset({CAUCUS_SINK})
    await live.sync_caucus()
    live.caucus_recorder = RecorderParticipant(hub, rec, sink_id=CAUCUS_SINK)
    live.caucus_recorder.start()


async def on_caucus_closed(ctx: Ctx) -> None:
    rp: RecorderParticipant | None = ctx.live.caucus_recorder
    if rp is not None:
        await rp.stop("caucus closed", actor=ctx.me.pid)
    ctx.live.caucus_recorder, ctx.live.caucus_sinks = None, frozenset()
