"""Running the system `ffmpeg` over decrypted streams (no database): each stream reaches ffmpeg through its own
anonymous pipe (`pipe:N`, inherited file descriptors) filled from the decrypting reader with non-blocking
writes, so no decrypted byte touches a file except the requested output. Used by `recordings.export` (from the
server's storage) and by the court's offline verifier (`onedoor verify --export`, from a bundle).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from pathlib import Path

from mediation.errors import OneDoorError
from recordings.decrypt import DecryptedStream

log = logging.getLogger(__name__)


class ExportFailed(OneDoorError):
    code = "export_failed"
    status = 500


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
