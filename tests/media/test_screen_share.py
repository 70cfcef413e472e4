"""Screen sharing through the real hub with real aiortc bots: a bot publishes a 1280x720 clip on the `screen`
m-line (as a page does with getDisplayMedia). It is forwarded like a camera, obeys the caucus (R9), stops when the
share stops, and the recorder keeps it as a source of its own (`<participant>.screen`), encrypted, exported."""

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

import mediation.recording_records  # noqa: F401  (registers the tables)
from media.fixtures import video_clip
from media.recorder import RecorderParticipant
from mediation.db import Base, Database
from mediation.keyring import KeyRing
from mediation.recording_records import RecordingStream
from recordings.export import export
from recordings.recorder import Participant, Recorder
from recordings.storage import LocalStorage
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until

pytestmark = [pytest.mark.timeout(90), PC_SETUP_BLOCKS]


def screen_of(got, publisher):
    return got.get(publisher, {}).get("screen", {"packets": 0, "frames": 0, "keyframes": 0})


async def ffprobe(path: Path) -> dict:
    out = await asyncio.to_thread(subprocess.run, ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of",
                                                   "json", str(path)], capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


async def screen_clip():
    return await asyncio.to_thread(video_clip, width=1280, height=720, fps=15, bitrate=600_000)


async def test_screen_is_forwarded_to_everyone_admitted_and_not_outside_a_caucus(make_session):
    s = make_session()
    for pid in ("m", "a", "b"):
        await s.join(pid)
    await s.flowing()
    clip = await screen_clip()
    await s.bots["m"].share_screen(clip)
    await wait_until(lambda: all(s.bots[p].receiving_from("m", ("screen",)) for p in ("a", "b")), within=15)
    await s.phase("joint", 1.5)
    figures = {}
    for pid in ("a", "b"):
        got = screen_of(s.got(pid, "joint"), "m")
        assert got["packets"] > 0 and got["frames"] > 10, (pid, got)
        figures[f"joint:{pid}"] = got["packets"]
    pub = s.hub.stats()["participants"]["m"]["publications"]["screen"]
    assert pub["live"] and pub["subscribers"] == 2

    s.hub.routing.open_caucus("side-a", ["m", "a"])
    await s.hub.apply_routing()
    await s.phase("caucus", 1.5)
    assert screen_of(s.got("b", "caucus"), "m")["packets"] == 0  # outside the caucus: nothing of the screen
    assert screen_of(s.got("b", "caucus"), "m")["frames"] == 0
    inside = screen_of(s.got("a", "caucus"), "m")
    assert inside["packets"] > 0 and inside["frames"] > 10
    b_screen = [t for t in s.bots["b"].tracks.values() if t.get("source") == "screen"]
    assert b_screen and all(t["participant"] == "m" and not t["active"] for t in b_screen)
    figures["caucus:a"], figures["caucus:b"] = inside["packets"], 0

    s.hub.routing.close_caucus("side-a")
    await s.hub.apply_routing()
    await s.phase("rejoint", 1.5, settle=0.6)
    back = screen_of(s.got("b", "rejoint"), "m")
    assert back["packets"] > 0 and back["frames"] > 5
    assert screen_of(s.bots["b"].delta("caucus:end", "rejoint:end"), "m")["keyframes"] >= 1  # resumed on a keyframe
    figures["rejoint:b"] = back["packets"]

    await s.bots["m"].stop_screen()
    await wait_until(lambda: not s.hub.stats()["participants"]["m"]["publications"]["screen"]["live"])
    await s.phase("stopped", 1.0, settle=0.6)
    for pid in ("a", "b"):
        assert screen_of(s.got(pid, "stopped"), "m")["packets"] == 0
    # the others' screen slot is free again (their page drops the big tile)
    await wait_until(lambda: not any(t.get("source") == "screen" for t in s.bots["a"].tracks.values()))
    # cameras went on all along
    for pid in ("a", "b"):
        assert s.got(pid, "stopped")["m"]["camera"]["packets"] > 0
    print("screen packets forwarded per phase:", json.dumps(figures))


