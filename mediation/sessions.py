"""Mediation sessions, invites bound to devices, consents and the admission rules of the lobby (R1, R3, R5, R8, P3)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit, devicekeys, identity
from mediation.db import insert_or_ignore, upsert, utcnow
from mediation.errors import Conflict, Expired, Forbidden, InvalidInput, NotFound, Unauthenticated
from mediation.models import (
    Case,
    Consent,
    Guest,
    IdentityCheck,
    Invite,
    MediationSession,
    Person,
    SpentChallenge,
)
from mediation.permissions import THIRD_PARTIES, SessionRole

INVITE_TTL = dt.timedelta(days=7)
CHALLENGE_TTL = dt.timedelta(seconds=120)
NOTICES_VERSION = "2026-1"


class SessionState(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    LIVE = "live"
    ENDED = "ended"


SESSION_TRANSITIONS = {
    SessionState.SCHEDULED: {SessionState.OPEN, SessionState.ENDED},
    SessionState.OPEN: {SessionState.LIVE, SessionState.ENDED},
    SessionState.LIVE: {SessionState.ENDED},
    SessionState.ENDED: set(),
}


class ConsentKind(StrEnum):
    NOTICES = "notices"  # R3 acknowledgement
    RECORDING = "recording"  # R1, P2
    ONLINE = "online"  # R1: consent to mediate online
    THIRD_PARTY = "third_party"  # R8: subject = the third party's participant id


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def participant_id(invite: Invite) -> str:
    return f"inv-{invite.id}"


@dataclass(frozen=True)
class IssuedInvite:
    invite_id: int
    role: str
    name: str
    token: str  # shown once; only its hash is stored

    def link(self, base_url: str) -> str:
        # The token travels in the URL fragment: never sent to servers, proxies or in Referer headers.
        return f"{base_url.rstrip('/')}/join#{self.token}"


async def schedule(
    s: AsyncSession, case: Case, *, host_id: int, at: dt.datetime, actor: str, kind: str = "mediation",
    guests: list[tuple[str, str]] = (), ttl: dt.timedelta = INVITE_TTL,  # type: ignore[assignment]
) -> tuple[MediationSession, list[IssuedInvite]]:
    """Create a session and one invite per person of the case (and per third party)."""
    if case.stage == "archived":
        raise Conflict("the case is archived", code="case_archived")
    sess = MediationSession(case_id=case.id, host_id=host_id, kind=kind, state=SessionState.SCHEDULED.value,
                            scheduled_at=at)
    s.add(sess)
    await s.flush()
    issued: list[IssuedInvite] = []
    expires = max(at, utcnow()) + ttl
    for p in case.people:
        issued.append(await _issue(s, sess, p.kind, p.name, expires, person_id=p.id))
    for role, name in guests:
        if role not in ("psychologist", "interpreter", "observer", "judge"):
            raise InvalidInput(f"unknown third-party role {role!r}", code="bad_role")
        g = Guest(case_id=case.id, role=role, name=name)
        s.add(g)
        await s.flush()
        issued.append(await _issue(s, sess, role, name, expires, guest_id=g.id))
    await audit.append(s, actor=actor, action="session.schedule", subject=f"case:{case.code}",
                       detail={"session": sess.id, "invites": len(issued), "kind": kind})
    return sess, issued


async def _issue(s: AsyncSession, sess: MediationSession, role: str, name: str, expires: dt.datetime,
                 **who: int) -> IssuedInvite:
    token = secrets.token_urlsafe(24)  # 192 bits
    inv = Invite(session_id=sess.id, role=role, token_hash=hash_token(token), expires_at=expires, **who)
    s.add(inv)
    await s.flush()
    return IssuedInvite(inv.id, role, name, token)


async def invite_by_token(s: AsyncSession, token: str) -> Invite:
    if not isinstance(token, str) or not 16 <= len(token) <= 100:
        raise Unauthenticated("this link is not valid", code="bad_invite")
    inv = await s.scalar(select(Invite).where(Invite.token_hash == hash_token(token)))
    if inv is None or inv.revoked:
        raise Unauthenticated("this link is not valid", code="bad_invite")
    if utcnow() > inv.expires_at:
        raise Expired("this link has expired; ask the mediation center for a new one", code="invite_expired")
    return inv


async def reissue(s: AsyncSession, inv: Invite, *, actor: str, ttl: dt.timedelta = INVITE_TTL) -> str:
    """A new link for the same invite (lost phone, forwarded link): the old token stops working and the device
    binding is reset, so the next first use binds the new device, and the identity check is taken again (whoever
    holds the new link proves who they are before admission; issue 10). Consents of this session stay."""
    token = secrets.token_urlsafe(24)
    old = inv.device_fingerprint
    inv.token_hash, inv.expires_at, inv.revoked = hash_token(token), utcnow() + ttl, False
    inv.device_key = inv.device_fingerprint = inv.bound_at = inv.refused_at = None
    await s.execute(update(IdentityCheck).where(IdentityCheck.invite_id == inv.id, IdentityCheck.state == "passed")
                    .values(state="superseded"))
    await audit.append(s, actor=actor, action="invite.reissue", subject=f"invite:{inv.id}",
                       detail={"previous_device": old})
    return token


def invite_name(inv: Invite, person: Person | None, guest: Guest | None) -> str:
    return person.name if person else guest.name if guest else "?"


# ---- device binding (R17) ---------------------------------------------------------------------------------------

def make_challenge(secret: bytes, invite_id: int, now: dt.datetime | None = None) -> str:
    """A stateless, expiring, invite-bound challenge; `spend_challenge` makes it single-use (in the database)."""
    exp = int(((now or utcnow()) + CHALLENGE_TTL).timestamp())
    body = f"{invite_id}.{exp}.{secrets.token_urlsafe(16)}"
    mac = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{body}.{mac}"


def check_challenge(secret: bytes, invite_id: int, challenge: str, now: dt.datetime | None = None) -> dt.datetime:
    """Check the MAC, the invite and the freshness of a challenge; returns when it expires."""
    try:
        inv_s, exp_s, nonce, mac = challenge.split(".")
        body = f"{inv_s}.{exp_s}.{nonce}"
        good = hmac.compare_digest(mac, hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()[:32])
        fresh = int(exp_s) >= int((now or utcnow()).timestamp())
        match = int(inv_s) == invite_id
    except (ValueError, AttributeError):
        good = fresh = match = False
    if not (good and match):
        raise Unauthenticated("device proof failed", code="bad_challenge")
    if not fresh:
        raise Expired("the join challenge expired; reload the page", code="challenge_expired")
    return dt.datetime.fromtimestamp(int(exp_s), dt.UTC)


async def spend_challenge(s: AsyncSession, challenge: str, expires_at: dt.datetime) -> bool:
    """Single use, seen by every process, node and restart: inserting the challenge's hash is the check (False:
    already spent). Runs in the join's transaction, so a join that fails leaves the challenge unspent, and of two
    concurrent joins with one challenge at most one commits. Expired rows are pruned here."""
    expired = (select(SpentChallenge.challenge_hash).where(SpentChallenge.expires_at < utcnow()).limit(500)
               .with_for_update(skip_locked=True))  # PostgreSQL: no waiting on (or deadlock with) another pruner
    await s.execute(delete(SpentChallenge).where(SpentChallenge.challenge_hash.in_(expired)))
    return await insert_or_ignore(s, SpentChallenge.__table__,  # type: ignore[arg-type]
                                  {"challenge_hash": hash_token(challenge), "expires_at": expires_at})


async def prove_device(
    s: AsyncSession, inv: Invite, *, challenge: str, signature: str, public_key: str | None, secret: bytes
) -> bool:
    """Check the device proof (the challenge is single-use) and bind the key on first use. Returns True when this
    call bound the invite. The binding is one conditional UPDATE (`WHERE device_key IS NULL`), so of many devices
    opening an unbound link at the same moment exactly one is bound; the others get `device_mismatch`."""
    expires_at = check_challenge(secret, inv.id, challenge)
    if not await spend_challenge(s, challenge, expires_at):
        raise Unauthenticated("this join challenge was already used", code="challenge_used")
    if inv.device_key is None:
        if not public_key:
            raise Unauthenticated("first use of this link must register a device key", code="device_key_required")
        if not devicekeys.verify_raw(public_key, signature, devicekeys.join_message(challenge)):
            raise Unauthenticated("device proof failed", code="bad_signature")
        fingerprint = devicekeys.fingerprint(public_key)
        bound = await s.execute(
            update(Invite).where(Invite.id == inv.id, Invite.device_key.is_(None))
            .values(device_key=public_key, device_fingerprint=fingerprint, bound_at=utcnow())
            .execution_options(synchronize_session=False))
        await s.refresh(inv)
        if bound.rowcount == 1:  # type: ignore[attr-defined]
            await audit.append(s, actor=f"inv-{inv.id}", action="invite.bind", subject=f"invite:{inv.id}",
                               detail={"fingerprint": fingerprint})
            return True
        if inv.device_key == public_key:  # the same device, twice at once: bound by the other call
            return False
    if public_key and public_key != inv.device_key:
        raise Forbidden("this link is already in use on another device; ask the mediation center for help",
                        code="device_mismatch").recorded(
            actor="outsider", action="invite.device_mismatch", subject=f"invite:{inv.id}",
            detail={"fingerprint": devicekeys.fingerprint(public_key)})
    assert inv.device_key is not None
    if not devicekeys.verify_raw(inv.device_key, signature, devicekeys.join_message(challenge)):
        raise Unauthenticated("device proof failed", code="bad_signature")
    return False


# ---- consents and admission ---------------------------------------------------------------------------------

async def record_consent(
    s: AsyncSession, inv: Invite, kind: str, granted: bool, *, subject: str = "", actor: str
) -> Consent:
    try:
        k = ConsentKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown consent kind {kind!r}", code="bad_consent") from None
    if k is ConsentKind.NOTICES and not granted:
        raise InvalidInput("the notices can only be acknowledged", code="bad_consent")
    if (k is ConsentKind.THIRD_PARTY) != bool(subject):
        raise InvalidInput("a third-party consent names the third party, others do not", code="bad_consent")
    if k is ConsentKind.THIRD_PARTY and inv.role not in ("party", "agent"):
        raise Forbidden("only parties consent to third parties", code="forbidden")
    # one upsert: a choice may change (R1: consent per stage), and two at once leave one row, never a 500
    now = utcnow()
    await upsert(s, Consent.__table__,  # type: ignore[arg-type]
                 {"invite_id": inv.id, "kind": k.value, "subject": subject, "granted": granted, "at": now},
                 key=["invite_id", "kind", "subject"], update={"granted": granted, "at": now})
    await audit.append(s, actor=actor, action="consent", subject=f"invite:{inv.id}",
                       detail={"kind": k.value, "subject": subject, "granted": granted,
                               "notices_version": NOTICES_VERSION if k is ConsentKind.NOTICES else None})
    row = await s.scalar(select(Consent).where(Consent.invite_id == inv.id, Consent.kind == k.value,
                                               Consent.subject == subject).execution_options(populate_existing=True))
    assert row is not None
    return row


async def consents_of(s: AsyncSession, invite_ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {i: {"third_party": {}} for i in invite_ids}
    for c in (await s.scalars(select(Consent).where(Consent.invite_id.in_(invite_ids)))).all():
        if c.kind == ConsentKind.THIRD_PARTY:
            out[c.invite_id]["third_party"][c.subject] = c.granted
        else:
            out[c.invite_id][c.kind] = c.granted
    return out


@dataclass(frozen=True)
class Readiness:
    identity: bool
    notices: bool
    online: bool  # R1: consented to mediate online
    recording: bool | None  # None: not answered yet
    third_party_ok: bool  # for third parties: every party consented to them

    def blocking(self, recording_running: bool) -> list[str]:
        why = []
        if not self.identity:
            why.append("identity_check")
        if not self.notices:
            why.append("notices")
        if not self.online:
            why.append("online_consent")
        if self.recording is None or (recording_running and self.recording is False):
            why.append("recording_consent")
        if not self.third_party_ok:
            why.append("party_consent_to_third_party")
        return why


async def readiness(s: AsyncSession, inv: Invite, party_invite_ids: list[int]) -> Readiness:
    c = (await consents_of(s, [inv.id, *party_invite_ids]))
    mine = c[inv.id]
    tp_ok = True
    if SessionRole(inv.role) in THIRD_PARTIES:
        tp_ok = _all_consented(c, participant_id(inv), party_invite_ids)
    return Readiness(await identity.passed(s, inv), bool(mine.get("notices")), mine.get("online") is True,
                     mine.get("recording"), tp_ok)


def _all_consented(c: dict[int, dict[str, Any]], pid: str, party_invite_ids: list[int]) -> bool:
    return bool(party_invite_ids) and all(c[i]["third_party"].get(pid) is True for i in party_invite_ids)


async def parties_consented(s: AsyncSession, pid: str, party_invite_ids: list[int]) -> bool:
    """R8: every party of the session has consented to this third party's presence."""
    return _all_consented(await consents_of(s, party_invite_ids), pid, party_invite_ids)


async def set_state(s: AsyncSession, sess: MediationSession, to: SessionState, *, actor: str) -> None:
    cur = SessionState(sess.state)
    if cur == to:
        return
    if to not in SESSION_TRANSITIONS[cur]:
        raise Conflict(f"session is {cur.value}, cannot become {to.value}", code="bad_session_state")
    sess.state = to.value
    now = utcnow()
    if to is SessionState.OPEN:
        sess.opened_at = now
    elif to is SessionState.LIVE:
        sess.live_at = now
    elif to is SessionState.ENDED:
        sess.ended_at = now
    await audit.append(s, actor=actor, action=f"session.{to.value}", subject=f"session:{sess.id}")


async def get_session(s: AsyncSession, session_id: int) -> MediationSession:
    sess = await s.get(MediationSession, session_id)
    if sess is None:
        raise NotFound("no such session", code="session_not_found")
    return sess
