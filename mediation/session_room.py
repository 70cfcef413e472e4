"""Rules inside a live session: muting others, chat (kept in the case record), caucus membership (R7, R9), and
ending the session. The live session (mediation.live) then applies them to presence and media."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mediation import audit, sessions
from mediation.access import Actor
from mediation.db import Database
from mediation.errors import Conflict, Forbidden, InvalidInput, NotFound
from mediation.live import LiveSession, Presence
from mediation.models import ChatMessage
from mediation.permissions import MEDIATORS, SessionRole

CHAT_MAX = 2000


async def mute_other(db: Database, live: LiveSession, actor: Actor, pid: str) -> Presence:
    p = live.people.get(pid)
    if p is None or not p.admitted:
        raise NotFound("that participant is not in the session", code="participant_not_found")
    if p.role in MEDIATORS:
        raise Forbidden("mediators cannot mute each other", code="forbidden")
    async with db.session() as s:
        await audit.append(s, actor=actor.id, action="mute.other", subject=f"session:{live.session_id}",
                           detail={"participant": p.pid})
    return p


async def chat(db: Database, live: LiveSession, me: Presence, text: str) -> tuple[dict[str, Any], list[str]]:
    """Store a chat message; returns it and who receives it (inside a caucus it stays inside, R9)."""
    text = "".join(ch for ch in text if ch >= " " or ch in "\n\t")
    if not text.strip():
        raise InvalidInput("empty message", code="invalid_input")
    caucus = "caucus" if me.pid in live.caucus else None
    async with db.session() as s:
        msg = ChatMessage(session_id=live.session_id, sender=me.pid, sender_name=me.name, caucus=caucus, text=text)
        s.add(msg)
        await s.flush()
        out = {"id": msg.id, "from": me.pid, "name": me.name, "text": text, "at": msg.at.isoformat(),
               "private": caucus is not None}
    return out, [p.pid for p in live.admitted() if live.same_side_of_caucus(me.pid, p.pid)]


def _members(live: LiveSession, me: Presence, members: list[str]) -> frozenset[str]:
    if live.caucus:
        raise Conflict("a private room is already open; close it first", code="caucus_open")
    ms = frozenset(members)
    if me.pid not in ms:
        raise InvalidInput("you must be in the private room you open", code="bad_caucus")
    for m in ms:
        p = live.people.get(m)
        if p is None or not p.admitted:
            raise NotFound(f"{m} is not in the session", code="participant_not_found")
    if ms >= {p.pid for p in live.admitted()}:
        raise InvalidInput("a private room must leave someone out", code="bad_caucus")
    return ms


def caucus_members(live: LiveSession, me: Presence, members: list[str]) -> frozenset[str]:
    """背靠背 (R7): the host with a chosen group that leaves someone out."""
    return _members(live, me, members)


def private_talk_members(live: LiveSession, me: Presence, party: str) -> frozenset[str]:
    """A psychologist's (or the host's) private talk with one party."""
    target = live.people.get(party)
    if target is None or target.role is not SessionRole.PARTY:
        raise InvalidInput("a private talk is with one party", code="bad_caucus")
    return _members(live, me, [me.pid, target.pid])


def may_close_caucus(live: LiveSession, me: Presence) -> None:
    if not live.caucus:
        raise Conflict("no private room is open", code="no_caucus")
    if me.role is not SessionRole.HOST and me.pid not in live.caucus:
        raise Forbidden("only the host or a member closes it", code="forbidden")


async def log_caucus(db: Database, live: LiveSession, actor: Actor, members: frozenset[str], kind: str) -> None:
    async with db.session() as s:
        await audit.append(s, actor=actor.id, action=f"{kind}.{'open' if members else 'close'}",
                           subject=f"session:{live.session_id}", detail={"members": sorted(members)})


async def end(db: Database, signing_key: Ed25519PrivateKey, live: LiveSession, actor: Actor) -> None:
    """The session ends for everyone; the audit log gets a signed checkpoint."""
    async with db.session() as s:
        sess = await sessions.get_session(s, live.session_id)
        await sessions.set_state(s, sess, sessions.SessionState.ENDED, actor=actor.id)
        await audit.checkpoint(s, signing_key)
