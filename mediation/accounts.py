"""Staff accounts: argon2 password hashes, login sessions (hashed cookie token + CSRF token)."""

from __future__ import annotations

import datetime as dt
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.db import utcnow
from mediation.errors import Conflict, InvalidInput, Unauthenticated
from mediation.models import Center, StaffLogin, StaffUser
from mediation.permissions import STAFF_ROLES
from mediation.sessions import hash_token

LOGIN_TTL = dt.timedelta(hours=12)
_ph = PasswordHasher()
_DUMMY = _ph.hash("timing-equalizer")


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
                  password_hash=_ph.hash(password), court_id=court_id)
    s.add(u)
    await s.flush()
    await audit.append(s, actor=actor, action="user.create", subject=f"user:{username}", detail={"role": role})
    return u


async def login(s: AsyncSession, username: str, password: str) -> tuple[StaffUser, str, StaffLogin]:
    u = await s.scalar(select(StaffUser).where(StaffUser.username == username, StaffUser.active.is_(True)))
    try:
        _ph.verify(u.password_hash if u else _DUMMY, password)
        ok = u is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or u is None:
        await audit.append(s, actor="outsider", action="login.failed", subject=f"user:{username[:100]}")
        raise Unauthenticated("wrong user name or password", code="bad_credentials")
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
