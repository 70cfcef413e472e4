"""HTTP access to recordings: the list for a case and the export a judge or mediator plays (P1).

Who may read a recording: staff of the center that made it (mediator, admin), and judges of a court the case was
sent to for confirmation. Everyone else gets 404 (the recording does not exist for them). Every export is an
audit entry with the reason given (R10, R14). The export is written to a private temporary directory outside
the data directory, streamed, and deleted.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from mediation.agreements.models import ConfirmationApplication
from mediation.errors import InvalidInput, NotFound
from mediation.models import Case
from mediation.permissions import Action, Role
from mediation.recording_records import Recording
from recordings.export import export
from signaling.http_api import api
from signaling.httpkit import Ctx


async def readable_recording(s: Any, ctx: Ctx, recording_id: str) -> Recording:
    assert ctx.user is not None
    rec = await s.get(Recording, recording_id[:64])
    case = await s.scalar(select(Case).where(Case.code == rec.case_code)) if rec else None
    if rec is None or case is None:
        raise NotFound("no such recording", code="recording_not_found")
    if ctx.user.role == Role.COURT_JUDGE:
        sent = await s.scalar(select(ConfirmationApplication.id).where(
            ConfirmationApplication.case_id == case.id, ConfirmationApplication.court_id == ctx.user.court_id))
        if sent is None:
            raise NotFound("no such recording", code="recording_not_found")
    elif case.center_id != ctx.user.center_id:
        raise NotFound("no such recording", code="recording_not_found")
    return rec


@api.route("GET", "/api/cases/{code}/recordings", action=Action.RECORDING_EXPORT)
async def list_recordings(ctx: Ctx, _: None) -> dict[str, Any]:
    """The recordings of a case with their state and duration."""
    async with ctx.services.db.session() as s:
        rows = (await s.scalars(select(Recording).where(Recording.case_code == ctx.request.match_info["code"])
                                .order_by(Recording.started_at))).all()
        out = []
        for r in rows:
            await readable_recording(s, ctx, r.id)
            out.append({"id": r.id, "session_id": r.session_id, "status": r.status, "privileged": r.privileged,
                        "duration_ms": r.duration_ms, "started_at": r.started_at.isoformat() if r.started_at else None})
        return {"recordings": out}


@api.route("GET", "/api/recordings/{id}/export", action=Action.RECORDING_EXPORT)
async def export_recording(ctx: Ctx, _: None) -> web.StreamResponse:
    """ONE playable file (grid, mixed audio, burned-in time and case code), or ?raw=1 for the original tracks."""
    reason = ctx.request.query.get("reason", "").strip()[:300]
    if not reason:
        raise InvalidInput("say why the recording is read (logged)", code="reason_required")
    raw = ctx.request.query.get("raw") == "1"
    rid = ctx.request.match_info["id"]
    async with ctx.services.db.session() as s:
        await readable_recording(s, ctx, rid)
    sv = ctx.services
    with tempfile.TemporaryDirectory(prefix="onedoor-export-") as tmp:
        out = Path(tmp) / f"{rid}.mkv"
        await export(sv.db, sv.storage, sv.keys, rid, out, actor=ctx.actor, reason=reason, raw=raw)
        resp = web.StreamResponse(headers={"Content-Type": "video/x-matroska",
                                           "Content-Disposition": f'attachment; filename="{rid}.mkv"'})
        await resp.prepare(ctx.request)
        f = await asyncio.to_thread(out.open, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                await resp.write(chunk)
        finally:
            f.close()
        await resp.write_eof()
        return resp
