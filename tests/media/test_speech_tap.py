"""Speech drafts from the hub (issue 13 item 4) with real aiortc bots over loopback and no recognition faked: a
recognizer test double records the PCM it is given and ends an utterance after N frames. Each bot plays its own
tone, so a speaker's stream is shown to be that speaker's audio only (the dominant frequency, Goertzel)."""

from __future__ import annotations

import asyncio
import math
import struct

import pytest

from media import speech as media_speech
from media.bots import Bot, ClipTrack
from media.channels import DirectChannel
from media.fixtures import audio_clip
from media.speech import SpeechParticipant, wall_ms
from mediation.speech import AudioFrame, DraftLine, DraftTranscriber
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until

pytestmark = [pytest.mark.timeout(120), PC_SETUP_BLOCKS]
TONES = {"m": 440, "a": 1000, "b": 250}
N = 25  # frames per utterance of the double (0.5 s)


class RecordingRecognizer:
    """Recognises nothing: keeps the PCM it receives and reports a fixed endpoint every N frames."""

    def __init__(self) -> None:
        self.pcm: list[bytes] = []
        self.rates: set[int] = set()
        self._n = 0

    def accept(self, pcm: bytes, sample_rate: int) -> None:
        self.pcm.append(pcm)
        self.rates.add(sample_rate)
        self._n += 1

    def result(self) -> tuple[str, bool]:
        return ("endpoint", True) if self._n >= N else ("", False)

    def reset(self) -> None:
        self._n = 0


class SeenTranscriber(DraftTranscriber):
    """The real transcriber; also keeps what it was fed (speaker, time, caucus flag, arrival on the clock)."""

    seen: list[tuple[AudioFrame, int]]

    def feed(self, frame: AudioFrame) -> None:
        self.seen.append((frame, wall_ms()))
        super().feed(frame)


def power(pcm: bytes, hz: float, rate: int = 16000) -> float:
    """Goertzel: the signal's power at one frequency."""
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


def powers(pcm: bytes) -> dict[str, float]:
    return {p: power(pcm, f) for p, f in TONES.items()}


def rec(t: DraftTranscriber, pid: str) -> RecordingRecognizer | None:
    r = t.recognizer_of(pid)
    assert r is None or isinstance(r, RecordingRecognizer)
    return r


def heard(t: DraftTranscriber, pid: str, n: int = 60) -> bool:
    r = rec(t, pid)
    return r is not None and len(r.pcm) > n


async def join(s, pid: str) -> Bot:
    await s.hub.add(pid, {"name": pid})
    bot = Bot(pid, s.router.attach(DirectChannel(s.hub, pid)), s.config, video=False)
    bot.audio_track = ClipTrack(await asyncio.to_thread(audio_clip, tone_hz=TONES[pid]))
    s.bots[pid] = bot
    await bot.join()
    return bot


async def test_each_speaker_is_decoded_alone_timed_and_caucus_marked(make_session) -> None:
    s = make_session()
    drafts: list[DraftLine] = []

    async def on_draft(d: DraftLine) -> None:
        drafts.append(d)

    t = SeenTranscriber(RecordingRecognizer, on_draft)
    t.seen = []
    sp = SpeechParticipant(s.hub, t)
    sp.start()
    for pid in TONES:
        await join(s, pid)
    await s.hub.set_lobby("b", True)  # b waits in the lobby: none of its audio is taken
    await wait_until(lambda: heard(t, "m") and heard(t, "a"), within=30)
    assert t.recognizer_of("b") is None
    await s.hub.set_lobby("b", False)
    await wait_until(lambda: heard(t, "b"), within=30)

    # each recognizer stream got 16 kHz mono of its own speaker's tone, not the others'
    figures = {}
    for pid in TONES:
        r = rec(t, pid)
        assert r is not None and r.rates == {16000}
        pcm = b"".join(r.pcm[-50:])
        got = await asyncio.to_thread(powers, pcm)
        others = max(v for p, v in got.items() if p != pid)
        figures[pid] = got[pid] / max(others, 1.0)
        assert got[pid] > 100 * others, (pid, got)

    # times: per speaker increasing, on the wall clock within a generous tolerance (arrival, then a queue)
    for pid in TONES:
        mine = [(f.at_ms, arrived) for f, arrived in t.seen if f.speaker_id == pid]
        ats = [a for a, _ in mine]
        assert ats == sorted(ats) and len(set(ats)) > len(ats) * 0.9, pid
        assert all(arrived - 10_000 <= at <= arrived + 500 for at, arrived in mine), pid
        assert all(f.sample_rate == 16000 and not f.caucus for f, _ in t.seen if f.speaker_id == pid)

    # the double's endpoints became draft lines per speaker, with the utterances' times
    await wait_until(lambda: {d.speaker_id for d in drafts} == set(TONES), within=30)
    for d in drafts:
        assert d.text == "endpoint" and d.end_ms - d.start_ms >= (N - 2) * 20 and not d.caucus

    # a caucus of m and a: their audio is caucus material; b's is not
    before = len(t.seen)
    await s.hub.set_caucus(frozenset({"m", "a"}))
    await wait_until(lambda: {f.speaker_id for f, _ in t.seen[before:] if f.caucus} == {"m", "a"}
                     and any(d.caucus for d in drafts), within=30)
    await wait_until(lambda: len(t.seen) > before + 300, within=30)
    later = t.seen[before + 100:]
    assert later and all(f.caucus == (f.speaker_id in ("m", "a")) for f, _ in later)
    assert all(not d.caucus for d in drafts if d.speaker_id == "b")

    # muted: b's audio is heard by nobody, so it is not taken either
    await s.hub.set_muted("b", True)
    await asyncio.sleep(0.5)
    n_b = sum(1 for f, _ in t.seen if f.speaker_id == "b")
    await asyncio.sleep(1.0)
    assert sum(1 for f, _ in t.seen if f.speaker_id == "b") == n_b
    await sp.stop()
    print("tone ratio (own / loudest other):", {p: f"{v:.0f}" for p, v in figures.items()},
          "frames", sp.stats())


async def test_no_recognizer_no_tap_no_decoding(make_session) -> None:
    made = media_speech._Decoder.created
    s = make_session()
    for pid in ("m", "a"):
        await join(s, pid)
    await wait_until(lambda: s.bots["m"].receiving_from("a", ("audio",)) and s.bots["a"].receiving_from("m", ("audio",)),
                     within=30)
    await asyncio.sleep(1.0)
    for peer in s.hub._peers.values():
        assert all(not pub.sinks for pub in peer.publications.values())  # no frame is even assembled
    assert media_speech._Decoder.created == made
