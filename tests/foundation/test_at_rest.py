"""At rest (issue 10 item 7): everything under the data directory is the center's alone (directories 0700, files
0600: the SQLite database and its -wal/-shm, recordings), and an HTTP export never puts a decrypted file on disk:
ffmpeg's output is streamed to the response."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from mediation.db import Database, private_dir, secure_sqlite_file
from tests.conftest import World, record_trio


def _modes(root: Path) -> dict[str, str]:
    out = {}
    for p in [root, *root.rglob("*")]:
        out[str(p.relative_to(root))] = oct(stat.S_IMODE(p.lstat().st_mode))
    return out


def _bad_modes(root: Path) -> dict[str, str]:
    return {name: m for name, m in _modes(root).items()
            if m != ("0o700" if (root / name).is_dir() else "0o600")}


def _probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def _decodes(path: Path) -> bool:
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, timeout=60)
    return r.returncode == 0


@pytest.mark.timeout(120)
async def test_data_dir_private_and_http_export_leaves_no_plaintext_file(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sv = world.services
    data = sv.settings.data_dir
    m, a, b = await world.trio()
    rid = await record_trio(m, a, b, 2.0)

    # a private temporary directory for this test, for us and for ffmpeg: whatever appears there is the export's
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    before = {str(p) for p in data.rglob("*")}
    seen: set[str] = set()
    stop = asyncio.Event()

    def scan() -> set[str]:
        return {str(p) for p in tmp.rglob("*")} | ({str(p) for p in data.rglob("*")} - before)

    async def watch() -> None:
        while not stop.is_set():
            seen.update(await asyncio.to_thread(scan))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        async with m.http.get(f"{world.base_url}/api/recordings/{rid}/export?reason=review") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "video/x-matroska"
            body = bytearray()
            async for chunk in r.content.iter_chunked(1 << 16):
                body += chunk
                seen.update(await asyncio.to_thread(scan))  # mid-export: ffmpeg is running now
    finally:
        stop.set()
        await watcher
    # SQLite's own files (-wal/-shm checkpoints) may come and go; they are checked for their mode below
    new = {p for p in seen if not Path(p).name.startswith("onedoor.db")}
    assert new == set(), f"files appeared during the HTTP export: {sorted(new)}"

    # the streamed export plays: one video and one audio stream that decode to the end
    out = tmp_path / "http.mkv"
    out.write_bytes(bytes(body))
    info = await asyncio.to_thread(_probe, out)
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    assert await asyncio.to_thread(_decodes, out)
    raw = tmp_path / "raw.mkv"
    async with m.http.get(f"{world.base_url}/api/recordings/{rid}/export?reason=review&raw=1") as r:
        assert r.status == 200
        raw.write_bytes(await r.read())
    assert {s["codec_name"] for s in (await asyncio.to_thread(_probe, raw))["streams"]} >= {"vp8", "opus"}

    # nothing under the data directory is readable by anyone but the server's user
    assert _bad_modes(data) == {}, _modes(data)
    if sv.db.is_sqlite:
        assert {"onedoor.db", "recordings"} <= set(os.listdir(data))
    assert any((data / "recordings").rglob("*.odr"))


def test_existing_data_dir_and_sqlite_files_are_narrowed(tmp_path: Path) -> None:
    """A data directory made by an older version (0755, database 0644) is made private on the next start."""
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    for name in ("onedoor.db", "onedoor.db-wal", "onedoor.db-shm"):
        (data / name).write_bytes(b"")
        os.chmod(data / name, 0o644)
    secure_sqlite_file(f"sqlite+aiosqlite:///{data / 'onedoor.db'}")
    private_dir(data)
    assert _bad_modes(data) == {}, _modes(data)


async def test_a_new_sqlite_database_is_created_private(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'x.db'}")
    try:
        await db.ping()
        async with db.engine.begin() as c:
            from sqlalchemy import text

            await c.execute(text("CREATE TABLE t (x INTEGER)"))
            await c.execute(text("INSERT INTO t VALUES (1)"))
        assert {f for f in os.listdir(tmp_path / "fresh")} >= {"x.db", "x.db-wal", "x.db-shm"}
        assert _bad_modes(tmp_path / "fresh") == {}, _modes(tmp_path / "fresh")
    finally:
        await db.close()
