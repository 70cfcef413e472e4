"""Export: decrypt a recording (authorized and audited) into ONE file a judge can play (P1, R12).

- Default: MP4 (H.264 + AAC) with every source in a grid, all audio mixed, and a burned-in wall-clock time
  (`drawtext` with `%{pts:localtime:<start epoch>}`, in the time zone `tz`) and the case code. Sources keep their
  place on the recording's common clock: ffmpeg runs with `-copyts`, each tile is overlaid on a black canvas as
  of its own first frame, and each audio track is padded with silence from 0 (`aresample=async=1:first_pts=0`).
- `raw=True`: Matroska with every original track (VP8, Opus) remuxed without transcoding, timestamps unchanged.

Plaintext handling: the system `ffmpeg` reads each decrypted stream from its own anonymous pipe (`pipe:N`,
inherited file descriptors) that this process fills from the decrypting reader with non-blocking writes; no
decrypted byte is written to a file except the requested output itself, which the caller places (outside the
data directory; it is the deliverable). On failure the partial output is removed. Both the read (before
decrypting) and the result (with the output's SHA-256) are audit entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import logging
import math
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from mediation import audit
from mediation.db import Database
from mediation.errors import NotFound, OneDoorError
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingParticipant, RecordingStream
from recordings.reader import DecryptedStream, authorize_read
from recordings.storage import RecordingStorage

log = logging.getLogger(__name__)

FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


class ExportFailed(OneDoorError):
    code = "export_failed"
    status = 500


@dataclass
class ExportResult:
    path: Path
    raw: bool
    duration_ms: int
    streams: list[str]
    sha256: str
    bytes: int


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
) -> str:
    """The filter graph: input i is streams[i]; outputs [vout] and [aout]."""
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
        label = _safe_text(labels.get(sid, sid))
        if label:
            text.append(
                f"drawtext=fontfile={font}:text='{label}':x={x + 10}:y={y + 10}:fontsize=22:"
                "fontcolor=white:box=1:boxcolor=black@0.5,"
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


def _die_with_parent() -> None:
    """Linux: ffmpeg gets SIGKILL if the exporting process dies, instead of running on as an orphan."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class _PipeProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.closed = False

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.can_write.set()


async def _feed(stream: DecryptedStream, fd: int) -> None:
    loop = asyncio.get_running_loop()
    pipe = os.fdopen(fd, "wb", buffering=0)
    transport, proto = await loop.connect_write_pipe(_PipeProtocol, pipe)
    try:
        async for chunk in stream:
            if proto.closed:
                break
            transport.write(chunk)
            await proto.can_write.wait()
    finally:
        transport.close()
    if not stream.status.complete:
        log.warning("export of %s/%s: %s", stream.recording_id, stream.stream_id, stream.status.describe())


def raw_output_args(streams: list[tuple[str, str, list[str]]], labels: dict[str, str], out: Path) -> list[str]:
    """ffmpeg output arguments that copy every track of every (source, stream id, kinds) input, titled."""
    args: list[str] = []
    k = 0
    for i, (source, stream_id, kinds) in enumerate(streams):
        args += ["-map", f"{i}"]
        for _ in kinds:
            args += [f"-metadata:s:{k}", f"title={labels.get(source, source)} ({stream_id})"]
            k += 1
    return [*args, "-c", "copy", "-f", "matroska", str(out)]


async def run_ffmpeg(readers: list[DecryptedStream], output_args: list[str], out: Path, *, ffmpeg: str = "ffmpeg",
                     env: dict[str, str] | None = None) -> None:
    """Feed each decrypted stream to ffmpeg through its own pipe (no plaintext temp files) and write `out`.

    ffmpeg dies with this process; on any failure `out` is removed and `ExportFailed` raised.
    """
    pipes = [os.pipe() for _ in readers]
    args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-copyts"]
    for r, _ in pipes:
        args += ["-thread_queue_size", "1024", "-f", "matroska", "-i", f"pipe:{r}"]
    proc = await asyncio.create_subprocess_exec(
        *args, *output_args,
        preexec_fn=_die_with_parent,
        pass_fds=[r for r, _ in pipes],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    for r, _ in pipes:
        os.close(r)
    feeders = [asyncio.create_task(_feed(reader, w)) for reader, (_, w) in zip(readers, pipes, strict=True)]
    try:
        _, stderr = await proc.communicate()
        await asyncio.gather(*feeders)
    except BaseException:
        for t in feeders:
            t.cancel()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise
    if proc.returncode != 0:
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise ExportFailed("ffmpeg failed", detail=stderr.decode(errors="replace")[-2000:])


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
    async with db.session() as s:
        rec = await s.get(Recording, recording_id)
        if rec is None:
            raise NotFound("no such recording", recording=recording_id)
        streams = list(
            (
                await s.scalars(
                    select(RecordingStream)
                    .where(RecordingStream.recording_id == recording_id)
                    .order_by(RecordingStream.id)
                )
            ).all()
        )
        labels = {
            p.source_id: p.label
            for p in (
                await s.scalars(
                    select(RecordingParticipant).where(RecordingParticipant.recording_id == recording_id)
                )
            ).all()
        }
    if not streams:
        raise NotFound("the recording has no media", recording=recording_id)
    key = await authorize_read(
        db,
        keyring,
        recording_id,
        actor=actor,
        reason=reason,
        action="recording.export",
        detail={"raw": raw, "file": out.name},
    )
    duration_s = max(0.04, (rec.duration_ms or 0) / 1000)
    readers = [DecryptedStream(storage, key, recording_id, s.stream_id) for s in streams]
    if raw:
        tail = raw_output_args([(s.source_id, s.stream_id, s.kinds.split(",")) for s in streams], labels, out)
    else:
        graph = grid_filter(streams, labels, case_code=rec.case_code, epoch=rec.started_at.timestamp(),
                            duration_s=duration_s, font=_font(fontfile), tile=tile, fps=fps)
        tail = ["-filter_complex", graph, "-map", "[vout]", "-map", "[aout]",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p", "-r", str(fps),
                "-c:a", "aac", "-b:a", "128k", "-t", f"{duration_s:.3f}", "-movflags", "+faststart",
                "-f", "mp4", str(out)]
    await run_ffmpeg(readers, tail, out, ffmpeg=ffmpeg, env={**os.environ, **({"TZ": tz} if tz else {})})
    digest, size = await asyncio.to_thread(_hash_file, out)
    async with db.session() as s:
        await audit.append(
            s,
            actor=actor,
            action="recording.exported",
            subject=f"recording:{recording_id}",
            detail={"raw": raw, "file": out.name, "sha256": digest, "bytes": size},
            reason=reason,
        )
    return ExportResult(out, raw, int(duration_s * 1000), [s.stream_id for s in streams], digest, size)


def _hash_file(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n
