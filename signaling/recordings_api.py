"""HTTP access to recordings: the list for a case and the export a judge or mediator plays (P1).

Who may read a recording: staff of the center that made it (mediator, admin), and judges of a court the case was
sent to for confirmation. Everyone else gets 404 (the recording does not exist for them). Every export is an
audit entry with the reason given (R10, R14). The export is streamed from ffmpeg's output to the response: no
decrypted file exists on disk at any moment (issue 10).
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from mediation import evidence
from mediation.errors import InvalidInput
from mediation.permissions import Action
from recordings.export import export_stream
from signaling.httpkit import Api, Ctx

api = Api()


@api.route("GET", "/api/cases/{code}/recordings", action=Action.RECORDING_EXPORT)
async def list_recordings(ctx: Ctx, _: None) -> dict[str, Any]:
    """The recordings of a case this user may read (a court never sees privileged caucus recordings, R9)."""
    return {"recordings": await evidence.list_recordings(ctx.services.db, ctx.actor, ctx.param("code"))}


@api.route("GET", "/api/recordings/{id}/export", action=Action.RECORDING_EXPORT)
async def export_recording(ctx: Ctx, _: None) -> web.StreamResponse:
    """ONE playable file (grid, mixed audio, burned-in time and case code), or ?raw=1 for the original tracks."""
    reason = ctx.request.query.get("reason", "").strip()[:300]
    if not reason:
        raise InvalidInput("say why the recording is read (logged)", code="reason_required")
    raw = ctx.request.query.get("raw") == "1"
    rid = await evidence.readable_recording(ctx.services.db, ctx.actor, ctx.param("id"))
    sv = ctx.services
    chunks = export_stream(sv.db, sv.storage, sv.keys, rid, actor=ctx.actor.id, reason=reason, raw=raw)
    resp = web.StreamResponse(headers={"Content-Type": "video/x-matroska",
                                       "Content-Disposition": f'attachment; filename="{rid}.mkv"'})
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:  # errors before the first byte are answered as usual, not as a cut download
            if not resp.prepared:
                await resp.prepare(ctx.request)
            await resp.write(chunk)
    if not resp.prepared:
        await resp.prepare(ctx.request)
    await resp.write_eof()
    return resp
