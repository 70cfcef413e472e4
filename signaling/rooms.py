"""Live state of sessions in this process: who is connected, in the lobby or admitted, caucus, hands, mutes.

Durable facts (identity checks, consents, admissions' audit entries) are in the database; this is the
presence layer. A session lives on one node (architecture.md, "Growing past one machine").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from mediation.permissions import MEDIATORS, Role


@dataclass
class Participant:
    pid: str  # "inv-<invite id>" or "staff-<user id>"
    role: Role
    name: str
    sid: str | None = None
    invite_id: int | None = None
    person_id: int | None = None  # parties and agents: the case's person (agreement and application signing)
    staff_id: int | None = None
    side: str | None = None
    admitted: bool = False
    muted: bool = False
    hand: bool = False
    audio_only: bool = False

    @property
    def is_mediator(self) -> bool:
        return self.role in MEDIATORS

    def public(self) -> dict[str, Any]:
        return {"id": self.pid, "role": self.role.value, "name": self.name, "side": self.side,
                "person_id": self.person_id,
                "admitted": self.admitted, "connected": self.sid is not None, "muted": self.muted,
                "hand": self.hand, "audio_only": self.audio_only}


@dataclass
class Room:
    session_id: int
    case_code: str
    host_id: int
    people: dict[str, Participant] = field(default_factory=dict)
    caucus: frozenset[str] = frozenset()  # members of the open caucus (empty: joint session)
    caucus_kind: str = ""  # "caucus" (mediator with one side) | "private_talk" (psychologist with a party)
    recording: str = "off"  # off | running | paused
    hub: Any = None  # media.hub.Hub once media starts
    recorder: Any = None  # media.recorder.RecorderParticipant of the joint session
    caucus_recorder: Any = None  # the separate, privileged caucus recording (center policy, R9)
    caucus_sinks: frozenset[str] = frozenset()  # recorder sinks that are members of the open caucus
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def connected(self) -> list[Participant]:
        return [p for p in self.people.values() if p.sid is not None]

    def mediator_present(self) -> bool:
        return any(p.is_mediator and p.sid for p in self.people.values())

    def lobby(self) -> list[Participant]:
        return [p for p in self.connected() if not p.admitted]

    def admitted(self) -> list[Participant]:
        return [p for p in self.connected() if p.admitted]

    def same_side_of_caucus(self, a: str, b: str) -> bool:
        """True when a and b can hear each other under the current caucus (R7): both in it or both outside."""
        return (a in self.caucus) == (b in self.caucus)


class Rooms:
    def __init__(self) -> None:
        self._rooms: dict[int, Room] = {}

    def get(self, session_id: int) -> Room | None:
        return self._rooms.get(session_id)

    def open(self, session_id: int, case_code: str, host_id: int) -> Room:
        room = self._rooms.get(session_id)
        if room is None:
            room = self._rooms[session_id] = Room(session_id, case_code, host_id)
        return room

    def close(self, session_id: int) -> Room | None:
        return self._rooms.pop(session_id, None)

    def all(self) -> list[Room]:
        return list(self._rooms.values())
