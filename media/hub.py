"""The media hub of one live session: pass-through forwarding between the participants' peer connections.

API (the signaling layer owns one Hub per live session)::

    hub = Hub(session_id, MediaConfig(...), send)   # send(participant_id, event, payload) -> Awaitable[None]
    await hub.add(participant_id, label)             # label: public dict shown to others (name, role, side...)
    ack = await hub.handle(participant_id, event, payload)   # client -> server media events; returns the ack
    await hub.set_caucus(members); await hub.set_lobby(pid, waiting); await hub.set_muted(pid, muted)  # intents
    await hub.remove(participant_id); await hub.close()
    hub.stats()                                      # counters, slots, queues, tasks (for tests and /metrics)

`handle` raises `mediation.errors.OneDoorError` subclasses (media/errors.py); the transport turns them into
`{"ok": false, "error": {...}}`. `send` must not wait for the client to act on the message (an emit is fine).
Events and payloads: docs/protocol-media.md. The server is always the offerer (media/peer.py), so there is no
glare: a participant's negotiation runs under its own lock and one offer is outstanding at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Protocol

from aiortc import RTCPeerConnection

from media import passthrough
from media.bandwidth import (
    RembControl,
    base_layers_that_fit,
    layer_for,
    publisher_rate_for,
    queue_free,
    share,
)
from media.config import MediaConfig
from media.errors import UnknownEvent, UnknownParticipant
from media.forward import FrameSink, Publication, QueueingSink, Slot
from media.peer import Peer
from media.routing import RoutingTable
from media.rtpforward import KEYFRAME_ROOM
from media.vp8 import ALL_LAYERS
from media.weaklink import AUDIO_ONLY, STEP_BASE_LAYER, STEP_FULL, SlotReport
from mediation.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)

Send = Callable[[str, str, dict[str, Any]], Awaitable[None]]
CAUCUS = "caucus"
# s a publisher asked for a key frame for a paced subscriber has to answer before the next one is asked
KEYFRAME_ANSWER = 1.0


class HubObserver(Protocol):
    """What the hub tells the session's owner (mediation.live.LiveSession implements it)."""

    async def audio_only_changed(self, pid: str, enabled: bool, reason: str) -> None: ...
    async def peer_gone(self, pid: str) -> None: ...
Handler = Callable[[Peer, dict[str, Any]], Awaitable[dict[str, Any]]]


