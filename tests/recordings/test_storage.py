"""Storage backends: the local file system and an S3-compatible store (moto's server on an ephemeral port)."""

from __future__ import annotations

import asyncio
import gc
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from rec_helpers import record
from rec_packets import av_packets

from mediation.db import Database
from mediation.errors import InvalidInput
from mediation.keyring import KeyRing
from recordings.manifest import check_stream, verify_manifest
from recordings.recover import recover
from recordings.segment import Header, SegmentSealer, open_stream
from recordings.storage import LocalStorage, RecordingStorage, S3Storage

KEY = b"k" * 32


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, request: pytest.FixtureRequest) -> S3Storage:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = "rec-" + request.node.name.lower().replace("_", "-")[:40]
    client.create_bucket(Bucket=bucket)
    return S3Storage(bucket, client=client)


async def read_all(st: RecordingStorage, rid: str, sid: str) -> bytes:
    return b"".join([chunk async for chunk in st.read_stream(rid, sid)])


async def exercise(st: RecordingStorage) -> None:
    header = Header("rec-1", "alice.0", "sess", "dk-1", b"\x07" * 7)
    sealer = SegmentSealer(KEY, header)
    await st.create_stream("rec-1", "alice.0", header.to_bytes())
    await st.create_stream("rec-1", "bob.0", header.to_bytes())
    for i, p in enumerate([b"one", b"two", b"three"]):
        await st.append_segment("rec-1", "alice.0", i, sealer.seal(p, last=i == 2))
    await st.put_object("rec-1", "manifest.json", b"{}")
    assert await st.list_recordings() == ["rec-1"]
    assert await st.list_streams("rec-1") == ["alice.0", "bob.0"]
    _, pts, status = open_stream(KEY, await read_all(st, "rec-1", "alice.0"))
    assert pts == [b"one", b"two", b"three"] and status.complete
    assert await st.get_object("rec-1", "manifest.json") == b"{}"
    assert await st.get_object("rec-1", "missing.json") is None
    with pytest.raises(InvalidInput):
        await st.create_stream("../etc", "x", b"")
    await st.delete_recording("rec-1")
    assert await st.list_recordings() == []


async def test_local_storage(storage: LocalStorage) -> None:
    await exercise(storage)


async def test_local_storage_permissions(storage: LocalStorage) -> None:
    await storage.create_stream("rec-2", "s.0", b"hdr")
    await storage.append_segment("rec-2", "s.0", 0, b"frame")
    path = storage.root / "rec-2" / "s.0.odr"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == b"hdrframe"


async def test_s3_storage(s3: S3Storage) -> None:
    await exercise(s3)


async def test_s3_missing_segment_object_is_detected(s3: S3Storage, tmp_path: Path) -> None:
    header = Header("rec-3", "a.0", "sess", "dk-1", b"\x01" * 7)
    sealer = SegmentSealer(KEY, header)
    await s3.create_stream("rec-3", "a.0", header.to_bytes())
    for i in range(4):
        await s3.append_segment("rec-3", "a.0", i, sealer.seal(bytes([i]), last=i == 3))
    s3.client.delete_object(Bucket=s3.bucket, Key="recordings/rec-3/a.0/seg/0000000002")
    _, pts, status = open_stream(KEY, await read_all(s3, "rec-3", "a.0"))
    assert pts == [b"\x00", b"\x01"] and status.failed_at == 2 and not status.complete


async def test_recording_on_s3_end_to_end(s3: S3Storage, db: Database, keyring: KeyRing) -> None:
    rec, doc, _ = await record(db, s3, keyring, {"a": await asyncio.to_thread(av_packets, 2.0)})
    assert [r.status for r in await recover(db, s3, keyring)] == ["ok"]
    stored = await read_all(s3, rec.recording_id, "a.0")
    assert check_stream(verify_manifest(doc, keyring.public_key), "a.0", stored) == []
    assert b"\x1a\x45\xdf\xa3" not in stored


async def test_a_read_cancelled_while_the_file_opens_leaves_no_file_open(tmp_path: Path) -> None:
    """An export job cancelled at a node's shutdown can be cancelled inside the thread that opens a segment file:
    the file is closed once open, never left to the garbage collector (CI saw ResourceWarnings from this)."""
    storage = LocalStorage(tmp_path / "rec")
    await storage.create_stream("rec-1", "s", b"header")
    for _ in range(20):
        stream = storage.read_stream("rec-1", "s")
        step = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)  # the open is under way in its thread
        step.cancel()
        await asyncio.gather(step, return_exceptions=True)
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator (LocalStorage.read_stream)
    await asyncio.sleep(0.2)  # the opens finish in their threads; their done-callbacks close the files
    gc.collect()  # an unclosed file would raise a ResourceWarning here (warnings are errors in this suite)
    chunks = [c async for c in storage.read_stream("rec-1", "s")]
    assert b"".join(chunks).startswith(b"header")