@pytest.fixture
async def rec_world(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    db = Database(f"sqlite+aiosqlite:///{data}/t.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db, KeyRing.load_or_create(tmp_path / "keys"), LocalStorage(data / "recordings"), data
    await db.close()


async def test_screen_is_recorded_as_its_own_encrypted_stream_and_exported(make_session, rec_world, tmp_path):
    db, keyring, storage, data = rec_world
    s = make_session()
    for pid in ("m", "a"):
        await s.join(pid)
    await s.flowing()
    rec = await Recorder.start(db=db, storage=storage, keyring=keyring, session_id="s1", case_code="QH-HX-2026-000777",
                               participants=[Participant("m", "Mediator Ma", True), Participant("a", "Party A", True)],
                               actor="mediator:1", reason="all parties consented")
    rp = RecorderParticipant(s.hub, rec)
    rp.start()
    await wait_until(lambda: rp.frames_from.get("m", 0) > 10 and rp.frames_from.get("a", 0) > 10)
    clip = await screen_clip()
    await s.bots["m"].share_screen(clip)
    await wait_until(lambda: rp.screen_frames.get("m", 0) > 30, within=15)  # ~2 s at 15 fps
    await s.bots["m"].stop_screen()
    await wait_until(lambda: not s.hub.stats()["participants"]["m"]["publications"]["screen"]["live"])
    await asyncio.sleep(0.5)
    first_share = rp.screen_frames["m"]
    await s.bots["m"].share_screen(clip)  # shared again: a second part of the screen's stream
    await wait_until(lambda: rp.screen_frames["m"] > first_share + 15, within=15)
    # and each camera's video has reached the recorder (on a busy machine the first camera key frame can come
    # after both shares: seen once, m's camera then had no video part at all when the recording stopped)
    await wait_until(lambda: all(rp.camera_keyframes.get(p, 0) >= 1 for p in ("m", "a")), within=30)
    await asyncio.sleep(0.5)  # the frames after that key frame
    doc = await rp.stop("session ended", actor="mediator:1")

    async with db.session() as sess:
        rows = {r.stream_id: r for r in (await sess.scalars(select(RecordingStream)
                                                            .where(RecordingStream.recording_id == rec.recording_id)))}
    screens = sorted(sid for sid in rows if sid.startswith("m.screen."))
    assert screens == ["m.screen.0", "m.screen.1"], sorted(rows)
    for sid in screens:
        assert rows[sid].source_id == "m.screen" and rows[sid].kinds == "video"
        assert (rows[sid].width, rows[sid].height) == (1280, 720)
    # the cameras: each in one part, or on a busy machine in two (the recorder's key frame came after its 2 s
    # wait, audio_only_after_ms: the stream began audio-only and went on as its next part with video)
    for source in ("m", "a"):
        parts = sorted(sid for sid, r in rows.items() if r.source_id == source)
        assert parts[:1] == [f"{source}.0"] and any(rows[sid].width == 640 for sid in parts), sorted(rows)
    manifest_streams = {st["stream_id"]: st for st in doc["manifest"]["streams"]}
    assert set(screens) <= set(manifest_streams)
    # encrypted at rest: no Matroska (EBML) header nor VP8 keyframe start code in any stored byte
    stored = [p for p in (data / "recordings").rglob("*") if p.is_file()]
    assert stored and not any(b"\x1a\x45\xdf\xa3" in p.read_bytes() for p in stored)

    raw = tmp_path / "raw.mkv"
    await export(db, storage, keyring, rec.recording_id, raw, actor="judge:3", reason="review", raw=True)
    probe = await ffprobe(raw)
    titled = [(st["codec_type"], st.get("width"), st.get("tags", {}).get("title", "")) for st in probe["streams"]]
    screen_tracks = [t for t in titled if "screen" in t[2]]
    assert len(screen_tracks) == 2 and all(t[0] == "video" and t[1] == 1280 for t in screen_tracks), titled
    assert all(t[2].startswith("Mediator Ma · 屏幕 screen") for t in screen_tracks)
    mp4 = tmp_path / "court.mp4"
    res = await export(db, storage, keyring, rec.recording_id, mp4, actor="judge:3", reason="review",
                       tile=(320, 180))
    video = next(st for st in (await ffprobe(mp4))["streams"] if st["codec_type"] == "video")
    assert (video["width"], video["height"]) == (640, 360)  # m, a and m's screen: a 2x2 grid of tiles
    durations = {sid: (rows[sid].last_pts_ms or 0) - (rows[sid].first_pts_ms or 0) for sid in screens}
    print("screen frames recorded:", rp.screen_frames, "stream durations (ms):", durations,
          "export:", res.duration_ms, "ms")
