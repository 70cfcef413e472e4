"""Export jobs (issue 14 item 5): a recording's export runs on a task queue, not inside a web request.

The database is the truth for a job; the queue (recordings/export_queue.py) only carries its id to a worker.

- `export_jobs` row: who asked, why (R10, R14), raw or grid, status queued → running → done | failed, progress
  0..1, an error code, the node running it and the attempt (a node that dies mid-job: another node claims it
  again with attempt + 1; a stale worker's writes are fenced by the attempt number), and the result: the
  encrypted object (stream `a<attempt>` of the job in the export storage), its plaintext SHA-256 and size, and
  its data key wrapped by the center's master key.
- Who sees a job: exactly who may export its recording (`evidence.readable_recording`: the center's staff with
  the permission, a court's judges for cases sent to them, never a privileged recording at a court). Everyone
  else gets 404 `export_not_found`, as for a job that does not exist.
- Every download is an evidence read: an audit entry (actor, job, SHA-256) with the job's reason.
- An export is a copy of evidence: it is kept `export_keep_days` after it finished, then its stored object is
  deleted and its wrapped data key wiped (`expire`, audited `recording.export_expired`); the job reads `expired`
  and its download answers 410 `export_expired` (prepare it again).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Integer, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from mediation import audit, evidence
from mediation.access import Actor
from mediation.db import Base, Database, UTCDateTime, utcnow
from mediation.errors import Conflict, Expired, InvalidInput, NotFound

STATUSES = ("queued", "running", "done", "failed", "expired")


class ExportJob(Base):
    __tablename__ = "export_jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    recording_id: Mapped[str] = mapped_column(String(64), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(String(64), nullable=True)  # a code, shown to the user
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)  # detail for the operator (never shown)
    result_object: Mapped[str | None] = mapped_column(String(200), nullable=True)  # stream id in export storage
    result_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    key_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)  # master key id of the wrap
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    node: Mapped[str | None] = mapped_column(String(120), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t else None


def view(job: ExportJob) -> dict[str, Any]:
    """What the console and the court portal see of a job (no key, no object name, no operator detail)."""
    return {"id": job.id, "recording_id": job.recording_id, "status": job.status, "raw": job.raw,
            "progress": round(job.progress or 0.0, 4), "error": job.error, "requested_by": job.requested_by,
            "reason": job.reason, "created_at": _iso(job.created_at), "finished_at": _iso(job.finished_at),
            "bytes": job.result_bytes, "sha256": job.result_sha256, "media_type": job.media_type,
            "attempts": job.attempts, "node": job.node}


def _not_found() -> NotFound:
    return NotFound("no such export", code="export_not_found")


async def request_export(db: Database, actor: Actor, recording_id: str, *, reason: str, raw: bool) -> dict[str, Any]:
    """Queue an export of a recording this actor may export; the request is an audit entry with its reason."""
    reason = reason.strip()[:300]
    if not reason:
        raise InvalidInput("say why the recording is read (logged)", code="reason_required")
    rid = await evidence.readable_recording(db, actor, recording_id)
    job = ExportJob(id="exp-" + secrets.token_hex(12), recording_id=rid, requested_by=actor.id, reason=reason,
                    raw=raw, status="queued", progress=0.0, attempts=0)
    async with db.session() as s:
        s.add(job)
        await audit.append(s, actor=actor.id, action="recording.export_requested", subject=f"recording:{rid}",
                           detail={"job": job.id, "raw": raw}, reason=reason)
        await s.flush()
        return view(job)


async def _visible(db: Database, actor: Actor, job_id: str) -> ExportJob:
    async with db.session() as s:
        job = await s.get(ExportJob, job_id[:40])
    if job is None:
        raise _not_found()
    try:
        await evidence.readable_recording(db, actor, job.recording_id)
    except NotFound:
        raise _not_found() from None
    return job


async def job_status(db: Database, actor: Actor, job_id: str) -> dict[str, Any]:
    return view(await _visible(db, actor, job_id))


@dataclass(frozen=True)
class Result:
    """Where a finished export is and how to open it (for the download stream; never sent to a client)."""

    job_id: str
    recording_id: str
    stream_id: str
    key_ref: str
    wrapped_key: bytes
    sha256: str
    size: int
    media_type: str
    filename: str


async def open_download(db: Database, actor: Actor, job_id: str) -> Result:
    """A finished job's result for this actor; the download is logged as a read of evidence (R10, R14)."""
    job = await _visible(db, actor, job_id)
    if job.status == "expired":
        raise Expired("the export was deleted after its keeping time; prepare it again", code="export_expired",
                      finished_at=_iso(job.finished_at))
    if job.status != "done":
        raise Conflict("the export is not ready", code="export_not_ready", job_status=job.status)
    assert job.result_object and job.key_ref and job.wrapped_key and job.result_sha256 and job.media_type
    ext = "mp4" if job.media_type == "video/mp4" else "mkv"
    res = Result(job.id, job.recording_id, job.result_object, job.key_ref, job.wrapped_key, job.result_sha256,
                 job.result_bytes or 0, job.media_type, f"{job.recording_id}-{'raw' if job.raw else 'grid'}.{ext}")
    async with db.session() as s:
        await audit.append(s, actor=actor.id, action="recording.export_download",
                           subject=f"recording:{job.recording_id}", reason=job.reason,
                           detail={"job": job.id, "sha256": job.result_sha256, "bytes": job.result_bytes})
    return res


