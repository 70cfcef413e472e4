"""Speech-to-text drafts for the electronic transcript (issue 13 item 4): a port, off unless an operator plugs in
an offline engine.

The media hub has each participant's audio separately; media/speech.py (a hub audio tap, created only when a
recognizer is configured) decodes it and hands `AudioFrame`s (16-bit mono PCM with the speaker's participant id,
the time in wall-clock milliseconds from the speaker's RTP clock, and whether it was spoken inside a caucus) to a
`DraftTranscriber`, which feeds one `Recognizer` stream per speaker in a worker thread and passes each `DraftLine`
it produces to a callback. The signaling layer puts the line on the transcript's clock and shows it as
`transcript:draft` to those who may write the transcript (caucus drafts only to those who may see caucus
material, R9); the writer edits it and accepts it with `transcript:write {draft}` (`source="speech"`); a draft is
never an entry by itself (docs/protocol-casefile.md, "Speech drafts").

Plugging an engine (nothing is downloaded at run time; without `SpeechSettings` the feature is simply off):

- sherpa-onnx: `pip install sherpa-onnx`, put a streaming Mandarin model (e.g. a zipformer transducer: encoder,
  decoder, joiner .onnx and tokens.txt) in a directory, and set `SpeechSettings(engine="sherpa-onnx",
  model_dir=...)`. `load_recognizer` builds `sherpa_onnx.OnlineRecognizer.from_transducer(...)` from those files.
  On the command line: `onedoor serve --speech-model DIR [--speech-engine sherpa-onnx] [--speech-threads N]`.
- FunASR (or any other engine): implement `Recognizer` (three methods) around its streaming model (e.g.
  `funasr.AutoModel(model=<local dir>)` with the operator's model files, `disable_update=True`) and set
  `Services.speech` to a factory of per-speaker instances (one per speaker, called from a worker thread).
"""

from __future__ import annotations

import array
import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mediation.errors import InvalidInput

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AudioFrame:
    speaker_id: str  # participant id ("inv-3", "staff-1")
    at_ms: int  # on the session's recording clock (mediation.transcript.clock)
    pcm: bytes  # signed 16-bit little-endian mono samples
    sample_rate: int = SAMPLE_RATE
    caucus: bool = False  # spoken inside a caucus: its drafts are caucus material (R9)

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // (2 * self.sample_rate)


@dataclass(frozen=True)
class DraftLine:
    speaker_id: str
    start_ms: int
    end_ms: int
    text: str
    caucus: bool = False  # from audio inside a caucus (R9): shown only to those who may see caucus material


class Recognizer(Protocol):
    """One speaker's recognition stream. Called from a worker thread, one call at a time."""

    def accept(self, pcm: bytes, sample_rate: int) -> None: ...
    def result(self) -> tuple[str, bool]: ...  # (text so far, whether it is an endpoint: a finished utterance)
    def reset(self) -> None: ...


RecognizerFactory = Callable[[], Recognizer]


@dataclass(frozen=True)
class SpeechSettings:
    engine: str  # "sherpa-onnx"
    model_dir: Path
    threads: int = 1


class _Sherpa:
    def __init__(self, recognizer: Any) -> None:
        self.r, self.stream = recognizer, recognizer.create_stream()

    def accept(self, pcm: bytes, sample_rate: int) -> None:
        samples = array.array("h", pcm)
        self.stream.accept_waveform(sample_rate, [x / 32768.0 for x in samples])
        while self.r.is_ready(self.stream):
            self.r.decode_stream(self.stream)

    def result(self) -> tuple[str, bool]:
        return str(self.r.get_result(self.stream)).strip(), bool(self.r.is_endpoint(self.stream))

    def reset(self) -> None:
        self.r.reset(self.stream)


def load_recognizer(settings: SpeechSettings | None) -> RecognizerFactory | None:
    """A factory of per-speaker streams from the operator's engine and model files; None when not configured."""
    if settings is None:
        return None
    if settings.engine != "sherpa-onnx":
        raise InvalidInput(f"unknown speech engine {settings.engine!r} (plug others in as a Recognizer)",
                           code="bad_config")
    d = settings.model_dir
    files = {name: d / name for name in ("encoder.onnx", "decoder.onnx", "joiner.onnx", "tokens.txt")}
    missing = [n for n, p in files.items() if not p.is_file()]
    if missing:
        raise InvalidInput(f"speech model files missing in {d}: {', '.join(missing)}", code="bad_config")
    try:
        sherpa = importlib.import_module("sherpa_onnx")
    except ImportError as e:
        raise InvalidInput("sherpa-onnx is not installed (pip install sherpa-onnx)", code="bad_config") from e
    rec = sherpa.OnlineRecognizer.from_transducer(
        encoder=str(files["encoder.onnx"]), decoder=str(files["decoder.onnx"]), joiner=str(files["joiner.onnx"]),
        tokens=str(files["tokens.txt"]), num_threads=settings.threads, sample_rate=SAMPLE_RATE,
        enable_endpoint_detection=True)
    return lambda: _Sherpa(rec)


@dataclass
class _Speaker:
    recognizer: Recognizer
    start_ms: int | None = None
    end_ms: int = 0
    caucus: bool = False


@dataclass
class DraftTranscriber:
    """Per-speaker recognition off the event loop; each finished utterance becomes a DraftLine for `on_draft`.

    Frames wait in one bounded queue (`max_pending`); when recognition falls behind, the oldest frames are
    dropped and counted (`dropped`), never the media path blocked."""

    factory: RecognizerFactory
    on_draft: Callable[[DraftLine], Awaitable[None]]
    max_pending: int = 200
    dropped: int = 0
    _speakers: dict[str, _Speaker] = field(default_factory=dict)
    _queue: asyncio.Queue[AudioFrame | None] = field(default_factory=lambda: asyncio.Queue())
    _task: asyncio.Task[None] | None = None

    def recognizer_of(self, speaker_id: str) -> Recognizer | None:
        sp = self._speakers.get(speaker_id)
        return None if sp is None else sp.recognizer

    def feed(self, frame: AudioFrame) -> None:
        if self._queue.qsize() >= self.max_pending:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="speech-drafts")

    async def close(self) -> None:
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
        for pid in list(self._speakers):
            await self._finish(pid)

    async def _run(self) -> None:
        while (frame := await self._queue.get()) is not None:
            sp = self._speakers.get(frame.speaker_id)
            if sp is None:
                sp = self._speakers[frame.speaker_id] = _Speaker(self.factory())
            if sp.start_ms is not None and sp.caucus != frame.caucus:
                await self._finish(frame.speaker_id)  # into or out of a caucus: an utterance never spans both
            if sp.start_ms is None:
                sp.start_ms, sp.caucus = frame.at_ms, frame.caucus
            sp.end_ms = frame.at_ms + frame.duration_ms
            text, endpoint = await asyncio.to_thread(_accept, sp.recognizer, frame)
            if endpoint:
                await self._emit(frame.speaker_id, sp, text)

    async def _finish(self, pid: str) -> None:
        sp = self._speakers[pid]
        text, _ = await asyncio.to_thread(sp.recognizer.result)
        await self._emit(pid, sp, text)

    async def _emit(self, pid: str, sp: _Speaker, text: str) -> None:
        if text and sp.start_ms is not None:
            await self.on_draft(DraftLine(pid, sp.start_ms, sp.end_ms, text, sp.caucus))
        await asyncio.to_thread(sp.recognizer.reset)
        sp.start_ms = None


def _accept(r: Recognizer, frame: AudioFrame) -> tuple[str, bool]:
    r.accept(frame.pcm, frame.sample_rate)
    return r.result()
