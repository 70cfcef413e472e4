"""Joining a session and the lobby (R1, R3, R5, R8, P2, P3): who may connect, identity checks, notices and
consents, the one readiness rule, admission and refusal. Transports call these and emit what they return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit, identity, sessions
from mediation.access import Actor, check
from mediation.db import Database, utcnow
from mediation.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from mediation.identity import IdentityVerifier
from mediation.live import LiveSession, Presence
from mediation.models import Guest, Invite, Person, StaffUser
from mediation.permissions import THIRD_PARTIES, Action, SessionRole, session_role_for_staff
from mediation.resources import login_actor, session_and_case, session_resource


@dataclass(frozen=True)
class Joined:
    """Who a new connection is, and the session it is bound to."""

    session_id: int
    case_code: str
    host_id: int
    presence: Presence
    actor: Actor


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) < 400


async def join_by_invite(db: Database, auth: Mapping[str, Any], *, secret: bytes) -> Joined:
    """A party, agent or invited guest connects: the invite token, and the device proof over a fresh challenge."""
    token, challenge, signature, public_key = (auth.get(k) for k in ("invite", "challenge", "signature", "public_key"))
    if not (_text(token) and _text(challenge) and _text(signature)) or not (public_key is None or _text(public_key)):
        raise Unauthenticated("malformed credentials", code="auth_required")
    assert isinstance(token, str) and isinstance(challenge, str) and isinstance(signature, str)
    async with db.session() as s:
        inv = await sessions.invite_by_token(s, token)
        await sessions.prove_device(s, inv, challenge=challenge, signature=signature,
                                    public_key=public_key if isinstance(public_key, str) else None, secret=secret)
        sess, case = await session_and_case(s, inv.session_id)
        if sess.state == sessions.SessionState.ENDED:
            raise Forbidden("this session has ended", code="session_ended")
        if inv.refused_at is not None:
            raise Forbidden("调解员没有让您进入；需要新的链接请联系调解中心 / the mediator did not let you in; ask "
                            "the center for a new link", code="refused")
        person = await s.get(Person, inv.person_id) if inv.person_id else None
        guest = await s.get(Guest, inv.guest_id) if inv.guest_id else None
        pid = sessions.participant_id(inv)
        await audit.append(s, actor=pid, action="session.connect", subject=f"session:{sess.id}")
    role = SessionRole(inv.role)
    p = Presence(pid, role, sessions.invite_name(inv, person, guest), invite_id=inv.id,
                 side=person.side if person else None, person_id=inv.person_id)
    return Joined(sess.id, case.code, sess.host_id, p, Actor(pid, role, session_id=sess.id))


async def join_as_staff(db: Database, cookie_token: str | None, session_id: int) -> Joined:
    """A logged-in staff member connects: the host, a co-mediator of the center, a judge of a court the case was
    sent to (or referred from), a psychologist of the center. Nobody else, whatever their role."""
    async with db.session() as s:
        staff, _ = await login_actor(s, cookie_token)
        sess, case = await session_and_case(s, session_id)
        role = session_role_for_staff(staff.role, staff.staff_id or 0, sess.host_id)
        if role is SessionRole.OUTSIDER:
            raise Forbidden("you are not part of this session", code="forbidden")
        if role is not SessionRole.HOST:
            check(staff, Action.SESSION_JOIN, await session_resource(s, sess, case))
        if sess.state == sessions.SessionState.ENDED:
            raise Forbidden("this session has ended", code="session_ended")
        if role is SessionRole.HOST and sess.state == sessions.SessionState.SCHEDULED:
            await sessions.set_state(s, sess, sessions.SessionState.OPEN, actor=staff.id)
        await audit.append(s, actor=staff.id, action="session.connect", subject=f"session:{sess.id}",
                           detail={"role": role.value})
        user = await s.get(StaffUser, staff.staff_id)
        assert user is not None
        name = user.display_name
    p = Presence(staff.id, role, name, staff_id=staff.staff_id)
    return Joined(sess.id, case.code, sess.host_id, p,
                  Actor(staff.id, role, center_id=staff.center_id, court_id=staff.court_id,
                        staff_id=staff.staff_id, session_id=sess.id))


# ---- readiness: the one rule ------------------------------------------------------------------------------------

async def _party_invites(s: AsyncSession, session_id: int) -> list[int]:
    q = select(Invite.id).where(Invite.session_id == session_id, Invite.role == "party")
    return list((await s.scalars(q)).all())


async def _readiness(s: AsyncSession, live: LiveSession, p: Presence, party_ids: list[int]) -> dict[str, Any]:
    """What still keeps this person in the lobby. Staff third parties (judge, psychologist) are identified by their
    login and need every party's consent (R8); invited people need identity, notices and consents (R1, R3, R5)."""
    if p.invite_id is None:
        ok = await sessions.parties_consented(s, p.pid, party_ids)
        return {"identity": True, "notices": True, "online_consent": True, "recording_consent": None,
                "third_party_ok": ok, "blocking": [] if ok else ["party_consent_to_third_party"]}
    inv = await s.get(Invite, p.invite_id)
    assert inv is not None
    r = await sessions.readiness(s, inv, party_ids)
    return {"identity": r.identity, "notices": r.notices, "online_consent": r.online,
            "recording_consent": r.recording, "third_party_ok": r.third_party_ok,
            "blocking": r.blocking(live.recording != "off")}


