"""Running the system `ffmpeg` over decrypted streams (no database): each stream reaches ffmpeg through its own
anonymous pipe (`pipe:N`, inherited file descriptors) filled from the decrypting reader with non-blocking
writes, so no decrypted byte touches a file except the requested output. `run_ffmpeg` writes that output to a
file the caller chose (`onedoor verify --export`, `onedoor recordings export`); `stream_ffmpeg` has ffmpeg write
it to its stdout (`pipe:1`, a non-seekable container such as Matroska) and yields the bytes, so an HTTP export
never has a plaintext file at all (issue 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

from mediation.errors import OneDoorError
from recordings.decrypt import DecryptedStream
from recordings.sources import source_label

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


def raw_output_args(streams: list[tuple[str, str, list[str]]], labels: dict[str, str], out: Path | str) -> list[str]:
    """ffmpeg output arguments that copy every track of every (source, stream id, kinds) input, titled."""
    args: list[str] = []
    k = 0
    for i, (source, stream_id, kinds) in enumerate(streams):
        args += ["-map", f"{i}"]
        for _ in kinds:
            args += [f"-metadata:s:{k}", f"title={source_label(labels, source)} ({stream_id})"]
            k += 1
    return [*args, "-c", "copy", "-f", "matroska", str(out)]


async def _progress(pipe: Any, on_time: Callable[[float], None]) -> None:
    """Read ffmpeg's `-progress` key=value lines from our end of a pipe; report each `out_time_us` in seconds."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        while line := await reader.readline():
            key, _, value = line.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and value.isdigit():
                on_time(int(value) / 1e6)
    finally:
        transport.close()


async def _start(readers: list[DecryptedStream], output_args: list[str], *, ffmpeg: str, env: dict[str, str] | None,
                 stdout: int, on_time: Callable[[float], None] | None = None,
                 ) -> tuple[asyncio.subprocess.Process, list[asyncio.Task[None]]]:
    pipes = [os.pipe() for _ in readers]
    args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-copyts"]
    progress = os.pipe() if on_time is not None else None
    if progress is not None:
        args += ["-nostats", "-stats_period", "0.25", "-progress", f"pipe:{progress[1]}"]
    for r, _ in pipes:
        args += ["-thread_queue_size", "1024", "-f", "matroska", "-i", f"pipe:{r}"]
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, *output_args,
            preexec_fn=_die_with_parent,
            pass_fds=[r for r, _ in pipes] + ([progress[1]] if progress else []),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except BaseException:
        for r, w in pipes + ([progress] if progress else []):
            os.close(r)
            os.close(w)
        raise
    for r, _ in pipes:
        os.close(r)
    tasks = [asyncio.create_task(_feed(reader, w)) for reader, (_, w) in zip(readers, pipes, strict=True)]
    if progress is not None and on_time is not None:
        os.close(progress[1])
        pipe = os.fdopen(progress[0], "rb", buffering=0)
        reading = asyncio.create_task(_progress(pipe, on_time))
        reading.add_done_callback(lambda _t: pipe.close())  # also when cancelled before it ever ran
        tasks.append(reading)
    return proc, tasks


async def _abort(proc: asyncio.subprocess.Process, tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    for pipe in (proc.stdout, proc.stderr):  # read to the end, so that the process's transport closes itself
        if pipe is not None:  # (left unread, its pipe stays open: "unclosed transport" when it is collected)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pipe.read(), 5)


async def run_ffmpeg(readers: list[DecryptedStream], output_args: list[str], out: Path, *, ffmpeg: str = "ffmpeg",
                     env: dict[str, str] | None = None) -> None:
    """Feed each decrypted stream to ffmpeg through its own pipe (no plaintext temp files) and write `out`.

    ffmpeg dies with this process; on any failure `out` is removed and `ExportFailed` raised.
    """
    proc, feeders = await _start(readers, output_args, ffmpeg=ffmpeg, env=env, stdout=asyncio.subprocess.DEVNULL)
    try:
        _, stderr = await proc.communicate()
        await asyncio.gather(*feeders)
    except BaseException:
        await _abort(proc, feeders)
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise
    if proc.returncode != 0:
        await asyncio.to_thread(out.unlink, missing_ok=True)
        raise ExportFailed("ffmpeg failed", detail=stderr.decode(errors="replace")[-2000:])


async def stream_ffmpeg(readers: list[DecryptedStream], output_args: list[str], *, ffmpeg: str = "ffmpeg",
                        env: dict[str, str] | None = None, chunk: int = 1 << 16,
                        on_time: Callable[[float], None] | None = None) -> AsyncGenerator[bytes, None]:
    """Feed each decrypted stream to ffmpeg through its own pipe and yield what ffmpeg writes to its stdout
    (`output_args` end in `pipe:1`). Nothing is written to any file. Close the generator (`contextlib.aclosing`)
    if you stop early: ffmpeg is killed. A failure raises `ExportFailed` after the bytes already yielded.
    `on_time` is told the output's position in seconds as ffmpeg reports it (`-progress` on a pipe of its own)."""
    proc, feeders = await _start(readers, output_args, ffmpeg=ffmpeg, env=env, stdout=asyncio.subprocess.PIPE,
                                 on_time=on_time)
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())
    tasks: list[asyncio.Task[None]] = [*feeders, errors]  # type: ignore[list-item]
    done = False
    try:
        while data := await proc.stdout.read(chunk):
            yield data
        await proc.wait()
        await asyncio.gather(*feeders)
        stderr = await errors
        done = True
    finally:
        if not done:
            await _abort(proc, tasks)
    if proc.returncode != 0:
        raise ExportFailed("ffmpeg failed", detail=stderr.decode(errors="replace")[-2000:])
