"""Wiring of the media hub into `/session`: `media:*` events go to the session's Hub (docs/protocol.md, Media).

One Hub per live session, created on the first `media:join`. Only admitted participants reach it (the dispatch
checks admission), so people in the lobby never receive anyone's media. The caucus decided in signaling
(room.caucus) is mirrored into the hub's routing table, which is also what the recorder obeys.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from media.config import MediaConfig
from media.hub import Hub
from media.turn import turn_credentials
from mediation.permissions import Action
from signaling.rooms import Room
from signaling.services import Services
from signaling.session_ns import push_state
from signaling.sockets import NS, Ctx, on

log = logging.getLogger(__name__)
CAUCUS = "caucus"
MEDIA_EVENTS = ("media:join", "media:answer", "media:renegotiate", "media:audio-only", "media:keyframe",
                "media:leave")


class MediaPayload(BaseModel):
    """Shape is checked by the hub (SDP size and syntax, codecs, flags); here only the envelope."""

    model_config = ConfigDict(extra="allow")


def ice_servers(services: Services, pid: str) -> list[dict[str, Any]]:
    st = services.settings
    servers = list(st.ice_servers)
    if st.turn_secret and st.turn_urls:
        servers.append(turn_credentials(st.turn_secret, st.turn_ttl, pid, st.turn_urls))
    return servers


def hub_for(ctx: Ctx) -> Hub:
    room = ctx.room
    if room.hub is None:
        sio, sv = ctx.sio, ctx.services

        async def send(pid: str, event: str, payload: dict[str, Any]) -> None:
            p = room.people.get(pid)
            if p is None:
                return
            if p.sid is not None:
                await sio.emit(event, payload, to=p.sid, namespace=NS)
            if event == "media:audio-only":  # the hub switched a weak link: everyone's view shows it (P5)
                p.audio_only = bool(payload.get("enabled"))
                await push_state(sv, sio, room)

        room.hub = Hub(str(room.session_id), MediaConfig(ice_servers=sv.settings.ice_servers), send)
    hub: Hub = room.hub
    return hub


async def sync_routing(room: Room) -> None:
    """Mirror room.caucus into the hub's routing table (members not yet in the hub join it when they do)."""
    hub: Hub | None = room.hub
    if hub is None:
        return
    if CAUCUS in hub.routing.caucuses():
        hub.routing.close_caucus(CAUCUS)
    members = (room.caucus | room.caucus_sinks) & hub.routing.participants
    if members:
        hub.routing.open_caucus(CAUCUS, members)
    await hub.apply_routing()


async def _media(ctx: Ctx, event: str, body: MediaPayload) -> dict[str, Any]:
    hub = hub_for(ctx)
    me = ctx.me
    if event == "media:join":
        await hub.add(me.pid, {"name": me.name, "role": me.role.value, "side": me.side})
        hub.routing.set_lobby(me.pid, not me.admitted)
        hub.routing.set_viewer(me.pid, me.is_mediator)
        await ctx.emit("media:ice", {"ice_servers": ice_servers(ctx.services, me.pid)})
        if me.pid in ctx.room.caucus:
            await sync_routing(ctx.room)
    ack = await hub.handle(me.pid, event, body.model_dump())
    if event == "media:audio-only":
        me.audio_only = bool(ack.get("audio_only"))
    ack.pop("ok", None)
    return ack


async def on_admitted(room: Room, pid: str) -> None:
    """Admission ends the lobby preview: the person joins the joint session's routing."""
    hub: Hub | None = room.hub
    if hub is not None and pid in hub.routing.participants and hub.routing.set_lobby(pid, False):
        await hub.apply_routing()


def _register(event: str) -> None:
    async def handler(ctx: Ctx, body: MediaPayload) -> dict[str, Any]:
        return await _media(ctx, event, body)

    # People in the lobby may connect media too: the routing table shows them to mediators only (ID check).
    on(event, Action.MEDIA, MediaPayload, admitted=event == "media:audio-only")(handler)


for _event in MEDIA_EVENTS:
    _register(_event)
