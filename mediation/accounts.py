"""Staff accounts: argon2 password hashes, login sessions (hashed cookie token + CSRF token).

Password checks run off the event loop (argon2 in a worker thread, at most `VERIFY_CONCURRENCY` at a time, so a
login flood cannot take every core), and failed logins are throttled per account and per address with
exponential backoff; the start of each lockout is an audit entry (issue 10).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.db import Database, utcnow
from mediation.errors import Conflict, InvalidInput, RateLimited, Unauthenticated
from mediation.models import Center, StaffLogin, StaffUser
from mediation.permissions import STAFF_ROLES
from mediation.sessions import hash_token

LOGIN_TTL = dt.timedelta(hours=12)
HASHER = PasswordHasher()  # argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile): ~50-250 ms a hash


@functools.cache
def dummy_hash() -> str:
    """What an unknown user name is checked against, made with the standard parameters, so a guess at a name costs
    what a guess at a password costs. Made once per process when first needed: the server makes it at start-up
    (signaling/app.py), so a command that logs nobody in does not pay ~0.2 s of CPU for it. The test suite hashes
    its seeded staff with cheaper parameters (tests/conftest.py); verifying reads the parameters from each hash."""
    return PasswordHasher().hash("timing-equalizer")


VERIFY_CONCURRENCY = 2
_verifying: asyncio.Semaphore | None = None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def _verify(stored: str, password: str) -> bool:
    global _verifying
    if _verifying is None:
        _verifying = asyncio.Semaphore(VERIFY_CONCURRENCY)
    async with _verifying:
        try:
            return await asyncio.to_thread(HASHER.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Failed logins per key ("user:<name>", "addr:<ip>"): after `free` failures (more for an address) each further
    one locks the key for base * 2^(n - free - 1) seconds, capped at `cap`; a success clears the account's key.
    A key quiet for `forget_after` seconds starts over. Kept in the node's memory (docs/security.md says what that
    means with several nodes). Also the throttle of failed Socket.IO connects (signaling.session_ns)."""

    free: int = 5  # per account
    free_per_address: int = 20  # an address may be a whole office behind one NAT
    base: float = 1.0
    cap: float = 900.0
    forget_after: float = math.inf
    keys: dict[str, _Failures] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def now(self) -> float:
        return self.clock()

    def retry_after(self, *keys: str) -> float:
        now = self.now()
        return max([0.0, *(f.locked_until - now for k in keys if (f := self.keys.get(k)) is not None)])

    def failed(self, *keys: str) -> list[str]:
        """Count a failure; returns the keys that became locked now."""
        now, locked = self.now(), []
        if len(self.keys) > 100_000:  # bounded: forget keys whose lock has long expired
            self.keys = {k: f for k, f in self.keys.items() if f.locked_until > now - self.cap}
        for k in keys:
            f = self.keys.setdefault(k, _Failures())
            if now - f.last > self.forget_after:
                f.count = 0
            f.count += 1
            f.last = now
            free = self.free_per_address if k.startswith("addr:") else self.free
            if f.count > free:
                f.locked_until = now + min(self.cap, self.base * 2 ** min(f.count - free - 1, 20))
                locked.append(k)
        return locked

    def succeeded(self, key: str) -> None:
        self.keys.pop(key, None)

    # what callers use: the same, awaitable, so a node of several can count in Redis (signaling.shared_limits)
    async def check(self, *keys: str) -> float:
        """Seconds until all `keys` are unlocked (0: go ahead)."""
        return self.retry_after(*keys)

    async def fail(self, *keys: str) -> list[tuple[str, float]]:
        """Count a failure; the keys that became locked now, with their lock's seconds."""
        return [(k, self.retry_after(k)) for k in self.failed(*keys)]

    async def clear(self, key: str) -> None:
        self.succeeded(key)




async def create_user(
    s: AsyncSession, center: Center, *, username: str, password: str, role: str, display_name: str, actor: str,
    court_id: str | None = None,
) -> StaffUser:
    if role not in {r.value for r in STAFF_ROLES}:
        raise InvalidInput(f"unknown staff role {role!r}", code="bad_role", allowed=sorted(r.value for r in STAFF_ROLES))
    if len(password) < 10:
        raise InvalidInput("passwords need at least 10 characters", code="weak_password")
    if not username.isascii() or not 2 <= len(username) <= 100:
        raise InvalidInput("user names are 2-100 ASCII characters", code="bad_username")
    if await s.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise Conflict(f"user {username} exists", code="user_exists")
    u = StaffUser(center_id=center.id, username=username, display_name=display_name, role=role,
                  password_hash=await hash_password(password), court_id=court_id)
    try:
        async with s.begin_nested():  # the unique user name decides a race between two creations
            s.add(u)
            await s.flush()
    except IntegrityError:
        raise Conflict(f"user {username} exists", code="user_exists") from None
    await audit.append(s, actor=actor, action="user.create", subject=f"user:{username}", detail={"role": role})
    return u


async def login(db: Database, throttle: LoginThrottle, username: str, password: str, *, address: str = ""
                ) -> tuple[StaffUser, str, StaffLogin]:
    keys = (f"user:{username[:100]}", f"addr:{address[:64]}")
    wait = await throttle.check(*keys)
    if wait > 0:
        raise RateLimited("too many failed logins; try again later", code="login_throttled",
                          retry_after=int(wait) + 1)
    async with db.session() as s:
        u = await s.scalar(select(StaffUser).where(StaffUser.username == username, StaffUser.active.is_(True)))
        stored = u.password_hash if u else await asyncio.to_thread(dummy_hash)  # made off the loop if first
    ok = await _verify(stored, password) and u is not None
    if not ok or u is None:
        async with db.session() as s:  # committed: the failure is on record even though the request fails
            await audit.append(s, actor="outsider", action="login.failed", subject=f"user:{username[:100]}")
            for k, seconds in await throttle.fail(*keys):
                await audit.append(s, actor="system", action="login.locked", subject=k.replace("addr:", "address:"),
                                   detail={"seconds": int(seconds) + 1})
        raise Unauthenticated("wrong user name or password", code="bad_credentials")
    async with db.session() as s:
        await throttle.clear(keys[0])
        token = secrets.token_urlsafe(32)
        row = StaffLogin(token_hash=hash_token(token), user_id=u.id, csrf_token=secrets.token_urlsafe(24),
                         expires_at=utcnow() + LOGIN_TTL)
        s.add(row)
        await audit.append(s, actor=f"staff-{u.id}", action="login", subject=f"user:{u.username}")
        return u, token, row


async def by_cookie(s: AsyncSession, token: str | None) -> tuple[StaffUser, StaffLogin]:
    if not token or len(token) > 100:
        raise Unauthenticated("please log in", code="login_required")
    row = await s.get(StaffLogin, hash_token(token))
    if row is None or utcnow() > row.expires_at:
        raise Unauthenticated("your login has expired; please log in again", code="login_required")
    u = await s.get(StaffUser, row.user_id)
    if u is None or not u.active:
        raise Unauthenticated("please log in", code="login_required")
    return u, row


async def logout(s: AsyncSession, token: str) -> None:
    row = await s.get(StaffLogin, hash_token(token))
    if row is not None:
        await s.delete(row)


async def user(s: AsyncSession, user_id: int) -> StaffUser:
    u = await s.get(StaffUser, user_id)
    if u is None or not u.active:
        raise Unauthenticated("please log in", code="login_required")
    return u
