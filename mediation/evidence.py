"""Who may read a recording (R9, R10, R14): staff of the center that made it, and judges of a court the case was
sent to — never a privileged (caucus) recording. Everyone else gets 404: the recording does not exist for them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.access import Actor, Resource, check, reaches
from mediation.db import Database
from mediation.errors import NotFound
from mediation.models import Case
from mediation.permissions import Action, Scope
from mediation.recording_records import Recording
from mediation.resources import case_resource


async def _reach(s: AsyncSession, actor: Actor, case_code: str) -> Resource:
    """The recordings' case as the rules see it; 404 (as for a missing case) when it is out of this actor's reach."""
    case = await s.scalar(select(Case).where(Case.code == case_code))
    if case is None:
        raise NotFound("no such recording", code="recording_not_found")
    r = replace(await case_resource(s, case), kind="recording")
    check(actor, Action.RECORDING_EXPORT, r)
    return r


async def readable_recording(db: Database, actor: Actor, recording_id: str) -> str:
    async with db.session() as s:
        rec = await s.get(Recording, recording_id[:64])
        if rec is None:
            raise NotFound("no such recording", code="recording_not_found")
        check(actor, Action.RECORDING_EXPORT, replace(await _reach(s, actor, rec.case_code),
                                                      privileged=rec.privileged))
        return rec.id


async def list_recordings(db: Database, actor: Actor, case_code: str) -> list[dict[str, Any]]:
    """The recordings of a case this actor may read (one check of the case, then R9 per recording)."""
    async with db.session() as s:
        try:
            case = await _reach(s, actor, case_code)
        except NotFound:
            raise NotFound("no such case", code="case_not_found") from None
        rows = (await s.scalars(select(Recording).where(Recording.case_code == case_code)
                                .order_by(Recording.started_at))).all()
        return [{"id": r.id, "session_id": r.session_id, "status": r.status, "privileged": r.privileged,
                 "duration_ms": r.duration_ms, "started_at": r.started_at.isoformat() if r.started_at else None}
                for r in rows if reaches(actor, Scope.CENTER_OR_COURT, replace(case, privileged=r.privileged))]
