"""Wiring of the media hub into `/session`: `media:*` events go to the session's Hub (docs/protocol.md, Media).

One Hub per live session, created on the first `media:join`; the live session (mediation.live) drives it through
its intent methods and observes it (audio-only switches, lost peers). People in the lobby may connect media too:
the routing table shows them to mediators only (ID check on camera), and they receive nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from media.config import MediaConfig
from media.hub import Hub
from media.speech import SpeechParticipant
from media.turn import ordered_servers, turn_credentials
from mediation import transcript as tx
from mediation.errors import OneDoorError
from mediation.live import LiveSession
from mediation.permissions import Action
from mediation.speech import DraftLine, DraftTranscriber, RecognizerFactory
from signaling.publish import Publisher
from signaling.services import Services
from signaling.sockets import Ctx, EventSpec, EventTable

MEDIA_EVENTS = ("media:join", "media:answer", "media:renegotiate", "media:audio-only", "media:keyframe",
                "media:leave")
events = EventTable()
log = logging.getLogger(__name__)


class MediaPayload(BaseModel):
    """Shape is checked by the hub (SDP size and syntax, codecs, flags); here only the envelope."""

    model_config = ConfigDict(extra="allow")


def ice_servers(services: Services, pid: str) -> list[dict[str, Any]]:
    """The ICE servers of `media:ice`, best TURN URL first (aiortc clients use only the first: media/turn.py)."""
    st = services.settings
    servers = list(st.ice_servers)
    if st.turn_secret and st.turn_urls:
        servers.append(turn_credentials(st.turn_secret, st.turn_ttl, pid, st.turn_urls))
    return ordered_servers(servers)


def hub_for(services: Services, publisher: Publisher, live: LiveSession) -> Hub:
    if live.media is None:
        async def send(pid: str, event: str, payload: dict[str, Any]) -> None:
            await publisher.to_person(live, pid, event, payload)

        st = services.settings
        live.media = Hub(str(live.session_id), MediaConfig(ice_servers=st.ice_servers, turn_ca_file=st.turn_ca_file),
                         send, observer=live)
        if services.speech is not None:
            live.speech = speech_drafts(services, publisher, live, live.media, services.speech)
    assert isinstance(live.media, Hub)
    return live.media


def speech_drafts(services: Services, publisher: Publisher, live: LiveSession, hub: Hub,
                  factory: RecognizerFactory) -> SpeechParticipant:
    """Speech drafts for this session (only when a recognizer is configured): each admitted speaker's audio to
    its own recognizer stream; every draft line goes as `transcript:draft` to those who may see it (R9)."""
    async def on_draft(line: DraftLine) -> None:
        try:
            out, to = await tx.draft(services.db, live, line)
        except OneDoorError as e:  # the session ended under the last utterance
            log.info("speech draft not shown: %s", e)
            return
        for pid in to:
            await publisher.to_person(live, pid, "transcript:draft", out)

    sp = SpeechParticipant(hub, DraftTranscriber(factory, on_draft))
    sp.start()
    return sp


async def _media(ctx: Ctx, event: str, body: MediaPayload) -> dict[str, Any]:
    hub = hub_for(ctx.services, ctx.publisher, ctx.live)
    me = ctx.me
    if event == "media:join":
        # priority: whose base layer a weak subscriber keeps first (media/hub.py `_fit`): the mediator's
        await hub.add(me.pid, {"name": me.name, "role": me.role.value, "side": me.side,
                               "priority": 1 if me.is_mediator else 0})
        hub.routing.set_lobby(me.pid, not me.admitted)
        hub.routing.set_viewer(me.pid, me.is_mediator)
        await ctx.emit("media:ice", {"ice_servers": ice_servers(ctx.services, me.pid)})
    ack = await hub.handle(me.pid, event, body.model_dump())
    if event == "media:audio-only":
        await ctx.live.audio_only_changed(me.pid, bool(ack.get("audio_only")), "request")
    ack.pop("ok", None)
    return ack


def _register(event: str) -> None:
    async def handler(ctx: Ctx, body: MediaPayload) -> dict[str, Any]:
        return await _media(ctx, event, body)

    events.add(event, EventSpec(Action.MEDIA, MediaPayload, handler, admitted=event == "media:audio-only"))


for _event in MEDIA_EVENTS:
    _register(_event)
