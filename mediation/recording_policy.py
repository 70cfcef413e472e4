"""Recording policy (R1, R9, R12, P2): who must have consented, and whether a center records a caucus.

Recording starts only when every admitted person with an invite has consented (staff consent by their duty,
docs/security.md); while it runs, nobody who refused is admitted (lobby readiness) and a withdrawal pauses it for
everyone. A caucus is not recorded unless the center's policy says so, and then only as a separate privileged
recording that never leaves the center (R9).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from mediation import sessions
from mediation.db import Database
from mediation.errors import Conflict
from mediation.live import LiveSession, Presence
from mediation.models import Case, Center


async def not_consented(db: Database, people: Iterable[Presence]) -> list[str]:
    """The participant ids, among these, whose recording consent is missing or refused."""
    invited = {p.invite_id: p.pid for p in people if p.invite_id is not None}
    if not invited:
        return []
    async with db.session() as s:
        consents = await sessions.consents_of(s, list(invited))
    return [pid for inv, pid in invited.items() if consents[inv].get("recording") is not True]


async def require_consent(db: Database, live: LiveSession) -> None:
    missing = await not_consented(db, live.admitted())
    if missing:
        raise Conflict("recording needs the consent of everyone present (R1)", code="consent_missing",
                       participants=missing)


async def records_caucus(db: Database, live: LiveSession) -> bool:
    """Whether to record the open caucus separately: the center's policy, and every member's consent."""
    if live.recording != "running" or not live.caucus:
        return False
    async with db.session() as s:
        q = select(Center.record_caucus).join(Case, Case.center_id == Center.id).where(Case.code == live.case_code)
        policy = bool(await s.scalar(q))
    members = [live.people[m] for m in sorted(live.caucus) if m in live.people]
    return policy and not await not_consented(db, members)


def withdrawal_pauses(live: LiveSession, me: Presence) -> bool:
    """R1/P2: an admitted person withdrawing recording consent pauses the running recording for everyone."""
    return me.admitted and live.recording == "running"