# --- the worker's side: claiming, progress and the end of a job (fenced by the attempt number) ---


@dataclass(frozen=True)
class Claim:
    job_id: str
    recording_id: str
    requested_by: str
    reason: str
    raw: bool
    attempt: int


async def claim(db: Database, job_id: str, node: str) -> Claim | None:
    """Take a queued job, or a running one whose node was lost (the queue hands a job out again only then).
    None: the job is finished (or does not exist here)."""
    async with db.session() as s:
        job = await s.get(ExportJob, job_id[:40])
        if job is None or job.status not in ("queued", "running"):
            return None
        attempt = job.attempts + 1
        res = await s.execute(update(ExportJob).where(ExportJob.id == job.id, ExportJob.attempts == job.attempts,
                                                      ExportJob.status.in_(("queued", "running")))
                              .values(status="running", node=node, attempts=attempt, progress=0.0,
                                      updated_at=utcnow()))
        if getattr(res, "rowcount", 1) != 1:
            return None
        return Claim(job.id, job.recording_id, job.requested_by, job.reason, job.raw, attempt)


def _current(job_id: str, attempt: int) -> Any:
    return (ExportJob.id == job_id, ExportJob.attempts == attempt, ExportJob.status == "running")


async def set_progress(db: Database, job_id: str, attempt: int, progress: float) -> None:
    async with db.session() as s:
        await s.execute(update(ExportJob).where(*_current(job_id, attempt))
                        .values(progress=max(0.0, min(1.0, progress)), updated_at=utcnow()))


async def finish(db: Database, job_id: str, attempt: int, *, stream_id: str, sha256: str, size: int,
                 media_type: str, key_ref: str, wrapped_key: bytes) -> bool:
    async with db.session() as s:
        now = utcnow()
        res = await s.execute(update(ExportJob).where(*_current(job_id, attempt)).values(
            status="done", progress=1.0, result_object=stream_id, result_sha256=sha256, result_bytes=size,
            media_type=media_type, key_ref=key_ref, wrapped_key=wrapped_key, updated_at=now, finished_at=now))
        return getattr(res, "rowcount", 1) == 1


async def fail(db: Database, job_id: str, attempt: int, *, code: str, problem: str) -> None:
    async with db.session() as s:
        now = utcnow()
        await s.execute(update(ExportJob).where(*_current(job_id, attempt)).values(
            status="failed", error=code[:64], problem=problem[-4000:], updated_at=now, finished_at=now))


async def unfinished(db: Database, *, status: tuple[str, ...] = ("queued", "running")) -> list[str]:
    """Jobs not finished, oldest first (what a queue hands out again after a restart)."""
    async with db.session() as s:
        q = select(ExportJob.id).where(ExportJob.status.in_(status)).order_by(ExportJob.created_at)
        return list((await s.scalars(q)).all())


# --- keeping time: finished exports are deleted after it (recordings.export_job.expire, from the queue's upkeep) ---


async def finished_before(db: Database, cutoff: dt.datetime) -> list[str]:
    """Done jobs that finished before `cutoff`, oldest first."""
    async with db.session() as s:
        q = (select(ExportJob.id).where(ExportJob.status == "done", ExportJob.finished_at < cutoff)
             .order_by(ExportJob.finished_at))
        return list((await s.scalars(q)).all())


async def mark_expired(db: Database, job_id: str, *, actor: str, keep_days: float) -> bool:
    """The job's object is deleted: the job reads `expired`, its wrapped data key is wiped, and the expiry is an
    audit entry. False when another node expired it first (only one entry)."""
    async with db.session() as s:
        job = await s.get(ExportJob, job_id[:40])
        if job is None or job.status != "done":
            return False
        res = await s.execute(update(ExportJob).where(ExportJob.id == job.id, ExportJob.status == "done")
                              .values(status="expired", wrapped_key=None, updated_at=utcnow()))
        if getattr(res, "rowcount", 1) != 1:
            return False
        await audit.append(s, actor=actor, action="recording.export_expired", subject=f"recording:{job.recording_id}",
                           detail={"job": job.id, "sha256": job.result_sha256, "finished_at": _iso(job.finished_at),
                                   "keep_days": keep_days}, reason="export keeping time ran out")
        return True
