"""Export jobs (issue 14 item 5): an export runs on the task queue, not in the request; its progress is reported;
its result is encrypted at rest (no plaintext MP4/Matroska in the data or temp directory, during or after) and
decrypted while downloaded; who may not export the recording sees no job; a job that cannot run ends `failed`.

A real server, real bots recording, real ffmpeg, real files. Without Redis: the in-process queue (`make run`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from mediation import audit, export_jobs
from mediation.db import utcnow
from mediation.export_jobs import ExportJob
from mediation.recording_records import Recording
from recordings import export_job
from recordings.keywrap import DATA_KEY_LEN, master_wrap
from signaling.client import SessionClient
from tests.conftest import World, record_trio

MAGIC_MP4, MAGIC_EBML = b"ftyp", b"\x1a\x45\xdf\xa3"


PACED_FFMPEG = """#!/bin/sh
# the real ffmpeg, reading each input at its own speed (-readrate 1), so that an export of a few seconds takes a
# few seconds and its progress can be seen between 0 and 1 however fast or busy the machine is
first=1
for a in "$@"; do
  if [ "$first" = 1 ]; then set --; first=0; fi
  if [ "$a" = "-thread_queue_size" ]; then set -- "$@" -readrate 1; fi
  set -- "$@" "$a"
done
exec /usr/bin/ffmpeg "$@"
"""


def paced_ffmpeg(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ffmpeg` on this process's PATH becomes the real one, paced (the job's ffmpeg is found through PATH)."""
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").write_text(PACED_FFMPEG)
    (bin_dir / "ffmpeg").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def plaintext_media(root: Path) -> list[str]:
    """Files under `root` that begin like an MP4 (`ftyp` box) or a Matroska/WebM (EBML) file."""
    out = []
    for p in root.rglob("*"):
        try:
            if not p.is_file():
                continue
            with p.open("rb") as f:
                head = f.read(16)
        except OSError:  # came and went while we looked
            continue
        if head[4:8] == MAGIC_MP4 or head[:4] == MAGIC_EBML:
            out.append(str(p))
    return out


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout))


async def record(world: World, seconds: float = 4.0) -> tuple[SessionClient, str]:
    """A mediation with both parties recorded for `seconds`; the mediator's client and the recording id."""
    m, a, b = await world.trio()
    return m, await record_trio(m, a, b, seconds)


