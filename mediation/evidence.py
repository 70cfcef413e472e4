"""Who may read a recording (R9, R10, R14): staff of the center that made it, and judges of a court the case was
sent to — never a privileged (caucus) recording. Everyone else gets 404: the recording does not exist for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mediation.access import Actor, Resource, check
from mediation.db import Database
from mediation.errors import NotFound
from mediation.models import Case
from mediation.permissions import Action
from mediation.recording_records import Recording
from mediation.resources import courts_of


async def _resource(s: Any, rec: Recording) -> Resource:
    case = await s.scalar(select(Case).where(Case.code == rec.case_code))
    if case is None:
        raise NotFound("no such recording", code="recording_not_found")
    return Resource("recording", center_id=case.center_id, courts=await courts_of(s, case),
                    privileged=rec.privileged)


async def readable_recording(db: Database, actor: Actor, recording_id: str) -> str:
    async with db.session() as s:
        rec = await s.get(Recording, recording_id[:64])
        if rec is None:
            raise NotFound("no such recording", code="recording_not_found")
        check(actor, Action.RECORDING_EXPORT, await _resource(s, rec))
        return rec.id


async def list_recordings(db: Database, actor: Actor, case_code: str) -> list[dict[str, Any]]:
    """The recordings of a case this actor may read, with their state and duration."""
    async with db.session() as s:
        rows = (await s.scalars(select(Recording).where(Recording.case_code == case_code)
                                .order_by(Recording.started_at))).all()
        out = []
        for r in rows:
            try:
                check(actor, Action.RECORDING_EXPORT, await _resource(s, r))
            except NotFound:
                continue
            out.append({"id": r.id, "session_id": r.session_id, "status": r.status, "privileged": r.privileged,
                        "duration_ms": r.duration_ms,
                        "started_at": r.started_at.isoformat() if r.started_at else None})
        if rows and not out:
            raise NotFound("no such case", code="case_not_found")
        return out
