"""The speech-to-text port's plumbing (issue 13 item 4), with no recognition faked: what a Recognizer receives
(each speaker's own frames, in order, with their clock times) and that the feature is off unless configured."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mediation.errors import InvalidInput
from mediation.speech import AudioFrame, DraftLine, DraftTranscriber, SpeechSettings, load_recognizer

pytestmark = pytest.mark.timeout(20)


class Recording:
    """A Recognizer that recognises nothing: it records what it was given."""

    def __init__(self, log: list[tuple[int, int, int]]) -> None:
        self.log, self.n = log, 0

    def accept(self, pcm: bytes, sample_rate: int) -> None:
        self.log.append((id(self), len(pcm), sample_rate))

    def result(self) -> tuple[str, bool]:
        return "", False

    def reset(self) -> None:
        pass


def frame(pid: str, at_ms: int, tag: int) -> AudioFrame:
    return AudioFrame(pid, at_ms, bytes([tag]) * 640)  # 20 ms of 16 kHz 16-bit mono


async def test_each_speaker_gets_its_own_stream_in_order_and_no_draft_without_text() -> None:
    log: list[tuple[int, int, int]] = []
    made: list[Recording] = []
    drafts: list[DraftLine] = []

    def factory() -> Recording:
        made.append(Recording(log))
        return made[-1]

    async def on_draft(d: DraftLine) -> None:
        drafts.append(d)

    t = DraftTranscriber(factory, on_draft)
    for i in range(10):
        t.feed(frame("inv-1", i * 20, 1))
        t.feed(frame("inv-2", i * 20 + 5, 2))
    await t.close()
    assert len(made) == 2  # one recognition stream per speaker
    per = {id(r): [x for x in log if x[0] == id(r)] for r in made}
    assert all(len(v) == 10 and all(x[1:] == (640, 16000) for x in v) for v in per.values())
    assert drafts == []  # nothing recognised, nothing drafted
    assert frame("inv-1", 0, 1).duration_ms == 20


async def test_a_slow_engine_drops_old_frames_instead_of_queueing_forever() -> None:
    gate = asyncio.Event()
    log: list[tuple[int, int, int]] = []

    async def on_draft(d: DraftLine) -> None:
        await gate.wait()

    t = DraftTranscriber(lambda: Recording(log), on_draft, max_pending=5)
    for i in range(50):
        t.feed(frame("inv-1", i * 20, 1))
    await t.close()
    assert t.dropped >= 40 and len(log) + t.dropped == 50


def test_off_unless_configured_and_never_downloads(tmp_path: Path) -> None:
    assert load_recognizer(None) is None
    with pytest.raises(InvalidInput) as e:
        load_recognizer(SpeechSettings("sherpa-onnx", tmp_path))
    assert "encoder.onnx" in e.value.message
    with pytest.raises(InvalidInput):
        load_recognizer(SpeechSettings("cloud-asr", tmp_path))
