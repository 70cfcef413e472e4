"""HTTP access to export jobs (issue 14 item 5), and the queue's place in the app's life.

A recording's export runs as a job on a task queue (recordings/export_queue.py: SAQ on Redis across nodes, an
in-process worker without Redis), never inside a request: `POST /api/recordings/{id}/exports` queues it (202),
`GET /api/exports/{job}` says its status and progress, `GET /api/exports/{job}/file` streams the result,
decrypting as it goes (each download an audited evidence read). Who may see a job is who may export its
recording (mediation/export_jobs.py); everyone else gets 404. A finished export is kept `export_keep_days` and then
deleted by the queue's upkeep (the job reads `expired`, the download answers 410 `export_expired`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from mediation import export_jobs
from mediation.permissions import Action
from recordings import export_job
from recordings.export_queue import ExportQueue, LocalQueue, SaqQueue
from signaling.httpkit import Api, Ctx
from signaling.services import SERVICES, Services

log = logging.getLogger(__name__)
api = Api()


class ExportIn(BaseModel):
    reason: str = Field(min_length=1, max_length=300)
    raw: bool = False


@api.route("POST", "/api/recordings/{id}/exports", action=Action.RECORDING_EXPORT, body=ExportIn)
async def start_export(ctx: Ctx, body: ExportIn) -> web.Response:
    """Queue an export (grid MP4, or raw=true for the original tracks); 202 with the job."""
    sv = ctx.services
    job = await export_jobs.request_export(sv.db, ctx.actor, ctx.param("id"), reason=body.reason, raw=body.raw)
    if sv.exports is not None:
        try:
            await sv.exports.submit(job["id"])
        except Exception:  # the job is queued in the database: the queue's resubmission picks it up
            log.warning("export job %s: enqueue failed, left for resubmission", job["id"], exc_info=True)
    return web.json_response({"job": job}, status=202)


@api.route("GET", "/api/exports/{job}", action=Action.RECORDING_EXPORT)
async def export_status(ctx: Ctx, _: None) -> dict[str, Any]:
    """An export job's status (queued, running, done, failed) and progress (0..1)."""
    return {"job": await export_jobs.job_status(ctx.services.db, ctx.actor, ctx.param("job"))}


@api.route("GET", "/api/exports/{job}/file", action=Action.RECORDING_EXPORT)
async def export_file(ctx: Ctx, _: None) -> web.StreamResponse:
    """A finished export, decrypted while it is sent (every download is logged); 410 once it expired."""
    sv = ctx.services
    assert sv.export_store is not None
    res = await export_jobs.open_download(sv.db, ctx.actor, ctx.param("job"))
    resp = web.StreamResponse(headers={"Content-Type": res.media_type, "Content-Length": str(res.size),
                                       "Content-Disposition": f'attachment; filename="{res.filename}"'})
    await resp.prepare(ctx.request)
    async for chunk in export_job.decrypted(sv.export_store, sv.keys, res):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def make_queue(sv: Services) -> ExportQueue:
    st = sv.settings
    node = sv.cluster.node_id if sv.cluster is not None else (
        st.node_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}")

    async def run(job_id: str, beat: Callable[[float], Awaitable[None]] | None) -> str:
        assert sv.export_store is not None
        return await export_job.run(sv.db, sv.storage, sv.export_store, sv.keys, job_id, node=node, beat=beat)

    async def upkeep() -> list[str]:
        assert sv.export_store is not None
        return await export_job.expire(sv.db, sv.export_store, keep=dt.timedelta(days=st.export_keep_days))

    if st.redis_url:
        return SaqQueue(sv.db, run, st.redis_url, concurrency=st.export_concurrency,
                        heartbeat=st.export_heartbeat, sweep=st.export_sweep, upkeep=upkeep)
    return LocalQueue(sv.db, run, concurrency=st.export_concurrency, upkeep=upkeep)


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The export worker runs while the app does; stopping gives a running job back to the queue."""
    sv = app[SERVICES]
    queue = sv.exports = make_queue(sv)
    await queue.start()
    yield
    await queue.stop()
