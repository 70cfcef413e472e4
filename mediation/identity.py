"""Identity checks before every session (R5): a pluggable verifier interface and two built-ins.

- `OtpVerifier`: a one-time code sent through a pluggable `CodeSender` (default: the server log, for development;
  production plugs in an SMS gateway).
- `AttestationVerifier`: the mediator attests that an ID document shown on camera matched.
Every start, answer and attestation is an audit entry; codes are stored hashed.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.canonical import sha256_hex
from mediation.db import utcnow
from mediation.errors import Conflict, Expired, InvalidInput, RateLimited
from mediation.models import IdentityCheck, Invite

log = logging.getLogger(__name__)
OTP_TTL = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5


class CodeSender(Protocol):
    async def send(self, to: str, code: str, context: str) -> None: ...


class LogCodeSender:
    """Development sender: writes the code to the server log, one greppable line per code
    (`grep ONEDOOR-DEV-CODE`). It is for `make run` and development only: a production server plugs in an SMS
    gateway, so that no code ever reaches a log."""

    async def send(self, to: str, code: str, context: str) -> None:
        log.warning("ONEDOOR-DEV-CODE %s  for %s (%s)  [development code sender: not for production]",
                    code, to or "(no phone)", context)


class MemoryCodeSender:
    """Keeps the last code per recipient in memory: for `onedoor simulate` and in-process tests."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    async def send(self, to: str, code: str, context: str) -> None:
        self.sent[context] = code


class IdentityVerifier(Protocol):
    method: str

    async def start(self, s: AsyncSession, invite: Invite, *, phone: str, actor: str) -> dict[str, Any]: ...

    async def answer(self, s: AsyncSession, invite: Invite, payload: dict[str, Any], *, actor: str) -> bool: ...


async def passed(s: AsyncSession, invite: Invite) -> bool:
    from sqlalchemy import select

    q = select(IdentityCheck.id).where(IdentityCheck.invite_id == invite.id, IdentityCheck.state == "passed")
    return (await s.scalar(q.limit(1))) is not None


class OtpVerifier:
    method = "otp"

    def __init__(self, sender: CodeSender) -> None:
        self.sender = sender

    async def start(self, s: AsyncSession, invite: Invite, *, phone: str, actor: str) -> dict[str, Any]:
        code = f"{secrets.randbelow(10**6):06d}"
        check = IdentityCheck(invite_id=invite.id, method=self.method, state="pending",
                              secret_hash=sha256_hex(f"{invite.id}:{code}".encode()),
                              expires_at=utcnow() + OTP_TTL)
        s.add(check)
        await s.flush()
        await self.sender.send(phone, code, f"invite:{invite.id}")
        await audit.append(s, actor=actor, action="identity.start", subject=f"invite:{invite.id}",
                           detail={"method": self.method, "to": _mask(phone)})
        return {"method": self.method, "sent_to": _mask(phone), "expires_in": int(OTP_TTL.total_seconds())}

    async def answer(self, s: AsyncSession, invite: Invite, payload: dict[str, Any], *, actor: str) -> bool:
        from sqlalchemy import select

        code = str(payload.get("code", ""))
        check = await s.scalar(
            select(IdentityCheck).where(IdentityCheck.invite_id == invite.id, IdentityCheck.method == self.method,
                                        IdentityCheck.state == "pending").order_by(IdentityCheck.id.desc()).limit(1)
        )
        if check is None:
            raise Conflict("no identity check is waiting; request a code first", code="no_pending_check")
        if utcnow() > check.expires_at:
            check.state = "failed"
            raise Expired("the code has expired; request a new one", code="code_expired")
        # one conditional UPDATE counts the attempt: concurrent answers cannot share one count (issue 10), and
        # none counts once the check is no longer pending
        attempts = await s.scalar(
            update(IdentityCheck).where(IdentityCheck.id == check.id, IdentityCheck.state == "pending")
            .values(attempts=IdentityCheck.attempts + 1).returning(IdentityCheck.attempts)
            .execution_options(synchronize_session=False))
        if attempts is None:
            raise Conflict("no identity check is waiting; request a code first", code="no_pending_check")
        if attempts > MAX_ATTEMPTS:  # refused (rolled back: the count stays past the limit), and on record
            raise RateLimited("too many wrong codes; request a new one", code="too_many_attempts").recorded(
                actor=actor, action="identity.failed", subject=f"invite:{invite.id}",
                detail={"method": self.method, "why": "too many attempts"})
        ok = hmac.compare_digest(check.secret_hash or "", sha256_hex(f"{invite.id}:{code}".encode()))
        if ok:
            ok = await _finish(s, check.id, "passed")
        await audit.append(s, actor=actor, action="identity.passed" if ok else "identity.wrong_code",
                           subject=f"invite:{invite.id}", detail={"method": self.method, "attempt": attempts})
        return ok


class AttestationVerifier:
    """The mediator saw an ID document on camera and it matched the person (R5, online document comparison)."""

    method = "attestation"

    async def start(self, s: AsyncSession, invite: Invite, *, phone: str, actor: str) -> dict[str, Any]:
        await audit.append(s, actor=actor, action="identity.start", subject=f"invite:{invite.id}",
                           detail={"method": self.method})
        return {"method": self.method, "instructions": "show your ID document to the camera when the mediator asks"}

    async def answer(self, s: AsyncSession, invite: Invite, payload: dict[str, Any], *, actor: str) -> bool:
        document = str(payload.get("document", "")).strip()
        if not document or len(document) > 50:
            raise InvalidInput("name the document type that was shown (e.g. 居民身份证)", code="document_required")
        matched = bool(payload.get("matched"))
        now = utcnow()
        s.add(IdentityCheck(invite_id=invite.id, method=self.method, state="passed" if matched else "failed",
                            by=actor, expires_at=now, done_at=now))
        await audit.append(s, actor=actor, action="identity.attested" if matched else "identity.attest_failed",
                           subject=f"invite:{invite.id}", detail={"method": self.method, "document": document})
        return matched


async def _finish(s: AsyncSession, check_id: int, state: str) -> bool:
    """pending -> passed | failed, only from pending (True when this call made the change)."""
    res = await s.execute(update(IdentityCheck).where(IdentityCheck.id == check_id, IdentityCheck.state == "pending")
                          .values(state=state, done_at=utcnow()).execution_options(synchronize_session=False))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def _mask(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "***"
