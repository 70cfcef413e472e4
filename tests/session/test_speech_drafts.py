"""Speech drafts through the real server (issue 13 item 4), real aiortc bots playing distinct tones, and a
recognizer test double (no recognition faked: it records what it is given and ends an utterance after N frames).
The mediator and the clerk are shown the drafts; a draft from inside a caucus reaches the mediator but not the
clerk outside it (R9); a draft becomes an entry only when accepted; without a recognizer nothing is decoded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from media import speech as media_speech
from media.bots import Bot, ClipTrack
from media.channels import SocketIOChannel
from media.fixtures import audio_clip
from signaling.client import ProtocolError, SessionClient
from tests.conftest import World
from tests.media.conftest import PC_SETUP_BLOCKS
from tests.media.test_speech_tap import RecordingRecognizer

pytestmark = [PC_SETUP_BLOCKS, pytest.mark.timeout(180)]


async def _until(pred, limit: float = 30) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(limit):
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def bots_for(clients: dict[str, SessionClient], tones: dict[str, int]) -> list[Bot]:
    bots = []
    for name, c in clients.items():
        bot = Bot(c.pid, SocketIOChannel(c.sio), video=False)
        bot.audio_track = ClipTrack(await asyncio.to_thread(audio_clip, tone_hz=tones[name]))
        await bot.join()
        bots.append(bot)
    return bots


def drafts(c: SessionClient, private: bool | None = None) -> list[dict[str, Any]]:
    return [d for d in c.events["transcript:draft"] if private is None or d["private"] is private]


async def test_drafts_reach_the_writers_caucus_drafts_stay_inside_and_are_accepted(world: World) -> None:
    made: list[RecordingRecognizer] = []

    def factory() -> RecordingRecognizer:
        made.append(RecordingRecognizer())
        return made[-1]

    world.services.speech = factory
    m, a, b = await world.trio()
    clerk = await world.staff("clerk")
    await clerk.wait(lambda c: "you" in c.state, limit=30)
    for c in (a, b):
        await c.call("lobby:consent", {"kind": "third_party", "subject": clerk.pid, "granted": True})
    await m.call("lobby:admit", {"participant": clerk.pid})
    await clerk.wait(lambda c: c.state.get("you", {}).get("admitted") is True, limit=30)
    bots = await bots_for({"m": m, "a": a, "b": b}, {"m": 440, "a": 1000, "b": 250})
    try:
        speakers = {m.pid, a.pid, b.pid}
        await _until(lambda: {d["speaker_id"] for d in drafts(m)} == speakers
                     and {d["speaker_id"] for d in drafts(clerk)} == speakers, 60)
        assert len(made) == 3  # one recognizer stream per speaker
        assert not a.events["transcript:draft"] and not b.events["transcript:draft"]  # parties do not write
        now = (await m.call("transcript:write", {"speaker": "调解员", "text": "现在开始"}))["at_ms"]
        for d in drafts(m):
            assert d["clock"] == "session_live" and d["text"] == "endpoint" and d["source"] == "speech"
            assert now - 60_000 <= d["at_ms"] < d["end_ms"] <= now + 2_000, (d, now)
            assert d["speaker"] in ("mediator", "张三", "李四")
        assert [e["text"] for e in (await m.call("transcript:get"))["entries"]] == ["现在开始"]  # drafts: not entries

        await m.call("caucus:open", {"members": [m.pid, a.pid]})
        await _until(lambda: any(d["speaker_id"] == a.pid for d in drafts(m, True)), 60)
        joint_seen = len(drafts(clerk))
        await _until(lambda: any(d["speaker_id"] == b.pid for d in drafts(clerk)[joint_seen:]), 60)
        assert not drafts(clerk, True)  # the clerk outside the caucus is shown no caucus draft (R9)
        assert all(d["speaker_id"] != b.pid for d in drafts(m, True))  # b is outside: its audio is joint
        private = next(d for d in drafts(m, True) if d["speaker_id"] == a.pid)
        with pytest.raises(ProtocolError) as e:
            await clerk.call("transcript:write", {"speaker": "张三", "text": "x", "draft": private["id"]})
        assert e.value.code == "draft_not_found"
        acc = await m.call("transcript:write", {"speaker": private["speaker"], "speaker_id": a.pid,
                                                "text": "我同意分期", "draft": private["id"]})
        assert acc["at_ms"] == private["at_ms"]
        await a.wait(lambda c: any(x["text"] == "我同意分期" for x in c.events["transcript:entry"]), limit=30)
        entry = a.events["transcript:entry"][-1]
        assert entry["private"] is True and entry["source"] == "speech" and entry["text"] == "我同意分期"
        await asyncio.sleep(0.5)
        assert all(x["text"] != "我同意分期" for x in b.events["transcript:entry"] + clerk.events["transcript:entry"])
        with pytest.raises(ProtocolError) as e:  # accepted once
            await m.call("transcript:write", {"speaker": "张三", "text": "x", "draft": private["id"]})
        assert e.value.code == "draft_not_found"
        live = world.services.live.get(world.session_id)
        assert live is not None and live.speech is not None
        print("speech:", live.speech.stats(), "drafts to mediator", len(drafts(m)), "to clerk", len(drafts(clerk)))
    finally:
        for bot in bots:
            await bot.close()


async def test_without_a_recognizer_nothing_is_decoded(world: World) -> None:
    before = media_speech._Decoder.created
    m, a, _ = await world.trio()
    bots = await bots_for({"m": m, "a": a}, {"m": 440, "a": 1000})
    try:
        await _until(lambda: bots[0].receiving_from(a.pid, ("audio",)) and bots[1].receiving_from(m.pid, ("audio",)))
        await asyncio.sleep(1.0)
        live = world.services.live.get(world.session_id)
        assert live is not None and live.speech is None and media_speech._Decoder.created == before
        assert not m.events["transcript:draft"]
    finally:
        for bot in bots:
            await bot.close()
