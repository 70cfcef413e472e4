"""Recording through the real server: consent first (R1, P2), pause/resume with reasons (R12), caucus not
recorded (R9), and the export plays with video from every participant (P1)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from media.bots import Bot
from media.channels import SocketIOChannel
from mediation import audit
from mediation.recording_records import RecordingEvent
from recordings.export import export
from signaling.client import ProtocolError
from tests.conftest import World
from tests.media.conftest import PC_SETUP_BLOCKS

# bots join over real peer connections: see PC_SETUP_BLOCKS in tests/media/conftest.py
pytestmark = PC_SETUP_BLOCKS


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


@pytest.mark.timeout(120)
async def test_consent_gated_recording_with_pause_caucus_and_export(world: World, tmp_path: Path) -> None:
    m = await world.staff("mediator")
    a, b = await world.party("A"), await world.party("B")
    await world.ready(a, "A")
    await world.ready(b, "B", recording=False)
    await m.call("lobby:admit-all")
    bots = {c.pid: Bot(c.pid, SocketIOChannel(c.sio)) for c in (m, a, b)}
    try:
        for bot in bots.values():
            await bot.join()
        with pytest.raises(ProtocolError) as e:
            await m.call("recording:start", {})
        assert e.value.code == "consent_missing" and e.value.error["detail"]["participants"] == [b.pid]
        with pytest.raises(ProtocolError) as e:
            await a.call("recording:start", {})
        assert e.value.code == "forbidden"
        await b.call("lobby:consent", {"kind": "recording", "granted": True})
        rid = (await m.call("recording:start", {}))["recording"]
        await a.wait(lambda c: c.state["recording"] == "running")
        await asyncio.sleep(2.5)
        with pytest.raises(ProtocolError) as e:
            await m.call("recording:pause", {})
        assert e.value.code == "invalid_input"  # a pause needs a reason (R12)
        await m.call("recording:pause", {"reason": "当事人处理私人电话"})
        await asyncio.sleep(0.5)
        await m.call("recording:resume", {"reason": "继续调解"})
        await asyncio.sleep(1.5)
        await m.call("caucus:open", {"members": [m.pid, a.pid]})
        await asyncio.sleep(1.5)
        await m.call("caucus:close")
        await asyncio.sleep(1.5)
        # withdrawing consent pauses the recording for everyone
        await b.call("lobby:consent", {"kind": "recording", "granted": False})
        await m.wait(lambda c: c.state["recording"] == "paused")
        await b.call("lobby:consent", {"kind": "recording", "granted": True})
        await m.call("recording:resume", {"reason": "李四重新同意录像"})
        await asyncio.sleep(1.0)
        stopped = await m.call("recording:stop", {"reason": "调解结束"})
        assert stopped["recording"] == rid and stopped["segments"] > 0
    finally:
        for bot in bots.values():
            await bot.close()
    sv = world.services
    async with sv.db.session() as s:
        events = (await s.scalars(select(RecordingEvent).where(RecordingEvent.recording_id == rid)
                                  .order_by(RecordingEvent.id))).all()
        kinds = [(e.kind, e.reason) for e in events]
        seg_entries = [e for e in await audit.entries_for(s, f"recording:{rid}") if "segment" in e.action]
    assert [k for k, _ in kinds][:1] == ["start"] and ("pause", "当事人处理私人电话") in kinds
    assert any(k == "pause" and "withdrawn" in (r or "") for k, r in kinds) and kinds[-1][0] == "stop"
    assert seg_entries, "each segment's hash is in the audit log"
    out = tmp_path / "court-copy.mkv"
    res = await export(sv.db, sv.storage, sv.keys, rid, out, actor="staff-1", reason="test export")
    info = probe(out)
    kinds_out = sorted(s["codec_type"] for s in info["streams"])
    assert kinds_out == ["audio", "video"]  # ONE playable file: grid video + mixed audio
    assert res is not None
    # the file plays for the recording's duration on the recorder's clock (not compared with wall-clock time)
    assert abs(float(info["format"]["duration"]) - res.duration_ms / 1000) < 0.5, (info["format"], res)
    assert res.duration_ms > 0
    # over HTTP: the mediator exports with a reason; a judge of a court the case was not sent to cannot see it
    async with m.http.get(f"{world.base_url}/api/recordings/{rid}/export") as r:
        assert r.status == 422 and (await r.json())["error"]["code"] == "reason_required"
    async with m.http.get(f"{world.base_url}/api/recordings/{rid}/export?reason=review") as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/x-matroska"
        body = await r.read()
    (tmp_path / "http.mkv").write_bytes(body)
    assert sorted(s["codec_type"] for s in probe(tmp_path / "http.mkv")["streams"]) == ["audio", "video"]
    judge = await world.staff("judge", session=False)
    async with judge.http.get(f"{world.base_url}/api/recordings/{rid}/export?reason=x") as r:
        assert r.status == 404
    listed = await m.api("GET", f"/api/cases/{world.case_code}/recordings")
    assert [x["id"] for x in listed["recordings"]] == [rid]
    async with sv.db.session() as s:
        reads = [e for e in await audit.entries_for(s, f"recording:{rid}") if e.action.startswith("recording.")
                 and e.actor.startswith("staff-") and e.reason == "review"]
    assert reads, "the HTTP export is in the audit log with its reason"
    # nothing under the data directory holds a plaintext Matroska header
    for f in sv.settings.data_dir.rglob("*"):
        if f.is_file():
            assert b"\x1a\x45\xdf\xa3" not in f.read_bytes(), f


@pytest.mark.timeout(120)
async def test_caucus_not_recorded_by_default_and_recorded_privileged_by_center_policy(world: World) -> None:
    from sqlalchemy import update

    from mediation.models import Center
    from mediation.recording_records import Recording, RecordingParticipant

    m, a, b = await world.trio()
    bots = [Bot(c.pid, SocketIOChannel(c.sio)) for c in (m, a, b)]
    room = world.services.live.get(world.session_id)
    assert room is not None
    try:
        for bot in bots:
            await bot.join()
        await m.call("recording:start", {})
        await asyncio.sleep(1.5)
        # default policy: during the caucus the joint recorder gets nothing from the caucus members (R9)
        await m.call("caucus:open", {"members": [m.pid, a.pid]})
        await asyncio.sleep(0.5)
        before = dict(room.recorder.frames_from)
        await asyncio.sleep(1.5)
        during = dict(room.recorder.frames_from)
        assert during.get(m.pid, 0) == before.get(m.pid, 0) and during.get(a.pid, 0) == before.get(a.pid, 0)
        assert during.get(b.pid, 0) > before.get(b.pid, 0)
        assert room.caucus_recorder is None
        await m.call("caucus:close")
        # the center records caucus separately: a privileged recording of the members only
        async with world.services.db.session() as s:
            await s.execute(update(Center).values(record_caucus=True))
        await m.call("caucus:open", {"members": [m.pid, b.pid]})
        await asyncio.sleep(2.0)
        crp = room.caucus_recorder
        assert crp is not None and set(crp.frames_from) == {m.pid, b.pid}
        await m.call("caucus:close")
        assert room.caucus_recorder is None
        await m.call("recording:stop", {"reason": "结束"})
    finally:
        for bot in bots:
            await bot.close()
    async with world.services.db.session() as s:
        recs = (await s.scalars(select(Recording).order_by(Recording.started_at))).all()
        assert [(r.record_type, r.privileged) for r in recs] == [("mediation_recording", False),
                                                                  ("caucus_recording", True)]
        who = (await s.scalars(select(RecordingParticipant.source_id)
                               .where(RecordingParticipant.recording_id == recs[1].id))).all()
        assert sorted(who) == sorted([m.pid, b.pid])
