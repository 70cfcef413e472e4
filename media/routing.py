"""The routing table: who may receive whose media. Pure (no aiortc), shared by the hub and the recorder.

Every participant (people, and the recorder) is in exactly one *group*: the joint session, or one caucus.
Media flows only inside a group, so a caucus is private in both directions because the server does not
deliver it. A psychologist's private talk with one party is a caucus of those two. The recorder is never
made a caucus member, so by default a caucus is not recorded.

A subscriber may also be *audio only* (weak link, P5): it then receives no video from anyone.
"""

from __future__ import annotations

from collections.abc import Iterable

from media.errors import CaucusConflict, UnknownParticipant

AUDIO = "audio"


class RoutingTable:
    def __init__(self) -> None:
        self._participants: set[str] = set()
        self._caucuses: dict[str, frozenset[str]] = {}
        self._caucus_of: dict[str, str] = {}
        self._audio_only: set[str] = set()
        self._muted: set[str] = set()  # publishers whose audio is not forwarded (mediator's mute, self-mute)
        self._lobby: set[str] = set()  # not admitted yet: publish to viewers only (ID check), receive nothing
        self._viewers: set[str] = set()  # who may see people in the lobby (mediators)
        self.version = 0  # bumped on every change, so callers can tell whether to re-apply

    # participants -----------------------------------------------------------------------------
    def add(self, participant_id: str) -> None:
        self._participants.add(participant_id)
        self.version += 1

    def remove(self, participant_id: str) -> None:
        """Forget a participant; it leaves its caucus (a caucus left empty is closed)."""
        self._participants.discard(participant_id)
        self._audio_only.discard(participant_id)
        self._muted.discard(participant_id)
        self._lobby.discard(participant_id)
        self._viewers.discard(participant_id)
        name = self._caucus_of.pop(participant_id, None)
        if name is not None:
            members = self._caucuses[name] - {participant_id}
            if members:
                self._caucuses[name] = members
            else:
                del self._caucuses[name]
        self.version += 1

    @property
    def participants(self) -> frozenset[str]:
        return frozenset(self._participants)

    # caucus -------------------------------------------------------------------------------------
    def open_caucus(self, name: str, members: Iterable[str]) -> None:
        group = frozenset(members)
        if not name:
            raise CaucusConflict("a caucus needs a name", code="invalid_caucus")
        if not group:
            raise CaucusConflict("a caucus needs members", code="invalid_caucus")
        if name in self._caucuses:
            raise CaucusConflict(f"caucus {name!r} is already open")
        unknown = group - self._participants
        if unknown:
            raise UnknownParticipant("unknown caucus member", members=sorted(unknown))
        busy = sorted(p for p in group if p in self._caucus_of)
        if busy:
            raise CaucusConflict("already in another caucus", members=busy)
        self._caucuses[name] = group
        for pid in group:
            self._caucus_of[pid] = name
        self.version += 1

    def close_caucus(self, name: str) -> frozenset[str]:
        """Close a caucus; its members return to the joint session. Returns the former members."""
        members = self._caucuses.pop(name, None)
        if members is None:
            raise CaucusConflict(f"no open caucus {name!r}", code="no_such_caucus")
        for pid in members:
            self._caucus_of.pop(pid, None)
        self.version += 1
        return members

    def caucus_of(self, participant_id: str) -> str | None:
        return self._caucus_of.get(participant_id)

    def caucuses(self) -> dict[str, frozenset[str]]:
        return dict(self._caucuses)

    # weak links ---------------------------------------------------------------------------------
    def set_audio_only(self, participant_id: str, enabled: bool) -> bool:
        """Set the audio-only flag; returns True if it changed."""
        if enabled == (participant_id in self._audio_only):
            return False
        if enabled:
            self._audio_only.add(participant_id)
        else:
            self._audio_only.discard(participant_id)
        self.version += 1
        return True

    def is_audio_only(self, participant_id: str) -> bool:
        return participant_id in self._audio_only

    # mute ---------------------------------------------------------------------------------------
    def set_muted(self, publisher_id: str, muted: bool) -> bool:
        """A muted publisher's audio reaches nobody (enforced here, not by the muted browser)."""
        if muted == (publisher_id in self._muted):
            return False
        (self._muted.add if muted else self._muted.discard)(publisher_id)
        self.version += 1
        return True

    # lobby ----------------------------------------------------------------------------------------
    def set_lobby(self, participant_id: str, waiting: bool) -> bool:
        """A person waiting in the lobby reaches only the viewers (the mediator checking an ID on camera, R5)
        and receives nothing; admission clears the flag."""
        if waiting == (participant_id in self._lobby):
            return False
        (self._lobby.add if waiting else self._lobby.discard)(participant_id)
        self.version += 1
        return True

    def set_viewer(self, participant_id: str, viewer: bool) -> None:
        (self._viewers.add if viewer else self._viewers.discard)(participant_id)
        self.version += 1

    # the decision -------------------------------------------------------------------------------
    def may_forward(self, publisher_id: str, subscriber_id: str, kind: str = AUDIO) -> bool:
        """May media of `kind` ("audio" or "video") from publisher reach subscriber?"""
        if publisher_id == subscriber_id or subscriber_id in self._lobby:
            return False
        if publisher_id in self._lobby:
            return subscriber_id in self._viewers and (kind == AUDIO or subscriber_id not in self._audio_only)
        if self._caucus_of.get(publisher_id) != self._caucus_of.get(subscriber_id):
            return False
        if kind == AUDIO:
            return publisher_id not in self._muted
        return subscriber_id not in self._audio_only

    def heard(self, publisher_id: str) -> bool:
        """Is this publisher's audio heard by anyone at all (admitted, not muted)? Whatever group it is in: what
        an audio tap (speech drafts, media/speech.py) may take; the tap marks caucus audio itself (R9)."""
        return publisher_id in self._participants and publisher_id not in self._lobby and \
            publisher_id not in self._muted

    def snapshot(self) -> dict[str, object]:
        return {
            "caucuses": {name: sorted(m) for name, m in self._caucuses.items()},
            "audio_only": sorted(self._audio_only),
            "muted": sorted(self._muted),
            "lobby": sorted(self._lobby),
        }
