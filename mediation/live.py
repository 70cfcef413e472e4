"""One owner of a live session's presence: who is connected, in the lobby or admitted, muted, the caucus, the
recording state (architecture.md, "Layers inside the house").

`LiveSession` refers to people by participant ids (`inv-<invite id>`, `staff-<user id>`), never sockets, so it can
be placed on any node. It drives the media hub through intent methods that take effect at once (`open_caucus`,
`mute`, `admit`, `leave`) via the small `MediaControl` port the hub implements, and it is told of media facts
through the `HubObserver` methods (`audio_only_changed`, `peer_gone`). Whenever its state changes it marks itself
dirty and calls the transport's `on_change` hook, which pushes the new state to every client (one place).

A signaling connection that drops (network) does not remove the person at once: `leave(pid, grace=True)` marks them
`reconnecting` (they keep their place, their peer connection with the hub and so their recording stream) and
starts a timer of `grace` seconds; a new connection (`connect`) cancels it, otherwise `expire` removes their media.
The timers are the live session's own (`close` cancels them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mediation.permissions import MEDIATORS, SIDES, THIRD_PARTIES, SessionRole


class MediaControl(Protocol):
    """What the live session asks of the media hub (media.hub.Hub implements it)."""

    async def set_caucus(self, members: frozenset[str]) -> None: ...
    async def set_muted(self, participant_id: str, muted: bool) -> None: ...
    async def set_lobby(self, participant_id: str, waiting: bool) -> None: ...
    async def remove(self, participant_id: str) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Presence:
    pid: str  # "inv-<invite id>" or "staff-<user id>"
    role: SessionRole
    name: str
    invite_id: int | None = None
    person_id: int | None = None  # parties and agents: the case's person (agreement and application signing)
    staff_id: int | None = None
    side: str | None = None
    connected: bool = False
    admitted: bool = False
    muted: bool = False
    hand: bool = False
    audio_only: bool = False
    audio_only_reason: str | None = None  # "loss" (the hub's ladder: automatic) | "request" (the person's choice)
    reconnecting: bool = False  # the connection dropped; the place and media are kept for the grace period

    @property
    def is_mediator(self) -> bool:
        return self.role in MEDIATORS

    @property
    def is_side(self) -> bool:
        return self.role in SIDES

    def public(self) -> dict[str, Any]:
        return {"id": self.pid, "role": self.role.value, "name": self.name, "side": self.side,
                "person_id": self.person_id, "admitted": self.admitted, "connected": self.connected,
                "muted": self.muted, "hand": self.hand, "audio_only": self.audio_only,
                "reconnecting": self.reconnecting,
                "link": {"audio_only": self.audio_only, "automatic": self.audio_only_reason == "loss"}}


class Unknown(LookupError):
    pass


@dataclass
class LiveSession:
    session_id: int
    case_code: str
    host_id: int
    people: dict[str, Presence] = field(default_factory=dict)
    caucus: frozenset[str] = frozenset()  # members of the open caucus (empty: joint session)
    caucus_kind: str = ""  # "caucus" (mediator with one side) | "private_talk" (psychologist with a party)
    recording: str = "off"  # off | running | paused
    media: MediaControl | None = None  # the session's hub once media starts
    recorder: Any = None  # the joint session's recorder participant (media.recorder.RecorderParticipant)
    caucus_recorder: Any = None  # the separate, privileged caucus recording (center policy, R9)
    caucus_sinks: frozenset[str] = frozenset()  # recorder sinks that are members of the open caucus
    speech: Any = None  # speech-to-text drafts when a recognizer is configured (media.speech.SpeechParticipant)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)  # draft lines not yet accepted (newest last)
    dirty: bool = False
    on_change: Callable[[LiveSession], None] | None = None
    # One state push at a time (signaling/publish.py): a push reads the state, then emits to each person with
    # awaits between; two at once could deliver the older state last, and the page would show it until the next
    # change (found by tests/session/test_session_model.py: a lobby entry left on the mediator's page).
    push_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    grace: float = 30.0  # seconds a dropped connection keeps its place and media (signaling Settings)
    restored: frozenset[str] = frozenset()  # admitted before this node took the session over (durable record)
    _timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    # ---- views -----------------------------------------------------------------------------------------------
    def connected(self) -> list[Presence]:
        return [p for p in self.people.values() if p.connected]

    def mediator_present(self) -> bool:
        return any(p.is_mediator and p.connected for p in self.people.values())

    def lobby(self) -> list[Presence]:
        return [p for p in self.connected() if not p.admitted]

    def admitted(self) -> list[Presence]:
        """Admitted people present or reconnecting (a dropped connection keeps its place for the grace period)."""
        return [p for p in self.people.values() if p.admitted and (p.connected or p.reconnecting)]

    def third_parties(self) -> list[Presence]:
        return [p for p in self.people.values() if p.role in THIRD_PARTIES]

    def same_side_of_caucus(self, a: str, b: str) -> bool:
        """True when a and b can hear each other under the current caucus (R7): both in it or both outside."""
        return (a in self.caucus) == (b in self.caucus)

    def present(self, pid: str) -> Presence:
        p = self.people.get(pid)
        if p is None or not p.connected:
            raise Unknown(pid)
        return p

    def caucus_routing(self) -> frozenset[str]:
        """Who the hub puts in the caucus group: the members and the caucus recorder's sink."""
        return self.caucus | self.caucus_sinks

    def restore(self, admitted: frozenset[str], caucus: frozenset[str], caucus_kind: str) -> None:
        """Taken over from a lost node (mediation.live_restore): who was admitted is admitted again when they
        reconnect, and the private room that was open is open (the hub applies it once media starts)."""
        self.restored = admitted
        self.caucus, self.caucus_kind = caucus, caucus_kind
        self.changed()

    # ---- intents ---------------------------------------------------------------------------------------------
    def changed(self) -> None:
        self.dirty = True
        if self.on_change is not None:
            self.on_change(self)

    def connect(self, p: Presence) -> Presence:
        """A person's connection arrives (first time or again after a reload); mediators never wait (P3)."""
        known = self.people.setdefault(p.pid, p)
        timer = self._timers.pop(p.pid, None)
        if timer is not None:
            timer.cancel()
        known.connected, known.reconnecting = True, False
        known.admitted = known.admitted or known.is_mediator or known.pid in self.restored
        self.changed()
        return known

    async def leave(self, pid: str, grace: bool = False) -> None:
        """The connection went: the person stays known (a reconnect restores them) but is no longer present.

        `grace`: the connection dropped (network), not closed on purpose: for `self.grace` seconds the person keeps
        their place and media (`reconnecting`); `expire` removes them unless they connect again meanwhile."""
        p = self.people.get(pid)
        if p is None:
            return
        p.connected, p.hand = False, False
        if grace and self.grace > 0:
            p.reconnecting = True
            old = self._timers.pop(pid, None)
            if old is not None:
                old.cancel()
            self._timers[pid] = asyncio.get_running_loop().call_later(self.grace, self._expire_soon, pid)
        else:
            await self._remove_media(p)
        self.changed()

    def _expire_soon(self, pid: str) -> None:
        self._timers.pop(pid, None)
        task = asyncio.get_running_loop().create_task(self.expire(pid), name=f"live-{self.session_id}-expire")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def expire(self, pid: str) -> None:
        """The grace period ended without a new connection: the person's media goes (the recording stream ends)."""
        p = self.people.get(pid)
        if p is None or p.connected or not p.reconnecting:
            return
        p.reconnecting = False
        await self._remove_media(p)
        self.changed()

    async def _remove_media(self, p: Presence) -> None:
        p.audio_only, p.audio_only_reason = False, None
        if self.media is not None:
            await self.media.remove(p.pid)  # a rejoin makes a new peer connection (P5)

    def reconnecting(self) -> list[str]:
        return sorted(pid for pid, p in self.people.items() if p.reconnecting)

    def cancel_timers(self) -> list[asyncio.Task[None]]:
        """Cancel the grace timers and running expiries; returns the cancelled tasks (to await)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks

    async def close(self) -> None:
        """Cancel the grace timers (server shutdown, session end)."""
        await asyncio.gather(*self.cancel_timers(), return_exceptions=True)

    async def admit(self, pid: str) -> None:
        p = self.people[pid]
        p.admitted = True
        if self.media is not None:
            await self.media.set_lobby(pid, False)  # the lobby preview ends: the joint session's routing
        self.changed()

    def forget(self, pid: str) -> None:
        """The person's link was reissued: whoever comes back with the new one starts over in the lobby."""
        if self.people.pop(pid, None) is not None:
            self.caucus = self.caucus - {pid}
            self.changed()

    def refuse(self, pid: str) -> None:
        """Not let in: no longer admitted (the transport drops the connection). A party's link stays shut until it
        is reissued (`Invite.refused_at`, checked at every connect on every node); a staff member may knock again."""
        self.people[pid].admitted = False
        self.changed()

    def raise_hand(self, pid: str, up: bool) -> None:
        self.people[pid].hand = up
        self.changed()

    async def mute(self, pid: str, muted: bool) -> None:
        """Muting is enforced by the hub (it stops forwarding the audio), not left to the muted browser."""
        self.people[pid].muted = muted
        if self.media is not None:
            await self.media.set_muted(pid, muted)
        self.changed()

    async def open_caucus(self, members: frozenset[str], kind: str) -> None:
        self.caucus, self.caucus_kind = members, kind
        await self.sync_caucus()
        self.changed()

    async def close_caucus(self) -> None:
        self.caucus, self.caucus_sinks = frozenset(), frozenset()
        await self.sync_caucus()
        self.changed()

    async def sync_caucus(self) -> None:
        if self.media is not None:
            await self.media.set_caucus(self.caucus_routing())

    def set_recording(self, state: str) -> None:
        self.recording = state
        self.changed()

    # ---- HubObserver -----------------------------------------------------------------------------------------
    async def audio_only_changed(self, pid: str, enabled: bool, reason: str) -> None:
        p = self.people.get(pid)
        reason_now = (reason if reason in ("loss", "request") else "loss") if enabled else None
        if p is not None and (p.audio_only, p.audio_only_reason) != (enabled, reason_now):
            p.audio_only, p.audio_only_reason = enabled, reason_now
            self.changed()

    async def peer_gone(self, pid: str) -> None:
        """The hub lost the participant's peer connection; presence follows the signaling connection. The hub keeps
        the subscriber's audio-only state (automatic or requested) for its next peer connection, and so does this."""


class LiveSessions:
    """The live sessions this process owns."""

    def __init__(self) -> None:
        self._live: dict[int, LiveSession] = {}

    def get(self, session_id: int) -> LiveSession | None:
        return self._live.get(session_id)

    def open(self, session_id: int, case_code: str, host_id: int,
             on_change: Callable[[LiveSession], None] | None = None) -> LiveSession:
        live = self._live.get(session_id)
        if live is None:
            live = self._live[session_id] = LiveSession(session_id, case_code, host_id, on_change=on_change)
        return live

    def close(self, session_id: int) -> LiveSession | None:
        live = self._live.pop(session_id, None)
        if live is not None:
            live.cancel_timers()
        return live

    def all(self) -> list[LiveSession]:
        return list(self._live.values())

    def of_case(self, case_code: str) -> list[LiveSession]:
        return [x for x in self._live.values() if x.case_code == case_code]