class Hub:
    def __init__(self, session_id: str, config: MediaConfig, send: Send, observer: HubObserver | None = None
                 ) -> None:
        passthrough.check_aiortc_internals()
        self.session_id = session_id
        self.config = config
        self.routing = RoutingTable()
        self._send = send
        self.observer = observer
        self._peers: dict[str, Peer] = {}
        self._sinks: dict[str, FrameSink] = {}
        self._taps: dict[str, FrameSink] = {}  # audio of every admitted, unmuted speaker, any group (speech drafts)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._caucus: frozenset[str] = frozenset()
        self._closed = False
        self._handlers: dict[str, Handler] = {
            "media:join": self._on_join,
            "media:answer": self._on_answer,
            "media:renegotiate": self._on_renegotiate,
            "media:audio-only": self._on_audio_only,
            "media:keyframe": self._on_keyframe,
            "media:leave": self._on_leave,
        }

    # lifecycle ----------------------------------------------------------------------------------
    async def add(self, participant_id: str, label: dict[str, Any] | None = None) -> None:
        if self._closed:
            raise Conflict("the session's media hub is closed", code="hub_closed")
        peer = self._peers.get(participant_id)
        if peer is not None:
            peer.label = dict(label or peer.label)
            return
        self._peers[participant_id] = Peer(participant_id, dict(label or {}), self.config)
        self.routing.add(participant_id)
        if participant_id in self._caucus:
            await self.set_caucus(self._caucus)
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._watch_links(), name=f"hub-{self.session_id}-links")

    async def remove(self, participant_id: str) -> None:
        """The participant leaves: its peer connection, publications and slots are released."""
        peer = self._peers.pop(participant_id, None)
        if peer is None:
            return
        self.routing.remove(participant_id)
        async with peer.lock:
            for publication in peer.publications.values():
                publication.close()
            peer.publications.clear()
            await peer.close_pc()
        await self.apply_routing()

    async def close(self) -> None:
        self._closed = True
        for tap in list(self._taps.values()):  # a tap with work of its own (speech drafts) ends with the hub
            stop = getattr(tap, "stop", None)
            if stop is not None:
                await stop()
        if self._monitor is not None:
            self._monitor.cancel()
        for pid in list(self._peers):
            await self.remove(pid)
        tasks = [t for t in (self._monitor, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._monitor = None

    async def handle(self, participant_id: str, event: str, payload: Any) -> dict[str, Any]:
        handler = self._handlers.get(event)
        if handler is None:
            raise UnknownEvent(f"unknown media event {event!r}")
        peer = self._peers.get(participant_id)
        if peer is None:
            raise UnknownParticipant("not a participant of this session's media")
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise InvalidInput("the payload must be an object")
        return await handler(peer, payload)

    async def apply_routing(self) -> None:
        """Start/stop forwarding after a routing change; resumed video waits for (and requests) a keyframe."""
        self._update_sinks()
        for peer in list(self._peers.values()):
            self._update_activity(peer)
        for peer in list(self._peers.values()):
            await self._send_tracks(peer)

    async def set_caucus(self, members: frozenset[str]) -> None:
        """The one caucus group (empty: the joint session); members not yet in the hub join it when they do."""
        if CAUCUS in self.routing.caucuses():
            self.routing.close_caucus(CAUCUS)
        self._caucus = frozenset(members)
        present = self._caucus & self.routing.participants
        if present:
            self.routing.open_caucus(CAUCUS, present)
        await self.apply_routing()

    async def set_lobby(self, participant_id: str, waiting: bool) -> None:
        """A person in the lobby publishes to mediators only and receives nothing (R5 ID check on camera)."""
        if participant_id in self.routing.participants and self.routing.set_lobby(participant_id, waiting):
            await self.apply_routing()

    async def set_muted(self, participant_id: str, muted: bool) -> None:
        """Stop (or resume) forwarding a participant's audio to everyone, the recorder included."""
        if self.routing.set_muted(participant_id, muted):
            await self.apply_routing()

    # frame sinks: the recorder participant -----------------------------------------------------
    def add_sink(self, sink_id: str, sink: FrameSink) -> None:
        """A subscriber without a peer connection; the routing table decides what it gets, as for people."""
        self._sinks[sink_id] = sink
        self.routing.add(sink_id)
        self._update_sinks()

    def remove_sink(self, sink_id: str) -> None:
        if self._sinks.pop(sink_id, None) is not None:
            self.routing.remove(sink_id)
        self._update_sinks()

    def add_tap(self, tap_id: str, sink: FrameSink) -> None:
        """An audio-only frame sink outside the routing groups: each admitted, unmuted participant's own audio,
        in the joint session or in a caucus (media/speech.py marks caucus audio, R9). Never a lobby's or a
        muted person's. Frames are assembled only while a publication has a sink or tap."""
        self._taps[tap_id] = sink
        self._update_sinks()

    def remove_tap(self, tap_id: str) -> None:
        self._taps.pop(tap_id, None)
        self._update_sinks()

    def request_keyframe(self, participant_id: str) -> None:
        peer = self._peers.get(participant_id)
        if peer is not None:
            for publication in peer.publications.values():
                publication.request_keyframe()

    def _update_sinks(self) -> None:
        for peer in self._peers.values():
            for pub in peer.publications.values():
                for sink_id in set(pub.sinks) - set(self._sinks) - set(self._taps):
                    del pub.sinks[sink_id]
                for tap_id, tap in self._taps.items():
                    if pub.live and pub.kind == "audio" and self.routing.heard(pub.owner):
                        pub.sinks.setdefault(tap_id, tap)
                    else:
                        pub.sinks.pop(tap_id, None)
                for sink_id, sink in self._sinks.items():
                    want = pub.live and self.routing.may_forward(pub.owner, sink_id, pub.kind)
                    if want and sink_id not in pub.sinks:
                        pub.sinks[sink_id] = sink
                        pub.request_keyframe()
                    elif not want:
                        pub.sinks.pop(sink_id, None)

    # client events ------------------------------------------------------------------------------
    async def _on_join(self, peer: Peer, payload: dict[str, Any]) -> dict[str, Any]:
        async with peer.lock:
            await peer.close_pc()  # a re-join (network change) replaces the peer connection
            peer.open(
                lambda source: self._publication(peer, source), lambda pc, s: self._on_state(peer, pc, s)
            )
            self._bind_missing(peer, allow_new=True)
            await self._offer(peer)
        return {"ok": True}

    async def _on_answer(self, peer: Peer, payload: dict[str, Any]) -> dict[str, Any]:
        changed = False
        async with peer.lock:
            await peer.apply_answer(payload.get("sdp"))
            live = set(peer.live_sources())
            for source, publication in peer.publications.items():
                if publication.live != (source in live):
                    changed = True
                    if publication.live:
                        publication.close()
                    elif peer.publish.get(source) is not None and publication.receiver is None:
                        # live again on the same peer connection (a screen shared again): its receiver is
                        # still tapped into this publication; keyframe requests go to it again
                        publication.receiver = peer.publish[source].receiver
                    publication.live = source in live
            self._update_activity(peer)
            self._update_sinks()
            await self._send_tracks(peer)
        self._spawn(self._sync(peer))
        if changed:
            for other in self._peers.values():
                if other is not peer:
                    self._spawn(self._sync(other))
        return {"ok": True}

    async def _on_renegotiate(self, peer: Peer, payload: dict[str, Any]) -> dict[str, Any]:
        async with peer.lock:
            if peer.pc is None:
                raise Conflict("join first", code="not_joined")
            if peer.offer_outstanding and peer.pending_offer is not None:
                # the client may have missed it (its signaling connection dropped and came back): send it again
                await self._emit(peer.pid, "media:offer", {**peer.pending_offer, "tracks": self._tracks(peer)})
                return {"ok": True, "pending": True}
            self._bind_missing(peer, allow_new=True)
            await self._offer(peer)
        return {"ok": True}

    async def _on_audio_only(self, peer: Peer, payload: dict[str, Any]) -> dict[str, Any]:
        enabled = payload.get("enabled")
        if not isinstance(enabled, bool):
            raise InvalidInput("'enabled' must be true or false")
        await self._set_audio_only(peer, enabled, "request", notify=False)
        return {"ok": True, "audio_only": enabled}

    async def _observe_audio_only(self, pid: str, enabled: bool, reason: str) -> None:
        if self.observer is not None:
            try:
                await self.observer.audio_only_changed(pid, enabled, reason)
            except Exception:
                logger.exception("observer failed on audio-only of %s", pid)

    async def _on_keyframe(self, peer: Peer, payload: dict[str, Any]) -> dict[str, Any]:
        mid = payload.get("mid")
        slot = next((s for s in peer.slots if s.mid == mid), None)
        if slot is None:
            raise InvalidInput("no forwarded track with this mid", code="unknown_mid")
        self._keyframe_for(slot)
        return {"ok": True}

    async def _on_leave(self, peer: Peer, payload: dict[str, Any]) -> dict[str, Any]:
        async with peer.lock:
            for publication in peer.publications.values():
                publication.close()
            await peer.close_pc()
        await self.apply_routing()
        return {"ok": True}

    # negotiation and binding --------------------------------------------------------------------
    def _publication(self, peer: Peer, source: str) -> Publication:
        publication = peer.publications.get(source)
        if publication is None:
            publication = Publication(
                owner=peer.pid,
                source=source,
                label=peer.label,
                keyframe_interval=self.config.keyframe_interval,
                spawn=self._spawn,
                remb=RembControl(self.config) if source != "audio" else None,
            )
            peer.publications[source] = publication
        return publication

    def _bind_missing(self, peer: Peer, allow_new: bool) -> bool:
        """Bind every live publication of the others to a slot of `peer`; True if slots were created."""
        bound = {slot.publication for slot in peer.slots}
        created = False
        for other in self._peers.values():
            if other is peer:
                continue
            for publication in other.publications.values():
                if not publication.live or publication in bound:
                    continue
                slot = next(
                    (s for s in peer.slots if s.publication is None and s.kind == publication.kind), None
                )
                if slot is None:
                    if not allow_new:
                        continue
                    slot = peer.add_slot(publication.kind, self._keyframe_for)
                    created = True
                slot.publication = publication
                slot.active = False
                publication.slots.add(slot)
        return created

    async def _sync(self, peer: Peer) -> None:
        async with peer.lock:
            if peer.pc is None or peer.pc.connectionState in ("closed", "failed"):
                return
            if self._bind_missing(peer, allow_new=not peer.offer_outstanding):
                await self._offer(peer)
            else:
                self._update_activity(peer)
                await self._send_tracks(peer)

    async def _offer(self, peer: Peer) -> None:
        offer = await peer.make_offer()
        self._update_activity(peer)
        offer["tracks"] = peer.sent_tracks = self._tracks(peer)
        peer.pending_offer = offer
        await self._emit(peer.pid, "media:offer", offer)

    def _on_state(self, peer: Peer, pc: RTCPeerConnection, state: str) -> None:
        logger.debug("session %s participant %s: connection %s", self.session_id, peer.pid, state)
        if state == "failed" and peer.pc is pc:
            self._spawn(self._on_leave(peer, {}))
            if self.observer is not None:
                self._spawn(self.observer.peer_gone(peer.pid))

    def _update_activity(self, peer: Peer) -> None:
        for slot in peer.slots:
            pub = slot.publication
            want = (
                slot.negotiated
                and pub is not None
                and self.routing.may_forward(pub.owner, peer.pid, pub.kind)
            )
            if want != slot.active:
                slot.forwarder.restart()
                slot.active = want
                if want and pub is not None and slot.forwarder.bound:
                    pub.request_keyframe()  # (an unbound forwarder asks when its sender starts)

    def _keyframe_for(self, slot: Slot) -> None:
        if slot.active and slot.publication is not None:
            slot.publication.request_keyframe()

    def _tracks(self, peer: Peer) -> dict[str, Any]:
        return {slot.mid: slot.describe() for slot in peer.slots if slot.mid is not None}

    async def _send_tracks(self, peer: Peer) -> None:
        tracks = self._tracks(peer)
        if peer.pc is not None and tracks != peer.sent_tracks:
            peer.sent_tracks = tracks
            await self._emit(peer.pid, "media:tracks", {"tracks": tracks})

    # weak links ---------------------------------------------------------------------------------
    async def _set_audio_only(self, peer: Peer, enabled: bool, reason: str, notify: bool = True) -> None:
        self.routing.set_audio_only(peer.pid, enabled)
        peer.audio_only_reason = reason if enabled else None
        loss = peer.link.last_loss
        if reason == "request":  # a person's choice: when it ends, the ladder starts again from the top
            peer.link.reset(level=peer.link.top)
            peer.meter.reset()
            self._fit(peer)
        await self.apply_routing()
        await self._observe_audio_only(peer.pid, enabled, reason)
        if notify:
            await self._emit(
                peer.pid, "media:audio-only", {"enabled": enabled, "reason": reason, "loss": loss}
            )

    async def _watch_links(self) -> None:
        config = self.config
        tick = min(config.monitor_interval, config.remb_interval)
        next_check = time.monotonic() + config.monitor_interval
        while True:
            await asyncio.sleep(tick)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + config.monitor_interval
                for pub in [p for peer in self._peers.values() for p in peer.publications.values()]:
                    if pub.kind == "video":
                        pub.measure_layers(time.monotonic())
                for peer in list(self._peers.values()):
                    try:
                        await self._check_link(peer)
                        self._keyframes_for_weak(peer)
                        self._fit(peer)
                    except Exception:
                        logger.exception("link check failed for %s", peer.pid)
            try:
                self._send_rembs()
            except Exception:
                logger.exception("REMB update failed")

    def _full_rate_shares(self) -> dict[str, int | None]:
        """Per connected subscriber: what each video stream it receives at full rate may take (bit/s)."""
        now = time.monotonic()
        shares: dict[str, int | None] = {}
        for peer in self._peers.values():
            if not peer.connected:
                continue
            shares[peer.pid] = share(peer.downlink.value(now), peer.audio_streams, peer.full_rate_video_streams,
                                     self.config.bwe_audio_allowance)
        return shares

    def _send_rembs(self) -> None:
        """Each live video publication: REMB = min over its full-rate subscribers' shares, floored, stepwise up
        (media/bandwidth.py). A subscriber at key frames only or audio only does not count."""
        shares = self._full_rate_shares()
        for peer in self._peers.values():
            for pub in peer.publications.values():
                if pub.remb is None or not pub.live or pub.receiver is None or pub.media_ssrc is None:
                    continue
                # a subscriber capped at a temporal layer counts for what lets that layer fit (media/bandwidth.py)
                caps = [
                    publisher_rate_for(cap, pub.layer_rates, slot.forwarder.layer_cap)
                    for slot in pub.slots
                    if slot.active and not slot.forwarder.keyframes_only
                    and (cap := shares.get(slot.subscriber)) is not None
                ]
                pub.remb.downlink = min(caps) if caps else None
                pub.send_remb(pub.remb.tick())

    def _keyframes_for_weak(self, peer: Peer) -> None:
        """A subscriber that gets key frames only from a publisher (the key-frames-only step; at the base-layer step, a
        publisher without temporal layers) sees it at least every `keyframe_only_interval`
        (browsers send key frames only when asked; the request is coalesced per publisher: keyframe_interval).
        A slot is due when neither a key frame nor a request for one came in that interval. While its video is
        paced, one publisher is asked at a time, the one whose key frame or last request is oldest, and only when
        the last key frame has left and the one asked last had `KEYFRAME_ANSWER` s to answer: two asked at once
        would arrive together, and the one its link has no room for would be skipped (and cost every other
        subscriber of that publisher a key frame for nothing). Turns go round: a publisher that does not answer
        (a starved phone, a camera stopped) is not asked again and again while the others are never asked."""
        now = time.time()  # the forwarders' clock (`Publication.on_rtp` passes wall-clock time)

        def seen(slot: Slot) -> float:
            return max(slot.forwarder.last_keyframe_at or 0.0, slot.keyframe_asked_at or 0.0)

        due = [
            slot for slot in peer.slots
            if slot.active and slot.forwarder.keyframes_only
            and now - seen(slot) >= self.config.keyframe_only_interval
        ]
        if peer.pacer.rate is not None:
            last_ask = max((slot.keyframe_asked_at or 0.0 for slot in peer.slots), default=0.0)
            if peer.pacer.backlog() > KEYFRAME_ROOM or now - last_ask < KEYFRAME_ANSWER:
                return
            due = sorted(due, key=seen)[:1]
        for slot in due:
            slot.keyframe_asked_at = now
            self._keyframe_for(slot)

    def _fit(self, peer: Peer) -> None:
        """What the subscriber's downlink carries: its video pacing, which video slots get key frames only, and each
        video slot's temporal layer cap. At the base-layer step the paced rate is shared out in order of the
        publishers' `priority` label (the mediator first): a base layer that does not fit what is left goes to key
        frames only, so the weak party sees the mediator at a quarter of the frame rate rather than everyone at
        none (the base layers of three publishers do not fit 300 kbit/s)."""
        self._pace(peer)
        video = [s for s in peer.slots if s.kind == "video"]
        thin = {slot: peer.keyframes_only_from(slot.publication) for slot in video}
        if peer.step == STEP_BASE_LAYER and peer.pacer.rate is not None:
            layered = [(s, pub) for s in video
                       if (pub := s.publication) is not None and s.active and not thin[s] and pub.layer_rates]
            layered.sort(key=lambda sp: -self._priority(sp[1]))
            streams = [(s, pub.layer_rates[0], not s.forwarder.keyframes_only) for s, pub in layered]
            fits = base_layers_that_fit(peer.pacer.rate, streams, self.config.layer_up_margin)
            thin.update({s: s not in fits for s, _ in layered})
        for slot in video:
            slot.forwarder.set_keyframes_only(thin[slot])
        self._select_layers(peer)

    def _priority(self, publication: Publication) -> int:
        """The publisher's `priority` label (signaling gives the mediator 1), higher first."""
        owner = self._peers.get(publication.owner)
        return int(owner.label.get("priority", 0)) if owner is not None else 0

    def _pace(self, peer: Peer) -> None:
        """Below the ladder's top step its video is paced (media/pacer.py) at a rate that follows the queue its
        packets wait in (media/bandwidth.py PaceControl): a key frame no longer arrives as one burst that delays or
        drops the audio behind it on a weak link. The ceiling is the estimate without the subscriber's REMB (which
        follows the pacing: media/bandwidth.py)."""
        if peer.step == STEP_FULL or not self.config.pacing:
            peer.pace.stop()
            peer.pacer.set_rate(None)
            return
        ceiling = (peer.downlink.value(time.monotonic(), remb=False)
                   - peer.audio_streams * self.config.bwe_audio_allowance)
        peer.pacer.set_rate(peer.pace.update(ceiling))

    def _select_layers(self, peer: Peer) -> None:
        """Each video slot's temporal layer cap: layer 0 at the ladder's base-layer step; at full video the highest
        layer of a layered publisher that fits the subscriber's share of its loss-based estimate (a browser's own
        REMB follows what it receives, so it cannot vouch for a layer it is not sent; the hub does not probe)."""
        ceiling = peer.layer_ceiling
        video = [s for s in peer.slots if s.kind == "video"]
        portion = share(int(peer.downlink.bitrate), peer.audio_streams, peer.full_rate_video_streams,
                        self.config.bwe_audio_allowance)
        for slot in video:
            fwd, pub = slot.forwarder, slot.publication
            if pub is None or not pub.layer_rates:
                fwd.layer_cap = ceiling  # no layers measured: nothing to leave out (the cap takes no effect)
                continue
            chosen = layer_for(portion, pub.layer_rates, fwd.layer_cap, self.config.layer_up_margin)
            fwd.layer_cap = min(chosen, ceiling)

    def _receives_layers(self, peer: Peer) -> bool:
        """Does the subscriber receive video from a publisher that sends temporal layers?"""
        return any(s.active and s.publication is not None and s.publication.layer_rates
                   for s in peer.slots if s.kind == "video")

    async def set_link_level(self, participant_id: str, level: int) -> None:
        """Put a subscriber at a level of its ladder (0: audio only .. top: full video; `Peer.steps` names them)
        as a loss decision would; the ladder goes on from there (operators, tests)."""
        peer = self._peers.get(participant_id)
        if peer is None:
            raise UnknownParticipant("not a participant of this session's media")
        before = peer.link.level
        await self._apply_level(peer, before, peer.link.move(level))

    async def _check_link(self, peer: Peer) -> None:
        """One step of the subscriber's ladder from its receiver reports, net of its publishers' uplink loss."""
        if not peer.connected or peer.audio_only_reason == "request":
            return
        reports: dict[Hashable, SlotReport] = {}
        for slot in list(peer.slots):
            if not slot.negotiated:
                continue
            for stat in (await slot.transceiver.sender.getStats()).values():
                if stat.type == "remote-inbound-rtp":
                    reports[slot] = SlotReport(
                        stat.packetsLost, stat.packetsReceived, slot.forwarder.upstream_missing, stat.timestamp
                    )
        now = time.monotonic()
        fresh = peer.meter.update(reports)
        free = queue_free(peer.pace.queue_delay, peer.pacer.rate, peer.audio_streams, peer.downlink.bitrate,
                          self.config)
        peer.downlink.update(peer.meter.lost, peer.meter.received, fresh, now, random_loss=free)
        link = peer.link
        link.window.add(now, peer.meter.lost, peer.meter.received, fresh)
        before = link.level
        level = link.decide(now)
        if level is None:
            return
        if peer.steps[level] == STEP_BASE_LAYER and not self._receives_layers(peer):
            level = link.move(level + (1 if level > before else -1))  # a step that would change nothing
        logger.info(
            "participant %s: loss %.3f, link level %d -> %d", peer.pid, link.last_loss or 0.0, before, level
        )
        await self._apply_level(peer, before, level)

    async def _apply_level(self, peer: Peer, before: int, level: int) -> None:
        """Full video -> key frames only -> audio only, one step at a time (and back)."""
        if level == AUDIO_ONLY and before > AUDIO_ONLY:
            await self._set_audio_only(peer, True, "loss")
        elif before == AUDIO_ONLY and level > AUDIO_ONLY:
            await self._set_audio_only(peer, False, "recovered")
        self._fit(peer)

    # plumbing -----------------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any] | Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub task failed", exc_info=task.exception())

    async def _emit(self, pid: str, event: str, payload: dict[str, Any]) -> None:
        try:
            await self._send(pid, event, payload)
        except Exception:
            logger.exception("could not send %s to %s", event, pid)

    def stats(self) -> dict[str, Any]:
        participants: dict[str, Any] = {}
        for pid, peer in self._peers.items():
            participants[pid] = {
                "connection": peer.pc.connectionState if peer.pc is not None else None,
                "offers": peer.offers,
                "audio_only": self.routing.is_audio_only(pid),
                "link_level": peer.link.level,
                "link_step": peer.step,
                # the highest temporal layer it gets from any layered publisher (None: all layers, or none sent)
                "max_layer": _max_layer(peer),
                "link_loss": peer.link.last_loss,
                "downlink_estimate": peer.downlink.value(time.monotonic()),
                "pace_rate": peer.pacer.rate,  # bit/s its video is paced at (None: not paced)
                "queue_delay": peer.pace.queue_delay,  # s: its round-trip time above the lowest since pacing began
                "video_paced": peer.pacer.paced,
                "video_pace_refused": peer.pacer.refused,
                "video_resends_dropped": peer.pacer.resends_dropped,
                "downlink_loss": peer.downlink.last_loss,
                "downlink_remb": peer.downlink.remb,
                "publications": {
                    source: {
                        "live": p.live,
                        "frames_in": p.frames_in,
                        "keyframes_in": p.keyframes_in,
                        "packets_in": p.packets_in,
                        "bytes_in": p.bytes_in,
                        "keyframe_requests": p.keyframe_requests,
                        "plis_sent": p.plis_sent,
                        "remb": None if p.remb is None else p.remb.value,
                        "remb_downlink": None if p.remb is None else p.remb.downlink,
                        "remb_uplink": None if p.remb is None else p.remb.uplink,
                        "layer_rates": list(p.layer_rates),  # bit/s of temporal layers 0..k ([]: no layers)
                        "subscribers": len(p.slots),
                        "decoded_frames": 0 if p.receiver is None else _decoded(p.receiver),
                    }
                    for source, p in peer.publications.items()
                },
                "slots": [
                    {
                        **slot.describe(),
                        "mid": slot.mid,
                        "frames_out": slot.forwarder.frames,
                        "packets_out": slot.forwarder.packets,
                        "bytes_out": slot.forwarder.bytes,
                        "dropped": slot.forwarder.dropped,
                        "keyframes_only": slot.forwarder.keyframes_only,
                        "skipped": slot.forwarder.skipped,
                        "keyframes_out": slot.forwarder.keyframes,
                        "retransmitted": slot.forwarder.retransmitted,
                        "max_layer": _layer(slot.forwarder.layer),  # in force (None: all)
                        "max_layer_target": _layer(slot.forwarder.layer_cap),
                        "layer_dropped": slot.forwarder.layer_dropped,
                        "layer_frames_dropped": slot.forwarder.layer_frames_dropped,
                        "keyframe_requests_in": slot.keyframe_requests_in,
                    }
                    for slot in peer.slots
                ],
            }
        return {
            "session": self.session_id,
            "peer_connections": sum(1 for p in self._peers.values() if p.pc is not None),
            "tasks": len(self._tasks) + (self._monitor is not None),
            # frames held by queueing sinks (the recorder participant); the packet path itself has no queue: a
            # packet is sent while the publisher's packet is handled, or dropped (media/forward.py)
            "queued_frames": sum(s.backlog for s in self._sinks.values() if isinstance(s, QueueingSink)),
            "routing": self.routing.snapshot(),
            "participants": participants,
        }


def _layer(cap: int) -> int | None:
    return None if cap >= ALL_LAYERS else cap


def _max_layer(peer: Peer) -> int | None:
    caps = [s.forwarder.layer for s in peer.slots
            if s.kind == "video" and s.active and s.publication is not None and s.publication.layer_rates]
    return _layer(max(caps)) if caps else None


def _decoded(receiver: Any) -> int:
    """Frames that reached aiortc's decoder: always 0 for a tapped receiver (its thread only gets 'stop')."""
    return 0 if passthrough.tapped_frames(receiver) is not None else -1