async def post_export(c: SessionClient, rid: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with c.http.post(f"{c.base_url}/api/recordings/{rid}/exports", json=body,
                           headers={"X-CSRF-Token": c.csrf}) as r:
        return r.status, await r.json()


async def status_of(c: SessionClient, job: str) -> tuple[int, dict[str, Any]]:
    async with c.http.get(f"{c.base_url}/api/exports/{job}") as r:
        return r.status, await r.json()


async def wait_done(c: SessionClient, job: str, limit: float = 90) -> tuple[list[str], list[float], dict[str, Any]]:
    """Poll the job until it ends; the statuses and progress values seen, in order, and the last view."""
    statuses: list[str] = []
    progress: list[float] = []
    async with asyncio.timeout(limit):
        while True:
            st, body = await status_of(c, job)
            assert st == 200, body
            j = body["job"]
            if not statuses or statuses[-1] != j["status"]:
                statuses.append(j["status"])
            progress.append(j["progress"])
            if j["status"] in ("done", "failed"):
                return statuses, progress, j
            await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_export_job_runs_reports_progress_and_leaves_no_plaintext(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sv = world.services
    data = sv.settings.data_dir
    m, rid = await record(world)
    tmp = tmp_path / "tmp"  # this test's temporary directory, for us and for ffmpeg
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    paced_ffmpeg(tmp_path / "bin", monkeypatch)

    st, body = await post_export(m, rid, reason="   ")
    assert st == 422 and body["error"]["code"] == "reason_required"
    st, body = await post_export(m, rid, reason="复核 review")
    assert st == 202, body
    job = body["job"]
    assert job["status"] == "queued" and job["progress"] == 0 and job["recording_id"] == rid

    seen_plain: list[str] = []
    stop = asyncio.Event()

    async def watch() -> None:  # during the whole job: no file under data/ or tmp/ begins like an MP4 or Matroska
        while not stop.is_set():
            for root in (data, tmp):
                seen_plain.extend(await asyncio.to_thread(plaintext_media, root))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        statuses, progress, final = await wait_done(m, job["id"])
    finally:
        stop.set()
        await watcher
    assert final["status"] == "done", final
    assert statuses[-2:] == ["running", "done"] and set(statuses) <= {"queued", "running", "done"}, statuses
    assert progress == sorted(progress), progress  # never goes back
    assert any(0 < p < 1 for p in progress), progress  # seen in between, not only 0 then 1
    assert progress[-1] == 1.0 and final["attempts"] == 1
    assert seen_plain == [], seen_plain
    assert await asyncio.to_thread(plaintext_media, data) == []
    assert any((data / "exports" / job["id"]).rglob("*.odr"))  # the result is stored, encrypted

    # the download decrypts while streaming: the same bytes (SHA-256 in the job and in the audit log), and it plays
    async with m.http.get(f"{world.base_url}/api/exports/{job['id']}/file") as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp4", r.headers
        assert r.headers["Content-Disposition"].endswith('-grid.mp4"')
        got = await r.read()
    assert hashlib.sha256(got).hexdigest() == final["sha256"] and len(got) == final["bytes"]
    out = tmp_path / "export.mp4"
    out.write_bytes(got)
    info = await asyncio.to_thread(probe, out)
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    assert float(info["format"]["duration"]) > 3.0
    async with sv.db.session() as s:
        entries = await audit.entries_for(s, f"recording:{rid}")
    me = final["requested_by"]
    assert me.startswith("staff-")
    actions = [(e.action, e.actor, e.reason) for e in entries]
    assert ("recording.export_requested", me, "复核 review") in actions, actions
    assert ("recording.export", me, "复核 review") in actions  # the decryption, by the requester
    downloads = [e for e in entries if e.action == "recording.export_download"]
    assert len(downloads) == 1 and downloads[0].actor == me
    assert json.loads(downloads[0].detail)["sha256"] == final["sha256"]

    # who may not export this recording does not see the job: a judge of a court the case was not sent to
    judge = await world.staff("judge", session=False)
    st, body = await status_of(judge, job["id"])
    assert st == 404 and body["error"]["code"] == "export_not_found"
    async with judge.http.get(f"{world.base_url}/api/exports/{job['id']}/file") as r:
        assert r.status == 404
    st, _ = await post_export(judge, rid, reason="x")
    assert st == 404
    st, body = await status_of(m, "exp-nosuchjob")
    assert st == 404 and body["error"]["code"] == "export_not_found"
    # the old request-bound route still answers (callers outside the pages: scripts)
    async with m.http.get(f"{world.base_url}/api/recordings/{rid}/export?reason=review&raw=1") as r:
        assert r.status == 200


@pytest.mark.timeout(60)
async def test_a_job_that_cannot_run_ends_failed_with_a_code(world: World) -> None:
    sv = world.services
    async with sv.db.session() as s:  # a recording that never got a segment (started, nothing written)
        s.add(Recording(id="rec-empty", session_id=str(world.session_id), case_code=world.case_code,
                        status="stopped", started_at=utcnow(), duration_ms=0, data_key_id="none"))
    m = await world.staff("mediator", session=False)
    st, body = await post_export(m, "rec-empty", reason="review")
    assert st == 202, body
    _, _, final = await wait_done(m, body["job"]["id"], limit=30)
    assert final["status"] == "failed" and final["error"] == "no_media", final
    async with m.http.get(f"{world.base_url}/api/exports/{final['id']}/file") as r:
        assert r.status == 409 and (await r.json())["error"]["code"] == "export_not_ready"


@pytest.mark.timeout(60)
async def test_a_finished_export_expires_after_its_keeping_time(world: World) -> None:
    """Past `export_keep_days` after it finished, the queue's upkeep deletes the stored export: the job reads
    `expired`, its wrapped key is gone, the download answers 410 `export_expired`, and the expiry is audited."""
    sv = world.services
    assert sv.export_store is not None and sv.settings.export_keep_days == 7
    async with sv.db.session() as s:
        s.add(Recording(id="rec-kept", session_id=str(world.session_id), case_code=world.case_code,
                        status="stopped", started_at=utcnow(), duration_ms=0, data_key_id="none"))
    m = await world.staff("mediator", session=False)
    job_id = "exp-keepingtime"
    async with sv.db.session() as s:  # a job as a worker leaves it (claimed, written, finished)
        s.add(ExportJob(id=job_id, recording_id="rec-kept", requested_by="staff-someone", reason="review", raw=False,
                        status="queued", progress=0.0, attempts=0))
    claim = await export_jobs.claim(sv.db, job_id, "node-x")
    assert claim is not None and claim.attempt == 1
    data_key = secrets.token_bytes(DATA_KEY_LEN)
    out = export_job.SealedWriter(sv.export_store, data_key, job_id, "a1", "rec-kept")
    await out.open()
    await out.write(b"not really an mp4" * 1000)
    await out.close()
    mid = sv.keys.current_master_id
    assert await export_jobs.finish(sv.db, job_id, 1, stream_id="a1", sha256=out.sha256.hexdigest(), size=out.size,
                                    media_type="video/mp4", key_ref=mid,
                                    wrapped_key=master_wrap(sv.keys.master_keys[mid], mid, job_id, data_key))
    async with m.http.get(f"{world.base_url}/api/exports/{job_id}/file") as r:
        assert r.status == 200 and hashlib.sha256(await r.read()).hexdigest() == out.sha256.hexdigest()
    stored = sv.settings.data_dir / "exports" / job_id
    assert (stored / "a1.odr").exists()

    keep = dt.timedelta(days=sv.settings.export_keep_days)
    assert await export_job.expire(sv.db, sv.export_store, keep=keep) == []  # not yet: kept 7 days
    assert (stored / "a1.odr").exists()
    later = utcnow() + dt.timedelta(days=7, minutes=1)
    assert await export_job.expire(sv.db, sv.export_store, keep=keep, now=later) == [job_id]
    assert await export_job.expire(sv.db, sv.export_store, keep=keep, now=later) == []  # once (another node: none)
    assert not stored.exists()
    st, body = await status_of(m, job_id)
    assert st == 200 and body["job"]["status"] == "expired", body
    async with sv.db.session() as s:
        row = await s.get(ExportJob, job_id)
        assert row is not None and row.wrapped_key is None
        entries = await audit.entries_for(s, "recording:rec-kept")
    expired = [e for e in entries if e.action == "recording.export_expired"]
    assert len(expired) == 1 and json.loads(expired[0].detail)["job"] == job_id
    async with m.http.get(f"{world.base_url}/api/exports/{job_id}/file") as r:
        assert r.status == 410 and (await r.json())["error"]["code"] == "export_expired"

    # the app's queue runs the same upkeep (at start and every upkeep_every s) with the setting
    assert sv.exports is not None and sv.exports.upkeep is not None  # type: ignore[attr-defined]
    assert await sv.exports.upkeep() == []  # type: ignore[attr-defined]
