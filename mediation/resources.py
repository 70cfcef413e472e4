"""Loading what the access rules need about an object (mediation.access.Resource), and the actor of a login."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import accounts, cases
from mediation.access import Actor, Resource
from mediation.agreements.models import ConfirmationApplication
from mediation.errors import NotFound
from mediation.models import Case, MediationSession, StaffLogin, StaffUser
from mediation.permissions import StaffRole


def staff_actor(user: StaffUser) -> Actor:
    return Actor(f"staff-{user.id}", StaffRole(user.role), center_id=user.center_id, court_id=user.court_id,
                 staff_id=user.id)


async def login_actor(s: AsyncSession, token: str | None) -> tuple[Actor, StaffLogin]:
    user, row = await accounts.by_cookie(s, token)
    return staff_actor(user), row


async def courts_of(s: AsyncSession, case: Case) -> frozenset[str]:
    """Courts the case was sent to (a confirmation application exists for it)."""
    rows = await s.scalars(select(ConfirmationApplication.court_id).where(ConfirmationApplication.case_id == case.id))
    return frozenset(rows.all())


async def case_resource(s: AsyncSession, case: Case, *, referring: bool = False) -> Resource:
    courts = await courts_of(s, case)
    if referring and case.referring_court_id:  # 诉调: the inviting court's judge may join the sessions (R22)
        courts |= {case.referring_court_id}
    return Resource("case", center_id=case.center_id, courts=courts)


async def case_by_code(s: AsyncSession, code: str) -> Case:
    return await cases.get_case(s, code)


async def session_and_case(s: AsyncSession, session_id: int) -> tuple[MediationSession, Case]:
    sess = await s.get(MediationSession, session_id)
    case = await s.get(Case, sess.case_id) if sess else None
    if sess is None or case is None:
        raise NotFound("no such session", code="session_not_found")
    return sess, case


async def session_resource(s: AsyncSession, sess: MediationSession, case: Case) -> Resource:
    r = await case_resource(s, case, referring=True)
    return Resource("session", center_id=r.center_id, courts=r.courts, session_id=sess.id, host_id=sess.host_id)
