"""Export: decrypt a recording (authorized and audited) into ONE file a judge can play (P1, R12).

- Default: MP4 (H.264 + AAC) with every source in a grid, all audio mixed, and a burned-in wall-clock time
  (`drawtext` with `%{pts:localtime:<start epoch>}`, in the time zone `tz`) and the case code. Sources keep their
  place on the recording's common clock: ffmpeg runs with `-copyts`, each tile is overlaid on a black canvas as
  of its own first frame, and each audio track is padded with silence from 0 (`aresample=async=1:first_pts=0`).
- `raw=True`: Matroska with every original track (VP8, Opus) remuxed without transcoding, timestamps unchanged.

A recording continued on another node after its owner was lost (several nodes) has parts: the lost node's streams
end at its last stored segment and the next part's streams begin when the new owner continued it. Every stream
keeps its place on the common clock, so the parts play in order; the gap between them (the `node_lost` and
`continued` events) is marked in the picture ("录像中断 ... recording gap") and listed in `ExportResult.gaps`.

Plaintext handling (`recordings.ffmpeg`): the system `ffmpeg` reads each decrypted stream from its own anonymous
pipe (`pipe:N`, inherited file descriptors) that this process fills from the decrypting reader with non-blocking
writes. `export` writes the requested output file, which the caller places (outside the data directory; it is the
deliverable; on failure the partial output is removed). `export_stream` (the HTTP export) has ffmpeg write
Matroska to its stdout and yields the bytes: no decrypted byte is ever written to a file, so nothing is left
behind if the process dies (issue 10). Both the read (before decrypting) and the result (with the output's
SHA-256) are audit entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from mediation import audit
from mediation.db import Database
from mediation.errors import NotFound
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingEvent, RecordingParticipant, RecordingStream
from recordings.decrypt import DecryptedStream
from recordings.ffmpeg import ExportFailed, raw_output_args, run_ffmpeg, stream_ffmpeg
from recordings.mkvred import RedUnwrappedStream
from recordings.reader import authorize_read
from recordings.sources import source_label
from recordings.storage import RecordingStorage

FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


@dataclass
class ExportResult:
    path: Path
    raw: bool
    duration_ms: int
    streams: list[str]
    sha256: str
    bytes: int
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (from_ms, to_ms) where no node was recording


def _safe_text(text: str) -> str:
    """Keep what drawtext shows verbatim: letters (any script), digits, space and - _ . ( )."""
    return "".join(c if c.isalnum() or c in " -_.()" else " " for c in text).strip()


def _font(fontfile: str | None) -> str:
    for f in (fontfile, *FONTS):
        if f and os.path.exists(f):
            return f
    raise ExportFailed("no font found for the burned-in time")


def grid_filter(
    streams: list[RecordingStream],
    labels: dict[str, str],
    *,
    case_code: str,
    epoch: float,
    duration_s: float,
    font: str,
    tile: tuple[int, int] = (640, 360),
    fps: int = 15,
    gaps: list[tuple[int, int]] | None = None,
) -> str:
    """The filter graph: input i is streams[i]; outputs [vout] and [aout]. `gaps` (ms on the recording's clock)
    are marked with a caption while they last."""
    tw, th = tile
    sources = list(dict.fromkeys(s.source_id for s in streams if "video" in s.kinds)) or ["-"]
    cols = math.ceil(math.sqrt(len(sources)))
    rows = math.ceil(len(sources) / cols)
    pos = {sid: ((k % cols) * tw, (k // cols) * th) for k, sid in enumerate(sources)}
    parts = [f"color=c=black:s={cols * tw}x{rows * th}:r={fps}:d={duration_s:.3f}[bg0]"]
    n = 0
    for i, s in enumerate(streams):
        if "video" not in s.kinds:
            continue
        x, y = pos[s.source_id]
        parts.append(
            f"[{i}:v]scale={tw}:{th}:force_original_aspect_ratio=decrease,"
            f"pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2,setsar=1[v{i}]"
        )
        parts.append(f"[bg{n}][v{i}]overlay=x={x}:y={y}:eof_action=pass[bg{n + 1}]")
        n += 1
    text = [f"[bg{n}]"]
    for sid, (x, y) in pos.items():
        label = _safe_text(source_label(labels, sid))
        if label:
            text.append(
                f"drawtext=fontfile={font}:text='{label}':x={x + 10}:y={y + 10}:fontsize=22:"
                "fontcolor=white:box=1:boxcolor=black@0.5,"
            )
    for a, b in gaps or []:
        text.append(
            f"drawtext=fontfile={font}:text='录像中断 recording gap ({(b - a) / 1000:.1f} s)':"
            f"x=(w-tw)/2:y=(h-th)/2:fontsize=32:fontcolor=yellow:box=1:boxcolor=black@0.7:"
            f"enable='between(t,{a / 1000:.3f},{b / 1000:.3f})',"
        )
    case = _safe_text(case_code)
    text.append(
        f"drawtext=fontfile={font}:text='%{{pts\\:localtime\\:{epoch:.3f}}}  {case}':x=10:y=h-th-10:"
        "fontsize=26:fontcolor=white:box=1:boxcolor=black@0.6[vout]"
    )
    parts.append("".join(text))
    audio = [i for i, s in enumerate(streams) if "audio" in s.kinds]
    for i in audio:
        parts.append(f"[{i}:a]aresample=48000:async=1:first_pts=0[a{i}]")
    if audio:
        ins = "".join(f"[a{i}]" for i in audio)
        # apad to a fixed length, not forever: a truncated stream (crash) may end in packets without timestamps,
        # and then `-t` alone never stops the audio
        parts.append(f"{ins}amix=inputs={len(audio)}:duration=longest:normalize=0,"
                     f"apad=whole_dur={duration_s:.3f},atrim=end={duration_s:.3f}[aout]")
    else:
        parts.append("anullsrc=r=48000:cl=stereo[aout]")
    return ";".join(parts)


# MP4 written to a pipe cannot be rewritten at the end (no seek): fragmented, the index first (plays everywhere)
_MOVFLAGS_PIPE = "frag_keyframe+empty_moov+default_base_moof"


@dataclass
class _Plan:
    readers: list[DecryptedStream]
    args: list[str]  # ffmpeg output arguments, ending in the output
    duration_s: float
    stream_ids: list[str]
    gaps: list[tuple[int, int]] = field(default_factory=list)


def gaps_of(events: list[RecordingEvent]) -> list[tuple[int, int]]:
    """Where a lost node's media ends (`node_lost`) to where the next part begins (`continued`)."""
    out, lost = [], None
    for e in events:
        if e.kind == "node_lost":
            lost = e.pts_ms
        elif e.kind == "continued" and lost is not None:
            out.append((lost, max(lost, e.pts_ms)))
            lost = None
    return out


async def _plan(
    db: Database, storage: RecordingStorage, keyring: KeyRing, recording_id: str, target: str, *, actor: str,
    reason: str, raw: bool, fmt: str, file: str, fontfile: str | None, tile: tuple[int, int], fps: int,
) -> _Plan:
    """Load the recording's streams, log the read (authorize_read) and build the ffmpeg output arguments."""
    async with db.session() as s:
        rec = await s.get(Recording, recording_id)
        if rec is None:
            raise NotFound("no such recording", recording=recording_id)
        q = select(RecordingStream).where(RecordingStream.recording_id == recording_id).order_by(RecordingStream.id)
        streams = list((await s.scalars(q)).all())
        q2 = select(RecordingParticipant).where(RecordingParticipant.recording_id == recording_id)
        labels = {p.source_id: p.label for p in (await s.scalars(q2)).all()}
        q3 = select(RecordingEvent).where(RecordingEvent.recording_id == recording_id).order_by(RecordingEvent.id)
        gaps = gaps_of(list((await s.scalars(q3)).all()))
    # a stream cut off by a lost node or a crash after its first segment holds no playable media (the Matroska
    # head alone, which ffmpeg refuses): left out; the manifest still lists it
    streams = [s for s in streams if s.status not in ("truncated", "corrupt") or (s.segments or 0) >= 2]
    if not streams:
        raise NotFound("the recording has no media", code="no_media", recording=recording_id)
    key = await authorize_read(db, keyring, recording_id, actor=actor, reason=reason, action="recording.export",
                               detail={"raw": raw, "file": file})
    duration_s = max(0.04, (rec.duration_ms or 0) / 1000)
    # audio stored as RED (a browser that sent it) comes out as Opus, losses repaired (recordings/mkvred.py)
    readers = [(RedUnwrappedStream if "audio" in s.kinds.split(",") else DecryptedStream)(
        storage, key, recording_id, s.stream_id) for s in streams]
    if raw:
        args = raw_output_args([(s.source_id, s.stream_id, s.kinds.split(",")) for s in streams], labels, target)
    else:
        graph = grid_filter(streams, labels, case_code=rec.case_code, epoch=rec.started_at.timestamp(),
                            duration_s=duration_s, font=_font(fontfile), tile=tile, fps=fps, gaps=gaps)
        args = ["-filter_complex", graph, "-map", "[vout]", "-map", "[aout]",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p", "-r", str(fps),
                "-c:a", "aac", "-b:a", "128k", "-t", f"{duration_s:.3f}",
                *(["-movflags", _MOVFLAGS_PIPE if target == "pipe:1" else "+faststart"] if fmt == "mp4" else []),
                "-f", fmt, target]
    return _Plan(readers, args, duration_s, [s.stream_id for s in streams], gaps)


async def _exported(db: Database, recording_id: str, *, actor: str, reason: str, raw: bool, file: str, digest: str,
                    size: int) -> None:
    async with db.session() as s:
        await audit.append(s, actor=actor, action="recording.exported", subject=f"recording:{recording_id}",
                           detail={"raw": raw, "file": file, "sha256": digest, "bytes": size}, reason=reason)


async def export(
    db: Database,
    storage: RecordingStorage,
    keyring: KeyRing,
    recording_id: str,
    out: Path,
    *,
    actor: str,
    reason: str,
    raw: bool = False,
    tz: str | None = None,
    fontfile: str | None = None,
    ffmpeg: str = "ffmpeg",
    tile: tuple[int, int] = (640, 360),
    fps: int = 15,
) -> ExportResult:
    """Write the export to `out`: MP4 (grid) or Matroska (raw). The caller chose `out`; it is the deliverable."""
    plan = await _plan(db, storage, keyring, recording_id, str(out), actor=actor, reason=reason, raw=raw,
                       fmt="matroska" if raw else "mp4", file=out.name, fontfile=fontfile, tile=tile, fps=fps)
    await run_ffmpeg(plan.readers, plan.args, out, ffmpeg=ffmpeg, env={**os.environ, **({"TZ": tz} if tz else {})})
    digest, size = await asyncio.to_thread(_hash_file, out)
    await _exported(db, recording_id, actor=actor, reason=reason, raw=raw, file=out.name, digest=digest, size=size)
    return ExportResult(out, raw, int(plan.duration_s * 1000), plan.stream_ids, digest, size, plan.gaps)


async def export_stream(
    db: Database,
    storage: RecordingStorage,
    keyring: KeyRing,
    recording_id: str,
    *,
    actor: str,
    reason: str,
    raw: bool = False,
    tz: str | None = None,
    fontfile: str | None = None,
    ffmpeg: str = "ffmpeg",
    tile: tuple[int, int] = (640, 360),
    fps: int = 15,
    fmt: str = "matroska",
    progress: Callable[[float], None] | None = None,
) -> AsyncGenerator[bytes, None]:
    """The export as Matroska bytes (grid: H.264 + AAC; raw: the original tracks), or with fmt="mp4" (grid only)
    fragmented MP4, straight from ffmpeg's stdout: no plaintext file exists at any moment. Errors before the first
    chunk (not found, no key, ffmpeg refusing) raise before anything is yielded; the audit entry with the SHA-256
    is written once the last byte is out. `progress` is told the share done (0..1) against the recording's
    duration, as ffmpeg reports its position."""
    fmt = "matroska" if raw else fmt
    file = f"{recording_id}.{'mp4' if fmt == 'mp4' else 'mkv'}"
    plan = await _plan(db, storage, keyring, recording_id, "pipe:1", actor=actor, reason=reason, raw=raw,
                       fmt=fmt, file=file, fontfile=fontfile, tile=tile, fps=fps)
    h, size = hashlib.sha256(), 0

    def on_time(seconds: float) -> None:
        if progress is not None:
            progress(max(0.0, min(1.0, seconds / plan.duration_s)))

    chunks = stream_ffmpeg(plan.readers, plan.args, ffmpeg=ffmpeg, env={**os.environ, **({"TZ": tz} if tz else {})},
                           on_time=on_time if progress is not None else None)
    try:
        async for chunk in chunks:
            h.update(chunk)
            size += len(chunk)
            yield chunk
    finally:
        await chunks.aclose()
    await _exported(db, recording_id, actor=actor, reason=reason, raw=raw, file=file, digest=h.hexdigest(),
                    size=size)


def _hash_file(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n