async def lobby_view(db: Database, live: LiveSession) -> list[dict[str, Any]]:
    """Everyone waiting, with their readiness (the mediators' lobby list; each person sees their own)."""
    if not live.lobby():
        return []
    async with db.session() as s:
        party_ids = await _party_invites(s, live.session_id)
        return [{**p.public(), **await _readiness(s, live, p, party_ids)} for p in live.lobby()]


async def admit(db: Database, live: LiveSession, actor: Actor, pid: str) -> Presence:
    """Admit one person if nothing blocks them (409 not_ready names what does); the first admission makes the
    session live. The caller then tells the live session (media routing, state push)."""
    p = _present(live, pid)
    if p.admitted:
        return p
    async with db.session() as s:
        blocking = (await _readiness(s, live, p, await _party_invites(s, live.session_id)))["blocking"]
        if blocking:
            raise Conflict(f"{p.name} is not ready: {', '.join(blocking)}", code="not_ready", blocking=blocking,
                           participant=p.pid)
        sess = await sessions.get_session(s, live.session_id)
        if sess.state == sessions.SessionState.OPEN:
            await sessions.set_state(s, sess, sessions.SessionState.LIVE, actor=actor.id)
        await audit.append(s, actor=actor.id, action="lobby.admit", subject=f"session:{live.session_id}",
                           detail={"participant": p.pid, "role": p.role.value})
    return p


async def refuse(db: Database, live: LiveSession, actor: Actor, pid: str, reason: str) -> Presence:
    p = _present(live, pid)
    if p.is_mediator:
        raise Conflict("mediators cannot be refused", code="bad_target")
    if p.admitted:  # refusal is the lobby's answer (the console offers it there only; found by the session model)
        raise Conflict(f"{p.name} 已经进入调解 / is already admitted", code="already_admitted")
    async with db.session() as s:
        if p.invite_id is not None:  # the link stays shut, on every node and after a takeover, until reissued
            inv = await _invite(s, p)
            inv.refused_at = utcnow()
        await audit.append(s, actor=actor.id, action="lobby.refuse", subject=f"session:{live.session_id}",
                           detail={"participant": p.pid}, reason=reason or None)
    return p


def _present(live: LiveSession, pid: str) -> Presence:
    p = live.people.get(pid)
    if p is None or not p.connected:
        raise NotFound("that participant is not connected", code="participant_not_found")
    return p


# ---- identity and consents --------------------------------------------------------------------------------------

async def _invite(s: AsyncSession, p: Presence) -> Invite:
    if p.invite_id is None:
        raise InvalidInput("staff do not take the invite identity check", code="not_applicable")
    inv = await s.get(Invite, p.invite_id)
    assert inv is not None
    return inv


async def identity_start(db: Database, verifiers: Mapping[str, IdentityVerifier], me: Presence,
                         method: str) -> dict[str, Any]:
    async with db.session() as s:
        inv = await _invite(s, me)
        if await identity.passed(s, inv):
            return {"passed": True}
        person = await s.get(Person, inv.person_id) if inv.person_id else None
        return await verifiers[method].start(s, inv, phone=person.phone if person else "", actor=me.pid)


async def identity_answer(db: Database, verifiers: Mapping[str, IdentityVerifier], me: Presence,
                          code: str) -> bool:
    async with db.session() as s:
        return await verifiers["otp"].answer(s, await _invite(s, me), {"code": code}, actor=me.pid)


async def identity_attest(db: Database, verifiers: Mapping[str, IdentityVerifier], live: LiveSession,
                          actor: Actor, pid: str, document: str, matched: bool) -> bool:
    target = _present(live, pid)
    async with db.session() as s:
        return await verifiers["attestation"].answer(s, await _invite(s, target),
                                                     {"document": document, "matched": matched}, actor=actor.id)


async def consent(db: Database, live: LiveSession, me: Presence, kind: str, granted: bool, subject: str) -> None:
    if kind == "third_party":
        t = live.people.get(subject)
        if t is None or t.role not in THIRD_PARTIES:
            raise NotFound("no such third party in this session", code="participant_not_found")
    async with db.session() as s:
        await sessions.record_consent(s, await _invite(s, me), kind, granted, subject=subject, actor=me.pid)
