"""Where encrypted recording streams live: an interface and two backends.

A stream is the header followed by frames (see `recordings.segment`); `read_stream` yields exactly those bytes
in order, whatever the backend, so one reader serves both. Backends only ever see ciphertext and signed
manifests.

- `LocalStorage(root)`: `<root>/<recording>/<stream>.odr`, one append-only file per stream; every append is
  written, flushed and fsynced before it returns (the directory is fsynced when a file is created);
  directories 0700, files 0600. All file I/O runs in worker threads.
- `S3Storage(bucket, ...)`: an S3-compatible object store via boto3 in worker threads; the header and every
  segment are separate objects (`<prefix><recording>/<stream>/header`, `.../seg/<index:010d>`), so a crash
  loses at most the object being uploaded. A successful PUT is durable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from mediation.errors import InvalidInput

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,159}$")
_CHUNK = 1 << 20


def check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise InvalidInput("invalid recording or stream name", name=name)
    return name


class RecordingStorage(Protocol):
    async def create_stream(self, recording_id: str, stream_id: str, header: bytes) -> None: ...

    async def append_segment(
        self, recording_id: str, stream_id: str, index: int, frame: bytes | bytearray
    ) -> None: ...

    def read_stream(self, recording_id: str, stream_id: str) -> AsyncIterator[bytes]: ...

    async def list_recordings(self) -> list[str]: ...

    async def list_streams(self, recording_id: str) -> list[str]: ...

    async def put_object(self, recording_id: str, name: str, data: bytes) -> None: ...

    async def get_object(self, recording_id: str, name: str) -> bytes | None: ...

    async def delete_recording(self, recording_id: str) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)  # also when it existed, or was made before the mode was applied

    def _dir(self, recording_id: str) -> Path:
        return self.root / check_name(recording_id)

    def _stream(self, recording_id: str, stream_id: str) -> Path:
        return self._dir(recording_id) / f"{check_name(stream_id)}.odr"

    async def create_stream(self, recording_id: str, stream_id: str, header: bytes) -> None:
        await asyncio.to_thread(self._create_sync, self._stream(recording_id, stream_id), header)

    def _create_sync(self, path: Path, header: bytes) -> None:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700)
            _fsync_dir(self.root)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            _write_all(fd, header)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(path.parent)

    async def append_segment(
        self, recording_id: str, stream_id: str, index: int, frame: bytes | bytearray
    ) -> None:
        await asyncio.to_thread(self._append_sync, self._stream(recording_id, stream_id), frame)

    @staticmethod
    def _append_sync(path: Path, frame: bytes | bytearray) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, frame)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def read_stream(self, recording_id: str, stream_id: str) -> AsyncIterator[bytes]:
        path = self._stream(recording_id, stream_id)
        opening = asyncio.ensure_future(asyncio.to_thread(open, path, "rb"))
        try:
            f = await asyncio.shield(opening)
        except asyncio.CancelledError:  # cancelled while the thread opens it (an export job stopped at shutdown):
            opening.add_done_callback(_close_opened)  # close the file when it is open, never leak it
            raise
        try:
            while chunk := await asyncio.to_thread(f.read, _CHUNK):
                yield chunk
        finally:
            f.close()

    async def list_recordings(self) -> list[str]:
        return sorted(
            p.name for p in await asyncio.to_thread(lambda: list(self.root.iterdir())) if p.is_dir()
        )

    async def list_streams(self, recording_id: str) -> list[str]:
        d = self._dir(recording_id)
        if not d.exists():
            return []
        return sorted(
            p.name[:-4] for p in await asyncio.to_thread(lambda: list(d.iterdir())) if p.suffix == ".odr"
        )

    async def put_object(self, recording_id: str, name: str, data: bytes) -> None:
        path = self._dir(recording_id) / check_name(name)
        await asyncio.to_thread(self._put_sync, path, data)

    def _put_sync(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    async def get_object(self, recording_id: str, name: str) -> bytes | None:
        path = self._dir(recording_id) / check_name(name)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete_recording(self, recording_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._dir(recording_id), True)


class S3Storage:
    def __init__(
        self, bucket: str, *, prefix: str = "recordings/", client: Any | None = None, **client_kwargs: Any
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3", **client_kwargs)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, recording_id: str, *parts: str) -> str:
        return self.prefix + "/".join((check_name(recording_id), *parts))

    async def create_stream(self, recording_id: str, stream_id: str, header: bytes) -> None:
        key = self._key(recording_id, check_name(stream_id), "header")
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=header)

    async def append_segment(
        self, recording_id: str, stream_id: str, index: int, frame: bytes | bytearray
    ) -> None:
        key = self._key(recording_id, check_name(stream_id), "seg", f"{index:010d}")
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=frame)

    def _list_sync(self, prefix: str, delimiter: str | None = None) -> tuple[list[str], list[str]]:
        keys: list[str] = []
        prefixes: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            keys += [o["Key"] for o in page.get("Contents", [])]
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return sorted(keys), sorted(prefixes)

    def _get_sync(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    async def read_stream(self, recording_id: str, stream_id: str) -> AsyncIterator[bytes]:
        base = self._key(recording_id, check_name(stream_id))
        yield await asyncio.to_thread(self._get_sync, base + "/header")
        keys, _ = await asyncio.to_thread(self._list_sync, base + "/seg/")
        for key in keys:
            yield await asyncio.to_thread(self._get_sync, key)

    async def list_recordings(self) -> list[str]:
        _, prefixes = await asyncio.to_thread(self._list_sync, self.prefix, "/")
        return [p[len(self.prefix) :].rstrip("/") for p in prefixes]

    async def list_streams(self, recording_id: str) -> list[str]:
        base = self._key(recording_id) + "/"
        _, prefixes = await asyncio.to_thread(self._list_sync, base, "/")
        names = [p[len(base) :].rstrip("/") for p in prefixes]
        return [n for n in names if n != "obj"]

    async def put_object(self, recording_id: str, name: str, data: bytes) -> None:
        key = self._key(recording_id, "obj", check_name(name))
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=data)

    async def get_object(self, recording_id: str, name: str) -> bytes | None:
        key = self._key(recording_id, "obj", check_name(name))
        try:
            return await asyncio.to_thread(self._get_sync, key)
        except self.client.exceptions.NoSuchKey:
            return None

    async def delete_recording(self, recording_id: str) -> None:
        keys, _ = await asyncio.to_thread(self._list_sync, self._key(recording_id) + "/")
        for i in range(0, len(keys), 1000):
            batch = {"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            await asyncio.to_thread(self.client.delete_objects, Bucket=self.bucket, Delete=batch)


def _close_opened(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()
